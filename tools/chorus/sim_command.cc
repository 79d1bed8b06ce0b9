#include "sim_command.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "host/registry.h"
#include "sim/assertion.h"
#include "sim/run.h"

namespace chorus::tools {

int run_demo(uint64_t seed);

namespace {

struct SimArgs {
  std::string strategy = "raft";
  std::string seeds;
  uint64_t seed = 0;
  bool trace = false;
  bool bench = false;
  bool quiet = false;
  bool expect_violations = false;
  bool demo = false;
  int jobs = 0;
  int nodes = 0;
  bool lease_reads = false;
  double safety_s = 6.0;
};

// "A..B" or "N" -> [first, last].
bool parse_range(const std::string& s, uint64_t& first, uint64_t& last) {
  auto dots = s.find("..");
  try {
    if (dots == std::string::npos) {
      first = last = std::stoull(s);
    } else {
      first = std::stoull(s.substr(0, dots));
      last = std::stoull(s.substr(dots + 2));
    }
  } catch (const std::exception&) {
    return false;
  }
  return first <= last;
}

sim::RunOptions options_for(const SimArgs& a, uint64_t seed) {
  sim::RunOptions o;
  o.seed = seed;
  o.trace = a.trace;
  o.nodes = a.nodes;
  if (a.lease_reads) {
    o.knobs["check_quorum"] = 1;
    o.knobs["lease_reads"] = 1;
  }
  o.safety_phase_us = static_cast<sim::Time>(a.safety_s * 1e6);
  return o;
}

void print_failure(const std::string& strategy, const sim::RunReport& r) {
  std::printf("FAIL seed %llu\n%s\n", static_cast<unsigned long long>(r.seed), r.settings.c_str());
  for (const auto& v : r.violations) std::printf("  violation: %s\n", v.c_str());
  std::printf("  replay: chorus sim --strategy %s --seed %llu --trace\n", strategy.c_str(),
              static_cast<unsigned long long>(r.seed));
  std::fflush(stdout);
}

int run_one(const SimArgs& a) {
  sim::RunOptions o = options_for(a, a.seed);
  const auto t0 = std::chrono::steady_clock::now();
  sim::RunReport r = *sim::run_strategy(
      a.strategy, o, [](const std::string& line) { std::printf("%s\n", line.c_str()); });
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("%s\n", r.settings.c_str());
  std::printf(
      "ops: %llu ok, %llu failed, %llu unknown; entries committed %llu; leader changes %llu; "
      "crashes %llu; partitions %llu; stalls %llu; lease reads %llu; snapshots %llu; messages "
      "%llu (%llu dropped); events %llu\n",
      (unsigned long long)r.ops_ok, (unsigned long long)r.ops_failed,
      (unsigned long long)r.ops_unknown, (unsigned long long)r.entries_committed,
      (unsigned long long)r.leader_changes, (unsigned long long)r.crashes,
      (unsigned long long)r.partitions, (unsigned long long)r.stalls,
      (unsigned long long)r.lease_reads, (unsigned long long)r.snapshots,
      (unsigned long long)r.messages_sent, (unsigned long long)r.messages_dropped,
      (unsigned long long)r.events);
  if (r.drops_resurrected > 0) {
    std::printf("entries reported dropped by one node and still held by a later primary: %llu\n",
                (unsigned long long)r.drops_resurrected);
  }
  std::printf("simulated %.3fs in %.3fs wall (%.0fx real time)\n",
              static_cast<double>(r.sim_time_us) / 1e6, wall,
              static_cast<double>(r.sim_time_us) / 1e6 / wall);
  for (const auto& v : r.violations) std::printf("violation: %s\n", v.c_str());
  std::printf("seeds: 1, violations: %zu\n", r.violations.empty() ? size_t{0} : size_t{1});
  return r.violations.empty() ? 0 : 1;
}

int run_sweep(const SimArgs& a) {
  uint64_t first = 0;
  uint64_t last = 0;
  if (!parse_range(a.seeds, first, last)) {
    std::fprintf(stderr, "chorus sim: --seeds must be N or A..B with A <= B, got '%s'\n",
                 a.seeds.c_str());
    return 2;
  }
  const int jobs = a.jobs > 0 ? a.jobs : std::max(1u, std::thread::hardware_concurrency());
  std::atomic<uint64_t> next{first};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> done{0};
  std::atomic<uint64_t> ops{0};
  std::atomic<int64_t> sim_us{0};
  std::atomic<uint64_t> inconclusive{0};
  std::mutex out_mu;
  const uint64_t total = last - first + 1;
  const auto t0 = std::chrono::steady_clock::now();
  auto worker = [&] {
    for (uint64_t s = next++; s <= last; s = next++) {
      SimArgs one = a;
      one.trace = false;
      sim::RunReport r = *sim::run_strategy(a.strategy, options_for(one, s));
      ops += r.ops_ok + r.ops_failed + r.ops_unknown;
      sim_us += r.sim_time_us;
      inconclusive += r.checks_inconclusive;
      const uint64_t d = ++done;
      std::lock_guard<std::mutex> lk(out_mu);
      if (!r.violations.empty()) {
        ++failed;
        if (!a.quiet || failed <= 3) print_failure(a.strategy, r);
      }
      if (!a.quiet && (d % 500 == 0 || d == total)) {
        std::fprintf(stderr, "  %llu/%llu seeds, %llu with violations\n", (unsigned long long)d,
                     (unsigned long long)total, (unsigned long long)failed.load());
      }
    }
  };
  std::vector<std::thread> threads;
  for (int j = 0; j < jobs; ++j) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (a.bench) {
    std::printf(
        "bench: %llu seeds, %llu client ops, %.1fs simulated in %.2fs wall on %d threads: "
        "%.0f ops/s wall, %.0fx real time per thread\n",
        (unsigned long long)total, (unsigned long long)ops.load(),
        static_cast<double>(sim_us.load()) / 1e6, wall, jobs,
        static_cast<double>(ops.load()) / wall,
        static_cast<double>(sim_us.load()) / 1e6 / (wall * jobs));
  }
  std::printf("seeds: %llu, violations: %llu\n", (unsigned long long)total,
              (unsigned long long)failed.load());
  if (a.expect_violations) return failed > 0 ? 0 : 1;
  return failed == 0 ? 0 : 1;
}

}  // namespace

void add_sim_command(CLI::App& app) {
  auto args = std::make_shared<SimArgs>();
  CLI::App* sim =
      app.add_subcommand("sim", "Run the deterministic simulator (one seed, or a sweep)");
  std::vector<std::string> names;
  std::string listed;
  for (auto n : sim::simulated_strategies()) {
    names.emplace_back(n);
    listed += (listed.empty() ? "" : ", ") + std::string(n);
  }
  sim->add_option("--strategy", args->strategy, "Replication strategy to simulate (" + listed + ")")
      ->check(CLI::IsMember(names))
      ->capture_default_str();
  auto* seeds = sim->add_option("--seeds", args->seeds, "Sweep seeds A..B (or one seed N)");
  auto* seed = sim->add_option("--seed", args->seed,
                               "Replay one seed, printing its settings and statistics");
  seeds->excludes(seed);
  sim->add_flag("--demo", args->demo,
                "A narrated 3-node cluster: election, writes, leader crash, re-election");
  sim->add_flag("--trace", args->trace,
                "With --seed: print every message, election, commit and fault");
  sim->add_flag("--bench", args->bench,
                "With --seeds: report simulated operations per wall second");
  sim->add_flag("--quiet", args->quiet, "No progress lines on stderr");
  sim->add_flag("--expect-violations", args->expect_violations,
                "Exit 0 only if the sweep finds a violation (for testing planted bugs)");
  sim->add_option("--jobs,-j", args->jobs, "Seeds simulated in parallel (default: one per core)");
  sim->add_option("--nodes", args->nodes, "Cluster size (default: the seed picks 3 or 5)")
      ->check(CLI::Range(1, 9));
  sim->add_flag("--lease-reads", args->lease_reads, "Serve reads under a leader lease");
  sim->add_option("--safety-seconds", args->safety_s, "Simulated seconds of faults before healing")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  sim->callback([args, seeds, seed] {
    sim::throw_on_assertion_failure();
    int rc = 0;
    if (args->demo) {
      rc = run_demo(args->seed != 0 ? args->seed : 1);
    } else if (seeds->count() == 0 && seed->count() == 0) {
      throw CLI::RequiredError("--seeds or --seed (or --demo)");
    } else {
      rc = seed->count() > 0 ? run_one(*args) : run_sweep(*args);
    }
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace chorus::tools
