// write_progress (write_progress.h): what WAIT and CHORUS.POLL answer for one
// write, from a group's engine-neutral status. A fake group stands in for the
// host: the rule reads only status() and term_at().
#include <gtest/gtest.h>

#include <map>

#include "core/primary/options.h"
#include "server/write_progress.h"
#include "storage/kv/state_machine.h"

namespace chorus::server {
namespace {

class FakeGroup final : public ReplicaGroup {
 public:
  std::string_view strategy() const override { return "fake"; }
  core::Capabilities capabilities() const override { return {}; }
  GroupId group_id() const override { return GroupId(0); }
  Status init() override { return Status::ok(); }
  void start() override {}
  void stop() override {}
  Status receive(net::IncomingMessage) override { return Status::ok(); }
  void write(kvpb::Command, WriteDone) override {}
  void write_acked(kvpb::Command, WriteAckDone) override {}
  void read(host::Consistency, ReadDone) override {}
  bool read_ready_now(host::Consistency) override { return false; }
  const kv::StateMachine& state() const override { return sm_; }
  int64_t time_base_ms() const override { return 0; }
  bool healthy() const override { return true; }
  Status failure() const override { return Status::ok(); }
  core::SoftState soft_state() const override { return st.engine.soft; }
  host::HostStatus status() const override { return st; }
  bool managed() const override { return managed_; }
  std::optional<Term> term_at(LogIndex i) const override {
    auto it = terms.find(i.value());
    if (it == terms.end()) return std::nullopt;
    return Term(it->second);
  }

  host::HostStatus st;
  std::map<uint64_t, uint64_t> terms;  // index -> term of the local log
  bool managed_ = false;               // a primary-backup group

 private:
  kv::MemoryStateMachine sm_;
};

// Node 1 leads term 2 of {1, 2, 3}; its log holds 1..10 (1..4 of term 1),
// commit index 8; n2 matches through 9, n3 through 6.
FakeGroup leader() {
  FakeGroup g;
  g.st.engine.soft = core::SoftState{core::Role::kLeader, Term(2), NodeId(1)};
  g.st.engine.commit_index = LogIndex(8);
  g.st.engine.last_index = LogIndex(10);
  g.st.engine.peers = {{NodeId(1), LogIndex(10), LogIndex(11)},
                       {NodeId(2), LogIndex(9), LogIndex(10)},
                       {NodeId(3), LogIndex(6), LogIndex(7)}};
  g.st.durable_index = LogIndex(10);
  for (uint64_t i = 1; i <= 10; ++i) g.terms[i] = i <= 4 ? 1 : 2;
  return g;
}

WriteProgress at(const FakeGroup& g, uint64_t index, uint64_t term) {
  return write_progress(g, LogIndex(index), Term(term));
}

TEST(WriteProgressTest, TheLeaderCountsPeersWhoseMatchIndexReachesTheWriteNotItself) {
  const FakeGroup g = leader();
  EXPECT_EQ(at(g, 5, 2).state, WriteProgress::State::kCommitted);
  EXPECT_EQ(at(g, 5, 2).replicas, 2u);
  EXPECT_EQ(at(g, 7, 2).replicas, 1u);                           // n3 matches through 6 only
  EXPECT_EQ(at(g, 9, 2).state, WriteProgress::State::kPending);  // past commit 8
  EXPECT_EQ(at(g, 9, 2).replicas, 1u);
  EXPECT_EQ(at(g, 10, 2).replicas, 0u);
}

TEST(WriteProgressTest, AnotherTermAtTheIndexMeansTheWriteWasReplaced) {
  const FakeGroup g = leader();
  EXPECT_EQ(at(g, 5, 1).state, WriteProgress::State::kLost);
  EXPECT_EQ(at(g, 5, 1).replicas, 0u);
  EXPECT_EQ(at(g, 3, 2).state, WriteProgress::State::kLost);
}

TEST(WriteProgressTest, AnotherTermAtAnUncommittedIndexIsPendingNotLost) {
  // A stale leader (or a follower before its conflicting suffix is cut) has
  // term 2 at 9 and 10, past its commit index 8; the token names term 3 at 9,
  // committed elsewhere by a newer leader.
  const FakeGroup g = leader();
  EXPECT_EQ(at(g, 9, 3).state, WriteProgress::State::kPending);
  EXPECT_EQ(at(g, 9, 3).replicas, 0u);
  EXPECT_EQ(at(g, 8, 3).state, WriteProgress::State::kLost);  // its own entry there is committed
}

TEST(WriteProgressTest, PastTheEndOfTheLocalLogIsPendingAndHeldByNone) {
  const FakeGroup g = leader();
  EXPECT_EQ(at(g, 11, 2).state, WriteProgress::State::kPending);
  EXPECT_EQ(at(g, 11, 2).replicas, 0u);
}

TEST(WriteProgressTest, ACompactedWriteIsJudgedByTheSnapshotsTerm) {
  FakeGroup g = leader();
  g.st.engine.snapshot_index = LogIndex(4);
  for (uint64_t i = 1; i < 4; ++i) g.terms.erase(i);  // the log keeps term(snapshot index)
  EXPECT_EQ(at(g, 2, 1).state, WriteProgress::State::kCommitted);
  EXPECT_EQ(at(g, 2, 2).state, WriteProgress::State::kLost);  // terms never decrease along a log
}

TEST(WriteProgressTest, AFollowerCountsOnlyItselfOnceItHoldsTheWriteDurably) {
  FakeGroup g = leader();
  g.st.engine.soft = core::SoftState{core::Role::kFollower, Term(2), NodeId(1)};
  g.st.engine.peers.clear();
  g.st.durable_index = LogIndex(7);
  EXPECT_EQ(at(g, 7, 2).replicas, 1u);
  EXPECT_EQ(at(g, 8, 2).replicas, 0u);  // in its log, not yet durable
  EXPECT_EQ(at(g, 8, 2).state, WriteProgress::State::kCommitted);
}

// Sync-all: a rolled-back write's index holds a marker (or a later write) of
// the same epoch and a later generation; another epoch's entry there means
// lost, as for Raft. Raft terms never look rolled back.
TEST(WriteProgressTest, APrimaryBackupRollbackIsToldApartFromALoss) {
  FakeGroup g = leader();
  g.managed_ = true;
  const uint64_t e2g0 = primary::entry_term(primary::Epoch(2), 0).value();
  const uint64_t e2g1 = primary::entry_term(primary::Epoch(2), 1).value();
  const uint64_t e3g0 = primary::entry_term(primary::Epoch(3), 0).value();
  g.terms[5] = e2g1;  // the marker that replaced a write of (2, 0)
  g.terms[6] = e3g0;  // a new epoch's entry
  EXPECT_EQ(at(g, 5, e2g0).state, WriteProgress::State::kRolledBack);
  EXPECT_EQ(at(g, 6, e2g0).state, WriteProgress::State::kLost);
  EXPECT_EQ(write_state_name(WriteProgress::State::kRolledBack), "rolled-back");
  g.managed_ = false;  // the same numbers in a Raft group are terms: lost
  EXPECT_EQ(at(g, 5, e2g0).state, WriteProgress::State::kLost);
  g.managed_ = true;
  g.st.engine.commit_index = LogIndex(4);  // not committed here yet: pending
  EXPECT_EQ(at(g, 5, e2g0).state, WriteProgress::State::kPending);
}

}  // namespace
}  // namespace chorus::server
