#include "storage/wal/wal.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "storage/env/testing.h"
#include "storage/wal/record.h"

namespace chorus::storage {
namespace {

using testing::EnvKind;
using testing::TestEnv;

core::Entry entry(uint64_t index, uint64_t term, size_t bytes = 100) {
  std::string data(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) data[i] = static_cast<char>('a' + (index + i) % 26);
  return core::Entry{Term(term), LogIndex(index),
                     index % 7 == 0 ? core::EntryType::kNoop : core::EntryType::kNormal,
                     std::move(data)};
}

std::vector<core::Entry> entries(uint64_t lo, uint64_t hi, uint64_t term, size_t bytes = 100) {
  std::vector<core::Entry> out;
  for (uint64_t i = lo; i <= hi; ++i) out.push_back(entry(i, term, bytes));
  return out;
}

// Small segments so that a few hundred entries span several of them.
constexpr WalOptions kSmall{.segment_bytes = 4096, .write_buffer_bytes = 1000};
// One segment of several pages, for damage inside the last segment.
constexpr WalOptions kOneSegment{.segment_bytes = 1 << 20, .write_buffer_bytes = 1000};
// Bytes of the record entry(i, t) writes (100-byte payload).
constexpr uint64_t kRecord = kRecordHeaderBytes + 100;

class WalTest : public ::testing::TestWithParam<EnvKind> {
 protected:
  TestEnv t_{GetParam()};
  std::string dir_ = t_.path("wal");

  std::unique_ptr<Wal> open(WalOptions options = kSmall) {
    auto w = Wal::open(t_.env(), dir_, options);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    return w.is_ok() ? std::move(w).value() : nullptr;
  }
  Status open_status(WalOptions options = kSmall) {
    return Wal::open(t_.env(), dir_, options).status();
  }
  std::vector<std::string> segment_files() {
    std::vector<std::string> out;
    const std::vector<std::string> names = *t_.env()->list_dir(dir_);
    for (const auto& n : names) {
      if (n.starts_with("wal-")) out.push_back(join_path(dir_, n));
    }
    return out;
  }
  // Writes entries lo..hi (term) and syncs.
  void fill(uint64_t lo, uint64_t hi, uint64_t term = 1, size_t bytes = 100) {
    auto wal = open();
    auto es = entries(lo, hi, term, bytes);
    ASSERT_TRUE(wal->append(es).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  // Overwrites [offset, offset + len) with zeros: the bytes a page that never
  // reached the disk reads as (a hole past the durable end of the file).
  Status zero(const std::string& path, uint64_t offset, uint64_t len) {
    auto f = t_.env()->open_writable(path, OpenMode::kAppend);
    if (!f.is_ok()) return f.status();
    CHORUS_RETURN_IF_ERROR((*f)->write_at(offset, std::string(len, '\0')));
    return (*f)->sync();
  }
  Status corrupt(const std::string& path, uint64_t offset) {
    if (t_.sim()) return t_.sim()->corrupt(path, offset, 1);
    auto bytes = t_.env()->read_file(path, 1 << 30);
    if (!bytes.is_ok()) return bytes.status();
    std::string b = *bytes;
    b[offset] = static_cast<char>(b[offset] ^ 0x20);
    auto f = t_.env()->open_writable(path, OpenMode::kAppend);
    if (!f.is_ok()) return f.status();
    CHORUS_RETURN_IF_ERROR((*f)->write_at(offset, std::string_view(b).substr(offset, 1)));
    return (*f)->sync();
  }
};

TEST_P(WalTest, RoundTripSurvivesReopen) {
  const auto es = entries(1, 300, 3);
  {
    auto wal = open();
    ASSERT_TRUE(wal->append(std::span(es).subspan(0, 100)).is_ok());
    ASSERT_TRUE(wal->append(std::span(es).subspan(100)).is_ok());
    EXPECT_EQ(wal->last_index(), LogIndex(300));
    // Only the segments finished by rollover are synced so far.
    EXPECT_LT(wal->durable_index(), LogIndex(300));
    ASSERT_TRUE(wal->sync().is_ok());
    EXPECT_EQ(wal->durable_index(), LogIndex(300));
  }
  auto wal = open();
  EXPECT_EQ(wal->first_index(), LogIndex(1));
  EXPECT_EQ(wal->last_index(), LogIndex(300));
  EXPECT_EQ(wal->durable_index(), LogIndex(300));
  EXPECT_FALSE(wal->recovery().torn_tail);
  EXPECT_EQ(wal->recovery().records, 300u);
  EXPECT_EQ(*wal->read_all(), es);
  auto mid = wal->entries(LogIndex(50), LogIndex(60));
  ASSERT_TRUE(mid.is_ok());
  EXPECT_EQ(*mid, std::vector<core::Entry>(es.begin() + 49, es.begin() + 59));
}

TEST_P(WalTest, EmptyLogOpensEmpty) {
  auto wal = open();
  EXPECT_EQ(wal->first_index(), LogIndex(1));
  EXPECT_EQ(wal->last_index(), LogIndex(0));
  EXPECT_TRUE(wal->read_all()->empty());
  EXPECT_TRUE(wal->sync().is_ok());
}

TEST_P(WalTest, SegmentRollover) {
  fill(1, 200);
  const auto files = segment_files();
  ASSERT_GT(files.size(), 3u);
  for (size_t i = 0; i < files.size(); ++i) {
    uint64_t seq;
    LogIndex first;
    ASSERT_TRUE(parse_segment_name(base_name(files[i]), &seq, &first));
    EXPECT_EQ(seq, i + 1);
    EXPECT_LE(*t_.env()->file_size(files[i]), kSmall.segment_bytes);
  }
  auto wal = open();
  EXPECT_EQ(wal->segment_count(), files.size());
  EXPECT_EQ(*wal->read_all(), entries(1, 200, 1));
}

TEST_P(WalTest, RecordLargerThanASegmentGetsItsOwnSegment) {
  fill(1, 3, 1, 10000);
  EXPECT_EQ(segment_files().size(), 3u);
  auto wal = open();
  EXPECT_EQ(*wal->read_all(), entries(1, 3, 1, 10000));
}

TEST_P(WalTest, ConflictingSuffixIsTruncated) {
  fill(1, 200, 1);
  const size_t segments_before = segment_files().size();
  {
    auto wal = open();
    auto fresh = entries(50, 55, 2);
    ASSERT_TRUE(wal->append(fresh).is_ok());
    EXPECT_EQ(wal->last_index(), LogIndex(55));
    EXPECT_LE(wal->durable_index(), LogIndex(49));
    ASSERT_TRUE(wal->sync().is_ok());
  }
  EXPECT_LT(segment_files().size(), segments_before);
  auto wal = open();
  EXPECT_EQ(wal->last_index(), LogIndex(55));
  auto all = *wal->read_all();
  ASSERT_EQ(all.size(), 55u);
  for (uint64_t i = 1; i <= 55; ++i) EXPECT_EQ(all[i - 1], entry(i, i < 50 ? 1 : 2));
}

TEST_P(WalTest, ConflictingSuffixAtASegmentBoundary) {
  fill(1, 200, 1);
  LogIndex second_first;
  uint64_t seq;
  ASSERT_TRUE(parse_segment_name(base_name(segment_files()[1]), &seq, &second_first));
  {
    auto wal = open();
    auto fresh = entries(second_first.value(), second_first.value(), 5);
    ASSERT_TRUE(wal->append(fresh).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  auto wal = open();
  EXPECT_EQ(wal->last_index(), second_first);
  EXPECT_EQ(wal->read_all()->back(), entry(second_first.value(), 5));
  // Overwriting from the very first index empties the log and refills it.
  ASSERT_TRUE(wal->append(entries(1, 3, 9)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  wal.reset();
  EXPECT_EQ(*open()->read_all(), entries(1, 3, 9));
}

TEST_P(WalTest, AppendRejectsGapsAndCompactedIndexes) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 10, 1)).is_ok());
  EXPECT_EQ(wal->append(entries(12, 13, 1)).code(), StatusCode::kInvalidArgument);
  std::vector<core::Entry> holey = {entry(11, 1), entry(13, 1)};
  EXPECT_EQ(wal->append(holey).code(), StatusCode::kInvalidArgument);
  core::Entry huge = entry(11, 1, 0);
  huge.data.assign(kMaxRecordPayloadBytes + 1, 'x');
  EXPECT_EQ(wal->append(std::span(&huge, 1)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(wal->append(entries(0, 0, 1)).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->compact(LogIndex(5)).is_ok());  // nothing to delete: one segment
  EXPECT_TRUE(wal->healthy());
}

TEST_P(WalTest, CompactDeletesWholeSegmentsOnly) {
  fill(1, 200, 1);
  auto wal = open();
  const size_t before = wal->segment_count();
  ASSERT_TRUE(wal->compact(LogIndex(100)).is_ok());
  EXPECT_LT(wal->segment_count(), before);
  // The segment holding 100 (and so 101) is kept whole.
  EXPECT_LE(wal->first_index(), LogIndex(101));
  EXPECT_GT(wal->first_index(), LogIndex(1));
  const LogIndex first = wal->first_index();
  EXPECT_EQ(wal->entries(LogIndex(1), LogIndex(2)).status().code(), StatusCode::kInvalidArgument);
  wal.reset();
  wal = open();
  EXPECT_EQ(wal->first_index(), first);
  EXPECT_EQ(*wal->read_all(), entries(first.value(), 200, 1));
  // Appending before the first index is refused.
  EXPECT_EQ(wal->append(entries(1, 1, 2)).code(), StatusCode::kInvalidArgument);
}

TEST_P(WalTest, CompactPastTheEndStartsAfterTheSnapshot) {
  fill(1, 50, 1);
  {
    auto wal = open();
    ASSERT_TRUE(wal->compact(LogIndex(1000)).is_ok());
    EXPECT_EQ(wal->first_index(), LogIndex(1001));
    EXPECT_EQ(wal->last_index(), LogIndex(1000));
    EXPECT_EQ(wal->durable_index(), LogIndex(1000));
    EXPECT_EQ(wal->segment_count(), 0u);
    EXPECT_EQ(wal->append(entries(999, 999, 2)).code(), StatusCode::kInvalidArgument);
    ASSERT_TRUE(wal->append(entries(1001, 1010, 2)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  auto wal = open();
  EXPECT_EQ(wal->first_index(), LogIndex(1001));
  EXPECT_EQ(*wal->read_all(), entries(1001, 1010, 2));
}

TEST_P(WalTest, TornTailIsTruncated) {
  fill(1, 40, 1);
  const std::string last = segment_files().back();
  const uint64_t size = *t_.env()->file_size(last);
  // Cut the final record short, as a crash in the middle of its write would.
  ASSERT_TRUE(t_.env()->truncate(last, size - 7).is_ok());
  auto wal = open();
  ASSERT_TRUE(wal->recovery().torn_tail.has_value());
  const auto& torn = *wal->recovery().torn_tail;
  EXPECT_EQ(torn.file, last);
  EXPECT_EQ(torn.offset, size - record_bytes(entry(40, 1)));
  EXPECT_EQ(torn.bytes_dropped, record_bytes(entry(40, 1)) - 7);
  EXPECT_NE(wal->recovery().to_string(dir_).find("torn tail cut at " + last + " offset"),
            std::string::npos);
  EXPECT_EQ(wal->last_index(), LogIndex(39));
  EXPECT_EQ(*t_.env()->file_size(last), torn.offset);
  // The log continues where the torn record was.
  ASSERT_TRUE(wal->append(entries(40, 41, 2)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  wal.reset();
  wal = open();
  EXPECT_FALSE(wal->recovery().torn_tail);
  EXPECT_EQ(wal->read_all()->back(), entry(41, 2));
}

TEST_P(WalTest, ZeroFilledTailIsTruncated) {
  fill(1, 10, 1);
  const std::string last = segment_files().back();
  const uint64_t size = *t_.env()->file_size(last);
  auto f = t_.env()->open_writable(last, OpenMode::kAppend);
  ASSERT_TRUE((*f)->append(std::string(3000, '\0')).is_ok());
  ASSERT_TRUE((*f)->sync().is_ok());
  auto wal = open();
  ASSERT_TRUE(wal->recovery().torn_tail);
  EXPECT_EQ(wal->recovery().torn_tail->offset, size);
  EXPECT_EQ(wal->last_index(), LogIndex(10));
}

TEST_P(WalTest, ChecksumMismatchInEarlierRecordStops) {
  fill(1, 200, 1);
  const std::string first = segment_files().front();
  const uint64_t offset = record_bytes(entry(1, 1)) + 40;  // payload of record 2
  ASSERT_TRUE(corrupt(first, offset).is_ok());
  const Status s = open_status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find(first + " offset " + std::to_string(record_bytes(entry(1, 1)))),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("checksum mismatch"), std::string::npos) << s.message();
}

TEST_P(WalTest, ChecksumMismatchInTheMiddleOfTheLastSegmentStops) {
  fill(1, 10, 1);  // one segment
  ASSERT_EQ(segment_files().size(), 1u);
  ASSERT_TRUE(corrupt(segment_files().back(), 200).is_ok());
  const Status s = open_status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find("valid record follows"), std::string::npos) << s.message();
}

TEST_P(WalTest, BitFlipInTheFinalRecordStops) {
  fill(1, 10, 1);
  const std::string last = segment_files().back();
  const uint64_t size = *t_.env()->file_size(last);
  ASSERT_TRUE(corrupt(last, size - 3).is_ok());  // complete record, no zero sector
  const Status s = open_status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find(last + " offset " + std::to_string(size - record_bytes(entry(10, 1)))),
            std::string::npos)
      << s.message();
}

// Entries 6..80 were appended as one sync batch and the power failed before
// its fdatasync completed; the page cache had written back the pages after
// [4096, 8192) but not that one. Nothing of the batch was acknowledged, so
// the log is cut before the first record the lost page damaged (index 32,
// offset 31 * 132 = 4092), dropping the valid records of the same batch
// after it, and the node starts.
TEST_P(WalTest, PowerLossKeepingLaterPagesIsTruncatedAtTheFirstLostPage) {
  {
    auto wal = open(kOneSegment);
    ASSERT_TRUE(wal->append(entries(1, 5, 1)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->append(entries(6, 80, 1)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  const std::string last = segment_files().back();
  const uint64_t size = *t_.env()->file_size(last);
  ASSERT_EQ(size, 80 * kRecord);
  ASSERT_TRUE(zero(last, 4096, 4096).is_ok());
  auto wal = open(kOneSegment);
  ASSERT_NE(wal, nullptr);
  ASSERT_TRUE(wal->recovery().torn_tail.has_value());
  const auto& cut = *wal->recovery().torn_tail;
  EXPECT_EQ(cut.file, last);
  EXPECT_EQ(cut.offset, 31 * kRecord);
  EXPECT_EQ(cut.bytes_dropped, size - 31 * kRecord);
  // Records 63 (its first bytes are in the lost page) .. 80 follow; 64..80 are valid.
  EXPECT_EQ(cut.records_dropped, 17u);
  EXPECT_NE(cut.reason.find("sync batch"), std::string::npos) << cut.reason;
  // The report docs/formats/wal.md shows in its worked example.
  const std::string report = wal->recovery().to_string(dir_);
  EXPECT_NE(report.find("torn tail cut at " + last +
                        " offset 4092 (6468 bytes dropped, 17 valid "
                        "records of a never-synced batch among them: unknown record type, "
                        "zero-filled sector at offset 4096 (a write that never landed); the 17 "
                        "valid records after it (indexes 64..80) are of its sync batch (from "
                        "index 6)"),
            std::string::npos)
      << report;
  EXPECT_EQ(wal->last_index(), LogIndex(31));
  EXPECT_EQ(*wal->read_all(), entries(1, 31, 1));
  // The cut is durable.
  if (t_.sim()) {
    EXPECT_EQ(t_.sim()->durable_size(last), 31 * kRecord);
  }
  ASSERT_TRUE(wal->append(entries(32, 33, 2)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  wal.reset();
  wal = open(kOneSegment);
  EXPECT_FALSE(wal->recovery().torn_tail);
  EXPECT_EQ(wal->last_index(), LogIndex(33));
}

// Entries 1..40 were synced before 41..80 were written. A sector of zeros in
// record 8 looks like a lost write, but the valid records of the later batch
// prove that record 8 had been synced: that is media damage, and the node
// stops rather than drop acknowledged entries.
TEST_P(WalTest, BadRecordFollowedByALaterSyncBatchStops) {
  {
    auto wal = open(kOneSegment);
    ASSERT_TRUE(wal->append(entries(1, 40, 1)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->append(entries(41, 80, 1)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  const std::string last = segment_files().back();
  ASSERT_TRUE(zero(last, 1024, 512).is_ok());  // records 8..12
  const Status s = open_status(kOneSegment);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find(last + " offset " + std::to_string(7 * kRecord)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("later sync batch"), std::string::npos) << s.message();
}

// Logs written before records carried a batch offset have zeros there: each
// record reads as a sync batch of its own. They open and take appends as
// before, and damage followed by a valid record still stops the node, as it
// did when they were written.
TEST_P(WalTest, LogWrittenWithoutBatchOffsetsIsReadableAndStopsOnDamageAsBefore) {
  ASSERT_TRUE(t_.env()->create_dir(dir_).is_ok());
  std::string bytes;
  for (uint64_t i = 1; i <= 40; ++i) encode_record(entry(i, 1), 0, &bytes);
  const std::string path = join_path(dir_, segment_name(1, LogIndex(1)));
  ASSERT_TRUE(write_file_atomically(t_.env(), path, bytes).is_ok());
  {
    auto wal = open(kOneSegment);
    ASSERT_NE(wal, nullptr);
    EXPECT_EQ(*wal->read_all(), entries(1, 40, 1));
    ASSERT_TRUE(wal->append(entries(41, 45, 1)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
  }
  {
    auto wal = open(kOneSegment);
    ASSERT_NE(wal, nullptr);
    EXPECT_EQ(*wal->read_all(), entries(1, 45, 1));
  }
  ASSERT_TRUE(zero(path, 1024, 512).is_ok());  // records 8..12
  const Status s = open_status(kOneSegment);
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find(path + " offset " + std::to_string(7 * kRecord)), std::string::npos)
      << s.message();
}

TEST_P(WalTest, MissingSegmentStops) {
  fill(1, 200, 1);
  const auto files = segment_files();
  ASSERT_GE(files.size(), 3u);
  ASSERT_TRUE(t_.env()->remove(files[1]).is_ok());
  const Status s = open_status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("missing segment"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(files[0]), std::string::npos) << s.message();
}

TEST_P(WalTest, IndexGapStops) {
  // Within a segment: records 1, 2, 4.
  ASSERT_TRUE(t_.env()->create_dir(dir_).is_ok());
  std::string bytes;
  for (uint64_t i : {1, 2, 4}) encode_record(entry(i, 1), 0, &bytes);
  const std::string path = join_path(dir_, segment_name(1, LogIndex(1)));
  ASSERT_TRUE(write_file_atomically(t_.env(), path, bytes).is_ok());
  Status s = open_status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find(path + " offset " + std::to_string(2 * record_bytes(entry(1, 1)))),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("index gap: expected index 3, found 4"), std::string::npos);
}

TEST_P(WalTest, IndexGapBetweenSegmentsStops) {
  fill(1, 200, 1);
  const auto files = segment_files();
  uint64_t seq;
  LogIndex first;
  ASSERT_TRUE(parse_segment_name(base_name(files[2]), &seq, &first));
  const std::string renamed = join_path(dir_, segment_name(seq, first + 5));
  ASSERT_TRUE(t_.env()->rename(files[2], renamed).is_ok());
  const Status s = open_status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("index gap"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(renamed), std::string::npos) << s.message();
}

TEST_P(WalTest, ReadsVerifyChecksums) {
  fill(1, 20, 1);
  auto wal = open();
  ASSERT_TRUE(corrupt(segment_files().front(), 50).is_ok());
  auto r = wal->entries(LogIndex(1), LogIndex(3));
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
}

INSTANTIATE_TEST_SUITE_P(Envs, WalTest, ::testing::Values(EnvKind::kPosix, EnvKind::kSim),
                         [](const auto& info) { return testing::env_kind_name(info.param); });

// ---------------------------------------------------------------- SimEnv faults

class WalSimTest : public ::testing::Test {
 protected:
  SimEnv env_{Prng(7)};
  const std::string dir_ = "/wal";
  std::unique_ptr<Wal> open() {
    auto w = Wal::open(&env_, dir_, kSmall);
    EXPECT_TRUE(w.is_ok()) << w.status().to_string();
    return w.is_ok() ? std::move(w).value() : nullptr;
  }
};

TEST_F(WalSimTest, UnsyncedDataLostOnCrash) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 5, 1)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->append(entries(6, 10, 1)).is_ok());
  wal.reset();
  env_.crash();
  wal = open();
  EXPECT_EQ(wal->last_index(), LogIndex(5));
  EXPECT_EQ(*wal->read_all(), entries(1, 5, 1));
}

TEST_F(WalSimTest, TornWriteKeepsPrefix) {
  env_.set_options(SimEnvOptions{.torn_write_chance = 1.0});
  std::set<uint64_t> lasts;
  for (int round = 0; round < 30; ++round) {
    auto wal = open();
    ASSERT_TRUE(wal->compact(LogIndex(1000 * round)).is_ok());
    const uint64_t base = 1000 * round;
    ASSERT_TRUE(wal->append(entries(base + 1, base + 5, 1)).is_ok());
    ASSERT_TRUE(wal->sync().is_ok());
    ASSERT_TRUE(wal->append(entries(base + 6, base + 12, 1)).is_ok());
    ASSERT_TRUE(wal->append(entries(base + 13, base + 13, 1)).is_ok());  // flush
    wal.reset();
    env_.crash();
    wal = open();
    ASSERT_NE(wal, nullptr);
    const uint64_t last = wal->last_index().value() - base;
    ASSERT_GE(last, 5u);  // synced entries survive
    ASSERT_LE(last, 13u);
    EXPECT_EQ(*wal->entries(LogIndex(base + 1), wal->last_index().next()),
              entries(base + 1, base + last, 1));
    lasts.insert(last);
  }
  EXPECT_GT(lasts.size(), 3u);
}

// An overwrite (Raft §5.3) cuts the segment and appends the new suffix in
// place of the old one. If the cut were not durable before the new records
// are written, a crash that kept some of the new pages would leave valid
// records of the OLD suffix behind un-synced new ones, and recovery could not
// tell which sync batch they belong to. So the cut is synced first.
TEST_F(WalSimTest, OverwriteMakesTheCutDurableBeforeTheNewSuffixIsWritten) {
  auto wal = std::move(Wal::open(&env_, dir_, kOneSegment)).value();
  ASSERT_TRUE(wal->append(entries(1, 20, 1)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  const std::string path = join_path(dir_, segment_name(1, LogIndex(1)));
  ASSERT_EQ(env_.durable_size(path), 20 * kRecord);
  ASSERT_TRUE(wal->append(entries(10, 12, 2, 300)).is_ok());
  EXPECT_EQ(env_.durable_size(path), 9 * kRecord);
  EXPECT_EQ(wal->durable_index(), LogIndex(9));
  wal.reset();
  env_.crash();
  wal = std::move(Wal::open(&env_, dir_, kOneSegment)).value();
  EXPECT_EQ(*wal->read_all(), entries(1, 9, 1));
}

TEST_F(WalSimTest, FsyncFailureRefusesLaterWrites) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 5, 1)).is_ok());
  ASSERT_TRUE(wal->sync().is_ok());
  ASSERT_TRUE(wal->append(entries(6, 8, 1)).is_ok());
  env_.fail_next_syncs(1);
  Status s = wal->sync();
  EXPECT_EQ(s.code(), StatusCode::kFailStopped);
  EXPECT_NE(s.message().find("fdatasync"), std::string::npos) << s.message();
  EXPECT_FALSE(wal->healthy());
  EXPECT_EQ(wal->failure().code(), StatusCode::kIoError);
  EXPECT_EQ(wal->durable_index(), LogIndex(5));
  // Never retried into a success: the next sync would succeed at the disk,
  // but the log refuses.
  EXPECT_EQ(wal->sync().code(), StatusCode::kFailStopped);
  EXPECT_EQ(wal->append(entries(9, 9, 1)).code(), StatusCode::kFailStopped);
  EXPECT_EQ(wal->compact(LogIndex(3)).code(), StatusCode::kFailStopped);
  EXPECT_EQ(wal->durable_index(), LogIndex(5));
  EXPECT_EQ(wal->read_all()->size(), 8u);  // reads still work
}

TEST_F(WalSimTest, WriteFailureRefusesLaterWrites) {
  auto wal = open();
  env_.set_options(SimEnvOptions{.write_failure_rate = 1.0});
  ASSERT_TRUE(wal->append(entries(1, 2, 1)).is_ok());  // buffered
  EXPECT_EQ(wal->sync().code(), StatusCode::kFailStopped);
  env_.set_options(SimEnvOptions{});
  EXPECT_EQ(wal->append(entries(3, 3, 1)).code(), StatusCode::kFailStopped);
  EXPECT_FALSE(wal->healthy());
  // The failed write is not retried behind the caller's back, not even to serve a read.
  EXPECT_EQ(wal->read_all().status().code(), StatusCode::kFailStopped);
  EXPECT_EQ(env_.stats().bytes_written, 0u);
}

TEST_F(WalSimTest, RolloverSyncsTheFinishedSegment) {
  auto wal = open();
  ASSERT_TRUE(wal->append(entries(1, 100, 1)).is_ok());  // several segments, no sync()
  ASSERT_GT(wal->segment_count(), 2u);
  wal.reset();
  env_.crash();
  wal = open();  // every segment but the last was complete and synced
  EXPECT_GT(wal->last_index(), LogIndex(0));
  EXPECT_EQ(*wal->read_all(), entries(1, wal->last_index().value(), 1));
}

struct CrashLoopCounts {
  uint64_t crashes = 0;
  uint64_t tails_cut = 0;
  // Recoveries that dropped valid records of an un-synced batch found after
  // a lost page.
  uint64_t lost_pages_cut = 0;
};

// With `batched`, the log (owner 1) runs inside shared syncs (env.h,
// SharedSync) with a second log (owner 2) that is appended to and synced
// now and then; a shared sync is committed at random, and what counts as
// durable is the log's durable index at the last successful commit (lowered
// by overwrites), never what durable_index() says before it.
class BatchedRun {
 public:
  BatchedRun(SimEnv* env, WalOptions options, bool on) : env_(env), options_(options), on_(on) {
    if (on_) other_ = std::move(Wal::open(env_, "/w2", options_)).value();
    begin();
  }
  ~BatchedRun() {
    if (batch_) batch_->commit().ignore();
  }
  // After each call that may lower the log's durable index.
  void lowered(const Wal& wal) { durable_ = std::min(durable_, wal.durable_index().value()); }
  void synced(const Wal& wal, Prng& prng) {
    if (!on_) {
      durable_ = wal.durable_index().value();
      return;
    }
    if (prng.chance(0.5)) {  // the other group's job in the same batch
      batch_->set_owner(2);
      const uint64_t next = other_->last_index().value() + 1;
      ASSERT_TRUE(other_->append(entries(next, next + prng.uniform(0, 3), 1)).is_ok());
      ASSERT_TRUE(other_->sync().is_ok());
      batch_->set_owner(1);
    }
    if (prng.chance(0.5)) {
      ASSERT_TRUE(batch_->commit().is_ok());
      durable_ = wal.durable_index().value();
      other_durable_ = other_->durable_index().value();
      batch_.reset();
      begin();
    }
  }
  // Entries up to here survive a crash (those up to `snapshot` are covered
  // by the test's snapshot, durable by assumption).
  uint64_t durable(const Wal& wal, uint64_t snapshot) const {
    return std::max(on_ ? durable_ : wal.durable_index().value(), snapshot);
  }
  void crash(std::unique_ptr<Wal> wal) {
    wal.reset();
    other_.reset();
    env_->crash();
    if (batch_) batch_->commit().ignore();  // fails: the disk crashed first
    batch_.reset();
  }
  void reopened(const Wal& wal) {
    durable_ = wal.durable_index().value();
    if (!on_) return;
    auto o = Wal::open(env_, "/w2", options_);
    ASSERT_TRUE(o.is_ok()) << o.status().to_string();
    other_ = std::move(o).value();
    ASSERT_GE(other_->last_index().value(), other_durable_);
    other_durable_ = other_->durable_index().value();
    begin();
  }

 private:
  void begin() {
    if (!on_) return;
    batch_ = env_->begin_shared_sync();
    batch_->set_owner(1);
  }
  SimEnv* env_;
  WalOptions options_;
  bool on_;
  std::unique_ptr<SharedSync> batch_;
  std::unique_ptr<Wal> other_;
  uint64_t durable_ = 0;
  uint64_t other_durable_ = 0;
};

// Random appends (up to max_append entries), overwrites, syncs, compactions
// and crashes on a disk with the given crash faults. After every crash:
// recovery succeeds, every entry up to the durable index at the crash is
// back unchanged, every other entry is one that was appended at some point,
// and the log still reaches back to the snapshot.
void crash_randomly(uint64_t seed, SimEnvOptions disk, WalOptions options, uint64_t max_append,
                    CrashLoopCounts* counts, bool batched = false) {
  Prng prng(seed);
  SimEnv env(prng.fork(), disk);
  std::vector<core::Entry> model;                // the log as the last successful appends left it
  std::set<std::pair<uint64_t, uint64_t>> ever;  // (index, term) ever appended
  uint64_t snapshot = 0, term = 1;
  auto wal = std::move(Wal::open(&env, "/w", options)).value();
  BatchedRun run(&env, options, batched);
  for (int step = 0; step < 300; ++step) {
    if (::testing::Test::HasFatalFailure()) return;
    const uint64_t dice = prng.uniform(0, 99);
    const uint64_t last = wal->last_index().value();
    if (dice < 55) {
      // Append, sometimes overwriting a suffix after the snapshot.
      uint64_t from = last + 1;
      if (prng.chance(0.2) && last > snapshot) from = prng.uniform(snapshot + 1, last);
      if (from <= last) ++term;
      const auto es = entries(from, from + prng.uniform(0, max_append), term, prng.uniform(0, 600));
      ASSERT_TRUE(wal->append(es).is_ok());
      run.lowered(*wal);
      model.resize(from - snapshot - 1);
      for (const auto& e : es) {
        model.push_back(e);
        ever.insert({e.index.value(), e.term.value()});
      }
    } else if (dice < 80) {
      ASSERT_TRUE(wal->sync().is_ok());
      run.synced(*wal, prng);
    } else if (dice < 87) {
      // A snapshot at or below the durable index, or past the end.
      const uint64_t durable = run.durable(*wal, snapshot);
      const uint64_t through =
          prng.chance(0.2) ? last + prng.uniform(0, 5) : prng.uniform(snapshot, durable);
      if (through <= snapshot) continue;
      ASSERT_TRUE(wal->compact(LogIndex(through)).is_ok());
      run.lowered(*wal);
      model.erase(model.begin(),
                  model.begin() + std::min<uint64_t>(through - snapshot, model.size()));
      snapshot = through;
    } else {
      const uint64_t durable = run.durable(*wal, snapshot);
      run.crash(std::move(wal));
      ++counts->crashes;
      auto reopened = Wal::open(&env, "/w", options);
      ASSERT_TRUE(reopened.is_ok()) << reopened.status().to_string();
      wal = std::move(reopened).value();
      if (const auto& cut = wal->recovery().torn_tail) {
        ++counts->tails_cut;
        if (cut->records_dropped > 0) ++counts->lost_pages_cut;
      }
      ASSERT_TRUE(wal->compact(LogIndex(snapshot)).is_ok());  // the host's restart rule
      ASSERT_LE(wal->first_index().value(), snapshot + 1);
      ASSERT_GE(wal->last_index().value(), durable);
      const auto got = *wal->entries(LogIndex(snapshot + 1), wal->last_index().next());
      for (const auto& e : got) {
        if (e.index.value() <= durable) {
          ASSERT_EQ(e, model[e.index.value() - snapshot - 1]);
        } else {
          ASSERT_TRUE(ever.count({e.index.value(), e.term.value()}));
          ASSERT_EQ(e, entry(e.index.value(), e.term.value(), e.data.size()));
        }
      }
      model = got;
      run.reopened(*wal);
    }
  }
}

// Torn writes and partially kept directory operations.
TEST(WalCrashTest, RandomCrashesNeverLoseSyncedEntries) {
  CrashLoopCounts counts;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    crash_randomly(seed, SimEnvOptions{.torn_write_chance = 0.6, .dir_keep_chance = 0.6}, kSmall, 8,
                   &counts);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// Power losses that keep an arbitrary subset of the un-synced pages (later
// pages without earlier ones), in segments of many pages and sync batches of
// up to ~40 KiB. Recovery must always succeed — a lost page in the last
// batch is never mistaken for damage to synced data — and never lose a
// synced entry.
TEST(WalCrashTest, PowerLossKeepingAnySubsetOfUnsyncedPagesNeverLosesASyncedEntry) {
  constexpr WalOptions kPages{.segment_bytes = 256 << 10, .write_buffer_bytes = 8 << 10};
  CrashLoopCounts counts;
  for (uint64_t seed = 1; seed <= 200; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    crash_randomly(seed, SimEnvOptions{.dir_keep_chance = 0.6, .page_subset_chance = 1.0}, kPages,
                   60, &counts);
    if (::testing::Test::HasFatalFailure()) return;
  }
  // The loop reaches the case it is about: a valid record of the last batch
  // after a lost page, cut off with it.
  EXPECT_GT(counts.lost_pages_cut, 10u)
      << counts.crashes << " crashes, " << counts.tails_cut << " tails cut";
}

// The same inside shared syncs (env.h) with a second log: a sync inside one
// is only recorded, yet no crash before the commit may leave a log that
// recovery refuses (a segment rolled over, a suffix cut, segments removed —
// every "sync, then write" order is kept by the barrier), and nothing
// committed is lost.
TEST(WalCrashTest, CrashesInsideSharedSyncsNeverLoseCommittedEntries) {
  CrashLoopCounts counts;
  for (uint64_t seed = 1; seed <= 150; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    crash_randomly(
        seed,
        SimEnvOptions{.torn_write_chance = 0.5, .dir_keep_chance = 0.6, .page_subset_chance = 0.5},
        kSmall, 8, &counts, /*batched=*/true);
    if (::testing::Test::HasFatalFailure()) return;
  }
  EXPECT_GT(counts.crashes, 100u);
}

}  // namespace
}  // namespace chorus::storage
