// The results of a run, as a human table and as one JSON object.
//
// JSON fields (one object, one line): system, driver, workload, distribution,
// read_ratio (mixed only), clients, pipeline, keys, key_size, value_size,
// ops (successful measured operations), errors, not_found, duration_s,
// ops_per_s, and latency of successful operations in microseconds: p50_us,
// p90_us, p99_us, p999_us, max_us, mean_us; first_error when errors > 0.
#pragma once

#include <string>

#include "bench/args.h"
#include "bench/runner.h"

namespace chorus::bench {

std::string format_table(const BenchConfig& config, const RunReport& report);
std::string format_json(const BenchConfig& config, const RunReport& report);

}  // namespace chorus::bench
