// write_progress (write_progress.h): what WAIT and CHORUS.POLL answer for one
// write, from a group's engine-neutral status. A fake group stands in for the
// host: the rule reads only status() and term_at().
#include <gtest/gtest.h>

#include <map>

#include "core/primary/options.h"
#include "server/fake_group.h"
#include "server/write_progress.h"

namespace chorus::server {
namespace {

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

// Paxos (no Log Matching): a slot keeps the ballot it was first proposed
// in, so a snapshot's term may be below a later slot's; and a leader's peer
// matches cover open slots only (a dead peer looks caught up on chosen ones).
TEST(WriteProgressTest, WithoutLogMatchingACompactedWriteIsCommittedAndAQuorumIsCounted) {
  FakeGroup g = leader();
  g.caps.log_matching = false;
  g.st.engine.snapshot_index = LogIndex(4);
  for (uint64_t i = 1; i < 4; ++i) g.terms.erase(i);
  EXPECT_EQ(at(g, 2, 2).state,
            WriteProgress::State::kCommitted);  // ballot 2 above the snapshot's 1
  // n2 and n3 both "match" past 5; of a chosen slot only a majority is known.
  EXPECT_EQ(at(g, 5, 2).state, WriteProgress::State::kCommitted);
  EXPECT_EQ(at(g, 5, 2).replicas, 1u);
  // An open slot's acceptances are tracked: counted as they are.
  EXPECT_EQ(at(g, 9, 2).state, WriteProgress::State::kPending);
  EXPECT_EQ(at(g, 9, 2).replicas, 1u);
  EXPECT_EQ(at(g, 10, 2).replicas, 0u);
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
