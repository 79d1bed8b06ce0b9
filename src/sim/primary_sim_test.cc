// The primary-backup engines in the simulator (sim/primary_sim.h): a modest
// seed sweep per strategy, every run clean. CHORUS_PSIM_SEEDS=A..B widens
// the sweep (chorus sim --strategy X --seeds A..B runs the same code);
// CHORUS_PSIM_TRACE=seed prints one run's trace.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "sim/assertion.h"
#include "sim/run.h"

namespace chorus::sim {
namespace {

struct Range {
  uint64_t first = 1;
  uint64_t last = 0;
};

Range seeds(uint64_t default_count) {
  Range r{1, default_count};
  if (const char* s = std::getenv("CHORUS_PSIM_SEEDS")) {
    const std::string v = s;
    const auto dots = v.find("..");
    r.first = std::stoull(v.substr(0, dots));
    r.last = dots == std::string::npos ? r.first : std::stoull(v.substr(dots + 2));
  }
  return r;
}

int sweep(const char* strategy, uint64_t default_count) {
  throw_on_assertion_failure();
  if (const char* t = std::getenv("CHORUS_PSIM_TRACE")) {
    RunOptions o;
    o.seed = std::stoull(t);
    o.trace = true;
    auto r =
        run_strategy(strategy, o, [](const std::string& l) { std::printf("%s\n", l.c_str()); });
    std::printf("%s\n", r->settings.c_str());
    for (const auto& v : r->violations) std::printf("violation: %s\n", v.c_str());
    return static_cast<int>(r->violations.size());
  }
  const Range r = seeds(default_count);
  int bad = 0;
  uint64_t ok = 0;
  uint64_t lost = 0;
  for (uint64_t s = r.first; s <= r.last; ++s) {
    RunOptions o;
    o.seed = s;
    auto rep = run_strategy(strategy, o);
    EXPECT_TRUE(rep.has_value());
    if (!rep) return 1;
    ok += rep->ops_ok;
    lost += rep->leader_changes;
    if (!rep->violations.empty()) {
      ++bad;
      std::printf("FAIL %s seed %llu\n%s\n", strategy, static_cast<unsigned long long>(s),
                  rep->settings.c_str());
      for (const auto& v : rep->violations) std::printf("  violation: %s\n", v.c_str());
    }
  }
  std::printf("%s: seeds %llu..%llu, violations: %d (ops ok %llu, primary changes %llu)\n",
              strategy, static_cast<unsigned long long>(r.first),
              static_cast<unsigned long long>(r.last), bad, static_cast<unsigned long long>(ok),
              static_cast<unsigned long long>(lost));
  return bad;
}

// Under the sanitizers a seed costs ~5x more and the sweep finds nothing
// they would: a few seeds there, the sanitizers' part being the point.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kSeeds = 5;
#else
constexpr uint64_t kSeeds = 30;
#endif

TEST(PrimarySim, SyncAllSweepIsClean) {
  EXPECT_EQ(sweep("sync-all", kSeeds), 0);
}
TEST(PrimarySim, SemiSyncSweepIsClean) {
  EXPECT_EQ(sweep("semi-sync", kSeeds), 0);
}
TEST(PrimarySim, AsyncSweepIsClean) {
  EXPECT_EQ(sweep("async", kSeeds), 0);
}

}  // namespace
}  // namespace chorus::sim
