#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "storage/env/env.h"
#include "storage/env/posix_env.h"
#include "storage/env/sim_env.h"
#include "storage/env/testing.h"

namespace chorus::storage {
namespace {

using testing::EnvKind;
using testing::TestEnv;

std::string read(Env* env, const std::string& path) {
  auto r = env->read_file(path, 1 << 20);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : "";
}

void write(Env* env, const std::string& path, std::string_view data, bool sync) {
  auto f = env->open_writable(path, OpenMode::kAppend);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  ASSERT_TRUE((*f)->append(data).is_ok());
  if (sync) {
    ASSERT_TRUE((*f)->sync().is_ok());
  }
}

// ---------------------------------------------------------------- both envs

class EnvTest : public ::testing::TestWithParam<EnvKind> {
 protected:
  TestEnv t_{GetParam()};
  Env* env() { return t_.env(); }
};

TEST_P(EnvTest, WriteReadRoundTrip) {
  const std::string p = t_.path("a/b/file");
  ASSERT_TRUE(env()->create_dir(t_.path("a/b")).is_ok());
  auto f = env()->open_writable(p, OpenMode::kTruncate);
  ASSERT_TRUE(f.is_ok());
  ASSERT_TRUE((*f)->append("hello ").is_ok());
  ASSERT_TRUE((*f)->append("world").is_ok());
  EXPECT_EQ((*f)->size(), 11u);
  ASSERT_TRUE((*f)->write_at(0, "J").is_ok());
  ASSERT_TRUE((*f)->sync().is_ok());
  ASSERT_TRUE((*f)->close().is_ok());
  EXPECT_EQ(read(env(), p), "Jello world");
  EXPECT_EQ(*env()->file_size(p), 11u);

  auto r = env()->open_readable(p);
  ASSERT_TRUE(r.is_ok());
  char buf[16];
  auto n = (*r)->read_at(6, sizeof buf, buf);
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(std::string(buf, *n), "world");  // short read at end of file
}

TEST_P(EnvTest, AppendModeKeepsContentsTruncateModeCutsThem) {
  const std::string p = t_.path("f");
  write(env(), p, "abc", true);
  auto f = env()->open_writable(p, OpenMode::kAppend);
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ((*f)->size(), 3u);
  ASSERT_TRUE((*f)->append("d").is_ok());
  ASSERT_TRUE((*f)->close().is_ok());
  EXPECT_EQ(read(env(), p), "abcd");
  auto g = env()->open_writable(p, OpenMode::kTruncate);
  ASSERT_TRUE(g.is_ok());
  EXPECT_EQ((*g)->size(), 0u);
  EXPECT_EQ(read(env(), p), "");
}

TEST_P(EnvTest, TruncateRenameRemoveListExists) {
  write(env(), t_.path("x"), "0123456789", true);
  ASSERT_TRUE(env()->truncate(t_.path("x"), 4).is_ok());
  EXPECT_EQ(read(env(), t_.path("x")), "0123");
  ASSERT_TRUE(env()->rename(t_.path("x"), t_.path("y")).is_ok());
  EXPECT_FALSE(*env()->exists(t_.path("x")));
  EXPECT_TRUE(*env()->exists(t_.path("y")));
  write(env(), t_.path("z"), "z", false);
  ASSERT_TRUE(env()->create_dir(t_.path("sub")).is_ok());
  EXPECT_EQ(*env()->list_dir(t_.root()), (std::vector<std::string>{"sub", "y", "z"}));
  ASSERT_TRUE(env()->remove(t_.path("y")).is_ok());
  ASSERT_TRUE(env()->sync_dir(t_.root()).is_ok());
  EXPECT_EQ(*env()->list_dir(t_.root()), (std::vector<std::string>{"sub", "z"}));
}

TEST_P(EnvTest, ErrorsNameThePathAndMissingIsNotFound) {
  const std::string p = t_.path("missing");
  auto r = env()->read_file(p, 100);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find(p), std::string::npos) << r.status().message();
  EXPECT_EQ(env()->remove(p).code(), StatusCode::kNotFound);
  EXPECT_EQ(env()->file_size(p).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(env()->open_readable(p).status().code(), StatusCode::kNotFound);
  auto no_dir = env()->open_writable(t_.path("nodir/file"), OpenMode::kAppend);
  EXPECT_EQ(no_dir.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(env()->list_dir(t_.path("nodir")).status().code(), StatusCode::kNotFound);
}

TEST_P(EnvTest, ReadFileRefusesFilesOverTheLimit) {
  write(env(), t_.path("big"), std::string(1000, 'x'), true);
  auto r = env()->read_file(t_.path("big"), 999);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_TRUE(env()->read_file(t_.path("big"), 1000).is_ok());
}

TEST_P(EnvTest, WriteFileAtomicallyReplaces) {
  const std::string p = t_.path("meta");
  ASSERT_TRUE(write_file_atomically(env(), p, "one").is_ok());
  ASSERT_TRUE(write_file_atomically(env(), p, "two").is_ok());
  EXPECT_EQ(read(env(), p), "two");
  EXPECT_FALSE(*env()->exists(p + ".tmp"));
}

INSTANTIATE_TEST_SUITE_P(Envs, EnvTest, ::testing::Values(EnvKind::kPosix, EnvKind::kSim),
                         [](const auto& info) { return testing::env_kind_name(info.param); });

// ---------------------------------------------------------------- PosixEnv

TEST(PosixEnvTest, SyncDirOfMissingDirectoryFails) {
  testing::TempDir tmp;
  const Status s = PosixEnv::get()->sync_dir(tmp.path() + "/nope");
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("/nope"), std::string::npos);
}

TEST(PosixEnvTest, CreateDirOnAFileFails) {
  testing::TempDir tmp;
  write(PosixEnv::get(), tmp.path() + "/f", "x", true);
  EXPECT_FALSE(PosixEnv::get()->create_dir(tmp.path() + "/f").is_ok());
}

TEST(PosixEnvTest, SharedSyncOfTwoOwnersCommitsWithOneSyncfs) {
  testing::TempDir tmp;
  Env* env = PosixEnv::get();
  ASSERT_TRUE(env->create_dir(tmp.path() + "/a").is_ok());
  ASSERT_TRUE(env->create_dir(tmp.path() + "/b").is_ok());
  auto fa = env->open_writable(tmp.path() + "/a/f", OpenMode::kTruncate);
  auto fb = env->open_writable(tmp.path() + "/b/f", OpenMode::kTruncate);
  ASSERT_TRUE(fa.is_ok() && fb.is_ok());
  const PosixEnv::SyncCounts before = PosixEnv::sync_counts();
  {
    auto batch = env->begin_shared_sync();
    batch->set_owner(1);
    ASSERT_TRUE((*fa)->append("a").is_ok());
    ASSERT_TRUE((*fa)->sync().is_ok());
    ASSERT_TRUE(env->sync_dir(tmp.path() + "/a").is_ok());
    batch->set_owner(2);
    ASSERT_TRUE((*fb)->append("b").is_ok());  // another owner: no barrier
    ASSERT_TRUE((*fb)->sync().is_ok());
    ASSERT_TRUE((*fb)->close().is_ok());  // the batch keeps its own descriptor
    EXPECT_EQ(PosixEnv::sync_counts().total(), before.total());  // nothing synced yet
    ASSERT_TRUE(batch->commit().is_ok());
    EXPECT_EQ(batch->stats().recorded, 3u);
    EXPECT_EQ(batch->stats().committed, 3u);
    EXPECT_EQ(batch->stats().barrier_syncs, 0u);
  }
  const PosixEnv::SyncCounts after = PosixEnv::sync_counts();
  if (PosixEnv::syncfs_reports_errors()) {
    EXPECT_EQ(after.syncfs - before.syncfs, 1u);
    EXPECT_EQ(after.total() - before.total(), 1u);
  } else {
    EXPECT_EQ(after.total() - before.total(), 3u);  // one per record
  }
  // Outside a batch, sync() is an fdatasync again.
  ASSERT_TRUE((*fa)->sync().is_ok());
  EXPECT_EQ(PosixEnv::sync_counts().fdatasyncs - after.fdatasyncs, 1u);
}

// Records on two file systems: syncfs of one would not cover the other, so
// the commit syncs each record. Skipped where /dev/shm is absent or on the
// same file system as /tmp.
TEST(PosixEnvTest, SharedSyncAcrossFileSystemsSyncsEachRecord) {
  struct stat shm, tmp_st;
  if (::stat("/dev/shm", &shm) != 0 || ::stat("/tmp", &tmp_st) != 0 ||
      shm.st_dev == tmp_st.st_dev) {
    GTEST_SKIP() << "needs /dev/shm on a file system of its own";
  }
  testing::TempDir tmp;
  const std::string other = "/dev/shm/chorus-env-test-" + std::to_string(::getpid());
  Env* env = PosixEnv::get();
  auto fa = env->open_writable(tmp.path() + "/f", OpenMode::kTruncate);
  auto fb = env->open_writable(other, OpenMode::kTruncate);
  ASSERT_TRUE(fa.is_ok() && fb.is_ok());
  const PosixEnv::SyncCounts before = PosixEnv::sync_counts();
  {
    auto shared = env->begin_shared_sync();
    shared->set_owner(1);
    ASSERT_TRUE((*fa)->append("a").is_ok());
    ASSERT_TRUE((*fa)->sync().is_ok());
    shared->set_owner(2);
    ASSERT_TRUE((*fb)->append("b").is_ok());
    ASSERT_TRUE((*fb)->sync().is_ok());
    ASSERT_TRUE(shared->commit().is_ok());
    EXPECT_EQ(shared->stats().device_syncs, 2u);
  }
  const PosixEnv::SyncCounts after = PosixEnv::sync_counts();
  EXPECT_EQ(after.syncfs - before.syncfs, 0u);
  EXPECT_EQ(after.fdatasyncs - before.fdatasyncs, 2u);
  ::unlink(other.c_str());
}

TEST(PosixEnvTest, SharedSyncBarrierSyncsTheOwnersRecordsBeforeItsNextWrite) {
  testing::TempDir tmp;
  Env* env = PosixEnv::get();
  auto f = env->open_writable(tmp.path() + "/f", OpenMode::kTruncate);
  ASSERT_TRUE(f.is_ok());
  auto batch = env->begin_shared_sync();
  batch->set_owner(7);
  ASSERT_TRUE((*f)->append("one").is_ok());
  ASSERT_TRUE((*f)->sync().is_ok());
  ASSERT_TRUE((*f)->sync().is_ok());  // the same file again: one record
  const uint64_t before = PosixEnv::sync_counts().fdatasyncs;
  ASSERT_TRUE((*f)->append("two").is_ok());  // must land after "one" is durable
  EXPECT_EQ(PosixEnv::sync_counts().fdatasyncs - before, 1u);
  EXPECT_EQ(batch->stats().barrier_syncs, 1u);
  ASSERT_TRUE(batch->commit().is_ok());  // nothing recorded since the barrier
  EXPECT_EQ(batch->stats().committed, 0u);
  EXPECT_EQ(batch->stats().device_syncs, 0u);
}

TEST(PosixEnvTest, SharedSyncIsThreadLocal) {
  testing::TempDir tmp;
  Env* env = PosixEnv::get();
  auto f = env->open_writable(tmp.path() + "/f", OpenMode::kTruncate);
  ASSERT_TRUE(f.is_ok());
  auto batch = env->begin_shared_sync();
  Status other;
  std::thread t([&] {
    other = (*f)->append("x");
    if (other.is_ok()) other = (*f)->sync();  // not this thread's batch: a real fdatasync
  });
  t.join();
  EXPECT_TRUE(other.is_ok());
  EXPECT_EQ(batch->stats().recorded, 0u);
  ASSERT_TRUE(batch->commit().is_ok());
}

// ---------------------------------------------------------------- SimEnv faults

class SimEnvTest : public ::testing::Test {
 protected:
  SimEnv env_{Prng(42)};
  void SetUp() override { ASSERT_TRUE(env_.create_dir("/d").is_ok()); }
  // A file whose creation is durable.
  void make_durable_file(const std::string& path, std::string_view data) {
    write(&env_, path, data, true);
    ASSERT_TRUE(env_.sync_dir(parent_dir(path)).is_ok());
  }
};

TEST_F(SimEnvTest, UnsyncedDataLostOnCrash) {
  make_durable_file("/d/f", "durable");
  write(&env_, "/d/f", "+lost", false);
  EXPECT_EQ(read(&env_, "/d/f"), "durable+lost");
  EXPECT_EQ(env_.durable_size("/d/f"), 7u);
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/f"), "durable");
}

TEST_F(SimEnvTest, TornWriteKeepsPrefix) {
  env_.set_options(SimEnvOptions{.torn_write_chance = 1.0});
  const std::string tail(1000, 't');
  std::set<size_t> sizes;
  for (int round = 0; round < 20; ++round) {
    const std::string path = "/d/f" + std::to_string(round);
    make_durable_file(path, "head");
    write(&env_, path, tail, false);
    env_.crash();
    const std::string got = read(&env_, path);
    ASSERT_GE(got.size(), 4u);
    ASSERT_LE(got.size(), 4u + tail.size());
    EXPECT_EQ(got, "head" + tail.substr(0, got.size() - 4));  // exactly a prefix
    sizes.insert(got.size());
  }
  // The cut is random: not always all or nothing.
  EXPECT_GT(sizes.size(), 5u);
  EXPECT_EQ(env_.stats().torn_writes, 20u);
}

TEST_F(SimEnvTest, TornWriteAfterTruncateKeepsOrder) {
  env_.set_options(SimEnvOptions{.torn_write_chance = 1.0});
  for (int round = 0; round < 20; ++round) {
    make_durable_file("/d/f", "0123456789");
    auto f = env_.open_writable("/d/f", OpenMode::kAppend);
    ASSERT_TRUE((*f)->truncate(5).is_ok());
    ASSERT_TRUE((*f)->append("abcde").is_ok());
    env_.crash();
    const std::string got = read(&env_, "/d/f");
    // Either nothing was kept, or the truncation and a prefix of the append.
    EXPECT_TRUE(got == "0123456789" || got == std::string("01234abcde").substr(0, got.size()))
        << got;
    ASSERT_TRUE(env_.remove("/d/f").is_ok());
    ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  }
}

// A power loss may persist later pages of an un-synced append without
// earlier ones. After such a crash every page of the append is either all
// there or, past the durable end, all zeros; the synced bytes are intact; the
// file ends at the end of a kept page (or where it ended durably); and over a
// few rounds a later page does survive an earlier one.
TEST_F(SimEnvTest, PowerLossKeepsAnArbitrarySubsetOfUnsyncedPages) {
  env_.set_options(SimEnvOptions{.page_subset_chance = 1.0});
  const std::string head(1000, 'h');  // synced; the append starts mid-page
  constexpr uint64_t kPages = 6;
  std::string tail;
  for (uint64_t i = 0; tail.size() < kPages * kSimPageBytes - head.size(); ++i) {
    tail += static_cast<char>('a' + (i / kSimPageBytes) % 26);
  }
  const std::string full = head + tail;
  bool later_page_without_earlier = false;
  std::set<size_t> sizes;
  for (int round = 0; round < 30; ++round) {
    const std::string path = "/d/f" + std::to_string(round);
    make_durable_file(path, head);
    write(&env_, path, tail, false);
    env_.crash();
    const std::string got = read(&env_, path);
    ASSERT_GE(got.size(), head.size());
    ASSERT_LE(got.size(), full.size());
    ASSERT_EQ(got.substr(0, head.size()), head) << "synced bytes changed";
    ASSERT_TRUE(got.size() == head.size() || got.size() % kSimPageBytes == 0 ||
                got.size() == full.size())
        << "the file must end at a page end: " << got.size();
    bool lost_earlier = false;
    for (uint64_t page = 0; page * kSimPageBytes < got.size(); ++page) {
      const uint64_t lo = std::max<uint64_t>(page * kSimPageBytes, head.size());
      const uint64_t hi = std::min<uint64_t>((page + 1) * kSimPageBytes, got.size());
      const std::string piece = got.substr(lo, hi - lo);
      const bool kept = piece == full.substr(lo, hi - lo);
      ASSERT_TRUE(kept || piece == std::string(hi - lo, '\0'))
          << "page " << page << " is neither written nor a hole";
      if (!kept) lost_earlier = true;
      if (kept && lost_earlier) later_page_without_earlier = true;
    }
    sizes.insert(got.size());
  }
  EXPECT_TRUE(later_page_without_earlier);
  EXPECT_GT(sizes.size(), 2u);
  EXPECT_EQ(env_.stats().page_subsets, 30u);
}

TEST_F(SimEnvTest, UnsyncedCreateVanishesOnCrashEvenIfDataWasSynced) {
  write(&env_, "/d/new", "data", /*sync=*/true);
  env_.crash();
  EXPECT_FALSE(*env_.exists("/d/new"));
  write(&env_, "/d/new", "data", true);
  ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/new"), "data");
}

TEST_F(SimEnvTest, UnsyncedRenameAndRemoveAreUndoneOnCrash) {
  make_durable_file("/d/a", "A");
  make_durable_file("/d/b", "B");
  ASSERT_TRUE(env_.rename("/d/a", "/d/c").is_ok());
  ASSERT_TRUE(env_.remove("/d/b").is_ok());
  EXPECT_EQ(*env_.list_dir("/d"), (std::vector<std::string>{"c"}));
  env_.crash();
  EXPECT_EQ(*env_.list_dir("/d"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(read(&env_, "/d/a"), "A");
}

TEST_F(SimEnvTest, DirKeepChanceKeepsAPrefixOfEntryOperations) {
  env_.set_options(SimEnvOptions{.dir_keep_chance = 1.0});
  std::set<size_t> kept;
  for (int round = 0; round < 30; ++round) {
    for (const char* name : {"/d/1", "/d/2", "/d/3"}) write(&env_, name, "x", true);
    env_.crash();
    auto names = *env_.list_dir("/d");
    const std::vector<std::string> all = {"1", "2", "3"};
    ASSERT_LE(names.size(), 3u);
    EXPECT_EQ(names, std::vector<std::string>(all.begin(), all.begin() + names.size()));
    kept.insert(names.size());
    for (const auto& n : names) ASSERT_TRUE(env_.remove("/d/" + n).is_ok());
    ASSERT_TRUE(env_.sync_dir("/d").is_ok());
  }
  EXPECT_GT(kept.size(), 2u);
}

TEST_F(SimEnvTest, FailedSyncReturnsErrorAndLeavesDataUndurable) {
  make_durable_file("/d/f", "a");
  auto f = env_.open_writable("/d/f", OpenMode::kAppend);
  ASSERT_TRUE((*f)->append("b").is_ok());
  env_.fail_next_syncs(1);
  const Status s = (*f)->sync();
  EXPECT_EQ(s.code(), StatusCode::kIoError);
  EXPECT_NE(s.message().find("/d/f"), std::string::npos);
  EXPECT_EQ(env_.durable_size("/d/f"), 1u);
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/f"), "a");
}

// A crash in the middle of a job: the power fails during its second sync.
// What it wrote before that sync is on the disk un-synced; the rename it
// would have done after never happens (never a final name for a file whose
// data was not synced).
TEST_F(SimEnvTest, PowerFailureAtASyncStopsEveryLaterMutationUntilTheCrash) {
  make_durable_file("/d/f", "a");
  env_.power_fail_at_sync(2);
  auto f = env_.open_writable("/d/f", OpenMode::kAppend);
  ASSERT_TRUE((*f)->append("b").is_ok());
  ASSERT_TRUE((*f)->sync().is_ok()) << "the first sync completes";
  ASSERT_TRUE((*f)->append("c").is_ok());
  EXPECT_EQ((*f)->sync().code(), StatusCode::kIoError) << "the power fails during the second";
  EXPECT_TRUE(env_.powered_off());
  EXPECT_EQ((*f)->append("d").code(), StatusCode::kIoError);
  EXPECT_EQ(env_.rename("/d/f", "/d/g").code(), StatusCode::kIoError);
  EXPECT_EQ(env_.open_writable("/d/h", OpenMode::kTruncate).status().code(), StatusCode::kIoError);
  env_.crash();
  EXPECT_FALSE(env_.powered_off());
  const std::string after = read(&env_, "/d/f");
  EXPECT_TRUE(after == "ab" || after == "abc") << after;  // "c" was never synced
  EXPECT_FALSE(*env_.exists("/d/g"));
}

TEST_F(SimEnvTest, SyncFailureRateFailsSomeSyncs) {
  env_.set_options(SimEnvOptions{.sync_failure_rate = 0.5});
  auto f = env_.open_writable("/d/f", OpenMode::kAppend);
  int failures = 0;
  for (int i = 0; i < 100; ++i) failures += (*f)->sync().is_ok() ? 0 : 1;
  EXPECT_GT(failures, 20);
  EXPECT_LT(failures, 80);
}

TEST_F(SimEnvTest, CorruptFlipsStoredBytesInTheRegionOnly) {
  const std::string data(100, 'a');
  make_durable_file("/d/f", data);
  ASSERT_TRUE(env_.corrupt("/d/f", 10, 5).is_ok());
  const std::string got = read(&env_, "/d/f");
  ASSERT_EQ(got.size(), data.size());
  for (size_t i = 0; i < data.size(); ++i) {
    EXPECT_EQ(got[i] != data[i], i >= 10 && i < 15) << "byte " << i;
  }
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/f"), got);  // persistent: it is in the stored bytes
  EXPECT_EQ(env_.corrupt("/d/missing", 0, 1).code(), StatusCode::kNotFound);
}

TEST_F(SimEnvTest, ReadCorruptionFlipsOneBitTransiently) {
  const std::string data(64, '\0');
  make_durable_file("/d/f", data);
  env_.set_options(SimEnvOptions{.read_corruption_rate = 1.0});
  const std::string got = read(&env_, "/d/f");
  int bits = 0;
  for (size_t i = 0; i < got.size(); ++i) bits += __builtin_popcount(static_cast<uint8_t>(got[i]));
  EXPECT_EQ(bits, 1);
  env_.set_options(SimEnvOptions{});
  EXPECT_EQ(read(&env_, "/d/f"), data);
}

TEST_F(SimEnvTest, HandlesDieAtCrash) {
  make_durable_file("/d/f", "x");
  auto f = env_.open_writable("/d/f", OpenMode::kAppend);
  auto r = env_.open_readable("/d/f");
  env_.crash();
  EXPECT_EQ((*f)->append("y").code(), StatusCode::kIoError);
  EXPECT_EQ((*f)->sync().code(), StatusCode::kIoError);
  char c;
  EXPECT_FALSE((*r)->read_at(0, 1, &c).is_ok());
}

TEST_F(SimEnvTest, TruncateIsDurableOnlyAfterSync) {
  make_durable_file("/d/f", "0123456789");
  ASSERT_TRUE(env_.truncate("/d/f", 3).is_ok());
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/f"), "0123456789");
  ASSERT_TRUE(env_.truncate("/d/f", 3).is_ok());
  auto f = env_.open_writable("/d/f", OpenMode::kAppend);
  ASSERT_TRUE((*f)->sync().is_ok());
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/f"), "012");
}

TEST_F(SimEnvTest, RenameAcrossDirectoriesIsRefused) {
  ASSERT_TRUE(env_.create_dir("/e").is_ok());
  make_durable_file("/d/f", "x");
  EXPECT_EQ(env_.rename("/d/f", "/e/f").code(), StatusCode::kInvalidArgument);
}

// The same seed and the same calls give the same disk after crashes.
// ---------------------------------------------------------------- SimEnv shared syncs

TEST_F(SimEnvTest, SharedSyncMakesNothingDurableBeforeCommit) {
  make_durable_file("/d/a", "A");
  ASSERT_TRUE(env_.create_dir("/e").is_ok());
  {
    auto batch = env_.begin_shared_sync();
    batch->set_owner(1);
    write(&env_, "/d/a", "+1", true);
    batch->set_owner(2);
    write(&env_, "/e/new", "fresh", true);
    ASSERT_TRUE(env_.sync_dir("/e").is_ok());
    EXPECT_EQ(env_.durable_size("/d/a"), 1u);
    EXPECT_EQ(env_.durable_size("/e/new"), 0u);
    env_.crash();
    EXPECT_EQ(batch->commit().code(), StatusCode::kIoError);  // too late
  }
  EXPECT_EQ(read(&env_, "/d/a"), "A");
  EXPECT_FALSE(*env_.exists("/e/new"));
}

TEST_F(SimEnvTest, SharedSyncCommitIsOneDeviceSyncForEveryOwner) {
  make_durable_file("/d/a", "A");
  ASSERT_TRUE(env_.create_dir("/e").is_ok());
  const uint64_t syncs = env_.stats().syncs;
  auto batch = env_.begin_shared_sync();
  batch->set_owner(1);
  write(&env_, "/d/a", "+1", true);
  batch->set_owner(2);
  write(&env_, "/e/new", "fresh", true);
  ASSERT_TRUE(env_.sync_dir("/e").is_ok());
  EXPECT_EQ(env_.stats().syncs, syncs);
  ASSERT_TRUE(batch->commit().is_ok());
  EXPECT_EQ(env_.stats().syncs, syncs + 1);
  EXPECT_EQ(env_.stats().shared_sync_commits, 1u);
  EXPECT_EQ(batch->stats().committed, 3u);
  EXPECT_EQ(batch->stats().device_syncs, 1u);
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/a"), "A+1");
  EXPECT_EQ(read(&env_, "/e/new"), "fresh");
}

TEST_F(SimEnvTest, FailedSharedSyncCommitLeavesEveryRecordUndurable) {
  make_durable_file("/d/a", "A");
  make_durable_file("/d/b", "B");
  {
    auto batch = env_.begin_shared_sync();
    batch->set_owner(1);
    write(&env_, "/d/a", "+1", true);
    batch->set_owner(2);
    write(&env_, "/d/b", "+2", true);
    env_.fail_next_syncs(1);
    const Status s = batch->commit();
    EXPECT_EQ(s.code(), StatusCode::kIoError);
    EXPECT_NE(s.message().find("shared sync"), std::string::npos);
  }
  EXPECT_EQ(env_.durable_size("/d/a"), 1u);
  EXPECT_EQ(env_.durable_size("/d/b"), 1u);
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/a"), "A");
  EXPECT_EQ(read(&env_, "/d/b"), "B");
}

// The power fails during the commit, the one sync call of the shared sync:
// nothing recorded became durable, and the disk takes no more writes.
TEST_F(SimEnvTest, PowerFailureDuringASharedSyncCommitKeepsNothing) {
  make_durable_file("/d/a", "A");
  make_durable_file("/d/b", "B");
  {
    auto shared = env_.begin_shared_sync();
    shared->set_owner(1);
    write(&env_, "/d/a", "+1", true);
    shared->set_owner(2);
    write(&env_, "/d/b", "+2", true);
    env_.power_fail_at_sync(1);
    EXPECT_FALSE(shared->commit().is_ok());
    EXPECT_TRUE(env_.powered_off());
  }
  EXPECT_EQ(env_.durable_size("/d/a"), 1u);
  EXPECT_EQ(env_.durable_size("/d/b"), 1u);
  env_.crash();
  EXPECT_EQ(read(&env_, "/d/a"), "A");
  EXPECT_EQ(read(&env_, "/d/b"), "B");
}

TEST_F(SimEnvTest, SharedSyncBarrierKeepsTheOwnersOrder) {
  make_durable_file("/d/a", "");
  make_durable_file("/d/b", "");
  auto batch = env_.begin_shared_sync();
  batch->set_owner(1);
  auto a = env_.open_writable("/d/a", OpenMode::kAppend);
  ASSERT_TRUE((*a)->append("first").is_ok());
  ASSERT_TRUE((*a)->sync().is_ok());
  EXPECT_EQ(env_.durable_size("/d/a"), 0u);
  batch->set_owner(2);
  write(&env_, "/d/b", "other", false);  // another owner's write is no barrier
  EXPECT_EQ(env_.durable_size("/d/a"), 0u);
  batch->set_owner(1);
  ASSERT_TRUE((*a)->append("second").is_ok());  // "first" is durable before this lands
  EXPECT_EQ(env_.durable_size("/d/a"), 5u);
  EXPECT_EQ(batch->stats().barrier_syncs, 1u);
  ASSERT_TRUE(batch->commit().is_ok());  // nothing recorded since: no device sync
  EXPECT_EQ(batch->stats().device_syncs, 0u);
}

TEST_F(SimEnvTest, AtomicWriteInsideASharedSyncIsAllOrNothingAtACrash) {
  // write_file_atomically syncs the temporary file, renames it, syncs the
  // directory: the rename is a barrier, so the new name never points at
  // un-synced bytes, and the directory sync waits for the commit.
  make_durable_file("/d/m", "old");
  env_.set_options(SimEnvOptions{.torn_write_chance = 1, .dir_keep_chance = 1});
  for (int round = 0; round < 20; ++round) {
    {
      auto batch = env_.begin_shared_sync();
      batch->set_owner(3);
      ASSERT_TRUE(write_file_atomically(&env_, "/d/m", "new contents").is_ok());
      env_.crash();
      batch->commit().ignore();
    }
    const std::string got = read(&env_, "/d/m");
    EXPECT_TRUE(got == "old" || got == "new contents") << got;
    if (got != "old") {
      ASSERT_TRUE(write_file_atomically(&env_, "/d/m", "old").is_ok());
    }
  }
}

TEST(SimEnvDeterminism, SameSeedSameOutcome) {
  auto run = [](uint64_t seed) {
    SimEnv env(Prng(seed), SimEnvOptions{.torn_write_chance = 0.7, .dir_keep_chance = 0.7});
    EXPECT_TRUE(env.create_dir("/d").is_ok());
    std::string out;
    for (int i = 0; i < 10; ++i) {
      const std::string p = "/d/f" + std::to_string(i % 3);
      write(&env, p, std::string(100 + i, static_cast<char>('a' + i)), i % 2 == 0);
      if (i % 4 == 3) env.crash();
    }
    const std::vector<std::string> names = *env.list_dir("/d");
    for (const auto& n : names) out += n + "=" + std::to_string(*env.file_size("/d/" + n)) + ";";
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  std::set<std::string> outcomes;
  for (uint64_t seed = 1; seed <= 10; ++seed) outcomes.insert(run(seed));
  EXPECT_GT(outcomes.size(), 1u);
}

TEST(SimEnvOptionsTest, RandomIsSeededAndDescribed) {
  Prng a(3), b(3);
  EXPECT_EQ(SimEnvOptions::random(a).describe(), SimEnvOptions::random(b).describe());
  EXPECT_NE(SimEnvOptions{}.describe().find("torn=0"), std::string::npos);
  EXPECT_NE(SimEnvOptions{.page_subset_chance = 0.25}.describe().find("pages=0.25"),
            std::string::npos);
  // Some seeds draw the page-subset crash mode, some do not.
  std::set<bool> drawn;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    Prng p(seed);
    drawn.insert(SimEnvOptions::random(p).page_subset_chance > 0);
  }
  EXPECT_EQ(drawn.size(), 2u);
}

}  // namespace
}  // namespace chorus::storage
