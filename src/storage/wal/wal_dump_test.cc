#include "storage/wal/wal_dump.h"

#include <gtest/gtest.h>

#include "storage/env/sim_env.h"
#include "storage/wal/record.h"
#include "storage/wal/wal.h"

namespace chorus::storage {
namespace {

class WalDumpTest : public ::testing::Test {
 protected:
  SimEnv env_{Prng(1)};
  void SetUp() override {
    auto wal = std::move(Wal::open(&env_, "/wal", WalOptions{.segment_bytes = 4096})).value();
    std::vector<core::Entry> es;
    for (uint64_t i = 1; i <= 100; ++i) {
      es.push_back({Term(2), LogIndex(i),
                    i == 1 ? core::EntryType::kNoop : core::EntryType::kNormal,
                    std::string(100, 'x')});
    }
    ASSERT_TRUE(wal->append(es).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  std::vector<std::string> segments() {
    std::vector<std::string> out;
    const std::vector<std::string> names = *env_.list_dir("/wal");
    for (const auto& n : names) out.push_back("/wal/" + n);
    return out;
  }
};

TEST_F(WalDumpTest, CleanLogListsSegmentsAndRecords) {
  std::string out;
  ASSERT_TRUE(wal_dump(&env_, "/wal", &out).is_ok()) << out;
  EXPECT_NE(out.find("segment wal-0000000000000001-00000000000000000001.log seq=1 first_index=1"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  record offset=0 index=1 term=2 type=noop size=100 checksum=ok"),
            std::string::npos);
  EXPECT_NE(out.find("  record offset=132 index=2 term=2 type=normal size=100 checksum=ok"),
            std::string::npos);
  EXPECT_NE(out.find("summary: "), std::string::npos);
  EXPECT_NE(out.find("100 records, indexes 1..100, no corruption"), std::string::npos) << out;
  EXPECT_EQ(out.find("BAD"), std::string::npos);
}

TEST_F(WalDumpTest, FlagsTheFirstBadRecordWithFileAndOffset) {
  const std::string first = segments().front();
  ASSERT_TRUE(env_.corrupt(first, 132 * 3 + 50, 1).is_ok());
  std::string out;
  const Status s = wal_dump(&env_, "/wal", &out);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find(first + " offset 396"), std::string::npos) << s.message();
  EXPECT_NE(out.find("  BAD offset=396: checksum mismatch (stored 0x"), std::string::npos) << out;
  // The same place Wal::open stops at.
  const Status open = Wal::open(&env_, "/wal").status();
  EXPECT_NE(open.message().find(first + " offset 396"), std::string::npos) << open.message();
  // Later segments are still listed.
  EXPECT_NE(out.find("segment " + std::string(base_name(segments().back()))), std::string::npos);
}

TEST_F(WalDumpTest, ReportsATornTailAsRecoverable) {
  const std::string last = segments().back();
  ASSERT_TRUE(env_.truncate(last, *env_.file_size(last) - 10).is_ok());
  std::string out;
  EXPECT_TRUE(wal_dump(&env_, "/wal", &out).is_ok()) << out;
  EXPECT_NE(out.find("  TORN offset="), std::string::npos) << out;
  EXPECT_NE(out.find("recovery cuts 122 bytes here"), std::string::npos) << out;
}

// A page of the last sync batch that never reached the disk, with later
// pages of the batch on disk: wal-dump says recovery cuts it, and how many
// valid records go with it.
TEST_F(WalDumpTest, ReportsALostPageInTheLastSyncBatchAsRecoverable) {
  auto wal = std::move(Wal::open(&env_, "/lost", WalOptions{.segment_bytes = 1 << 20})).value();
  std::vector<core::Entry> es;
  for (uint64_t i = 1; i <= 80; ++i) {
    es.push_back({Term(2), LogIndex(i), core::EntryType::kNormal, std::string(100, 'x')});
  }
  ASSERT_TRUE(wal->append(es).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  wal.reset();
  const std::string path = "/lost/" + segment_name(1, LogIndex(1));
  auto f = env_.open_writable(path, OpenMode::kAppend);
  ASSERT_TRUE((*f)->write_at(4096, std::string(4096, '\0')).is_ok());
  std::string out;
  EXPECT_TRUE(wal_dump(&env_, "/lost", &out).is_ok()) << out;
  EXPECT_NE(out.find("  record offset=132 index=2 term=2 type=normal size=100 checksum=ok batch=1"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("  TORN offset=4092: unknown record type: torn tail, recovery cuts"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("the 17 valid records after it (indexes 64..80)"), std::string::npos) << out;
}

TEST_F(WalDumpTest, ReportsAMissingSegment) {
  ASSERT_TRUE(env_.remove(segments()[1]).is_ok());
  std::string out;
  const Status s = wal_dump(&env_, "/wal", &out, WalDumpOptions{.records = false});
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(out.find("GAP missing segment(s) with seq 2..2"), std::string::npos) << out;
  EXPECT_EQ(out.find("  record "), std::string::npos);  // records off
}

}  // namespace
}  // namespace chorus::storage
