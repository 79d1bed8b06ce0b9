#include "storage/replica/replica_storage.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "storage/env/sim_env.h"

namespace chorus::storage {
namespace {

using core::Entry;

std::vector<Entry> entries(uint64_t from, uint64_t to, uint64_t term,
                           const std::string& tag = "e") {
  std::vector<Entry> out;
  for (uint64_t i = from; i <= to; ++i) {
    out.push_back(
        Entry{Term(term), LogIndex(i), core::EntryType::kNormal, tag + std::to_string(i)});
  }
  return out;
}

core::SnapshotRef snapshot(uint64_t index, uint64_t term, std::string data) {
  return core::SnapshotRef{{LogIndex(index), Term(term)},
                           std::make_shared<const std::string>(std::move(data))};
}

std::string join(const std::vector<std::string>& notes) {
  std::string out;
  for (const auto& n : notes) out += n + "\n";
  return out;
}

class ReplicaStorageTest : public ::testing::Test {
 protected:
  SimEnv env_{Prng(7)};
  ReplicaStorageOptions options_;
  std::string dir_ = "/node";
  std::unique_ptr<ReplicaStorage> open() {
    auto s = ReplicaStorage::open(&env_, dir_, options_);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
  }
  // What a crash leaves when persist() of a leader's snapshot has made the
  // snapshot file durable but not yet dropped the log it covers: the
  // snapshot, durable, next to the whole old log.
  void write_snapshot_but_keep_the_log(uint64_t index, uint64_t term) {
    auto store = SnapshotStore::open(&env_, dir_ + "/snapshots", options_.snapshots);
    ASSERT_TRUE(store.is_ok()) << store.status().to_string();
    ASSERT_TRUE(
        (*store)->write({LogIndex(index), Term(term)}, "leader@" + std::to_string(index)).is_ok());
  }
  // The WAL segment files, oldest first.
  std::vector<std::string> segments() {
    std::vector<std::string> out;
    const std::vector<std::string> names = *env_.list_dir(dir_ + "/wal");
    for (const auto& n : names) {
      if (n.starts_with("wal-")) out.push_back(dir_ + "/wal/" + n);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
};

TEST_F(ReplicaStorageTest, NewNodeRecoversNothing) {
  auto s = open();
  Recovered r = s->take_recovered();
  EXPECT_EQ(r.durable_state, "");
  EXPECT_FALSE(r.snapshot.has_value());
  EXPECT_TRUE(r.entries.empty());
}

TEST_F(ReplicaStorageTest, PersistedReadySurvivesACrash) {
  {
    auto s = open();
    auto e = entries(1, 5, 1);
    ASSERT_TRUE(s->persist(std::nullopt, e, std::string("engine state 1")).is_ok());
  }
  env_.crash();
  auto s = open();
  Recovered r = s->take_recovered();
  EXPECT_EQ(r.durable_state, "engine state 1");
  EXPECT_EQ(r.entries, entries(1, 5, 1));
}

// Two groups' storages persisting in one shared sync (env.h): nothing is
// durable until the commit — a crash before it leaves both exactly as they
// were, and both recover — and after the commit both Readies are.
TEST_F(ReplicaStorageTest, TwoGroupsInOneSharedSyncAreDurableOnlyAtTheCommit) {
  auto open_at = [&](const std::string& dir) {
    auto s = ReplicaStorage::open(&env_, dir, options_);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return std::move(s).value();
  };
  auto persist_both = [&](SharedSync& batch, ReplicaStorage& a, ReplicaStorage& b, uint64_t lo,
                          uint64_t hi, bool state = true) {
    auto st = [&](const char* g) {
      return state ? std::optional<std::string>(g + std::to_string(hi)) : std::nullopt;
    };
    batch.set_owner(1);
    ASSERT_TRUE(a.persist(std::nullopt, entries(lo, hi, 1, "a"), st("a")).is_ok());
    batch.set_owner(2);
    ASSERT_TRUE(b.persist(std::nullopt, entries(lo, hi, 1, "b"), st("b")).is_ok());
  };
  {
    auto a = open_at("/g1");
    auto b = open_at("/g2");
    auto batch = env_.begin_shared_sync();
    persist_both(*batch, *a, *b, 1, 3);
    ASSERT_TRUE(batch->commit().is_ok());
  }
  // A crash that keeps no un-synced write: a batch of entries alone left
  // nothing behind.
  env_.set_options(SimEnvOptions{});
  {
    auto a = open_at("/g1");
    auto b = open_at("/g2");
    auto batch = env_.begin_shared_sync();
    persist_both(*batch, *a, *b, 4, 6, /*state=*/false);
    EXPECT_EQ(a->durable_index(), LogIndex(6)) << "the WAL's view, before the commit";
    env_.crash();
    EXPECT_FALSE(batch->commit().is_ok());
  }
  {
    auto ra = open_at("/g1")->take_recovered();
    auto rb = open_at("/g2")->take_recovered();
    EXPECT_EQ(ra.entries, entries(1, 3, 1, "a"));
    EXPECT_EQ(rb.entries, entries(1, 3, 1, "b"));
  }
  // With the engine's state too, the metadata write is a barrier: the
  // entries are synced before it (the state may promise them), and only the
  // metadata waits for the commit.
  {
    auto a = open_at("/g1");
    auto b = open_at("/g2");
    auto batch = env_.begin_shared_sync();
    persist_both(*batch, *a, *b, 4, 6);
    EXPECT_EQ(batch->stats().barrier_syncs, 2u);
    env_.crash();
    EXPECT_FALSE(batch->commit().is_ok());
  }
  {
    auto ra = open_at("/g1")->take_recovered();
    EXPECT_EQ(ra.durable_state, "a3");
    EXPECT_EQ(ra.entries, entries(1, 6, 1, "a"));
  }
  // Crashes that keep some un-synced writes (torn, or directory operations):
  // whatever they keep, both groups recover and lose nothing committed.
  env_.set_options(SimEnvOptions{.torn_write_chance = 0.5, .dir_keep_chance = 0.5});
  for (int round = 0; round < 10; ++round) {
    auto a = open_at("/g1");
    auto b = open_at("/g2");
    auto batch = env_.begin_shared_sync();
    persist_both(*batch, *a, *b, 4, 6);
    env_.crash();
    EXPECT_FALSE(batch->commit().is_ok());
  }
  auto a = open_at("/g1");
  auto b = open_at("/g2");
  auto ra = a->take_recovered();
  auto rb = b->take_recovered();
  EXPECT_TRUE(ra.durable_state == "a3" || ra.durable_state == "a6") << ra.durable_state;
  EXPECT_TRUE(rb.durable_state == "b3" || rb.durable_state == "b6") << rb.durable_state;
  ASSERT_GE(ra.entries.size(), 3u);
  ASSERT_GE(rb.entries.size(), 3u);
  {
    auto batch = env_.begin_shared_sync();
    persist_both(*batch, *a, *b, ra.entries.size() + 1, 9);
    ASSERT_TRUE(batch->commit().is_ok());
  }
  a.reset();
  b.reset();
  env_.crash();
  EXPECT_EQ(open_at("/g1")->take_recovered().durable_state, "a9");
  auto rb9 = open_at("/g2")->take_recovered();
  EXPECT_EQ(rb9.durable_state, "b9");
  EXPECT_EQ(rb9.entries.back().index, LogIndex(9));
}

// Whether a change needs an fsync is the engine's rule
// (raft::hard_state_needs_sync); the storage saves exactly what it is given.
TEST_F(ReplicaStorageTest, DurableStateIsSavedOnlyWhenGivenAndAfterTheEntries) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 2, 1), std::string("v1")).is_ok());
    ASSERT_TRUE(s->persist(std::nullopt, entries(3, 4, 1), std::nullopt).is_ok());
    EXPECT_EQ(s->durable_state(), "v1") << "not given: not written";
  }
  env_.crash();
  auto r = open()->take_recovered();
  EXPECT_EQ(r.durable_state, "v1");
  EXPECT_EQ(r.entries, entries(1, 4, 1));
}

TEST_F(ReplicaStorageTest, ConflictingSuffixIsReplaced) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 10, 1), std::nullopt).is_ok());
    ASSERT_TRUE(s->persist(std::nullopt, entries(6, 7, 2, "new"), std::nullopt).is_ok());
  }
  env_.crash();
  auto r = open()->take_recovered();
  auto want = entries(1, 5, 1);
  for (auto& e : entries(6, 7, 2, "new")) want.push_back(e);
  EXPECT_EQ(r.entries, want);
}

TEST_F(ReplicaStorageTest, LocalSnapshotCompactsAndRecoversTheTail) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 20, 1), std::nullopt).is_ok());
    ASSERT_TRUE(s->save_snapshot({LogIndex(12), Term(1)}, "state@12").is_ok());
  }
  env_.crash();
  auto r = open()->take_recovered();
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->meta.index, LogIndex(12));
  EXPECT_EQ(*r.snapshot->data, "state@12");
  EXPECT_EQ(r.entries, entries(13, 20, 1));
}

TEST_F(ReplicaStorageTest, CorruptNewestSnapshotFallsBackToThePreviousOne) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 40, 1), std::nullopt).is_ok());
    ASSERT_TRUE(s->save_snapshot({LogIndex(10), Term(1)}, "state@10").is_ok());
    ASSERT_TRUE(s->save_snapshot({LogIndex(30), Term(1)}, "state@30").is_ok());
  }
  env_.crash();
  auto files = env_.list_dir("/node/snapshots");
  ASSERT_TRUE(files.is_ok());
  std::string newest;
  for (const auto& f : *files) {
    if (f.find("30") != std::string::npos && f.find("tmp") == std::string::npos) newest = f;
  }
  ASSERT_FALSE(newest.empty());
  const std::string path = "/node/snapshots/" + newest;
  auto size = env_.file_size(path);
  ASSERT_TRUE(size.is_ok());
  ASSERT_TRUE(env_.corrupt(path, *size - 40, 1).is_ok());
  auto s = open();
  auto r = s->take_recovered();
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->meta.index, LogIndex(10)) << "the corrupt snapshot must not be loaded";
  EXPECT_EQ(*r.snapshot->data, "state@10");
  EXPECT_EQ(r.entries, entries(11, 40, 1))
      << "the log must still reach back to the previous snapshot";
  EXPECT_FALSE(r.notes.empty()) << "the rejected snapshot is reported";
}

TEST_F(ReplicaStorageTest, SnapshotFromLeaderDiscardsTheStaleSuffix) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 30, 1, "stale"), std::nullopt).is_ok());
    // The leader's snapshot at 10 (term 2) does not match our entry 10 (term 1).
    ASSERT_TRUE(s->persist(snapshot(10, 2, "leader@10"), {}, std::string("term 2")).is_ok());
  }
  env_.crash();
  auto r = open()->take_recovered();
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->meta.index, LogIndex(10));
  EXPECT_TRUE(r.entries.empty()) << "stale entries after the snapshot came back: "
                                 << r.entries.size();
}

// The follower's log 1..30 is from term 1; the leader's snapshot through 10
// is from term 2, so our entry 10 is not the one the snapshot covers, and
// nothing after it is known to continue the snapshot's history. The crash
// came after the snapshot was durable and before the log was dropped.
// Recovery must finish the install: drop the entries past the snapshot
// (durably) and say so, rather than hand the stale 11..30 to the core.
TEST_F(ReplicaStorageTest, CrashDuringSnapshotInstallDropsDivergentEntriesPastTheSnapshot) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 30, 1, "stale"), std::nullopt).is_ok());
  }
  write_snapshot_but_keep_the_log(10, 2);
  env_.crash();
  {
    auto s = open();
    ASSERT_NE(s, nullptr);
    Recovered r = s->take_recovered();
    ASSERT_TRUE(r.snapshot.has_value());
    EXPECT_EQ(r.snapshot->meta.index, LogIndex(10));
    EXPECT_EQ(r.snapshot->meta.term, Term(2));
    EXPECT_TRUE(r.entries.empty())
        << "stale entries past the snapshot came back: " << r.entries.size();
    const std::string notes = join(r.notes);
    EXPECT_NE(notes.find("entry 10 has term 1 but the snapshot through 10 has term 2"),
              std::string::npos)
        << notes;
    EXPECT_NE(notes.find("dropped entries 1..30 (terms 1..1)"), std::string::npos) << notes;
    EXPECT_NE(notes.find("the log continues at 11"), std::string::npos) << notes;
    // The log continues right after the snapshot.
    ASSERT_TRUE(s->persist(std::nullopt, entries(11, 12, 2, "new"), std::nullopt).is_ok());
  }
  env_.crash();
  Recovered r = open()->take_recovered();
  EXPECT_EQ(r.entries, entries(11, 12, 2, "new"));
  EXPECT_TRUE(r.notes.empty()) << join(r.notes);
}

// The same crash, but our entry 10 has the snapshot's term: by Log Matching
// our log up to 10 is the snapshot's history, and 11..30 continue it.
TEST_F(ReplicaStorageTest, EntriesPastTheSnapshotWithTheSameTermAtItsIndexAreKept) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 30, 2), std::nullopt).is_ok());
  }
  write_snapshot_but_keep_the_log(10, 2);
  env_.crash();
  Recovered r = open()->take_recovered();
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->meta.index, LogIndex(10));
  EXPECT_EQ(r.entries, entries(11, 30, 2));
  EXPECT_TRUE(r.notes.empty()) << join(r.notes);
}

// Multi-Paxos (log_matching false): an entry's term is the ballot its slot
// was accepted at, and the snapshot's is the origin ballot of the value
// applied there, so they differ at the snapshot's index as a rule. Every
// slot past the snapshot is an acceptance the acceptor must not forget —
// after a local snapshot (the log is kept back to the previous one) and
// after a crash in the middle of an install alike. (Found by the
// simulator: a restarted acceptor lost the slots it had accepted past its
// newest snapshot.)
TEST_F(ReplicaStorageTest, PaxosSlotsPastTheSnapshotAreKeptWhateverTheTermAtItsIndex) {
  options_.log_matching = false;
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 30, 7), std::nullopt).is_ok());
    ASSERT_TRUE(s->save_snapshot({LogIndex(12), Term(5)}, "state@12").is_ok());
  }
  env_.crash();
  {
    Recovered r = open()->take_recovered();
    ASSERT_TRUE(r.snapshot.has_value());
    EXPECT_EQ(r.snapshot->meta.index, LogIndex(12));
    EXPECT_EQ(r.entries, entries(13, 30, 7)) << join(r.notes);
  }
  write_snapshot_but_keep_the_log(20, 9);
  env_.crash();
  Recovered r = open()->take_recovered();
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->meta.index, LogIndex(20));
  EXPECT_EQ(r.entries, entries(21, 30, 7)) << join(r.notes);
  EXPECT_TRUE(r.notes.empty()) << join(r.notes);
}

// The log ends before the snapshot (1..5, snapshot through 10): nothing is
// past the snapshot, the old prefix is covered by it, and the log continues
// at 11.
TEST_F(ReplicaStorageTest, SnapshotPastTheEndOfTheLogStartsTheLogAfterIt) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 5, 1), std::nullopt).is_ok());
  }
  write_snapshot_but_keep_the_log(10, 2);
  env_.crash();
  {
    auto s = open();
    ASSERT_NE(s, nullptr);
    Recovered r = s->take_recovered();
    EXPECT_EQ(r.snapshot->meta.index, LogIndex(10));
    EXPECT_TRUE(r.entries.empty());
    ASSERT_TRUE(s->persist(std::nullopt, entries(11, 12, 2), std::nullopt).is_ok());
  }
  env_.crash();
  EXPECT_EQ(open()->take_recovered().entries, entries(11, 12, 2));
}

// A log that starts right after the snapshot has no entry at its index to
// compare; it was cut there for a snapshot through that index (an install or
// a compaction past the end), and what follows was written after it: kept.
TEST_F(ReplicaStorageTest, LogStartingRightAfterTheSnapshotIsKept) {
  {
    auto s = open();
    ASSERT_TRUE(s->persist(std::nullopt, entries(1, 30, 1), std::nullopt).is_ok());
    ASSERT_TRUE(s->persist(snapshot(10, 2, "leader@10"), {}, std::nullopt).is_ok());
    ASSERT_TRUE(s->persist(std::nullopt, entries(11, 15, 2), std::nullopt).is_ok());
  }
  env_.crash();
  Recovered r = open()->take_recovered();
  EXPECT_EQ(r.snapshot->meta.index, LogIndex(10));
  EXPECT_EQ(r.entries, entries(11, 15, 2));
  EXPECT_TRUE(r.notes.empty()) << join(r.notes);
}

// A log that starts after snapshot index + 1 is missing entries between the
// two: recovery stops rather than start with a hole.
TEST_F(ReplicaStorageTest, LogStartingPastTheSnapshotStops) {
  ASSERT_TRUE(env_.create_dir("/node").is_ok());
  {
    auto wal = std::move(Wal::open(&env_, "/node/wal")).value();
    ASSERT_TRUE(wal->compact(LogIndex(19)).is_ok());  // the log continues at 20
    ASSERT_TRUE(wal->append(entries(20, 25, 2)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  write_snapshot_but_keep_the_log(10, 1);
  const Status s = ReplicaStorage::open(&env_, "/node").status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find("the log starts at 20 but the snapshot ends at 10"), std::string::npos)
      << s.message();
}

// persist() of a leader's snapshot deletes the old log's segments newest
// first after the snapshot is durable. A crash after any number of those
// deletions leaves a prefix of the old log (1..600, term 1, in 6 segments)
// next to the snapshot through 300 (term 2). Whatever the prefix, no stale
// entry past the snapshot comes back, and the log continues at 301.
TEST_F(ReplicaStorageTest, CrashAtAnyPointOfALogDropForASnapshotRevivesNoStaleEntry) {
  options_.wal.segment_bytes = 4096;
  size_t segment_count = 0;
  for (size_t deleted = 0; deleted == 0 || deleted <= segment_count; ++deleted) {
    SCOPED_TRACE("segments deleted before the crash: " + std::to_string(deleted));
    dir_ = "/node" + std::to_string(deleted);
    {
      auto s = open();
      ASSERT_TRUE(s->persist(std::nullopt, entries(1, 600, 1, "stale"), std::nullopt).is_ok());
    }
    write_snapshot_but_keep_the_log(300, 2);
    const std::vector<std::string> files = segments();
    segment_count = files.size();
    ASSERT_GT(segment_count, 3u);
    for (size_t k = 0; k < deleted; ++k) {
      ASSERT_TRUE(env_.remove(files[files.size() - 1 - k]).is_ok());
      ASSERT_TRUE(env_.sync_dir(dir_ + "/wal").is_ok());
    }
    env_.crash();
    {
      auto s = open();
      ASSERT_NE(s, nullptr);
      Recovered r = s->take_recovered();
      EXPECT_EQ(r.snapshot->meta.index, LogIndex(300));
      EXPECT_TRUE(r.entries.empty()) << r.entries.size() << " stale entries came back";
      ASSERT_TRUE(s->persist(std::nullopt, entries(301, 301, 2), std::nullopt).is_ok());
    }
    env_.crash();
    EXPECT_EQ(open()->take_recovered().entries, entries(301, 301, 2));
  }
}

TEST_F(ReplicaStorageTest, FailedSyncFailStops) {
  auto s = open();
  env_.fail_next_syncs(1);
  EXPECT_FALSE(s->persist(std::nullopt, entries(1, 3, 1), std::nullopt).is_ok());
  EXPECT_FALSE(s->healthy());
  Status again = s->persist(std::nullopt, entries(4, 4, 1), std::nullopt);
  EXPECT_EQ(again.code(), StatusCode::kFailStopped);
}

TEST_F(ReplicaStorageTest, UnsyncedEntriesAreNotRecoveredAsDurable) {
  auto s = open();
  ASSERT_TRUE(s->persist(std::nullopt, entries(1, 3, 1), std::nullopt).is_ok());
  EXPECT_EQ(s->durable_index(), LogIndex(3));
}

}  // namespace
}  // namespace chorus::storage
