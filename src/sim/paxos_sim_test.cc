// Multi-Paxos in the simulator (sim/paxos_sim.h): a seed sweep under every
// fault, every run clean (linearizable, the engine-agnostic checks and
// core/paxos/invariants.h), and a scenario where two proposers duel.
// `chorus sim --strategy paxos --seeds A..B` runs the same sweep wider.
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <string>

#include "sim/paxos_sim.h"
#include "sim/run.h"
#include "sim/scenario.h"

namespace chorus::sim {
namespace {

TEST(PaxosSim, SweepIsClean) {
  throw_on_assertion_failure();
  uint64_t ok = 0;
  uint64_t leader_changes = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    RunOptions o;
    o.seed = seed;
    const std::optional<RunReport> r = run_strategy("paxos", o);
    ASSERT_TRUE(r.has_value());
    for (const auto& v : r->violations) ADD_FAILURE() << "seed " << seed << ": " << v;
    ok += r->ops_ok;
    leader_changes += r->leader_changes;
  }
  std::printf("paxos: 40 seeds, ops ok %llu, leader changes %llu\n",
              static_cast<unsigned long long>(ok), static_cast<unsigned long long>(leader_changes));
  EXPECT_GT(ok, 0u);
}

TEST(PaxosSim, IsListedAmongTheSimulatedStrategies) {
  bool found = false;
  for (auto s : simulated_strategies()) found = found || s == "paxos";
  EXPECT_TRUE(found);
}

// Dueling proposers (Paxos Made Simple §3: progress needs one distinguished
// proposer): of three replicas the leader is down, so each of the other two
// needs the other's promise, and both time out on it at the same instant
// (their loops were paused together). Both prepare; a higher ballot preempts
// the lower, and only the randomized backoff keeps them from preempting each
// other for ever. Twelve times over a leader must still emerge and commit.
TEST(PaxosSim, DuelingProposersConvergeAndCommit) {
  throw_on_assertion_failure();
  Cluster<paxos::Paxos> c(testing::quiet(7), nullptr);
  // Who sent Prepares since the leader was lost: both survivors is a duel.
  std::set<uint64_t> preparers;
  c.on_deliver([&](const paxos::Message& m) {
    if (std::holds_alternative<paxos::Prepare>(m.body)) preparers.insert(m.from.value());
  });
  c.start();
  int duels = 0;
  for (int round = 0; round < 12; ++round) {
    ASSERT_TRUE(c.run_until([&] { return c.leader().has_value(); }, 5 * kSecond))
        << "round " << round << ": no leader";
    const size_t old = *c.leader();
    const std::string value = "v" + std::to_string(round);
    ASSERT_EQ(c.execute(old, check::OpKind::kPut, "k1", value).status, check::OpStatus::kOk);
    // Both followers lose the leader and, paused together past their
    // election timeout, time out at the same instant when they resume.
    preparers.clear();
    c.crash(old);
    for (size_t i = 0; i < c.size(); ++i) {
      if (i != old) c.stall(i, 300 * kMillisecond);
    }
    ASSERT_TRUE(c.run_until(
        [&] {
          auto l = c.leader();
          return l && *l != old;
        },
        5 * kSecond))
        << "round " << round << ": the two survivors never converged";
    const size_t next = *c.leader();
    const auto w = c.execute(next, check::OpKind::kPut, "k1", value + "'");
    EXPECT_EQ(w.status, check::OpStatus::kOk) << "round " << round;
    if (preparers.size() >= 2) ++duels;
    c.restart(old);
    c.run_for(300 * kMillisecond);
  }
  // Every lost leader left the two survivors racing.
  EXPECT_EQ(duels, 12) << "rounds where both survivors prepared";
  const RunReport r = c.finish();
  for (const auto& v : r.violations) ADD_FAILURE() << "violation: " << v;
}

}  // namespace
}  // namespace chorus::sim
