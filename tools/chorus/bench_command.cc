// `chorus bench`: the closed-loop load generator (src/bench) on the command
// line. Preloads the key space if the workload reads, runs, and prints a
// table (stdout; stderr with --json) and, with --json, one JSON object on
// stdout. Exit 0 after a run (errors are reported, not fatal), 1 if the
// clients could not connect or the preload failed, 2 on bad arguments.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "bench/args.h"
#include "bench/report.h"
#include "bench/runner.h"

namespace chorus::tools {
namespace {

int run_bench(const bench::BenchConfig& c) {
  const bench::DriverInfo* info = bench::builtin_drivers().find(c.driver);
  const bench::Workload workload(c.workload);
  if (c.preload) {
    if (Status st = bench::preload(info->make, c.driver_options, workload, c.preload_options);
        !st.is_ok()) {
      std::fprintf(stderr, "chorus bench: %s\n", st.to_string().c_str());
      return 1;
    }
  }
  auto report = bench::run_closed_loop(info->make, c.driver_options, workload, c.run);
  if (!report.is_ok()) {
    std::fprintf(stderr, "chorus bench: %s\n", report.status().to_string().c_str());
    return 1;
  }
  const std::string table = bench::format_table(c, *report);
  if (!c.json) {
    std::fputs(table.c_str(), stdout);
  } else {
    if (!c.quiet) std::fputs(table.c_str(), stderr);
    std::printf("%s\n", bench::format_json(c, *report).c_str());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app) {
  auto args = std::make_shared<bench::BenchArgs>();
  CLI::App* cmd = app.add_subcommand(
      "bench",
      "Closed-loop load generator: N clients against Chorus or Redis (resp), etcd, ZooKeeper");
  bench::add_bench_options(*cmd, *args);
  cmd->callback([args] {
    auto config = bench::validate_bench_args(*args, bench::builtin_drivers());
    if (!config.is_ok()) {
      std::fprintf(stderr, "chorus bench: %s\n", config.status().message().c_str());
      throw CLI::RuntimeError(2);
    }
    if (int rc = run_bench(*config); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace chorus::tools
