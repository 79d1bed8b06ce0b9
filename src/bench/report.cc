#include "bench/report.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include <fmt/format.h>

namespace chorus::bench {
namespace {

// Nanoseconds to microseconds, rounded to 0.1 us.
double us(uint64_t ns) {
  return std::round(static_cast<double>(ns) / 100.0) / 10.0;
}

std::string workload_description(const BenchConfig& c) {
  const WorkloadSpec& w = c.workload;
  std::string s(workload_name(w.kind));
  if (w.kind == WorkloadKind::kMixed) s += fmt::format(" ({:.0f}% reads)", w.read_ratio * 100);
  s += fmt::format(", {} keys {}, {} B keys, {} B values", w.keys,
                   distribution_name(w.distribution), w.key_size, w.value_size);
  return s;
}

}  // namespace

std::string format_table(const BenchConfig& c, const RunReport& r) {
  const Histogram& h = r.latency;
  std::string out;
  out += fmt::format("system    {} (driver {}, {})\n", c.label, c.driver,
                     c.driver_options.endpoints.front().to_string() +
                         (c.driver_options.endpoints.size() > 1 ? ",..." : ""));
  out += fmt::format("workload  {}\n", workload_description(c));
  out += fmt::format("clients   {} x pipeline {}\n", c.run.clients, c.run.pipeline);
  out += fmt::format("{:>12} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>8}\n", "ops/s", "ops",
                     "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "mean us", "errors");
  out += fmt::format(
      "{:>12.0f} {:>10} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>8}\n",
      r.ops_per_s(), r.ops, us(h.percentile(50)), us(h.percentile(90)), us(h.percentile(99)),
      us(h.percentile(99.9)), us(h.max_ns()), std::round(h.mean_ns() / 100.0) / 10.0, r.errors);
  out += fmt::format("measured over {:.2f} s", r.duration_s);
  if (r.not_found > 0) out += fmt::format("; {} reads found no key", r.not_found);
  out += "\n";
  if (r.errors > 0) out += fmt::format("first error: {}\n", r.first_error);
  if (r.stuck_clients > 0) {
    out += fmt::format(
        "warning: {} of {} clients waited for one reply through the whole measured window "
        "(the system stalled)\n",
        r.stuck_clients, c.run.clients);
  }
  return out;
}

std::string format_json(const BenchConfig& c, const RunReport& r) {
  const Histogram& h = r.latency;
  nlohmann::ordered_json j;
  j["system"] = c.label;
  j["driver"] = c.driver;
  j["workload"] = workload_name(c.workload.kind);
  j["distribution"] = distribution_name(c.workload.distribution);
  if (c.workload.kind == WorkloadKind::kMixed) j["read_ratio"] = c.workload.read_ratio;
  j["clients"] = c.run.clients;
  j["pipeline"] = c.run.pipeline;
  j["keys"] = c.workload.keys;
  j["key_size"] = c.workload.key_size;
  j["value_size"] = c.workload.value_size;
  j["ops"] = r.ops;
  j["errors"] = r.errors;
  j["not_found"] = r.not_found;
  j["duration_s"] = std::round(r.duration_s * 1000) / 1000;
  j["ops_per_s"] = std::round(r.ops_per_s() * 10) / 10;
  j["p50_us"] = us(h.percentile(50));
  j["p90_us"] = us(h.percentile(90));
  j["p99_us"] = us(h.percentile(99));
  j["p999_us"] = us(h.percentile(99.9));
  j["max_us"] = us(h.max_ns());
  j["mean_us"] = std::round(h.mean_ns() / 100.0) / 10.0;
  j["stuck_clients"] = r.stuck_clients;
  if (r.errors > 0) j["first_error"] = r.first_error;
  return j.dump();
}

}  // namespace chorus::bench
