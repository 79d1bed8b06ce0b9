#include "storage/wal/metadata.h"

#include <gtest/gtest.h>

#include "chorus/storage.pb.h"
#include "storage/env/coding.h"
#include "storage/env/testing.h"

namespace chorus::storage {
namespace {

using testing::EnvKind;
using testing::TestEnv;

// Stands for an engine's encoded state; the file treats it as opaque bytes.
std::string hs(uint64_t term, uint64_t vote, uint64_t commit) {
  return "term=" + std::to_string(term) + " vote=" + std::to_string(vote) +
         " commit=" + std::to_string(commit);
}

class MetadataTest : public ::testing::TestWithParam<EnvKind> {
 protected:
  TestEnv t_{GetParam()};
  std::string path_ = t_.path("meta");

  std::unique_ptr<MetadataFile> open() {
    auto m = MetadataFile::open(t_.env(), path_);
    EXPECT_TRUE(m.is_ok()) << m.status().to_string();
    return m.is_ok() ? std::move(m).value() : nullptr;
  }
  // Flips bytes inside the payload of copy `slot`.
  void damage(int slot) {
    const uint64_t offset = slot * kMetadataSlotBytes + 26;
    if (t_.sim()) {
      ASSERT_TRUE(t_.sim()->corrupt(path_, offset, 2).is_ok());
      return;
    }
    auto f = t_.env()->open_writable(path_, OpenMode::kAppend);
    ASSERT_TRUE((*f)->write_at(offset, "\xff\xfe").is_ok());
    ASSERT_TRUE((*f)->sync().is_ok());
  }
};

TEST_P(MetadataTest, NewNodeHasNoFileAndStartsAtZero) {
  auto m = open();
  EXPECT_TRUE(m->is_new());
  EXPECT_EQ(m->state(), "");
  EXPECT_EQ(m->sequence(), 0u);
  EXPECT_FALSE(*t_.env()->exists(path_));  // nothing written until the first save
}

TEST_P(MetadataTest, SaveReloadRoundTrip) {
  {
    auto m = open();
    ASSERT_TRUE(m->save(hs(1, 2, 0)).is_ok());
    ASSERT_TRUE(m->save(hs(2, 0, 5)).is_ok());
    ASSERT_TRUE(m->save(hs(3, 3, 9)).is_ok());
  }
  EXPECT_EQ(*t_.env()->file_size(path_), kMetadataFileBytes);
  auto m = open();
  EXPECT_FALSE(m->is_new());
  EXPECT_EQ(m->state(), hs(3, 3, 9));
  EXPECT_EQ(m->sequence(), 3u);
  EXPECT_FALSE(m->damaged_copy());
  ASSERT_TRUE(m->save(hs(4, 1, 9)).is_ok());
  EXPECT_EQ(open()->state(), hs(4, 1, 9));
}

TEST_P(MetadataTest, CorruptMetadataCopyLosesToTheOther) {
  {
    auto m = open();
    ASSERT_TRUE(m->save(hs(5, 1, 10)).is_ok());  // sequence 1: copy 1
    ASSERT_TRUE(m->save(hs(6, 2, 11)).is_ok());  // sequence 2: copy 0
  }
  // Damage the newer copy: the older one wins (the newer save was, as far as
  // the file can tell, never completed).
  damage(0);
  auto m = open();
  EXPECT_EQ(m->state(), hs(5, 1, 10));
  ASSERT_TRUE(m->damaged_copy().has_value());
  EXPECT_NE(m->damaged_copy()->find("copy 0 at offset 0: checksum mismatch"), std::string::npos)
      << *m->damaged_copy();
  // The next save overwrites the damaged copy, not the good one.
  ASSERT_TRUE(m->save(hs(7, 0, 12)).is_ok());
  m = open();
  EXPECT_EQ(m->state(), hs(7, 0, 12));
  EXPECT_FALSE(m->damaged_copy());
}

TEST_P(MetadataTest, CorruptOlderCopyLosesToo) {
  {
    auto m = open();
    ASSERT_TRUE(m->save(hs(5, 1, 10)).is_ok());
    ASSERT_TRUE(m->save(hs(6, 2, 11)).is_ok());
  }
  damage(1);
  auto m = open();
  EXPECT_EQ(m->state(), hs(6, 2, 11));
  EXPECT_TRUE(m->damaged_copy().has_value());
}

TEST_P(MetadataTest, BothMetadataCopiesCorruptStops) {
  {
    auto m = open();
    ASSERT_TRUE(m->save(hs(5, 1, 10)).is_ok());
    ASSERT_TRUE(m->save(hs(6, 2, 11)).is_ok());
  }
  damage(0);
  damage(1);
  auto m = MetadataFile::open(t_.env(), path_);
  ASSERT_FALSE(m.is_ok());
  EXPECT_EQ(m.status().code(), StatusCode::kCorruption);
  EXPECT_NE(m.status().message().find(path_ + " copy 0 at offset 0"), std::string::npos);
  EXPECT_NE(m.status().message().find(path_ + " copy 1 at offset 4096"), std::string::npos);
}

TEST_P(MetadataTest, EmptyFileIsCorruptNotNew) {
  auto f = t_.env()->open_writable(path_, OpenMode::kTruncate);
  ASSERT_TRUE((*f)->sync().is_ok());
  auto m = MetadataFile::open(t_.env(), path_);
  EXPECT_EQ(m.status().code(), StatusCode::kCorruption);
}

// Files written before engines had their own durable state hold Raft's
// term, vote and commit in fields 2-4 of the record and no engine_state.
// Such a record, minus its sequence, is handed to the engine unchanged:
// raftpb.HardState uses the same field numbers.
TEST_P(MetadataTest, VersionOneRecordIsReadAsTheEnginesBytes) {
  storagepb::HardStateRecord rec;
  rec.set_sequence(1);
  rec.set_legacy_term(3);
  rec.set_legacy_voted_for(2);
  rec.set_legacy_commit(7);
  const std::string payload = rec.SerializeAsString();
  std::string slot("CHORUSMD");
  put_u64(&slot, 0);
  put_u32(&slot, static_cast<uint32_t>(payload.size()));
  put_u32(&slot, 1);
  slot += payload;
  store_u64(slot.data() + 8, checksum64(std::string_view(slot).substr(16, 8 + payload.size())));
  slot.resize(kMetadataSlotBytes, '\0');
  std::string file(kMetadataFileBytes, '\0');
  std::copy(slot.begin(), slot.end(), file.begin() + kMetadataSlotBytes);  // sequence 1: copy 1
  ASSERT_TRUE(write_file_atomically(t_.env(), path_, file).is_ok());

  auto m = open();
  rec.clear_sequence();
  EXPECT_EQ(m->state(), rec.SerializeAsString());
  EXPECT_EQ(m->sequence(), 1u);
}

// A build that knows only version 1 must refuse a file written now (and not
// read term 0 and no vote from it): records are written as version 2.
TEST_P(MetadataTest, RecordsAreWrittenAsVersionTwoSoOlderBuildsRefuseThem) {
  ASSERT_TRUE(open()->save(hs(3, 2, 1)).is_ok());
  auto bytes = t_.env()->read_file(path_, kMetadataFileBytes);
  ASSERT_TRUE(bytes.is_ok());
  const size_t slot = 1 * kMetadataSlotBytes;  // sequence 1
  EXPECT_EQ(get_u32(bytes->data() + slot + 20), 2u);
}

TEST_P(MetadataTest, StateLargerThanACopyIsRefusedAndTheFileKeepsItsState) {
  auto m = open();
  ASSERT_TRUE(m->save(hs(1, 1, 1)).is_ok());
  Status st = m->save(std::string(kMetadataSlotBytes, 'x'));
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_TRUE(m->healthy()) << "refused before writing: nothing to fail-stop for";
  EXPECT_EQ(open()->state(), hs(1, 1, 1));
}

INSTANTIATE_TEST_SUITE_P(Envs, MetadataTest, ::testing::Values(EnvKind::kPosix, EnvKind::kSim),
                         [](const auto& info) { return testing::env_kind_name(info.param); });

TEST(MetadataSimTest, FsyncFailureFailStops) {
  SimEnv env(Prng(1));
  ASSERT_TRUE(env.create_dir("/d").is_ok());
  auto m = std::move(MetadataFile::open(&env, "/d/meta")).value();
  ASSERT_TRUE(m->save(hs(1, 1, 0)).is_ok());
  env.fail_next_syncs(1);
  EXPECT_EQ(m->save(hs(2, 2, 0)).code(), StatusCode::kFailStopped);
  EXPECT_FALSE(m->healthy());
  EXPECT_EQ(m->state(), hs(1, 1, 0));  // the in-memory state never claims the failed save
  EXPECT_EQ(m->save(hs(3, 3, 0)).code(), StatusCode::kFailStopped);
}

// A crash in the middle of save(): after restart the state is the previous
// one or the new one, never garbage and never an error.
TEST(MetadataSimTest, TornSaveKeepsPreviousOrNewState) {
  for (uint64_t seed = 1; seed <= 100; ++seed) {
    SimEnv env(Prng(seed), SimEnvOptions{.torn_write_chance = 1.0});
    ASSERT_TRUE(env.create_dir("/d").is_ok());
    {
      auto m = std::move(MetadataFile::open(&env, "/d/meta")).value();
      ASSERT_TRUE(m->save(hs(1, 1, 0)).is_ok());
      ASSERT_TRUE(m->save(hs(2, 2, 0)).is_ok());
      env.fail_next_syncs(1);  // the write reaches the disk cache; the sync does not complete
      EXPECT_FALSE(m->save(hs(3, 3, 0)).is_ok());
    }
    env.crash();
    auto m = MetadataFile::open(&env, "/d/meta");
    ASSERT_TRUE(m.is_ok()) << m.status().to_string();
    const auto& st = (*m)->state();
    EXPECT_TRUE(st == hs(2, 2, 0) || st == hs(3, 3, 0)) << st;
  }
}

TEST(MetadataSimTest, FirstSaveIsDurableAcrossACrash) {
  SimEnv env(Prng(1));
  ASSERT_TRUE(env.create_dir("/d").is_ok());
  {
    auto m = std::move(MetadataFile::open(&env, "/d/meta")).value();
    ASSERT_TRUE(m->save(hs(1, 4, 0)).is_ok());
  }
  env.crash();
  auto m = std::move(MetadataFile::open(&env, "/d/meta")).value();
  EXPECT_FALSE(m->is_new());
  EXPECT_EQ(m->state(), hs(1, 4, 0));
}

}  // namespace
}  // namespace chorus::storage
