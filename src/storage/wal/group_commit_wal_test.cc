#include "storage/wal/group_commit_wal.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "storage/env/testing.h"

namespace chorus::storage {
namespace {

std::unique_ptr<Wal> open_wal(Env* env, const std::string& dir) {
  auto w = Wal::open(env, dir);
  EXPECT_TRUE(w.is_ok()) << w.status().to_string();
  return std::move(w).value();
}

TEST(GroupCommitWalTest, ConcurrentAppendersShareSyncs) {
  testing::TempDir tmp;
  constexpr int kThreads = 16;
  constexpr int kPerThread = 40;
  std::vector<std::vector<LogIndex>> got(kThreads);
  GroupCommitWal::Stats stats;
  {
    GroupCommitWal gc(open_wal(PosixEnv::get(), tmp.path() + "/wal"));
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          auto r = gc.append_next_and_wait(Term(1), core::EntryType::kNormal,
                                           std::to_string(t) + ":" + std::to_string(i));
          ASSERT_TRUE(r.is_ok()) << r.status().to_string();
          // Durable when the call returns.
          ASSERT_GE(gc.durable_index(), *r);
          got[t].push_back(*r);
        }
      });
    }
    for (auto& th : threads) th.join();
    stats = gc.stats();
    EXPECT_EQ(gc.durable_index(), LogIndex(kThreads * kPerThread));
  }
  EXPECT_EQ(stats.requests, uint64_t{kThreads * kPerThread});
  EXPECT_LT(stats.batches, stats.requests);  // group commit happened
  // Every entry is in the log, at the index its appender was told.
  auto wal = open_wal(PosixEnv::get(), tmp.path() + "/wal");
  auto all = *wal->read_all();
  ASSERT_EQ(all.size(), size_t{kThreads * kPerThread});
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      EXPECT_EQ(all[got[t][i].value() - 1].data, std::to_string(t) + ":" + std::to_string(i));
    }
    // One thread's appends are ordered.
    for (int i = 1; i < kPerThread; ++i) EXPECT_LT(got[t][i - 1], got[t][i]);
  }
}

TEST(GroupCommitWalTest, CallerAssignedIndexesOverwrite) {
  SimEnv env(Prng(1));
  GroupCommitWal gc(open_wal(&env, "/wal"));
  std::vector<core::Entry> es;
  for (uint64_t i = 1; i <= 3; ++i)
    es.push_back({Term(1), LogIndex(i), core::EntryType::kNormal, "a"});
  ASSERT_TRUE(gc.append_and_wait(es).is_ok());
  ASSERT_TRUE(gc.append_and_wait({{Term(2), LogIndex(2), core::EntryType::kNoop, ""}}).is_ok());
  EXPECT_EQ(gc.durable_index(), LogIndex(2));
  auto next = gc.append_next_and_wait(Term(2), core::EntryType::kNormal, "b");
  ASSERT_TRUE(next.is_ok());
  EXPECT_EQ(*next, LogIndex(3));
  auto all = *gc.entries(LogIndex(1), LogIndex(4));
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].type, core::EntryType::kNoop);
  EXPECT_EQ(all[2].data, "b");
  // A request that breaks contiguity fails alone.
  EXPECT_EQ(gc.append_and_wait({{Term(2), LogIndex(9), core::EntryType::kNormal, ""}}).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(gc.healthy());
}

TEST(GroupCommitWalTest, FsyncFailureFailsEveryLaterAppend) {
  SimEnv env(Prng(1));
  GroupCommitWal gc(open_wal(&env, "/wal"));
  ASSERT_TRUE(gc.append_next_and_wait(Term(1), core::EntryType::kNormal, "x").is_ok());
  env.fail_next_syncs(1);
  auto r = gc.append_next_and_wait(Term(1), core::EntryType::kNormal, "y");
  EXPECT_EQ(r.status().code(), StatusCode::kFailStopped);
  EXPECT_FALSE(gc.healthy());
  EXPECT_EQ(gc.durable_index(), LogIndex(1));
  EXPECT_EQ(gc.append_next_and_wait(Term(1), core::EntryType::kNormal, "z").status().code(),
            StatusCode::kFailStopped);
  EXPECT_EQ(gc.compact(LogIndex(1)).code(), StatusCode::kFailStopped);
}

TEST(GroupCommitWalTest, BackPressureStillAnswersEveryone) {
  SimEnv env(Prng(1));
  GroupCommitWal gc(open_wal(&env, "/wal"), GroupCommitOptions{.pending_bytes_max = 300});
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        if (gc.append_next_and_wait(Term(1), core::EntryType::kNormal, std::string(100, 'p'))
                .is_ok()) {
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 160);
  EXPECT_EQ(gc.durable_index(), LogIndex(160));
}

TEST(GroupCommitWalTest, CompactPastTheEndMovesTheNextIndex) {
  SimEnv env(Prng(1));
  GroupCommitWal gc(open_wal(&env, "/wal"));
  ASSERT_TRUE(gc.append_next_and_wait(Term(1), core::EntryType::kNormal, "x").is_ok());
  ASSERT_TRUE(gc.compact(LogIndex(100)).is_ok());
  auto r = gc.append_next_and_wait(Term(2), core::EntryType::kNormal, "y");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(*r, LogIndex(101));
}

}  // namespace
}  // namespace chorus::storage
