#include "core/primary/config_manager.h"

#include <gtest/gtest.h>

#include <algorithm>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace chorus::primary {
namespace {

Term t(uint64_t epoch, uint64_t generation = 0) {
  return entry_term(Epoch(epoch), generation);
}

std::vector<NodeId> ids(std::initializer_list<uint64_t> v) {
  std::vector<NodeId> out;
  for (uint64_t n : v) out.push_back(NodeId(n));
  return out;
}

// A manager of replicas 1..n, n1 primary of epoch 1, and the replicas' logs.
// Every replica's clock is the manager's (sent_tick = the manager's tick).
struct Harness {
  explicit Harness(ManagerOptions o, uint64_t n = 3)
      : m(o,
          ManagerState{Configuration{Epoch(1), NodeId(1), all(n), o.lease_ticks}, all(n), {}, {}}) {
    for (NodeId id : all(n)) log[id] = {id, Epoch(1), t(1), LogIndex(10), LogIndex(10)};
  }
  static std::vector<NodeId> all(uint64_t n) {
    std::vector<NodeId> out;
    for (uint64_t i = 1; i <= n; ++i) out.push_back(NodeId(i));
    return out;
  }
  void report(NodeId n) {
    ReplicaReport r = log.at(n);
    r.sent_tick = m.ticks();
    r.round = m.probe_round();
    m.report(r);
  }
  // `ticks` ticks, each followed by a report from every node in `alive`.
  void run(uint64_t ticks, const std::vector<NodeId>& alive) {
    for (uint64_t i = 0; i < ticks; ++i) {
      m.tick();
      for (NodeId n : alive) report(n);
      for (Decision& d : m.take_decisions()) decisions.push_back(std::move(d));
    }
  }
  std::vector<Decision> appointments() const {
    std::vector<Decision> out;
    for (const Decision& d : decisions) {
      if (d.kind == Decision::Kind::kAppointment) out.push_back(d);
    }
    return out;
  }
  ConfigManager m;
  std::map<NodeId, ReplicaReport> log;
  std::vector<Decision> decisions;
};

ManagerOptions semi_sync(uint32_t acks, Promotion p = Promotion::kSafe) {
  ManagerOptions o;
  o.rule = AckRule::kSemiSync;
  o.acks = acks;
  o.promotion = p;
  o.failure_timeout_ticks = 3;
  o.lease_ticks = 10;
  o.renew_interval_ticks = 2;
  o.promotion_wait_ticks = 5;
  o.clock_drift_bound = 1.1;
  return o;
}

TEST(ConfigManagerTest, RenewalsKeepTheEpochAndAnswerFreshReports) {
  Harness h(semi_sync(1));
  h.run(10, ids({1, 2, 3}));
  ASSERT_GE(h.decisions.size(), 3u);
  for (const Decision& d : h.decisions) {
    EXPECT_EQ(d.kind, Decision::Kind::kRenewal);
    EXPECT_EQ(d.config.epoch, Epoch(1));
    EXPECT_EQ(d.config.primary, NodeId(1));
    EXPECT_EQ(d.config.members, ids({1, 2, 3}));
    EXPECT_EQ(d.config.lease_ticks, 10u);
    EXPECT_LE(d.lease_anchor_tick, h.m.ticks());  // the primary's report it answers
  }
  // No report from the primary, no renewal: its lease must run out.
  h.decisions.clear();
  h.run(8, ids({2, 3}));
  EXPECT_TRUE(h.decisions.empty());
}

TEST(ConfigManagerTest, LeaseExpiryAllowsForDriftOnBothClocks) {
  ManagerOptions o = semi_sync(1);
  o.clock_drift_bound = 2.0;
  Harness h(o);
  // lease 10 * drift^2 = 40, one tick of granularity: 41 ticks after the grant.
  EXPECT_EQ(h.m.lease_expiry_tick(), 41u);
}

TEST(ConfigManagerTest, NoAppointmentBeforeTheOldLeaseExpired) {
  Harness h(semi_sync(1));
  h.run(6, ids({1, 2, 3}));
  ASSERT_FALSE(h.decisions.empty());
  const uint64_t expiry = h.m.lease_expiry_tick();
  EXPECT_EQ(expiry, h.m.ticks() + 14);  // ceil(10 * 1.21) + 1 after the last grant
  // The primary goes silent; failure_timeout (3) passes long before the lease.
  while (h.m.ticks() + 1 < expiry) {
    h.run(1, ids({2, 3}));
    ASSERT_TRUE(h.appointments().empty()) << "appointed at tick " << h.m.ticks();
    if (h.m.ticks() > 10) {
      EXPECT_EQ(h.m.status().phase, ManagerStatus::Phase::kLeaseExpiring);
      EXPECT_NE(h.m.status().reason.find("certainly expired"), std::string::npos)
          << h.m.status().reason;
    }
  }
  h.run(1, ids({2, 3}));
  ASSERT_EQ(h.appointments().size(), 1u) << h.m.status().reason;
  EXPECT_EQ(h.m.ticks(), expiry);
  EXPECT_EQ(h.appointments()[0].config.epoch, Epoch(2));
}

TEST(ConfigManagerTest, TheMostDurableLogWinsByTermThenIndex) {
  Harness h(semi_sync(1), 4);
  h.log[NodeId(2)].last_index = LogIndex(30);  // longest, older term
  h.log[NodeId(3)] = {NodeId(3), Epoch(1), t(1, 1), LogIndex(12), LogIndex(10)};  // newer gen
  h.log[NodeId(4)] = {NodeId(4), Epoch(1), t(1, 1), LogIndex(11), LogIndex(10)};
  h.run(30, ids({2, 3, 4}));
  ASSERT_EQ(h.appointments().size(), 1u) << h.m.status().reason;
  EXPECT_EQ(h.appointments()[0].config.primary, NodeId(3));
  EXPECT_EQ(h.m.configuration().primary, NodeId(3));
}

TEST(ConfigManagerTest, TiedLogsGoToTheLowerId) {
  Harness h(semi_sync(1), 3);
  h.run(30, ids({3, 2}));
  ASSERT_EQ(h.appointments().size(), 1u);
  EXPECT_EQ(h.appointments()[0].config.primary, NodeId(2));
}

// The manager's own node loses ties (a primary there would share its fate),
// but never against a longer log.
TEST(ConfigManagerTest, TiesAvoidTheManagersOwnNode) {
  ManagerOptions o = semi_sync(1);
  o.prefer_not = NodeId(2);
  Harness h(o, 3);
  h.run(30, ids({3, 2}));
  ASSERT_EQ(h.appointments().size(), 1u);
  EXPECT_EQ(h.appointments()[0].config.primary, NodeId(3));

  Harness longer(o, 3);
  longer.log[NodeId(2)].last_index = LogIndex(11);
  longer.run(30, ids({3, 2}));
  ASSERT_EQ(longer.appointments().size(), 1u);
  EXPECT_EQ(longer.appointments()[0].config.primary, NodeId(2));
}

// 5 replicas: m = 4 backups, k = 2 acks: m - k + 1 = 3 answers.
TEST(ConfigManagerTest, SafePromotionWaitsForMMinusKPlusOneAnswers) {
  Harness h(semi_sync(2), 5);
  h.run(5, ids({1, 2, 3, 4, 5}));
  h.run(100, ids({2, 3}));
  EXPECT_TRUE(h.appointments().empty());
  const ManagerStatus s = h.m.status();
  EXPECT_EQ(s.phase, ManagerStatus::Phase::kProbing);
  EXPECT_NE(s.reason.find("promotion = safe refuses to promote: 2 of 3 answers"), std::string::npos)
      << s.reason;
  EXPECT_NE(s.reason.find("n4, n5"), std::string::npos) << s.reason;
  h.log[NodeId(4)].last_index = LogIndex(11);  // it had the last acknowledged write
  h.run(1, ids({2, 3, 4}));
  ASSERT_EQ(h.appointments().size(), 1u) << h.m.status().reason;
  EXPECT_EQ(h.appointments()[0].config.primary, NodeId(4));
}

TEST(ConfigManagerTest, ReportsFromBeforeTheProbeDoNotCount) {
  Harness h(semi_sync(1), 3);  // m = 2, k = 1: both backups must answer
  h.run(5, ids({1, 2, 3}));
  h.run(20, ids({2}));  // n3 goes silent with n1: its last report predates the probe
  EXPECT_TRUE(h.appointments().empty());
  EXPECT_NE(h.m.status().reason.find("waiting for n3"), std::string::npos) << h.m.status().reason;
}

TEST(ConfigManagerTest, AvailablePromotesTheBestReachableAfterTheWait) {
  Harness h(semi_sync(2, Promotion::kAvailable), 5);
  h.log[NodeId(3)].last_index = LogIndex(12);
  h.run(5, ids({1, 2, 3, 4, 5}));
  h.run(4, ids({2, 3}));  // n1 silent: no more renewals
  // The probe goes out when the old lease has expired; then it waits
  // promotion_wait_ticks (5) for more answers than n2's and n3's.
  const uint64_t appoint_at = h.m.lease_expiry_tick() + 5;
  h.run(appoint_at - 1 - h.m.ticks(), ids({2, 3}));
  EXPECT_TRUE(h.appointments().empty());
  EXPECT_NE(h.m.status().reason.find("promoting the best at tick"), std::string::npos)
      << h.m.status().reason;
  h.run(1, ids({2, 3}));
  ASSERT_EQ(h.appointments().size(), 1u) << h.m.status().reason;
  EXPECT_EQ(h.appointments()[0].config.primary, NodeId(3));
  EXPECT_EQ(h.appointments()[0].config.members, ids({1, 2, 3, 4, 5}));
}

TEST(ConfigManagerTest, EpochsStrictlyIncreaseAcrossFailovers) {
  Harness h(semi_sync(1, Promotion::kAvailable), 4);
  std::vector<NodeId> alive = ids({1, 2, 3, 4});
  h.run(5, alive);
  for (int round = 0; round < 3; ++round) {
    const NodeId failed = h.m.configuration().primary;
    alive.erase(std::find(alive.begin(), alive.end(), failed));
    for (NodeId n : alive) h.log[n].epoch = h.m.configuration().epoch;
    h.run(60, alive);
  }
  const auto a = h.appointments();
  ASSERT_EQ(a.size(), 3u);
  Epoch prev(1);
  std::set<uint64_t> primaries;
  for (const Decision& d : a) {
    EXPECT_EQ(d.config.epoch, Epoch(prev.value() + 1));
    prev = d.config.epoch;
    primaries.insert(d.config.primary.value());
  }
  EXPECT_EQ(primaries.size(), 3u);
}

TEST(ConfigManagerTest, APrimaryBackBeforeASuccessorKeepsItsEpoch) {
  Harness h(semi_sync(2), 5);
  h.run(5, ids({1, 2, 3, 4, 5}));
  h.run(30, ids({2}));  // probing, too few answers
  ASSERT_EQ(h.m.status().phase, ManagerStatus::Phase::kProbing);
  h.decisions.clear();
  h.run(1, ids({1, 2}));
  EXPECT_TRUE(h.appointments().empty());
  ASSERT_FALSE(h.decisions.empty());
  EXPECT_EQ(h.decisions[0].config.epoch, Epoch(1));
  EXPECT_EQ(h.m.status().phase, ManagerStatus::Phase::kServing);
}

// A primary that restarted reports that it cannot serve its epoch (a node is
// primary only of an epoch it had not seen): it keeps reporting, so it is
// never silent, yet it must be replaced once its old lease has expired — and
// it is not "back" when it answers the probe.
TEST(ConfigManagerTest, ARestartedPrimaryThatCannotServeIsReplaced) {
  Harness h(semi_sync(1), 3);
  h.run(5, ids({1, 2, 3}));
  h.log[NodeId(1)].serving = false;
  h.log[NodeId(2)].last_index = LogIndex(11);
  h.run(3, ids({1, 2, 3}));
  EXPECT_TRUE(h.appointments().empty()) << "not before the old lease expired";
  EXPECT_EQ(h.m.status().phase, ManagerStatus::Phase::kLeaseExpiring);
  h.run(40, ids({1, 2, 3}));
  ASSERT_EQ(h.appointments().size(), 1u);
  EXPECT_EQ(h.appointments()[0].config.epoch, Epoch(2));
  EXPECT_EQ(h.appointments()[0].config.primary, NodeId(2));
}

// What a replica reports as `serving` (reports_serving): a node holding an
// epoch with no grant since it started is a restarted one and cannot lead
// that epoch; reporting true let the manager renew a dead primary's lease.
TEST(ConfigManagerTest, ARestartedNodeWithoutAGrantReportsNotServing) {
  const NodeId me(1);
  Configuration named_me;
  named_me.epoch = Epoch(3);
  named_me.primary = me;
  Configuration named_other = named_me;
  named_other.primary = NodeId(2);
  EXPECT_FALSE(reports_serving(me, Epoch(3), false, std::nullopt)) << "restarted, no grant yet";
  EXPECT_TRUE(reports_serving(me, Epoch(0), false, std::nullopt)) << "never configured";
  EXPECT_TRUE(reports_serving(me, Epoch(3), true, std::nullopt));
  EXPECT_FALSE(reports_serving(me, Epoch(3), false, named_me)) << "named primary, not leading";
  EXPECT_TRUE(reports_serving(me, Epoch(3), true, named_me));
  EXPECT_TRUE(reports_serving(me, Epoch(3), false, named_other)) << "a backup";
  Configuration newer = named_me;
  newer.epoch = Epoch(4);
  EXPECT_TRUE(reports_serving(me, Epoch(3), false, newer)) << "appointed; not yet configured";
}

// The manager renews no lease on a report saying the primary cannot serve.
TEST(ConfigManagerTest, NoRenewalForAPrimaryThatCannotServe) {
  Harness h(semi_sync(1), 3);
  h.run(5, ids({1, 2, 3}));
  h.log[NodeId(1)].serving = false;
  h.run(1, ids({1, 2, 3}));  // the tick before these reports may still renew
  h.decisions.clear();
  h.run(10, ids({1, 2, 3}));
  for (const auto& d : h.decisions) {
    EXPECT_NE(d.config.epoch, Epoch(1)) << "renewed epoch 1 of a primary that cannot serve it";
  }
}

ManagerOptions sync_all_reconfigure() {
  ManagerOptions o = semi_sync(1);
  o.rule = AckRule::kSyncAll;
  o.on_replica_failure = OnReplicaFailure::kReconfigure;
  return o;
}

TEST(ConfigManagerTest, ReconfigureDropsASilentBackupAndReadmitsItCaughtUp) {
  ManagerOptions o = sync_all_reconfigure();
  o.readmit_lag_entries = 2;
  Harness h(o, 3);
  h.run(5, ids({1, 2, 3}));
  const uint64_t v0 = h.m.configuration().version;
  h.decisions.clear();
  h.run(5, ids({1, 2}));
  auto drop = std::find_if(h.decisions.begin(), h.decisions.end(),
                           [](const Decision& d) { return d.config.members.size() == 2; });
  ASSERT_NE(drop, h.decisions.end());
  EXPECT_EQ(drop->kind, Decision::Kind::kRenewal);
  EXPECT_EQ(drop->config.epoch, Epoch(1));
  EXPECT_EQ(drop->config.members, ids({1, 2}));
  EXPECT_EQ(drop->config.learners, ids({3})) << "the primary keeps streaming the log to n3";
  EXPECT_NE(drop->why.find("n3 silent"), std::string::npos) << drop->why;
  EXPECT_EQ(h.m.status().excluded, ids({3}));
  // A change of members is a newer version (a delayed older decision cannot
  // undo it at a replica); renewals that change nothing keep it.
  EXPECT_EQ(drop->config.version, v0 + 1);
  EXPECT_EQ(h.m.configuration().version, v0 + 1);

  // Writes continue on {1, 2}; n3 returns behind the primary's commit.
  h.log[NodeId(1)].commit = h.log[NodeId(2)].commit = LogIndex(20);
  h.log[NodeId(1)].last_index = h.log[NodeId(2)].last_index = LogIndex(20);
  h.run(5, ids({1, 2, 3}));
  EXPECT_EQ(h.m.configuration().members, ids({1, 2}));
  // As a learner it receives the log: within readmit_lag_entries of the
  // primary's commit, but its last entry from an older epoch — not yet.
  h.log[NodeId(3)].last_index = LogIndex(18);
  h.log[NodeId(3)].last_term = t(0, 1);
  h.run(2, ids({1, 2, 3}));
  EXPECT_EQ(h.m.configuration().members, ids({1, 2}));
  h.log[NodeId(3)].last_term = t(1);
  h.run(1, ids({1, 2, 3}));
  EXPECT_EQ(h.m.configuration().members, ids({1, 2, 3}));
  EXPECT_TRUE(h.m.configuration().learners.empty());
  EXPECT_EQ(h.m.configuration().epoch, Epoch(1));
  EXPECT_EQ(h.m.configuration().version, v0 + 2);
  EXPECT_TRUE(h.m.status().excluded.empty());
  EXPECT_TRUE(h.appointments().empty());
}

// Reconfigure never leaves the primary alone: its writes would then be on no
// other witness, and no failover could be safe without it (review: a
// primary cut off alone kept committing, the learner re-admitted meanwhile
// was promoted without those writes).
TEST(ConfigManagerTest, ReconfigureNeverDropsTheLastBackup) {
  Harness h(sync_all_reconfigure(), 3);
  h.run(5, ids({1, 2, 3}));
  h.run(60, ids({1}));
  EXPECT_EQ(h.m.configuration().members.size(), 2u) << h.m.status().reason;
  EXPECT_EQ(h.m.configuration().primary, NodeId(1));
}

// A primary that restarted holds every write it acknowledged: when the other
// witnesses stay silent, it is appointed again (a new epoch) rather than the
// keyspace waiting for them for good.
TEST(ConfigManagerTest, ARestartedPrimaryIsACandidateWhenNoOtherWitnessAnswers) {
  ManagerOptions o = sync_all_reconfigure();
  o.on_replica_failure = OnReplicaFailure::kBlock;
  Harness h(o, 3);
  h.run(5, ids({1, 2, 3}));
  h.log[NodeId(1)].serving = false;
  h.run(10, ids({1}));
  EXPECT_TRUE(h.appointments().empty()) << "not before the old lease expired";
  h.run(60, ids({1}));
  ASSERT_EQ(h.appointments().size(), 1u) << h.m.status().reason;
  EXPECT_EQ(h.appointments()[0].config.epoch, Epoch(2));
  EXPECT_EQ(h.appointments()[0].config.primary, NodeId(1));
}

// Sync-all: the rollback marker may be durable on one backup only — even one
// dropped in this epoch — so safe promotion waits for every witness.
TEST(ConfigManagerTest, SyncAllSafePromotionWaitsForEveryWitnessOfTheEpoch) {
  Harness h(sync_all_reconfigure(), 4);
  h.run(5, ids({1, 2, 3, 4}));
  h.run(10, ids({1, 2, 3}));
  ASSERT_EQ(h.m.configuration().members, ids({1, 2, 3}));
  h.run(60, ids({2, 3}));
  EXPECT_TRUE(h.appointments().empty());
  EXPECT_NE(h.m.status().reason.find("waiting for n4"), std::string::npos) << h.m.status().reason;
  h.log[NodeId(4)] = {NodeId(4), Epoch(1), t(1, 1), LogIndex(9), LogIndex(5)};  // has the marker
  h.run(1, ids({2, 3, 4}));
  ASSERT_EQ(h.appointments().size(), 1u) << h.m.status().reason;
  EXPECT_EQ(h.appointments()[0].config.primary, NodeId(4));
  // Reconfigure: the failed primary leaves; n4 is back among the members.
  EXPECT_EQ(h.appointments()[0].config.members, ids({2, 3, 4}));
}

TEST(ConfigManagerTest, FirstAppointmentTakesTheBestAnswer) {
  ManagerOptions o = semi_sync(1);
  ConfigManager m(o, ManagerState{{}, ids({1, 2, 3}), {}, {}});
  EXPECT_EQ(m.status().phase, ManagerStatus::Phase::kProbing);
  for (uint64_t n = 1; n <= 3; ++n) {
    m.report({NodeId(n), Epoch(0), Term(0), LogIndex(0), LogIndex(0), 0, m.probe_round()});
  }
  const auto d = m.take_decisions();
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].config.epoch, Epoch(1));
  EXPECT_EQ(d[0].config.primary, NodeId(1));
  EXPECT_EQ(d[0].config.members, ids({1, 2, 3}));
}

TEST(ConfigManagerTest, OptionsThatCannotHoldTheirPromiseAreRefused) {
  ManagerOptions o = semi_sync(1);
  o.rule = AckRule::kAsync;
  EXPECT_NE(o.validate().message().find("promotion"), std::string::npos);
  o.promotion = Promotion::kAvailable;
  EXPECT_TRUE(o.validate().is_ok());
  o = semi_sync(1);
  o.on_replica_failure = OnReplicaFailure::kReconfigure;
  EXPECT_NE(o.validate().message().find("on_replica_failure"), std::string::npos);
  o = semi_sync(1);
  o.renew_interval_ticks = o.lease_ticks;
  EXPECT_FALSE(o.validate().is_ok());
}

// Found by the simulator (sync-all seed 39): n3 was re-admitted on its
// primary's stale commit report without the primary's last writes; the
// primary failed, n2 (holding them) was promoted with n3 a member, and
// failed before n3 caught up. Only n3 of that epoch's witnesses was left,
// and it was promoted without acknowledged writes. An epoch whose members do
// not all hold an entry of it keeps its failed predecessor as a witness.
TEST(SyncAllPromotion, AnEpochNotEstablishedKeepsItsFailedPrimaryAsAWitness) {
  ManagerOptions o;
  o.rule = AckRule::kSyncAll;
  o.on_replica_failure = OnReplicaFailure::kReconfigure;
  Harness h(o);
  h.run(5, ids({1, 2, 3}));
  h.run(40, ids({1, 2}));  // n3 silent: dropped
  ASSERT_EQ(h.m.configuration().members, ids({1, 2}));
  // n1 and n2 commit 11 and 12 without n3; n1's report lags, n3 returns.
  h.log[NodeId(1)] = {NodeId(1), Epoch(1), t(1), LogIndex(12), LogIndex(10)};
  h.log[NodeId(2)] = {NodeId(2), Epoch(1), t(1), LogIndex(12), LogIndex(12)};
  h.run(5, ids({1, 2, 3}));
  ASSERT_EQ(h.m.configuration().members.size(), 3u) << "n3 re-admitted on n1's stale commit";
  h.run(80, ids({2, 3}));  // n1 fails: n2 is promoted
  ASSERT_EQ(h.m.configuration().epoch, Epoch(2));
  ASSERT_EQ(h.m.configuration().primary, NodeId(2));
  h.run(80, ids({1, 3}));  // n2 fails before n3 holds an entry of epoch 2; n1 is back
  ASSERT_EQ(h.m.configuration().epoch, Epoch(3));
  EXPECT_EQ(h.m.configuration().primary, NodeId(1))
      << "promoted a replica without the writes acknowledged in epoch 1";
}

}  // namespace
}  // namespace chorus::primary
