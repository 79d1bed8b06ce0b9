// Unit tests of the Raft core's host-facing contract: Ready/advance, soft and
// hard state reporting, restart from PersistentState, configuration checks,
// single-node clusters, compaction and message descriptions. The protocol
// rules themselves are in raft_paper_test.cc.
#include "core/raft/raft.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/raft/testing.h"

namespace chorus::raft {
namespace {

using namespace chorus::raft::testing;  // NOLINT

Raft make_node(uint64_t id, size_t n, PersistentState ps = {},
               const std::function<void(Config&)>& tweak = {}) {
  return Raft(make_config(id, n, tweak), Prng(id), std::move(ps));
}

void tick_until_role_changes(Raft& r) {
  const RaftRole before = r.raft_role();
  for (int i = 0; i < 1000 && r.raft_role() == before; ++i) r.tick();
  ASSERT_NE(r.raft_role(), before);
}

std::vector<std::string> datas(const std::vector<Entry>& es) {
  std::vector<std::string> out;
  for (const auto& e : es) out.push_back(e.data);
  return out;
}

// ---- Ready / advance --------------------------------------------------------

TEST(RaftReady, FreshNodeHasNothingToDo) {
  Raft r = make_node(1, 3);
  EXPECT_FALSE(r.has_ready());
  EXPECT_EQ(r.raft_role(), RaftRole::kFollower);
  EXPECT_EQ(r.term(), Term(0));
  EXPECT_EQ(r.leader(), kNoNode);
}

TEST(RaftReadyDeathTest, ReadyTwiceWithoutAdvanceAsserts) {
  Raft r = make_node(1, 3);
  tick_until_role_changes(r);
  auto rd = r.ready();
  EXPECT_DEATH((void)r.ready(), "ready\\(\\) called before advance\\(\\)");
}

TEST(RaftReadyDeathTest, AdvanceWithoutReadyAsserts) {
  Raft r = make_node(1, 3);
  Ready rd;
  EXPECT_DEATH(r.advance(rd), "assertion failed");
}

TEST(RaftReady, NoReadyIsOfferedWhileOneIsOutstanding) {
  Raft r = make_node(1, 3);
  tick_until_role_changes(r);
  ASSERT_TRUE(r.has_ready());
  auto rd = r.ready();
  EXPECT_FALSE(rd.empty());
  // New work arrives while the host handles rd...
  r.step(msg(2, 1, 5, Heartbeat{LogIndex(0), 0}));
  EXPECT_FALSE(r.has_ready()) << "one Ready at a time";
  r.advance(rd);
  EXPECT_TRUE(r.has_ready()) << "...and is offered after advance()";
  auto next = r.ready();
  ASSERT_TRUE(next.durable_state);
  EXPECT_EQ(next.durable_state->term, Term(5));
  EXPECT_EQ(of_type<HeartbeatResponse>(all_messages(next)).size(), 1u);
  r.advance(next);
  EXPECT_FALSE(r.has_ready());
}

TEST(RaftReady, SoftAndHardStateAreReportedOnlyWhenTheyChange) {
  Raft r = make_node(1, 3);
  tick_until_role_changes(r);  // PreVote: a pre-candidate, no new term yet
  auto pre = take(r);
  ASSERT_TRUE(pre.soft_state);
  EXPECT_EQ(pre.soft_state->role, core::Role::kCandidate);
  EXPECT_EQ(pre.soft_state->term, Term(0));
  EXPECT_FALSE(pre.durable_state) << "a pre-vote changes nothing durable";
  EXPECT_FALSE(pre.must_persist());

  r.step(msg(2, 1, 1, RequestVoteResponse{true, true}));  // pre-vote won: real campaign
  auto cand = take(r);
  ASSERT_TRUE(cand.soft_state);
  EXPECT_EQ(cand.soft_state->role, core::Role::kCandidate);
  EXPECT_EQ(cand.soft_state->term, Term(1));
  EXPECT_EQ(cand.soft_state->leader, kNoNode);
  ASSERT_TRUE(cand.durable_state);
  EXPECT_EQ(*cand.durable_state, (HardState{Term(1), NodeId(1), LogIndex(0)}));

  r.step(msg(2, 1, 1, RequestVoteResponse{true, false}));
  auto lead = take(r);
  ASSERT_TRUE(lead.soft_state);
  EXPECT_EQ(lead.soft_state->role, core::Role::kLeader);
  EXPECT_EQ(lead.soft_state->leader, NodeId(1));
  EXPECT_FALSE(lead.durable_state) << "term and vote did not change";
  ASSERT_EQ(lead.entries.size(), 1u);
  EXPECT_EQ(lead.entries[0].type, core::EntryType::kNoop);

  // Nothing changed since: no soft or hard state.
  r.step(msg(2, 1, 1, AppendEntriesResponse{true, LogIndex(1), {}, {}, {}}));
  auto commit = take(r);
  EXPECT_FALSE(commit.soft_state);
  ASSERT_TRUE(commit.durable_state) << "the commit index moved";
  EXPECT_EQ(commit.durable_state->commit, LogIndex(1));
  EXPECT_EQ(commit.committed.size(), 1u);
  EXPECT_EQ(r.soft_state(), (core::SoftState{core::Role::kLeader, Term(1), NodeId(1)}));
}

TEST(RaftReady, CommittedEntriesAreHandedOutOnceAndInOrder) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  for (int i = 0; i < 5; ++i) c.propose(1, "v" + std::to_string(i));
  c.stabilize();
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.sm(id).commands, (std::vector<std::string>{"v0", "v1", "v2", "v3", "v4"}));
    EXPECT_EQ(c.sm(id).applied, LogIndex(6));
    EXPECT_EQ(c.raft(id).log().applied(), LogIndex(6));
  }
}

TEST(RaftReady, ApplyBatchesAreBoundedByBytes) {
  Raft r = make_node(1, 1, {}, [](Config& c) { c.max_apply_bytes_per_ready = 200; });
  tick_until_role_changes(r);
  ASSERT_EQ(r.raft_role(), RaftRole::kLeader);
  (void)take(r);
  for (int i = 0; i < 4; ++i) r.propose(std::string(100, 'a' + i));
  std::vector<size_t> batch_sizes;
  while (r.has_ready()) {
    auto rd = take(r);
    if (!rd.committed.empty()) batch_sizes.push_back(rd.committed.size());
  }
  ASSERT_FALSE(batch_sizes.empty());
  for (size_t n : batch_sizes) EXPECT_LE(n, 2u);
  EXPECT_EQ(r.log().applied(), LogIndex(5));
}

// ---- Restart ----------------------------------------------------------------

TEST(RaftRestart, RestartFromPersistentStateKeepsTermVoteAndLog) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.propose(1, "a");
  c.propose(1, "b");
  c.stabilize();
  const Term term = c.raft(2).term();
  const LogIndex last = c.raft(2).log().last_index();

  c.crash(2);
  c.restart(2);
  EXPECT_EQ(c.raft(2).term(), term);
  EXPECT_EQ(c.raft(2).hard_state().voted_for, NodeId(1));
  EXPECT_EQ(c.raft(2).log().last_index(), last);
  EXPECT_EQ(c.raft(2).raft_role(), RaftRole::kFollower);
  EXPECT_EQ(c.raft(2).leader(), kNoNode) << "who leads is volatile";
  // The in-memory state machine starts empty and is rebuilt from the log.
  EXPECT_TRUE(c.sm(2).commands.empty());
  c.stabilize();
  EXPECT_EQ(c.sm(2).commands, (std::vector<std::string>{"a", "b"}));

  // A restarted node cannot vote twice in the term it already voted in.
  c.inject(msg(3, 2, term.value(), RequestVote{LogIndex(100), term, false}));
  EXPECT_EQ(c.raft(2).hard_state().voted_for, NodeId(1));
}

TEST(RaftRestart, RestartedLeaderComesBackAsAFollower) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.propose(1, "a");
  c.stabilize();
  c.crash(1);
  c.restart(1);
  EXPECT_EQ(c.role(1), RaftRole::kFollower);
  EXPECT_EQ(c.raft(1).hard_state().voted_for, NodeId(1));
  ASSERT_TRUE(c.run_until([&] { return c.leader().has_value(); }));
  c.propose(*c.leader(), "b");
  c.stabilize();
  for (uint64_t id = 1; id <= 3; ++id)
    EXPECT_EQ(c.sm(id).commands, (std::vector<std::string>{"a", "b"}));
}

TEST(RaftRestart, UnsyncedEntriesAreLostAndNotAcknowledged) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.hold(2);  // n2's fsync never completes
  c.propose(1, "x");
  c.stabilize();
  EXPECT_EQ(c.raft(1).progress(NodeId(2))->match_index, LogIndex(1)) << "no ack before the fsync";
  c.crash(2);
  c.restart(2);
  EXPECT_EQ(c.raft(2).log().last_index(), LogIndex(1)) << "the unsynced entry is gone";
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.sm(2).commands, (std::vector<std::string>{"x"})) << "and replicated again";
}

// HardState.commit may lag the state machine (types.h: PersistentState), e.g.
// a durable state machine that applied further than the last persisted commit.
// What was applied is committed; it must not be handed out again.
TEST(RaftRestart, AppliedBeyondThePersistedCommitIsNotAppliedTwice) {
  PersistentState ps;
  ps.durable = {Term(1), NodeId(1), LogIndex(2)};
  ps.entries = entries_with_terms({1, 1, 1, 1, 1});
  ps.applied = LogIndex(4);
  Raft r = make_node(2, 3, ps);
  EXPECT_EQ(r.log().applied(), LogIndex(4));
  r.step(msg(1, 2, 1, Heartbeat{LogIndex(5), 0}));
  auto rd = take(r);
  ASSERT_EQ(rd.committed.size(), 1u);
  EXPECT_EQ(rd.committed[0].index, LogIndex(5));
}

TEST(RaftRestart, RestartFromASnapshot) {
  PersistentState ps;
  ps.snapshot =
      core::SnapshotRef{{LogIndex(10), Term(3)}, std::make_shared<const std::string>("s")};
  ps.entries = entries_with_terms({3, 4}, 11);
  ps.durable = {Term(4), kNoNode, LogIndex(11)};
  ps.applied = LogIndex(10);
  Raft r = make_node(1, 3, ps);
  EXPECT_EQ(r.log().first_index(), LogIndex(11));
  EXPECT_EQ(r.log().last_index(), LogIndex(12));
  EXPECT_EQ(r.log().last_term(), Term(4));
  EXPECT_EQ(r.log().committed(), LogIndex(11));
  auto rd = r.ready();
  EXPECT_EQ(datas(rd.committed), (std::vector<std::string>{"11@3"}));
  EXPECT_FALSE(rd.snapshot) << "the host already has its snapshot";
  r.advance(rd);
}

// ---- Single node ------------------------------------------------------------

TEST(RaftSingleNode, ElectsItselfAndCommits) {
  Raft r = make_node(1, 1);
  tick_until_role_changes(r);
  EXPECT_EQ(r.raft_role(), RaftRole::kLeader);
  EXPECT_EQ(r.term(), Term(1));
  const ProposeResult p = r.propose("a");
  ASSERT_EQ(p.status, ProposeStatus::kAccepted);
  EXPECT_EQ(p.index, LogIndex(2));
  std::vector<Entry> applied;
  for (int i = 0; i < 10 && r.has_ready(); ++i) {
    auto rd = take(r);
    EXPECT_TRUE(all_messages(rd).empty()) << "nobody to talk to";
    applied.insert(applied.end(), rd.committed.begin(), rd.committed.end());
  }
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0].type, core::EntryType::kNoop);
  EXPECT_EQ(applied[1].data, "a");
  EXPECT_EQ(r.log().committed(), LogIndex(2));
}

TEST(RaftSingleNode, CommitsOnlyAfterItsOwnFsync) {
  Raft r = make_node(1, 1);
  tick_until_role_changes(r);
  (void)take(r);
  while (r.has_ready()) (void)take(r);
  r.propose("a");
  auto rd = r.ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_TRUE(rd.committed.empty()) << "not durable anywhere yet";
  EXPECT_EQ(r.log().committed(), LogIndex(1));
  r.advance(rd);
  EXPECT_EQ(r.log().committed(), LogIndex(2));
}

TEST(RaftSingleNode, ReadIndexNeedsNoRound) {
  Raft r = make_node(1, 1);
  tick_until_role_changes(r);
  while (r.has_ready()) (void)take(r);
  ASSERT_EQ(r.read_index(42).status, ProposeStatus::kAccepted);
  auto rd = take(r);
  ASSERT_EQ(rd.reads.size(), 1u);
  EXPECT_EQ(rd.reads[0].ctx, 42u);
  EXPECT_EQ(rd.reads[0].index, LogIndex(1));
}

// ---- Configuration -----------------------------------------------------------

TEST(RaftConfig, ValidateRejectsBadSettings) {
  struct Case {
    const char* name;
    std::function<void(Config&)> breaks;
  };
  const Case cases[] = {
      {"node id 0", [](Config& c) { c.id = kNoNode; }},
      {"not a voter", [](Config& c) { c.id = NodeId(9); }},
      {"election timeout < 2", [](Config& c) { c.election_timeout_ticks = 1; }},
      {"heartbeat 0", [](Config& c) { c.heartbeat_interval_ticks = 0; }},
      {"heartbeat >= election timeout",
       [](Config& c) { c.heartbeat_interval_ticks = c.election_timeout_ticks; }},
      {"lease without check quorum",
       [](Config& c) {
         c.lease_reads = true;
         c.check_quorum = false;
       }},
      {"lease as long as an election timeout",
       [](Config& c) {
         c.lease_reads = true;
         c.lease_ticks = c.election_timeout_ticks;
       }},
      {"zero entries per append", [](Config& c) { c.max_entries_per_append = 0; }},
      {"zero bytes per append", [](Config& c) { c.max_bytes_per_append = 0; }},
      {"zero inflight", [](Config& c) { c.max_inflight_appends = 0; }},
      {"zero uncommitted bytes", [](Config& c) { c.max_uncommitted_bytes = 0; }},
      {"zero apply bytes", [](Config& c) { c.max_apply_bytes_per_ready = 0; }},
  };
  EXPECT_TRUE(make_config(1, 3).validate().is_ok());
  for (const auto& c : cases) {
    Config cfg = make_config(1, 3);
    c.breaks(cfg);
    EXPECT_EQ(cfg.validate().code(), StatusCode::kInvalidArgument) << c.name;
  }
}

TEST(RaftConfigDeathTest, ConstructingWithABadConfigAsserts) {
  Config cfg = make_config(1, 3);
  cfg.election_timeout_ticks = 1;
  EXPECT_DEATH(Raft(cfg, Prng(1)), "election_timeout_ticks");
}

TEST(RaftDeathTest, AMessageForAnotherNodeAsserts) {
  Raft r = make_node(1, 3);
  EXPECT_DEATH(r.step(msg(2, 3, 1, Heartbeat{})), "assertion failed");
}

// ---- Compaction ----------------------------------------------------------------

TEST(RaftCompact, CompactDropsTheAppliedPrefixAndKeepsTrailingEntries) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) { cfg.snapshot_trailing_entries = 2; }});
  ASSERT_TRUE(c.elect(1));
  for (int i = 0; i < 6; ++i) c.propose(1, "e" + std::to_string(i));
  c.stabilize();
  ASSERT_EQ(c.sm(1).applied, LogIndex(7));
  c.compact(1);
  EXPECT_EQ(c.raft(1).log().snapshot().index, LogIndex(5)) << "two entries kept for slow followers";
  EXPECT_EQ(c.raft(1).log().first_index(), LogIndex(6));
  EXPECT_EQ(c.raft(1).log().last_index(), LogIndex(7));
  c.propose(1, "more");
  c.stabilize();
  EXPECT_EQ(c.committed(2), LogIndex(8));
}

TEST(RaftCompactDeathTest, SnapshotBeyondAppliedAsserts) {
  Raft r = make_node(1, 1);
  tick_until_role_changes(r);
  EXPECT_DEATH(r.compact(core::SnapshotRef{{LogIndex(5), Term(1)}, nullptr}),
               "beyond the applied index");
}

// ---- Forwarding edge cases ---------------------------------------------------

TEST(RaftForward, ForwardedProposalsWithNoLeaderLeftAreDropped) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  ASSERT_EQ(c.propose(2, "x").status, ProposeStatus::kForwarded);
  // Before n2 hands the proposal out, it learns of a new term with no leader.
  c.inject(msg(3, 2, 9, AppendEntriesResponse{}));
  c.stabilize();
  EXPECT_EQ(c.count_delivered<ForwardProposals>(), 0u);
}

// ---- Messages ------------------------------------------------------------------

TEST(RaftMessages, DescribeIsOneReadableLine) {
  EXPECT_EQ(describe(msg(
                1, 2, 3,
                AppendEntries{
                    LogIndex(5), Term(2), {entry(6, 3), entry(7, 3), entry(8, 3)}, LogIndex(4)})),
            "AppendEntries 1->2 t3 prev=5/2 n=3 commit=4");
  EXPECT_EQ(
      describe(msg(2, 1, 3, AppendEntriesResponse{false, {}, LogIndex(5), Term(2), LogIndex(3)})),
      "AppendEntriesResponse 2->1 t3 reject at=5 hint=3/2");
  EXPECT_EQ(describe(msg(2, 1, 3, AppendEntriesResponse{true, LogIndex(8), {}, {}, {}})),
            "AppendEntriesResponse 2->1 t3 ok match=8");
  EXPECT_EQ(describe(msg(1, 2, 4, RequestVote{LogIndex(9), Term(3), true})),
            "PreVote 1->2 t4 last=9/3");
  EXPECT_EQ(describe(msg(2, 1, 4, RequestVoteResponse{true, false})),
            "RequestVoteResponse 2->1 t4 granted");
  EXPECT_EQ(describe(msg(1, 3, 2, Heartbeat{LogIndex(7), 11})),
            "Heartbeat 1->3 t2 commit=7 round=11");
  EXPECT_EQ(describe(msg(3, 1, 2, ReadIndexRequest{5})), "ReadIndexRequest 3->1 t2 ctx=5");
  EXPECT_EQ(message_name(Body{InstallSnapshot{}}), "InstallSnapshot");
  EXPECT_EQ(message_name(Body{ForwardProposals{}}), "ForwardProposals");
}

}  // namespace
}  // namespace chorus::raft

namespace chorus::raft {
namespace {

// The metadata file saves Raft's state only when a change must be synced.
TEST(RaftHardState, OnlyATermOrVoteChangeNeedsAnFsync) {
  const HardState base{Term(3), NodeId(2), LogIndex(10)};
  struct Case {
    const char* name;
    HardState next;
    bool needs_sync;
  };
  const Case cases[] = {
      {"same", base, false},
      {"commit alone", HardState{Term(3), NodeId(2), LogIndex(11)}, false},
      {"new term", HardState{Term(4), kNoNode, LogIndex(10)}, true},
      {"new vote", HardState{Term(3), NodeId(3), LogIndex(10)}, true},
  };
  for (const auto& c : cases)
    EXPECT_EQ(hard_state_needs_sync(base, c.next), c.needs_sync) << c.name;
}

TEST(RaftHardState, EncodingRoundTripsAndRejectsGarbage) {
  const HardState hs{Term(7), NodeId(3), LogIndex(42)};
  auto back = decode_hard_state(encode_hard_state(hs));
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(*back, hs);
  EXPECT_EQ(*decode_hard_state(""), HardState{}) << "a new node's empty state";
  EXPECT_EQ(decode_hard_state("\xff\xff\xff").status().code(), StatusCode::kCorruption);
}

// Leases are sized against clock drift: L * drift^2 < election_timeout - 1.
TEST(RaftLease, LeaseTicksLeaveAMarginForClockDrift) {
  EXPECT_EQ(max_safe_lease_ticks(10, 1.0), 8u);
  EXPECT_EQ(max_safe_lease_ticks(10, 1.1), 7u);  // 9 / 1.21 = 7.4
  EXPECT_EQ(max_safe_lease_ticks(10, 1.5), 3u);  // 9 / 2.25 = 4, strictly below
  EXPECT_EQ(max_safe_lease_ticks(2, 1.1), 0u);
  Config cfg;
  cfg.id = NodeId(1);
  cfg.voters = {NodeId(1), NodeId(2), NodeId(3)};
  cfg.lease_reads = true;
  cfg.election_timeout_ticks = 10;
  cfg.lease_ticks = 7;
  EXPECT_TRUE(cfg.validate().is_ok());
  cfg.lease_ticks = 8;
  Status st = cfg.validate();
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("at most 7"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace chorus::raft

namespace chorus::raft {
namespace {

using testing::Cluster;

// Every queue in the core has a limit and a behaviour when it is full.
TEST(RaftLimits, AFollowersForwardBufferIsBoundedAndDrainsAtTheNextReady) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) { cfg.max_forward_bytes = 10; }});
  ASSERT_TRUE(c.elect(1));
  EXPECT_EQ(c.propose(2, "12345").status, ProposeStatus::kForwarded);
  EXPECT_EQ(c.propose(2, "12345").status, ProposeStatus::kForwarded);
  EXPECT_EQ(c.propose(2, "x").status, ProposeStatus::kTooMuchUncommitted) << "10 bytes held";
  ASSERT_TRUE(c.process_ready(2));  // forwarded: the buffer is empty again
  EXPECT_EQ(c.propose(2, "x").status, ProposeStatus::kForwarded);
  // One proposal larger than the whole budget still goes, alone.
  ASSERT_TRUE(c.process_ready(2));
  EXPECT_EQ(c.propose(2, std::string(50, 'y')).status, ProposeStatus::kForwarded);
}

TEST(RaftLimits, ALeadersPendingReadsAreBounded) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) { cfg.max_pending_reads = 2; }});
  ASSERT_TRUE(c.elect(1));
  EXPECT_EQ(c.read_index(1, 1).status, ProposeStatus::kAccepted);
  EXPECT_EQ(c.read_index(1, 2).status, ProposeStatus::kAccepted);
  EXPECT_EQ(c.read_index(1, 3).status, ProposeStatus::kTooMuchUncommitted);
  // A follower's forwarded read is dropped while full (its host asks again).
  EXPECT_EQ(c.read_index(2, 4).status, ProposeStatus::kForwarded);
  c.stabilize();  // the round confirms reads 1 and 2; the forwarded one was dropped
  EXPECT_EQ(c.reads(1).size(), 2u);
  EXPECT_TRUE(c.reads(2).empty());
  EXPECT_EQ(c.read_index(2, 5).status, ProposeStatus::kForwarded);
  c.stabilize();
  EXPECT_EQ(c.reads(2).size(), 1u) << "room again once the round confirmed";
}

}  // namespace
}  // namespace chorus::raft

namespace chorus::raft {
namespace {

// Three Raft nodes wired by hand: the test decides which message reaches
// whom, and when (found by review; pre-vote off, CheckQuorum and leases on).
struct HandWired {
  std::vector<std::unique_ptr<Raft>> n;  // n[1..3]
  std::vector<Message> wire;
  HandWired() {
    n.resize(4);
    for (uint64_t i = 1; i <= 3; ++i) {
      Config cfg = make_config_for(i);
      n[i] = std::make_unique<Raft>(cfg, Prng(100 + i));
    }
  }
  static Config make_config_for(uint64_t i) {
    Config cfg;
    cfg.id = NodeId(i);
    cfg.voters = {NodeId(1), NodeId(2), NodeId(3)};
    cfg.pre_vote = false;
    cfg.check_quorum = true;
    cfg.lease_reads = true;
    cfg.lease_ticks = 7;  // election timeout 10, drift 1.1: the longest allowed
    return cfg;
  }
  Raft& at(uint64_t i) { return *n[i]; }
  void flush(uint64_t i) {
    auto& r = at(i);
    for (auto& m : r.take_messages()) wire.push_back(m);
    while (r.has_ready()) {
      auto rd = r.ready();
      for (auto& m : rd.messages) wire.push_back(m);
      for (auto& m : rd.messages_after_persist) wire.push_back(m);
      r.advance(rd);
      for (auto& m : r.take_messages()) wire.push_back(m);
    }
  }
  // Delivers what `ok` lets through until quiet; the rest goes to *held (or is lost).
  void run(const std::function<bool(const Message&)>& ok, std::vector<Message>* held = nullptr) {
    for (int round = 0; round < 50; ++round) {
      for (uint64_t i = 1; i <= 3; ++i) flush(i);
      if (wire.empty()) return;
      auto batch = std::move(wire);
      wire.clear();
      for (auto& m : batch) {
        if (ok(m)) {
          at(m.to.value()).step(m);
        } else if (held) {
          held->push_back(m);
        }
      }
    }
  }
};

// Thesis §6.4.1: a lease holds because the followers that confirmed it vote
// for nobody for an election timeout. A follower used to lose that fence
// when a higher term reached it in a message that was neither a vote nor
// from a leader (it then had no leader and voted at once); here a stale
// leader's heartbeat, answered by the candidate in its new term, carries the
// term, and a duplicate of the candidate's RequestVote follows.
TEST(RaftLease, AFollowerInsideALeaseVotesForNobodyWhateverTermItLearns) {
  HandWired c;
  auto all = [](const Message&) { return true; };
  while (c.at(2).role() != core::Role::kCandidate) {
    c.at(2).tick();
    c.flush(2);
  }
  c.run(all);
  ASSERT_EQ(c.at(2).role(), core::Role::kLeader);
  // n2's heartbeat to n3 is delayed in the network.
  std::vector<Message> held;
  c.at(2).tick();
  c.run([](const Message& m) { return !(m.from == NodeId(2) && m.to == NodeId(3)); }, &held);
  ASSERT_FALSE(held.empty());
  // n2 is cut off; a (n1 or n3) wins the next term.
  auto no2 = [](const Message& m) { return m.from != NodeId(2) && m.to != NodeId(2); };
  for (int k = 0; k < 60 && c.at(1).role() != core::Role::kLeader &&
                  c.at(3).role() != core::Role::kLeader;
       ++k) {
    c.at(1).tick();
    c.at(3).tick();
    c.run(no2);
  }
  const uint64_t a = c.at(1).role() == core::Role::kLeader ? 1 : 3;
  const uint64_t b = 4 - a;
  ASSERT_EQ(c.at(a).role(), core::Role::kLeader);
  // a and b are cut apart; n2 confirms a's rounds: a holds a lease.
  auto a2 = [a](const Message& m) {
    return (m.from == NodeId(a) && m.to == NodeId(2)) || (m.from == NodeId(2) && m.to == NodeId(a));
  };
  for (int k = 0; k < 3; ++k) {
    c.at(a).tick();
    c.run(a2);
  }
  const Term ta = c.at(a).term();
  ASSERT_EQ(c.at(2).term(), ta);
  ASSERT_TRUE(c.at(a).lease_read_index().has_value());
  // b stands in the next term; n2 ignores its RequestVote (the lease).
  c.wire.clear();
  while (c.at(b).role() != core::Role::kCandidate) {
    c.at(b).tick();
    c.flush(b);
  }
  auto b2 = [b](const Message& m) { return m.from == NodeId(b) && m.to == NodeId(2); };
  std::vector<Message> dup;
  for (auto& m : c.wire) {
    if (b2(m)) dup.push_back(m);  // the network duplicates it
  }
  c.run(b2);
  EXPECT_EQ(c.at(2).term(), ta) << "in lease: the RequestVote is ignored";
  // n2's old heartbeat reaches b; b's stale-term answer carries b's term to n2.
  for (auto& m : held) c.at(b).step(Message{m.from, NodeId(b), m.term, m.body});
  c.run(b2);
  ASSERT_GT(c.at(2).term(), ta);
  // Then the duplicate RequestVote arrives: n2 must still refuse it.
  for (auto& m : dup) c.at(2).step(m);
  auto b2both = [b](const Message& m) {
    return (m.from == NodeId(b) && m.to == NodeId(2)) || (m.from == NodeId(2) && m.to == NodeId(b));
  };
  c.run(b2both);
  EXPECT_NE(c.at(b).role(), core::Role::kLeader)
      << "b won an election while a's lease held: a's lease reads would miss b's writes";
  EXPECT_TRUE(c.at(a).lease_read_index().has_value()) << "no tick passed on a";
}

}  // namespace
}  // namespace chorus::raft
