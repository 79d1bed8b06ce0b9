#include "storage/snapshot/snapshot_store.h"

#include <gtest/gtest.h>

#include "storage/env/testing.h"

namespace chorus::storage {
namespace {

using testing::EnvKind;
using testing::TestEnv;

core::SnapshotMeta meta(uint64_t index, uint64_t term) {
  return core::SnapshotMeta{LogIndex(index), Term(term)};
}

std::string data_of(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
  return s;
}

class SnapshotTest : public ::testing::TestWithParam<EnvKind> {
 protected:
  TestEnv t_{GetParam()};
  std::string dir_ = t_.path("snap");
  SnapshotStoreOptions options_{.keep = 2, .chunk_bytes = 1000};

  std::unique_ptr<SnapshotStore> open() {
    auto s = SnapshotStore::open(t_.env(), dir_, options_);
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return s.is_ok() ? std::move(s).value() : nullptr;
  }
  std::string path(const core::SnapshotMeta& m) { return join_path(dir_, snapshot_file_name(m)); }
  void flip(const std::string& p, uint64_t offset) {
    if (t_.sim()) {
      ASSERT_TRUE(t_.sim()->corrupt(p, offset, 1).is_ok());
      return;
    }
    std::string b = *t_.env()->read_file(p, 1 << 30);
    auto f = t_.env()->open_writable(p, OpenMode::kAppend);
    const char c = static_cast<char>(b[offset] ^ 1);
    ASSERT_TRUE((*f)->write_at(offset, std::string_view(&c, 1)).is_ok());
    ASSERT_TRUE((*f)->sync().is_ok());
  }
};

TEST_P(SnapshotTest, ChunkedWriteAndReadRoundTrip) {
  const std::string data = data_of(5500, 'a');
  auto store = open();
  {
    auto w = std::move(store->begin(meta(120, 3), "kv.memory.v1")).value();
    // Pieces of odd sizes; chunks are 1000 bytes regardless.
    for (size_t at = 0; at < data.size(); at += 333) {
      ASSERT_TRUE(w->append(std::string_view(data).substr(at, 333)).is_ok());
    }
    auto info = w->finish();
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->chunks, 6u);
    EXPECT_EQ(info->data_bytes, data.size());
  }
  store = open();
  auto load = store->load_latest();
  ASSERT_TRUE(load.is_ok()) << load.status().to_string();
  ASSERT_TRUE(load->snapshot);
  EXPECT_TRUE(load->rejected.empty());
  EXPECT_EQ(load->snapshot->info.meta, meta(120, 3));
  EXPECT_EQ(load->snapshot->info.content_type, "kv.memory.v1");
  EXPECT_EQ(load->snapshot->data, data);

  auto reader = std::move(store->open_latest()).value();
  ASSERT_NE(reader, nullptr);
  std::string chunk, joined;
  int chunks = 0;
  while (*reader->next(&chunk)) {
    EXPECT_LE(chunk.size(), 1000u);
    joined += chunk;
    ++chunks;
  }
  EXPECT_EQ(chunks, 6);
  EXPECT_EQ(joined, data);
}

TEST_P(SnapshotTest, EmptyStoreHasNoSnapshot) {
  auto store = open();
  auto load = store->load_latest();
  ASSERT_TRUE(load.is_ok());
  EXPECT_FALSE(load->snapshot);
  EXPECT_EQ(*store->open_latest(), nullptr);
}

TEST_P(SnapshotTest, EmptySnapshotRoundTrip) {
  auto store = open();
  ASSERT_TRUE(store->write(meta(5, 1), "").is_ok());
  auto load = store->load_latest();
  ASSERT_TRUE(load.is_ok());
  EXPECT_EQ(load->snapshot->data, "");
}

TEST_P(SnapshotTest, KeepsTheNewestN) {
  auto store = open();
  for (uint64_t i = 1; i <= 4; ++i)
    ASSERT_TRUE(store->write(meta(i * 10, 1), data_of(10, 'x')).is_ok());
  EXPECT_EQ(*store->list(), (std::vector<core::SnapshotMeta>{meta(30, 1), meta(40, 1)}));
}

// A primary-backup node installs its new primary's snapshot below its own
// newest one: the newer file is of the replaced history, and a restart must
// not load it (found by the simulator, async seed 552).
TEST_P(SnapshotTest, SnapshotWrittenBelowANewerOneReplacesIt) {
  auto store = open();
  ASSERT_TRUE(store->write(meta(10, 1), data_of(10, 'a')).is_ok());
  ASSERT_TRUE(store->write(meta(30, 2), data_of(10, 'b')).is_ok());
  ASSERT_TRUE(store->write(meta(20, 3), data_of(10, 'c')).is_ok());
  EXPECT_EQ(*store->list(), (std::vector<core::SnapshotMeta>{meta(10, 1), meta(20, 3)}));
  auto reopened = open();
  auto latest = reopened->load_latest();
  ASSERT_TRUE(latest.is_ok()) << latest.status().to_string();
  ASSERT_TRUE(latest->snapshot.has_value());
  EXPECT_EQ(latest->snapshot->info.meta, meta(20, 3));
}

TEST_P(SnapshotTest, CorruptSnapshotIsRejected) {
  auto store = open();
  ASSERT_TRUE(store->write(meta(10, 1), data_of(3000, 'a')).is_ok());
  ASSERT_TRUE(store->write(meta(20, 2), data_of(3000, 'b')).is_ok());
  flip(path(meta(20, 2)), 1500);  // inside the second chunk
  auto load = store->load_latest();
  ASSERT_TRUE(load.is_ok());
  // The newer one is reported, never returned; the older one loads.
  ASSERT_EQ(load->rejected.size(), 1u);
  EXPECT_EQ(load->rejected[0].code(), StatusCode::kCorruption);
  EXPECT_NE(load->rejected[0].message().find(path(meta(20, 2))), std::string::npos);
  EXPECT_NE(load->rejected[0].message().find("chunk checksum mismatch"), std::string::npos)
      << load->rejected[0].message();
  ASSERT_TRUE(load->snapshot);
  EXPECT_EQ(load->snapshot->info.meta, meta(10, 1));
  EXPECT_EQ(load->snapshot->data, data_of(3000, 'a'));
  // Streaming falls back the same way.
  std::vector<Status> rejected;
  auto reader = store->open_latest(&rejected);
  ASSERT_TRUE(reader.is_ok());
  EXPECT_EQ((*reader)->info().meta, meta(10, 1));
  EXPECT_EQ(rejected.size(), 1u);
  // With no valid snapshot left it is an error, not "no snapshot".
  flip(path(meta(10, 1)), 30);  // the header
  auto none = store->load_latest();
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kCorruption);
  EXPECT_EQ(store->open_latest().status().code(), StatusCode::kCorruption);
}

TEST_P(SnapshotTest, TruncatedSnapshotIsRejected) {
  auto store = open();
  ASSERT_TRUE(store->write(meta(10, 1), data_of(3000, 'a')).is_ok());
  const uint64_t size = *t_.env()->file_size(path(meta(10, 1)));
  for (uint64_t cut : {size - 1, size - 40, uint64_t{2000}, uint64_t{10}}) {
    ASSERT_TRUE(t_.env()->truncate(path(meta(10, 1)), cut).is_ok());
    auto load = store->load_latest();
    EXPECT_EQ(load.status().code(), StatusCode::kCorruption) << cut;
  }
}

TEST_P(SnapshotTest, HeaderThatDisagreesWithTheNameIsRejected) {
  auto store = open();
  ASSERT_TRUE(store->write(meta(10, 1), "abc").is_ok());
  ASSERT_TRUE(t_.env()->rename(path(meta(10, 1)), path(meta(99, 1))).is_ok());
  auto load = store->load_latest();
  EXPECT_EQ(load.status().code(), StatusCode::kCorruption);
  EXPECT_NE(load.status().message().find("the name disagrees"), std::string::npos);
}

TEST_P(SnapshotTest, OversizedChunkLengthIsRejectedBeforeAllocating) {
  auto store = open();
  ASSERT_TRUE(store->write(meta(10, 1), "abcdef").is_ok());
  // The first chunk's length field follows the 24-byte prefix and the header.
  const std::string bytes = *t_.env()->read_file(path(meta(10, 1)), 1 << 20);
  const uint64_t chunk_at = 24 + get_u32(bytes.data() + 8);
  auto f = t_.env()->open_writable(path(meta(10, 1)), OpenMode::kAppend);
  ASSERT_TRUE((*f)->write_at(chunk_at, std::string("\xff\xff\xff\xff", 4)).is_ok());
  auto load = store->load_latest();
  EXPECT_EQ(load.status().code(), StatusCode::kCorruption);
  EXPECT_NE(load.status().message().find("over the limit"), std::string::npos)
      << load.status().message();
}

TEST_P(SnapshotTest, ReaderCatchesDamageAfterVerification) {
  auto store = open();
  ASSERT_TRUE(store->write(meta(10, 1), data_of(3000, 'a')).is_ok());
  auto reader = std::move(store->open_reader(meta(10, 1))).value();
  flip(path(meta(10, 1)), 2500);
  Status err;
  std::string chunk;
  for (;;) {
    auto more = reader->next(&chunk);
    if (!more.is_ok()) {
      err = more.status();
      break;
    }
    ASSERT_TRUE(*more) << "damaged snapshot streamed to the end";
  }
  EXPECT_EQ(err.code(), StatusCode::kCorruption);
}

TEST_P(SnapshotTest, AbandonedWriterLeavesNothing) {
  auto store = open();
  {
    auto w = std::move(store->begin(meta(10, 1))).value();
    ASSERT_TRUE(w->append("partial").is_ok());
  }
  EXPECT_TRUE(store->list()->empty());
  EXPECT_TRUE(t_.env()->list_dir(dir_)->empty());
}

INSTANTIATE_TEST_SUITE_P(Envs, SnapshotTest, ::testing::Values(EnvKind::kPosix, EnvKind::kSim),
                         [](const auto& info) { return testing::env_kind_name(info.param); });

// ---------------------------------------------------------------- crashes

class SnapshotCrashTest : public ::testing::Test {
 protected:
  SimEnv env_{Prng(3)};
  std::unique_ptr<SnapshotStore> open() {
    return std::move(SnapshotStore::open(&env_, "/snap", SnapshotStoreOptions{.chunk_bytes = 100}))
        .value();
  }
};

TEST_F(SnapshotCrashTest, RestartAfterCrashMidSnapshot) {
  auto old_store = open();
  ASSERT_TRUE(old_store->write(meta(10, 1), "old state").is_ok());
  auto w = std::move(old_store->begin(meta(20, 1))).value();
  ASSERT_TRUE(w->append(data_of(1000, 'n')).is_ok());
  // The temporary file's directory entry reached the disk (e.g. through
  // another file's directory fsync); its contents partly did.
  ASSERT_TRUE(env_.sync_dir("/snap").is_ok());
  env_.set_options(SimEnvOptions{.torn_write_chance = 1.0});
  env_.crash();
  env_.set_options(SimEnvOptions{});
  const std::string tmp = "/snap/" + snapshot_file_name(meta(20, 1)) + ".tmp";
  EXPECT_TRUE(*env_.exists(tmp));
  // The restarted process (the old objects stay untouched until the end, as
  // a dead process runs no destructors).
  auto store = open();
  EXPECT_EQ(store->removed_temporaries(), std::vector<std::string>{tmp});
  EXPECT_FALSE(*env_.exists(tmp));
  auto load = store->load_latest();
  ASSERT_TRUE(load.is_ok());
  EXPECT_TRUE(load->rejected.empty());
  EXPECT_EQ(load->snapshot->info.meta, meta(10, 1));
  EXPECT_EQ(load->snapshot->data, "old state");
  EXPECT_EQ(*env_.list_dir("/snap"), std::vector<std::string>{snapshot_file_name(meta(10, 1))});
}

TEST_F(SnapshotCrashTest, RenameWithoutDirectorySyncIsLostOnCrash) {
  auto store = open();
  ASSERT_TRUE(store->write(meta(10, 1), "old").is_ok());
  // What finish() does, minus the final directory fsync.
  const std::string final_path = "/snap/" + snapshot_file_name(meta(20, 1));
  {
    auto w = std::move(store->begin(meta(20, 1))).value();
    ASSERT_TRUE(w->append("new").is_ok());
    ASSERT_TRUE(w->finish().is_ok());
  }
  const std::string bytes = *env_.read_file(final_path, 1 << 20);
  ASSERT_TRUE(env_.remove(final_path).is_ok());
  ASSERT_TRUE(env_.sync_dir("/snap").is_ok());
  auto f = std::move(env_.open_writable(final_path + ".tmp", OpenMode::kTruncate)).value();
  ASSERT_TRUE(f->append(bytes).is_ok());
  ASSERT_TRUE(f->sync().is_ok());
  ASSERT_TRUE(env_.rename(final_path + ".tmp", final_path).is_ok());
  env_.crash();
  store = open();
  auto load = store->load_latest();
  ASSERT_TRUE(load.is_ok());
  EXPECT_EQ(load->snapshot->data, "old");
}

TEST_F(SnapshotCrashTest, FinishedSnapshotSurvivesACrash) {
  {
    auto store = open();
    ASSERT_TRUE(store->write(meta(10, 1), data_of(777, 'q')).is_ok());
  }
  env_.set_options(SimEnvOptions{.torn_write_chance = 1.0});
  env_.crash();
  auto load = open()->load_latest();
  ASSERT_TRUE(load.is_ok());
  EXPECT_EQ(load->snapshot->data, data_of(777, 'q'));
}

TEST_F(SnapshotCrashTest, FsyncFailureFailsFinish) {
  auto store = open();
  auto w = std::move(store->begin(meta(10, 1))).value();
  ASSERT_TRUE(w->append("x").is_ok());
  env_.fail_next_syncs(1);
  EXPECT_FALSE(w->finish().is_ok());
  EXPECT_TRUE(env_.list_dir("/snap")->empty());  // the temporary file is gone
}

}  // namespace
}  // namespace chorus::storage
