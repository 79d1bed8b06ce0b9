#include "storage/replica/replica_storage.h"

#include <gtest/gtest.h>

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

class ReplicaStorageTest : public ::testing::Test {
 protected:
  SimEnv env_{Prng(7)};
  std::unique_ptr<ReplicaStorage> open() {
    auto s = ReplicaStorage::open(&env_, "/node");
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
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
    ASSERT_TRUE(
        s->persist(snapshot(10, 2, "leader@10"), {}, std::string("term 2"))
            .is_ok());
  }
  env_.crash();
  auto r = open()->take_recovered();
  ASSERT_TRUE(r.snapshot.has_value());
  EXPECT_EQ(r.snapshot->meta.index, LogIndex(10));
  EXPECT_TRUE(r.entries.empty()) << "stale entries after the snapshot came back: "
                                 << r.entries.size();
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
