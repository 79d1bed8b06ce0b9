// Regression tests for defects an expert review found in the primary-backup
// core. Each test is named after the rule that must hold.
#include <gtest/gtest.h>

#include <algorithm>

#include "core/primary/testing.h"

namespace chorus::primary {
namespace {

using core::DropKind;
using core::ProposeStatus;
using testing::Group;

template <AckRule R>
bool has_status(Group<R>& g, uint64_t id, ProposeStatus s) {
  const auto& os = g.outcomes(id);
  return std::any_of(os.begin(), os.end(), [&](const core::Outcome& o) { return o.status == s; });
}

// ---- sync-all rollbacks and the lease -----------------------------------

// The old primary must not answer kRolledBack once its lease lapsed: the
// manager may have promoted a backup that still holds the write prepared,
// and that backup commits it.
TEST(SyncAllRollback, NotReleasedAfterTheLeaseLapsed) {
  Group<AckRule::kSyncAll> g(3);
  g.appoint(1, 1, /*lease_ticks=*/20);
  g.stabilize();
  g.propose(1, "x");
  g.process_ready(1);
  for (const auto& m : g.take_in_flight()) g.inject(m);
  g.process_ready(2);
  g.process_ready(3);
  g.take_in_flight();  // both acknowledgements lost
  g.tick(1, 10);       // rollback (the lease holds until tick 20)
  g.process_ready(1);
  auto marker = g.take_in_flight();
  g.tick(1, 12);  // the lease lapsed at tick 20
  g.process_ready(1);
  g.take_in_flight();
  ASSERT_FALSE(g.node(1).lease_valid());
  // The manager, after the lease: n3 becomes primary; n2 does not know yet.
  g.appoint(2, 3, 1000, {3});
  for (const auto& m : marker) {
    if (m.to == NodeId(2)) g.inject(m);
  }
  g.process_ready(2);
  for (const auto& m : g.take_in_flight()) {
    if (m.to == NodeId(1)) g.inject(m);
  }
  g.stabilize();
  g.run(3);
  EXPECT_FALSE(has_status(g, 1, ProposeStatus::kRolledBack)) << "kRolledBack without a lease";
  EXPECT_TRUE(has_status(g, 1, ProposeStatus::kDropped)) << "the client must learn something";
  EXPECT_EQ(g.sm(3).commands, std::vector<std::string>{"x"});
}

// The primary reports its rolled-back drops only when the rollback becomes
// irrevocable — with the clients' kRolledBack — and a rollback abandoned at
// a lease lapse only once its marker's position commits after all (until
// then those writes may still commit elsewhere).
TEST(SyncAllRollback, DropsAreReportedOnlyOnceReleased) {
  Group<AckRule::kSyncAll> g(3);
  g.appoint(1, 1);
  g.stabilize();
  g.isolate(1);
  ASSERT_EQ(g.propose(1, "x").status, ProposeStatus::kAccepted);
  g.run(12);  // rolled back at the primary; no backup holds the marker yet
  EXPECT_TRUE(g.outcomes(1).empty());
  EXPECT_TRUE(g.dropped(1).empty()) << "reported before the rollback is irrevocable";
  g.heal();
  g.run(2);
  ASSERT_TRUE(has_status(g, 1, ProposeStatus::kRolledBack));
  ASSERT_EQ(g.dropped(1).size(), 1u);
  EXPECT_EQ(g.dropped(1)[0].entry.data, "x");
  EXPECT_EQ(g.dropped(1)[0].kind, DropKind::kRolledBack);
}

TEST(SyncAllRollback, AbandonedAtLeaseLapseReportsOnlyOnceTheMarkerCommits) {
  Group<AckRule::kSyncAll> g(3);
  g.appoint(1, 1, /*lease_ticks=*/15);
  g.stabilize();
  g.isolate(1);
  ASSERT_EQ(g.propose(1, "x").status, ProposeStatus::kAccepted);
  g.run(20);  // rolled back at tick 10, the lease lapses at 15
  g.heal();
  g.run(3);
  EXPECT_FALSE(has_status(g, 1, ProposeStatus::kRolledBack));
  EXPECT_TRUE(has_status(g, 1, ProposeStatus::kDropped));
  EXPECT_TRUE(g.dropped(1).empty());
  g.appoint(2, 1);  // n1's log, with the marker, is the most up to date
  g.run(3);
  ASSERT_EQ(g.dropped(1).size(), 1u);
  EXPECT_EQ(g.dropped(1)[0].entry.data, "x");
  EXPECT_EQ(g.dropped(1)[0].kind, DropKind::kRolledBack);
  for (uint64_t id : {1, 2, 3}) EXPECT_TRUE(g.sm(id).commands.empty()) << "n" << id;
}

// A backup's refusal of an older generation's append must survive its
// restart (Raft's durable currentTerm plays this part): a delayed prepare of
// a rolled-back generation must not replace the marker, or a promoted backup
// commits a write its client was told was rolled back.
TEST(SyncAllRollback, StalePrepareAfterBackupRestartDoesNotResurrect) {
  Group<AckRule::kSyncAll> g(3);
  g.appoint(1, 1);
  g.stabilize();
  g.cut(1, 3);
  g.propose(1, "x");
  g.process_ready(1);
  auto prepares = g.take_in_flight();
  for (const auto& m : prepares) g.inject(m);
  g.process_ready(2);
  g.take_in_flight();  // n2's acknowledgement is lost
  g.tick(1, 10);       // rollback
  g.stabilize();       // the marker reaches n2: kRolledBack
  ASSERT_TRUE(has_status(g, 1, ProposeStatus::kRolledBack));
  g.crash(2);
  g.restart(2);
  for (const auto& m : prepares) g.inject(m);  // the old prepare, delayed
  g.process_ready(2);
  g.take_in_flight();
  for (const auto& e : g.disk(2).entries) EXPECT_NE(e.data, "x") << "x is prepared again";
  g.crash(1);
  g.heal();
  g.appoint(2, 2, 1000, {2, 3});
  g.run(3);
  EXPECT_TRUE(g.sm(2).commands.empty()) << "a write answered kRolledBack was applied";
  EXPECT_TRUE(g.sm(3).commands.empty());
}

// ---- snapshots -------------------------------------------------------------

// A late (duplicated) kNeedSnapshot refusal from a backup that has since
// caught up past the primary's snapshot is stale: it must not move the
// backup's next index at or below its match index (the process aborted on
// the invariant match < next).
TEST(Snapshot, LateNeedSnapshotRefusalIsIgnored) {
  Group<AckRule::kAsync> g(3);
  g.appoint(1, 1);
  for (int i = 0; i < 5; ++i) g.propose(1, "v" + std::to_string(i));
  g.stabilize();
  g.run(1);
  g.compact(1);
  for (int i = 0; i < 5; ++i) g.propose(1, "w" + std::to_string(i));
  g.stabilize();
  g.run(12);
  const PeerProgress before = *g.node(1).progress(NodeId(2));
  ASSERT_GT(before.match, g.node(1).log().snapshot().index);
  AppendResponse r;
  r.refusal = Refusal::kNeedSnapshot;
  g.inject(Message{NodeId(2), NodeId(1), Epoch(1), r});
  const PeerProgress after = *g.node(1).progress(NodeId(2));
  EXPECT_EQ(after.match, before.match);
  EXPECT_LT(after.match, after.next);
  g.run(2);
  g.propose(1, "z");
  g.run(2);
  EXPECT_EQ(g.sm(2).commands.size(), 11u);
}

// A delayed or duplicated InstallSnapshot older than what a backup already
// applied must not move its state machine backwards.
TEST(Snapshot, StaleInstallSnapshotDoesNotRegressTheBackup) {
  Group<AckRule::kAsync> g(3);
  g.appoint(1, 1);
  g.stabilize();
  g.isolate(3);
  for (int i = 0; i < 5; ++i) g.propose(1, "v" + std::to_string(i));
  g.run(2);
  g.compact(1);
  g.heal();
  g.tick_all();
  std::vector<Message> copies;
  for (int r = 0; r < 5; ++r) {
    for (uint64_t id = 1; id <= 3; ++id) g.process_ready(id);
    for (auto& m : g.take_in_flight()) {
      if (std::holds_alternative<InstallSnapshot>(m.body)) copies.push_back(m);
      g.inject(m);
    }
  }
  g.stabilize();
  ASSERT_FALSE(copies.empty());
  for (int i = 0; i < 5; ++i) g.propose(1, "w" + std::to_string(i));
  g.run(3);
  g.compact(3);
  const LogIndex before = g.sm(3).applied;
  const size_t commands = g.sm(3).commands.size();
  g.inject(copies.front());
  g.stabilize();
  EXPECT_EQ(g.sm(3).applied, before) << "applied state went backwards";
  EXPECT_EQ(g.sm(3).commands.size(), commands);
  EXPECT_EQ(g.node(3).log().snapshot().index, before);
}

// A backup that needs a snapshot makes the primary ask its host for one
// (Ready::snapshot_wanted) rather than wait for a periodic compaction.
TEST(Snapshot, PrimaryAsksItsHostForASnapshotABackupNeeds) {
  Group<AckRule::kAsync> g(3);
  g.appoint(1, 1, /*lease_ticks=*/10);
  g.propose(1, "a");
  g.stabilize();
  g.isolate(1);
  g.propose(1, "c");  // acknowledged and applied on n1 only
  g.stabilize();
  g.tick(1, 10);  // the lease lapses
  g.appoint(2, 2, 1000, {2, 3});
  g.propose(2, "f");
  g.stabilize();
  ASSERT_EQ(g.node(2).log().snapshot().index, LogIndex(0));
  g.heal();
  g.run(15);  // n1 diverges inside what it applied: only a snapshot helps
  EXPECT_GT(g.snapshots_wanted(2), 0u);
  for (uint64_t id : {1, 2, 3}) EXPECT_EQ(g.sm(id).commands, (std::vector<std::string>{"a", "f"}));
  ASSERT_EQ(g.dropped(1).size(), 1u);
  EXPECT_EQ(g.dropped(1)[0].entry.data, "c");
  EXPECT_EQ(g.dropped(1)[0].kind, DropKind::kLostAcknowledged);
}

// ---- a backup whose snapshot the new primary's log does not reach -----------

std::vector<std::string> values(std::initializer_list<const char*> l) {
  return {l.begin(), l.end()};
}

// A backup silent while a new primary took over is sent entries from below
// its snapshot; it must be moved past its snapshot, not refused forever.
TEST(SnapshotDivergence, BackupBehindItsOwnSnapshotPointCatchesUp) {
  // One entry per append: the primary's next cannot overshoot the snapshot.
  Group<AckRule::kAsync> g(3, [](Options& o) { o.max_entries_per_append = 1; });
  g.appoint(1, 1);
  for (int i = 0; i < 5; ++i) g.propose(1, "v" + std::to_string(i));
  g.stabilize();
  g.run(1);
  g.compact(3);
  g.isolate(3);
  g.appoint(2, 2);
  g.run(3);  // n3 is silent: n2 falls back to sending it everything
  g.heal();
  g.propose(2, "after");
  // One refusal names n3's snapshot point, which n2's log has: n2 goes on
  // after it at once instead of walking up one entry per round trip.
  size_t refusals = 0;
  for (int round = 0; round < 20; ++round) {
    for (uint64_t id = 1; id <= 3; ++id) g.process_ready(id);
    for (const auto& m : g.take_in_flight()) {
      const auto* r = std::get_if<AppendResponse>(&m.body);
      if (r && r->refusal == Refusal::kLogMismatch) ++refusals;
      g.inject(m);
    }
  }
  EXPECT_LE(refusals, 2u);  // one per append already in flight
  g.run(3);
  EXPECT_EQ(g.sm(3).commands, values({"v0", "v1", "v2", "v3", "v4", "after"}));
  EXPECT_TRUE(g.dropped(3).empty());
}

// A backup that applied and compacted writes the new primary lacks must
// converge on the primary's log and report those writes, though it can no
// longer enumerate them: one range record with their positions.
TEST(SnapshotDivergence, WritesOnlyInTheBackupsSnapshotAreReportedAsARange) {
  Group<AckRule::kAsync> g(3);
  g.appoint(1, 1);
  g.propose(1, "a");
  g.stabilize();
  g.run(1);
  g.isolate(2);
  g.propose(1, "c");
  g.propose(1, "d");
  g.run(2);  // n3 applies c and d
  g.compact(3);
  const LogIndex snap = g.node(3).log().snapshot().index;
  g.heal();
  g.isolate(1);
  g.appoint(2, 2, 1000, {2, 3});
  g.propose(2, "f");
  g.run(15);
  EXPECT_EQ(g.sm(3).commands, values({"a", "f"}));
  ASSERT_EQ(g.dropped(3).size(), 1u);
  const core::DroppedEntry& d = g.dropped(3)[0];
  EXPECT_EQ(d.kind, DropKind::kLostAcknowledged);
  EXPECT_EQ(d.range_positions, 2u);  // c and d
  EXPECT_EQ(d.entry.index.value() + d.range_positions - 1, snap.value());
}

// The backup's snapshot lies beyond the new primary's whole log.
TEST(SnapshotDivergence, SnapshotBeyondThePrimarysLogIsReplaced) {
  Group<AckRule::kAsync> g(3);
  g.appoint(1, 1);
  g.propose(1, "a");
  g.stabilize();
  g.run(1);
  g.isolate(2);
  g.propose(1, "c");
  g.propose(1, "d");
  g.propose(1, "e");
  g.run(2);
  g.compact(3);
  g.heal();
  g.isolate(1);
  g.appoint(2, 2, 1000, {2, 3});
  ASSERT_LT(g.node(2).log().last_index(), g.node(3).log().snapshot().index);
  g.run(15);
  EXPECT_EQ(g.sm(3).commands, values({"a"}));
  ASSERT_EQ(g.dropped(3).size(), 1u);
  EXPECT_EQ(g.dropped(3)[0].kind, DropKind::kLostAcknowledged);
  EXPECT_EQ(g.dropped(3)[0].range_positions, 3u);  // c, d, e
  EXPECT_EQ(g.node(2).progress(NodeId(3))->match, g.node(2).log().last_index());
}

// ---- configuration -------------------------------------------------------

// A delayed NewConfiguration of the current epoch must not bring back the
// members an older decision named; members change only with a newer version.
TEST(Configuration, OlderOrEqualVersionNeverChangesMembers) {
  Group<AckRule::kSyncAll> g(3);
  Configuration c{Epoch(1), NodeId(1), {NodeId(1), NodeId(2), NodeId(3)}, 1000};
  c.version = 1;
  ASSERT_TRUE(g.node(1).configure(c).is_ok());
  Configuration c2 = c;
  c2.members = {NodeId(1), NodeId(2)};
  c2.version = 2;
  ASSERT_TRUE(g.node(1).configure(c2).is_ok());
  g.inject(Message{NodeId(9), NodeId(1), Epoch(1), NewConfiguration{c}});
  EXPECT_FALSE(g.node(1).progress(NodeId(3)).has_value()) << "old members restored";
  EXPECT_EQ(g.node(1).configuration().version, 2u);
  // The same version naming other members is refused, by message or call.
  Configuration c3 = c2;
  c3.members = {NodeId(1), NodeId(3)};
  EXPECT_FALSE(g.node(1).configure(c3).is_ok());
  g.inject(Message{NodeId(9), NodeId(1), Epoch(1), NewConfiguration{c3}});
  EXPECT_TRUE(g.node(1).progress(NodeId(2)).has_value());
  EXPECT_FALSE(g.node(1).progress(NodeId(3)).has_value());
  // A renewal at the same version is fine; a newer version changes members.
  EXPECT_TRUE(g.node(1).configure(c2).is_ok());
  c3.version = 3;
  EXPECT_TRUE(g.node(1).configure(c3).is_ok());
  EXPECT_TRUE(g.node(1).progress(NodeId(3)).has_value());
}

// The lease runs from the primary's request (the anchor), not from when the
// grant arrives: a late renewal never extends it past anchor + lease_ticks.
TEST(Configuration, LateRenewalDoesNotExtendTheLeasePastItsAnchor) {
  Group<AckRule::kAsync> g(2);
  Configuration c{Epoch(1), NodeId(1), {NodeId(1), NodeId(2)}, /*lease_ticks=*/10};
  ASSERT_TRUE(g.node(1).configure(c).is_ok());  // anchored at tick 0
  g.stabilize();
  g.tick(1, 6);
  ASSERT_TRUE(g.node(1).configure(c).is_ok());  // the same grant, delivered late
  g.tick(1, 4);
  EXPECT_FALSE(g.node(1).lease_valid()) << "a late grant extended the lease";
  c.lease_anchor_tick = 8;  // a renewal the primary asked for at tick 8
  ASSERT_TRUE(g.node(1).configure(c).is_ok());
  EXPECT_TRUE(g.node(1).lease_valid());
  g.tick(1, 7);
  EXPECT_TRUE(g.node(1).lease_valid());
  g.tick(1);
  EXPECT_FALSE(g.node(1).lease_valid());
  c.lease_anchor_tick = g.node(1).ticks() + 1;
  EXPECT_FALSE(g.node(1).configure(c).is_ok()) << "an anchor in the future";
}

// ---- role changes --------------------------------------------------------

// "Degraded" describes a semi-sync primary's current epoch: a node that
// stops being primary, or leads a new epoch, starts undegraded.
TEST(RoleChange, DegradedIsResetWhenThePrimaryStepsDownOrLeadsANewEpoch) {
  Group<AckRule::kSemiSync> g(3, [](Options& o) { o.on_timeout = OnTimeout::kDegrade; });
  g.appoint(1, 1);
  g.stabilize();
  g.isolate(1);
  g.propose(1, "x");
  g.run(11);
  ASSERT_TRUE(g.node(1).degraded());
  g.appoint(2, 1, 1000, {1});  // a new epoch for the same primary
  EXPECT_FALSE(g.node(1).degraded());
  g.propose(1, "y");
  g.run(11);
  ASSERT_TRUE(g.node(1).degraded());
  g.appoint(3, 2, 1000, {1});  // deposed
  EXPECT_FALSE(g.node(1).degraded());
  EXPECT_FALSE(g.node(1).status().degraded);
}

// ---- epoch range ---------------------------------------------------------

// An entry's term is (epoch << 32 | generation): an epoch of 2^32 or more
// would alias other terms. It is refused wherever it can enter.
TEST(EpochRange, EpochsBeyondTheTermsRangeAreRefused) {
  Group<AckRule::kSyncAll> g(2);
  const Epoch huge(uint64_t{1} << 32);
  Configuration c{huge, NodeId(1), {NodeId(1), NodeId(2)}, 100};
  const Status st = g.node(1).configure(c);
  EXPECT_FALSE(st.is_ok());
  EXPECT_NE(st.message().find("epoch"), std::string::npos) << st.message();
  EXPECT_FALSE(g.node(1).is_primary());
  EXPECT_TRUE(g.node(1).configure({kMaxEpoch, NodeId(1), {NodeId(1), NodeId(2)}, 100}).is_ok());
  g.inject(Message{NodeId(1), NodeId(2), huge, Append{}});
  EXPECT_EQ(g.node(2).epoch(), Epoch(0)) << "a message of an unrepresentable epoch was taken";
  EXPECT_FALSE(decode_durable_state(encode_durable_state({huge, LogIndex(1)})).is_ok());
}

// ---- minor ---------------------------------------------------------------

// A backup counts what it holds prepared from the commit index its primary
// names in the append, not from its own, which lags by one round trip:
// otherwise a write within the limit is refused (and rolled back).
TEST(SyncAllPrepareLimit, CountsFromThePrimarysCommitIndex) {
  Group<AckRule::kSyncAll> g(3, [](Options& o) {
    if (o.id == NodeId(3)) {
      o.max_prepared_bytes = 150;
      o.max_bytes_per_append = 150;
    }
  });
  g.appoint(1, 1);
  g.stabilize();
  const auto a = g.propose(1, std::string(100, 'a'));
  g.process_ready(1);
  g.deliver();  // a's prepare reaches n2 and n3
  g.process_ready(2);
  g.process_ready(3);
  g.deliver();  // their acks: n1 commits a; n3 does not know yet
  ASSERT_EQ(g.node(1).log().committed(), a.index);
  ASSERT_LT(g.node(3).log().committed(), a.index);
  g.propose(1, std::string(100, 'b'));  // leaves with commit = a
  g.stabilize();
  EXPECT_TRUE(g.outcomes(1).empty()) << "b was refused: n3 counted a as prepared";
  EXPECT_EQ(g.sm(3).commands.size(), 2u);
}

// A primary that steps down tells the clients it abandons no leader hint
// naming itself.
TEST(RoleChange, AbandonedWritesDoNotNameTheOldPrimary) {
  Group<AckRule::kSyncAll> g(3);
  g.appoint(1, 1);
  g.stabilize();
  g.isolate(1);
  g.propose(1, "x");
  g.stabilize();
  g.appoint(2, 2, 1000, {1});
  g.process_ready(1);
  ASSERT_EQ(g.outcomes(1).size(), 1u);
  EXPECT_EQ(g.outcomes(1)[0].status, ProposeStatus::kDropped);
  EXPECT_NE(g.outcomes(1)[0].leader, NodeId(1));
}

// ---- adopted entries -----------------------------------------------------

// A new sync-all primary adopts the entries its predecessor left in doubt.
// A member's prepare limit must not refuse them: the primary can roll back
// only its own writes, so it would wait forever for its epoch's no-op.
TEST(SyncAllAdopted, PrepareLimitDoesNotStallANewPrimarysAdoptedEntries) {
  Group<AckRule::kSyncAll> g(3, [](Options& o) {
    if (o.id == NodeId(3)) {
      o.max_prepared_bytes = 150;
      o.max_bytes_per_append = 150;
    }
  });
  g.appoint(1, 1);
  g.stabilize();
  g.cut(1, 3);
  g.propose(1, "x" + std::string(99, '.'));
  g.propose(1, "y" + std::string(99, '.'));
  g.stabilize();  // prepared on n1 and n2 only
  g.crash(1);
  g.heal();
  // The manager drops n1 from the configuration and promotes n2.
  for (uint64_t id : {2, 3}) {
    Configuration c{Epoch(2), NodeId(2), {NodeId(2), NodeId(3)}, 1000};
    c.lease_anchor_tick = g.node(id).ticks();
    ASSERT_TRUE(g.node(id).configure(c).is_ok());
  }
  g.run(3);
  ASSERT_EQ(g.propose(2, "z").status, ProposeStatus::kAccepted);
  g.run(3);
  for (uint64_t id : {2, 3}) {
    ASSERT_EQ(g.sm(id).commands.size(), 3u) << "n" << id;
    EXPECT_EQ(g.sm(id).commands[2], "z");
    EXPECT_TRUE(g.dropped(id).empty());
  }
  EXPECT_TRUE(g.outcomes(2).empty());
}

// Second review: a backup that hears of a new appointment before the new
// primary does forwards a client write to it; the write must not raise the
// new primary's epoch, or the appointment is refused ("already saw epoch
// 2") and failover livelocks under write load.
TEST(ReviewForwarding, AForwardedWriteNeverFencesOutTheNewPrimary) {
  Group<AckRule::kSemiSync> g(3);
  g.appoint(1, 1);
  g.stabilize();
  g.crash(1);
  g.appoint(2, 2, 1000, {3});  // n3 hears of epoch 2 first
  EXPECT_EQ(g.propose(3, "w").status, ProposeStatus::kForwarded);
  g.stabilize();
  Configuration c{Epoch(2), NodeId(2), {NodeId(1), NodeId(2), NodeId(3)}, 1000};
  c.lease_anchor_tick = g.node(2).ticks();
  const Status st = g.node(2).configure(c);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_TRUE(g.node(2).is_primary());
}

// A backup that takes an append and, in the same Ready, the rollback
// marker that replaces it must not acknowledge the replaced entries: the
// acknowledgement would promise entries that are never durable (found by
// the simulator, sync-all seed 1: a backup resuming from a stall).
TEST(Acknowledgement, EntriesReplacedInTheSameReadyAreNotAcknowledged) {
  Options o;
  o.id = NodeId(2);
  SyncAll b(o);
  ASSERT_TRUE(b.configure(Configuration{Epoch(1), NodeId(1), {NodeId(1), NodeId(2)}}).is_ok());
  const Term t0 = entry_term(Epoch(1), 0);
  const Term t1 = entry_term(Epoch(1), 1);
  auto entry = [](Term t, uint64_t i) {
    return core::Entry{t, LogIndex(i), core::EntryType::kNormal, "x"};
  };
  auto append = [&](Term t, uint64_t prev, std::vector<core::Entry> es) {
    return Message{NodeId(1), NodeId(2), Epoch(1),
                   Append{t, LogIndex(prev), prev == 0 ? Term(0) : t0, std::move(es), LogIndex(0)}};
  };
  b.step(append(t0, 0, {entry(t0, 1), entry(t0, 2), entry(t0, 3)}));
  b.advance(b.ready());
  b.step(append(t0, 3, {entry(t0, 4), entry(t0, 5)}));  // acknowledged after persist ...
  b.step(append(t1, 3, {entry(t1, 4)}));                // ... but replaced by a marker
  const Ready rd = b.ready();
  bool acked_marker = false;
  for (const Message& m : rd.messages_after_persist) {
    const auto* r = std::get_if<AppendResponse>(&m.body);
    if (!r || r->refusal != Refusal::kNone) continue;
    EXPECT_LE(r->match_index, LogIndex(4)) << describe(m);
    if (r->match_index == LogIndex(4)) {
      EXPECT_EQ(r->match_term, t1) << describe(m);
      acked_marker = true;
    }
  }
  EXPECT_TRUE(acked_marker);
}

}  // namespace
}  // namespace chorus::primary
