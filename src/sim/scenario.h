// What the simulator's scenario tests share: a quiet cluster (no random
// faults, no random clients: the test is the only client and scripts every
// fault) and a fixture with the steps most stories take. Test-only (gtest).
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "sim/assertion.h"
#include "sim/raft_sim.h"

namespace chorus::sim::testing {

inline RunOptions quiet(uint64_t seed, int nodes = 3) {
  RunOptions o;
  o.seed = seed;
  o.nodes = nodes;
  o.clients = -1;  // no random workload: the test is the only client
  o.keys = 1;
  o.faults_from_seed = false;
  o.faults = FaultConfig{};         // reliable network, no partitions, no crashes
  o.disk_faults_from_seed = false;  // a disk that loses only what was never synced
  o.faults.max_clock_skew = 1.0;
  o.snapshot_every_entries = 1000000;  // no snapshots unless the test wants them
  o.durable_state_machine = 0;
  o.knobs = {{"pre_vote", 1}, {"check_quorum", 1}, {"lease_reads", 0}};
  return o;
}

class RaftScenarioTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { throw_on_assertion_failure(); }

  void make(RunOptions o) {
    cluster_ = std::make_unique<Cluster<raft::Raft>>(o, nullptr);
    cluster_->start();
  }
  Cluster<raft::Raft>& c() { return *cluster_; }

  size_t wait_for_leader(Time limit = 3 * kSecond) {
    EXPECT_TRUE(c().run_until([&] { return c().leader().has_value(); }, limit))
        << "no leader elected";
    return c().leader().value_or(0);
  }
  // A leader other than `old`.
  size_t wait_for_new_leader(size_t old, Time limit = 5 * kSecond) {
    EXPECT_TRUE(c().run_until(
        [&] {
          auto l = c().leader();
          return l && *l != old;
        },
        limit))
        << "no new leader elected";
    return c().leader().value_or(old);
  }
  void expect_clean(RunReport r) {
    for (const auto& v : r.violations) ADD_FAILURE() << "violation: " << v;
  }
  check::Operation put(size_t node, const std::string& key, const std::string& value) {
    return c().execute(node, check::OpKind::kPut, key, value);
  }
  check::Operation get(size_t node, const std::string& key) {
    return c().execute(node, check::OpKind::kGet, key);
  }

  std::unique_ptr<Cluster<raft::Raft>> cluster_;
};

}  // namespace chorus::sim::testing
