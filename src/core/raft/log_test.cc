// RaftLog unit tests: the follower's append rules (Raft §5.3), slicing with
// limits, term lookups around a snapshot, compaction and restore, and the
// stable/handed bookkeeping that decides what the host must persist.
#include "core/raft/log.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace chorus::raft {
namespace {

Entry E(uint64_t index, uint64_t term, std::string data = "") {
  return Entry{Term(term), LogIndex(index), core::EntryType::kNormal, std::move(data)};
}

// A durable log whose entry i (1-based, after the snapshot) has terms[i-1].
RaftLog log_of(std::vector<uint64_t> terms, uint64_t committed = 0, uint64_t applied = 0,
               SnapshotMeta snap = {}) {
  std::vector<Entry> entries;
  for (size_t k = 0; k < terms.size(); ++k)
    entries.push_back(E(snap.index.value() + k + 1, terms[k]));
  return RaftLog(snap, std::move(entries), LogIndex(committed), LogIndex(applied));
}

std::vector<uint64_t> terms_of(const RaftLog& log) {
  std::vector<uint64_t> out;
  for (LogIndex i = log.first_index(); i <= log.last_index(); i = i.next()) {
    out.push_back(log.at(i).term.value());
  }
  return out;
}

std::vector<uint64_t> indexes_of(const std::vector<Entry>& es) {
  std::vector<uint64_t> out;
  for (const auto& e : es) out.push_back(e.index.value());
  return out;
}

TEST(RaftLog, EmptyLogStartsBeforeIndexOne) {
  RaftLog log;
  EXPECT_EQ(log.first_index(), LogIndex(1));
  EXPECT_EQ(log.last_index(), LogIndex(0));
  EXPECT_EQ(log.last_term(), Term(0));
  EXPECT_EQ(log.term(LogIndex(0)), Term(0));
  EXPECT_EQ(log.term(LogIndex(1)), std::nullopt);
  EXPECT_FALSE(log.has_unstable());
  EXPECT_FALSE(log.has_committed_to_apply());
}

TEST(RaftLog, RestoredStateIsAllStableAndClampsCommitAndApplied) {
  RaftLog log = log_of({1, 1, 2}, /*committed=*/9, /*applied=*/9);
  EXPECT_EQ(log.last_index(), LogIndex(3));
  EXPECT_EQ(log.stable(), LogIndex(3));
  EXPECT_FALSE(log.has_unstable());
  EXPECT_EQ(log.committed(), LogIndex(3));  // never past the log
  EXPECT_EQ(log.applied(), LogIndex(3));
}

TEST(RaftLog, AppliedBeyondThePersistedCommitMeansCommitted) {
  // HardState.commit may lag (types.h); a durable state machine may already
  // have applied further. Those entries are committed by definition and must
  // not be handed out to apply a second time.
  RaftLog log = log_of({1, 1, 1, 1, 1}, /*committed=*/2, /*applied=*/4);
  EXPECT_EQ(log.applied(), LogIndex(4));
  EXPECT_GE(log.committed(), LogIndex(4));
  log.commit_to(LogIndex(5));
  EXPECT_EQ(indexes_of(log.take_committed(1 << 20)), (std::vector<uint64_t>{5}));
}

TEST(RaftLog, TermLookupsAroundTheSnapshot) {
  RaftLog log = log_of({2, 3}, 0, 0, SnapshotMeta{LogIndex(5), Term(2)});  // entries 6, 7
  EXPECT_EQ(log.first_index(), LogIndex(6));
  EXPECT_EQ(log.last_index(), LogIndex(7));
  EXPECT_EQ(log.term(LogIndex(4)), std::nullopt);  // compacted away
  EXPECT_EQ(log.term(LogIndex(0)), std::nullopt);
  EXPECT_EQ(log.term(LogIndex(5)), Term(2));  // the snapshot's last entry
  EXPECT_EQ(log.term(LogIndex(6)), Term(2));
  EXPECT_EQ(log.term(LogIndex(7)), Term(3));
  EXPECT_EQ(log.term(LogIndex(8)), std::nullopt);  // past the end
  EXPECT_TRUE(log.match_term(LogIndex(5), Term(2)));
  EXPECT_FALSE(log.match_term(LogIndex(5), Term(1)));
  EXPECT_FALSE(log.match_term(LogIndex(4), Term(0)));
  EXPECT_EQ(log.committed(), LogIndex(5));  // the snapshot is committed
  EXPECT_EQ(log.applied(), LogIndex(5));
}

TEST(RaftLogDeathTest, AtOutsideTheLogAborts) {
  RaftLog log = log_of({1}, 0, 0, SnapshotMeta{LogIndex(3), Term(1)});
  EXPECT_DEATH((void)log.at(LogIndex(3)), "assertion failed");
  EXPECT_DEATH((void)log.at(LogIndex(5)), "assertion failed");
}

TEST(RaftLog, LeaderAppendExtendsTheLogAsUnstable) {
  RaftLog log = log_of({1});
  log.append(E(2, 1));
  log.append(E(3, 2));
  EXPECT_EQ(terms_of(log), (std::vector<uint64_t>{1, 1, 2}));
  EXPECT_TRUE(log.has_unstable());
  EXPECT_EQ(indexes_of(log.unstable_entries()), (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(log.stable(), LogIndex(1));
}

TEST(RaftLogDeathTest, LeaderAppendMustBeContiguousAndNotGoBackInTerm) {
  RaftLog log = log_of({2});
  EXPECT_DEATH(log.append(E(3, 2)), "assertion failed");  // gap
  EXPECT_DEATH(log.append(E(2, 1)), "assertion failed");  // lower term
}

// Raft §5.3, AppendEntries receiver rules 3 and 4, as a table over the log
// [1:t1, 2:t2, 3:t3] (etcd's TestLogMaybeAppend).
TEST(RaftLog, AppendAfterTruncatesOnlyAConflictingSuffix) {
  struct Case {
    const char* name;
    uint64_t prev;
    std::vector<Entry> entries;
    std::vector<uint64_t> want_terms;
    uint64_t want_last_new;
  };
  const std::vector<Case> cases = {
      {"heartbeat-like, nothing new", 3, {}, {1, 2, 3}, 3},
      {"all duplicates", 1, {E(2, 2), E(3, 3)}, {1, 2, 3}, 3},
      {"duplicate then new", 2, {E(3, 3), E(4, 3)}, {1, 2, 3, 3}, 4},
      {"new at the end", 3, {E(4, 4), E(5, 4)}, {1, 2, 3, 4, 4}, 5},
      // An old, shorter append must not truncate entries after it (rule 3
      // deletes only on a conflict): a reordered message would lose entries.
      {"stale shorter append keeps the tail", 0, {E(1, 1)}, {1, 2, 3}, 1},
      {"conflict at the last entry", 2, {E(3, 4)}, {1, 2, 4}, 3},
      {"conflict in the middle", 1, {E(2, 4), E(3, 4), E(4, 4)}, {1, 4, 4, 4}, 4},
      {"conflict after a duplicate", 1, {E(2, 2), E(3, 5)}, {1, 2, 5}, 3},
      {"conflict at the first entry", 0, {E(1, 4)}, {4}, 1},
  };
  for (const auto& c : cases) {
    RaftLog log = log_of({1, 2, 3});
    const LogIndex last_new = log.append_after(LogIndex(c.prev), c.entries);
    EXPECT_EQ(terms_of(log), c.want_terms) << c.name;
    EXPECT_EQ(last_new, LogIndex(c.want_last_new)) << c.name;
  }
}

TEST(RaftLogDeathTest, AppendAfterNeverOverwritesACommittedEntry) {
  RaftLog log = log_of({1, 2, 3}, /*committed=*/2);
  EXPECT_DEATH((void)log.append_after(LogIndex(1), std::vector<Entry>{E(2, 4)}),
               "overwrite a committed entry");
}

TEST(RaftLog, TruncationPullsStableAndHandedBack) {
  RaftLog log = log_of({1, 1, 1, 1, 1});  // all stable
  ASSERT_EQ(log.stable(), LogIndex(5));
  log.append_after(LogIndex(3), std::vector<Entry>{E(4, 2), E(5, 2), E(6, 2)});
  // Entries 4 and 5 on disk are no longer ours: only 1..3 are known durable,
  // and the host must rewrite from index 4.
  EXPECT_EQ(log.stable(), LogIndex(3));
  EXPECT_TRUE(log.has_unstable());
  const auto unstable = log.unstable_entries();
  EXPECT_EQ(indexes_of(unstable), (std::vector<uint64_t>{4, 5, 6}));
  EXPECT_EQ(unstable.front().term, Term(2));
}

TEST(RaftLog, TruncationOfHandedButUnpersistedEntries) {
  RaftLog log = log_of({1});
  log.append_after(LogIndex(1), std::vector<Entry>{E(2, 1), E(3, 1), E(4, 1)});
  log.mark_handed(log.last_index());  // a Ready with 2..4 is out
  EXPECT_FALSE(log.has_unstable());
  // Before advance(), a new leader overwrites 3..4.
  log.append_after(LogIndex(2), std::vector<Entry>{E(3, 2)});
  EXPECT_EQ(indexes_of(log.unstable_entries()), (std::vector<uint64_t>{3}));
  log.stable_to_handed();  // advance() of the old Ready: only 1..2 are known good
  EXPECT_EQ(log.stable(), LogIndex(2));
  EXPECT_TRUE(log.has_unstable());
  log.mark_handed(log.last_index());
  log.stable_to_handed();
  EXPECT_EQ(log.stable(), LogIndex(3));
  EXPECT_FALSE(log.has_unstable());
}

TEST(RaftLog, HandedAndStableTrackTheReadyCycle) {
  RaftLog log;
  log.append(E(1, 1));
  log.append(E(2, 1));
  EXPECT_TRUE(log.has_unstable());
  log.mark_handed(LogIndex(2));
  EXPECT_FALSE(log.has_unstable());
  EXPECT_TRUE(log.unstable_entries().empty());
  EXPECT_EQ(log.stable(), LogIndex(0));  // handed, not yet persisted
  log.append(E(3, 1));                   // arrives while the Ready is out
  log.stable_to_handed();
  EXPECT_EQ(log.stable(), LogIndex(2));
  EXPECT_EQ(indexes_of(log.unstable_entries()), (std::vector<uint64_t>{3}));
}

TEST(RaftLog, SliceHonoursEntryAndByteLimitsButReturnsAtLeastOne) {
  RaftLog log;
  for (uint64_t i = 1; i <= 5; ++i) log.append(E(i, 1, std::string(100, 'x')));  // 124 bytes each
  EXPECT_EQ(indexes_of(log.slice(LogIndex(1), LogIndex(5), 100, 1 << 20)),
            (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(indexes_of(log.slice(LogIndex(2), LogIndex(5), 2, 1 << 20)),
            (std::vector<uint64_t>{2, 3}));
  EXPECT_EQ(indexes_of(log.slice(LogIndex(1), LogIndex(5), 100, 250)),
            (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(indexes_of(log.slice(LogIndex(1), LogIndex(5), 100, 1)),
            (std::vector<uint64_t>{1}));  // one oversized entry still goes
  EXPECT_EQ(indexes_of(log.slice(LogIndex(4), LogIndex(3), 100, 1 << 20)),
            (std::vector<uint64_t>{}));
}

TEST(RaftLogDeathTest, SliceBelowTheSnapshotAborts) {
  RaftLog log = log_of({1, 1}, 0, 0, SnapshotMeta{LogIndex(2), Term(1)});
  EXPECT_DEATH((void)log.slice(LogIndex(2), LogIndex(4), 10, 1 << 20), "assertion failed");
}

TEST(RaftLog, CommitNeverMovesBackAndHandsEntriesOutInOrder) {
  RaftLog log = log_of({1, 1, 1, 1});
  log.commit_to(LogIndex(3));
  log.commit_to(LogIndex(2));  // stale: ignored
  EXPECT_EQ(log.committed(), LogIndex(3));
  EXPECT_TRUE(log.has_committed_to_apply());
  EXPECT_EQ(indexes_of(log.take_committed(1 << 20)), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(log.applied(), LogIndex(3));
  EXPECT_FALSE(log.has_committed_to_apply());
  log.commit_to(LogIndex(4));
  EXPECT_EQ(indexes_of(log.take_committed(1 << 20)), (std::vector<uint64_t>{4}));
}

TEST(RaftLog, TakeCommittedIsBoundedByBytes) {
  RaftLog log;
  for (uint64_t i = 1; i <= 3; ++i) log.append(E(i, 1, std::string(100, 'x')));
  log.commit_to(LogIndex(3));
  EXPECT_EQ(indexes_of(log.take_committed(1)), (std::vector<uint64_t>{1}));
  EXPECT_EQ(indexes_of(log.take_committed(300)), (std::vector<uint64_t>{2, 3}));
}

TEST(RaftLogDeathTest, CommitBeyondTheLogAborts) {
  RaftLog log = log_of({1});
  EXPECT_DEATH(log.commit_to(LogIndex(2)), "beyond the end");
}

TEST(RaftLog, CompactDropsThePrefixAndKeepsTermLookups) {
  RaftLog log = log_of({1, 1, 2, 2, 3}, /*committed=*/5, /*applied=*/4);
  log.compact(LogIndex(3));
  EXPECT_EQ(log.snapshot(), (SnapshotMeta{LogIndex(3), Term(2)}));
  EXPECT_EQ(log.first_index(), LogIndex(4));
  EXPECT_EQ(log.last_index(), LogIndex(5));
  EXPECT_EQ(log.term(LogIndex(3)), Term(2));
  EXPECT_EQ(log.term(LogIndex(2)), std::nullopt);
  EXPECT_EQ(terms_of(log), (std::vector<uint64_t>{2, 3}));
  log.compact(LogIndex(2));  // behind the snapshot: nothing to do
  EXPECT_EQ(log.first_index(), LogIndex(4));
}

TEST(RaftLogDeathTest, CompactBeyondAppliedOrStableAborts) {
  RaftLog log = log_of({1, 1, 1}, /*committed=*/3, /*applied=*/2);
  EXPECT_DEATH(log.compact(LogIndex(3)), "assertion failed");  // not applied
  RaftLog unstable = log_of({1}, 1, 1);
  unstable.append(E(2, 1));
  unstable.commit_to(LogIndex(2));
  (void)unstable.take_committed(1 << 20);
  EXPECT_DEATH(unstable.compact(LogIndex(2)), "assertion failed");  // not durable
}

TEST(RaftLog, RestoreReplacesTheWholeLog) {
  RaftLog log = log_of({1, 1, 2}, /*committed=*/1);
  log.restore(SnapshotMeta{LogIndex(10), Term(4)});
  EXPECT_EQ(log.first_index(), LogIndex(11));
  EXPECT_EQ(log.last_index(), LogIndex(10));
  EXPECT_EQ(log.last_term(), Term(4));
  EXPECT_EQ(log.committed(), LogIndex(10));
  EXPECT_EQ(log.applied(), LogIndex(10));
  EXPECT_FALSE(log.has_unstable());
  EXPECT_FALSE(log.has_committed_to_apply());
  // Appends continue after the snapshot.
  EXPECT_EQ(log.append_after(LogIndex(10), std::vector<Entry>{E(11, 4)}), LogIndex(11));
  EXPECT_EQ(indexes_of(log.unstable_entries()), (std::vector<uint64_t>{11}));
}

TEST(RaftLogDeathTest, RestoreMustMoveForward) {
  RaftLog log = log_of({1, 1, 1}, /*committed=*/3);
  EXPECT_DEATH(log.restore(SnapshotMeta{LogIndex(2), Term(1)}), "assertion failed");
}

TEST(RaftLog, AppendAfterSkipsEntriesCoveredByTheSnapshot) {
  RaftLog log = log_of({2}, 0, 0, SnapshotMeta{LogIndex(3), Term(1)});  // entry 4
  // A reordered append that starts before our snapshot.
  log.append_after(LogIndex(2), std::vector<Entry>{E(3, 1), E(4, 2), E(5, 2)});
  EXPECT_EQ(log.first_index(), LogIndex(4));
  EXPECT_EQ(terms_of(log), (std::vector<uint64_t>{2, 2}));
}

// Raft §5.4.1 "up-to-date": compare last terms, then lengths.
TEST(RaftLog, IsUpToDate) {
  RaftLog log = log_of({1, 2, 2});  // last 3/2
  struct Case {
    uint64_t index, term;
    bool want;
  };
  const Case cases[] = {
      {3, 2, true},   // identical
      {4, 2, true},   // same term, longer
      {2, 2, false},  // same term, shorter
      {1, 3, true},   // higher last term wins even when shorter
      {9, 1, false},  // lower last term loses even when longer
  };
  for (const auto& c : cases) {
    EXPECT_EQ(log.is_up_to_date(LogIndex(c.index), Term(c.term)), c.want)
        << c.index << "/" << c.term;
  }
}

// The helpers behind fast backtracking (thesis §5.3's optimisation).
TEST(RaftLog, FirstIndexOfTermAt) {
  RaftLog log = log_of({1, 1, 3, 3, 3, 5});
  EXPECT_EQ(log.first_index_of_term_at(LogIndex(5)), LogIndex(3));
  EXPECT_EQ(log.first_index_of_term_at(LogIndex(3)), LogIndex(3));
  EXPECT_EQ(log.first_index_of_term_at(LogIndex(2)), LogIndex(1));
  EXPECT_EQ(log.first_index_of_term_at(LogIndex(6)), LogIndex(6));
  RaftLog compacted = log_of({3, 3}, 0, 0, SnapshotMeta{LogIndex(4), Term(3)});
  EXPECT_EQ(compacted.first_index_of_term_at(LogIndex(6)), LogIndex(5));  // stops at first_index
}

TEST(RaftLog, LastIndexWithTermAtMost) {
  RaftLog log = log_of({1, 1, 3, 3, 3, 5});
  struct Case {
    uint64_t term, from, want;
  };
  const Case cases[] = {
      {5, 6, 6},              // already there
      {4, 6, 5},              // skip the term-5 entry
      {3, 4, 4},  {2, 6, 2},  // skip the whole term-3 run in one step
      {1, 6, 2},  {0, 6, 0},  // nothing that old: before the log
      {9, 99, 6},             // `from` past the end is clamped
  };
  for (const auto& c : cases) {
    EXPECT_EQ(log.last_index_with_term_at_most(Term(c.term), LogIndex(c.from)), LogIndex(c.want))
        << "term " << c.term << " from " << c.from;
  }
  RaftLog compacted = log_of({3, 3}, 0, 0, SnapshotMeta{LogIndex(4), Term(2)});
  EXPECT_EQ(compacted.last_index_with_term_at_most(Term(1), LogIndex(6)), LogIndex(4));
}

}  // namespace
}  // namespace chorus::raft
