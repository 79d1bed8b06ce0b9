// The command line of `chorus bench`, kept apart from the tool so that the
// tests can parse and validate argument vectors.
//
//   chorus bench --driver resp|etcd|zookeeper --endpoints 127.0.0.1:7001[,host:port...]
//                --workload set|get|mixed --clients 50 [--pipeline 1]
//                [--ops N | --duration 10s] [--warmup 1s|N] [--keys 100000]
//                [--key-size 16] [--value-size 256] [--read-ratio 0.9]
//                [--distribution uniform|zipfian] [--zipf-theta 0.99] [--seed 1]
//                [--connect-to first|round-robin] [--timeout 5s]
//                [--driver-opt key=value ...] [--preload | --no-preload]
//                [--preload-clients 32] [--label NAME] [--json] [--quiet]
//
// Durations are a number with a unit: 500ms, 10s, 2m (a bare number is
// seconds). --warmup takes a duration or, as a bare integer with no unit, an
// operation count ("--warmup 5000"; "--warmup 5000ops" also works). Neither
// --ops nor --duration: --duration 10s. Preloading defaults to on for `get`
// and `mixed`, off for `set`.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "bench/driver.h"
#include "bench/runner.h"
#include "bench/workload.h"

namespace chorus::bench {

// The arguments as typed (strings where a unit or a name must be parsed).
struct BenchArgs {
  std::string driver = "resp";
  std::string endpoints = "127.0.0.1:7001";
  std::string connect_to = "first";
  std::string timeout = "5s";
  std::vector<std::string> driver_opts;
  std::string workload = "set";
  int clients = 50;
  int pipeline = 1;
  uint64_t ops = 0;
  std::string duration;
  std::string warmup = "1s";
  uint64_t keys = 100'000;
  int key_size = 16;
  int value_size = 256;
  double read_ratio = 0.9;
  std::string distribution = "uniform";
  double zipf_theta = 0.99;
  uint64_t seed = 1;
  bool preload = false;
  bool no_preload = false;
  int preload_clients = 32;
  std::string label;
  bool json = false;
  bool quiet = false;
};

// Everything a run needs, validated.
struct BenchConfig {
  std::string driver;
  std::string label;  // what the report calls the system; defaults to the driver name
  DriverOptions driver_options;
  WorkloadSpec workload;
  RunOptions run;
  bool preload = false;
  PreloadOptions preload_options;
  bool json = false;
  bool quiet = false;
};

// Registers the options above on `cmd`, writing into `args` (which must
// outlive `cmd`'s parse). The help lists the drivers of `registry`.
void add_bench_options(CLI::App& cmd, BenchArgs& args,
                       const DriverRegistry& registry = builtin_drivers());

// Checks every value and builds the config. InvalidArgument naming the
// option on any bad value; also builds one driver through its factory so a
// bad --driver-opt value is caught here.
Result<BenchConfig> validate_bench_args(const BenchArgs& args, const DriverRegistry& registry);

// Parses `argv` (the words after `chorus bench`) and validates them.
Result<BenchConfig> parse_bench_args(const std::vector<std::string>& argv,
                                     const DriverRegistry& registry);

// "500ms", "10s", "2m", "1.5s", "10" (seconds). InvalidArgument otherwise.
Result<std::chrono::nanoseconds> parse_duration(std::string_view s);

inline constexpr std::chrono::hours kDurationMax{24};

}  // namespace chorus::bench
