#include "storage/wal/record.h"

#include <gtest/gtest.h>

#include "storage/env/coding.h"

namespace chorus::storage {
namespace {

core::Entry entry(uint64_t index, uint64_t term, std::string data,
                  core::EntryType type = core::EntryType::kNormal) {
  return core::Entry{Term(term), LogIndex(index), type, std::move(data)};
}

std::string hex(std::string_view s) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

TEST(RecordTest, EncodeDecodeRoundTrip) {
  for (auto type : {core::EntryType::kNormal, core::EntryType::kNoop}) {
    const core::Entry e = entry(42, 7, std::string(300, 'x'), type);
    std::string buf;
    encode_record(e, 41, &buf);
    ASSERT_EQ(buf.size(), record_bytes(e));
    RecordView r;
    ASSERT_EQ(decode_record(buf, &r), RecordError::kNone);
    EXPECT_EQ(to_entry(r), e);
    EXPECT_EQ(r.size, buf.size());
    EXPECT_EQ(r.batch_offset, 41u);
    EXPECT_EQ(r.batch_first(), LogIndex(1));
  }
}

TEST(RecordTest, BatchOffsetIsAThreeByteLittleEndianField) {
  std::string buf;
  encode_record(entry(kMaxBatchOffset + 5, 1, ""), kMaxBatchOffset, &buf);
  EXPECT_EQ(hex(buf.substr(13, 3)), "ffffff");
  buf.clear();
  encode_record(entry(1000000, 1, ""), 0x030201, &buf);
  EXPECT_EQ(hex(buf.substr(13, 3)), "010203");
  RecordView r;
  ASSERT_EQ(decode_record(buf, &r), RecordError::kNone);
  EXPECT_EQ(r.batch_first(), LogIndex(1000000 - 0x030201));
}

// The byte layout documented in docs/formats/wal.md ("worked example").
// If this test changes, the document must change with it.
TEST(RecordTest, ByteLayoutMatchesTheFormatDocument) {
  std::string buf;
  encode_record(entry(1, 2, "hello"), 0, &buf);
  ASSERT_EQ(buf.size(), 37u);
  const std::string expected_after_checksum =
      "05000000"          // length 5
      "01"                // type 1 = entry/normal
      "000000"            // batch_offset 0: the first record of its sync batch
      "0100000000000000"  // index 1
      "0200000000000000"  // term 2
      "68656c6c6f";       // "hello"
  EXPECT_EQ(hex(buf.substr(8)), expected_after_checksum);
  EXPECT_EQ(get_u64(buf.data()), checksum64(std::string_view(buf).substr(8)));
  EXPECT_EQ(hex(buf.substr(0, 8)), "c64d48403eebf699");  // the example's checksum bytes
}

TEST(RecordTest, DecodeReportsEachDefect) {
  std::string good;
  encode_record(entry(1, 1, "payload"), 0, &good);
  RecordView r;
  EXPECT_EQ(decode_record(std::string_view(good).substr(0, 31), &r), RecordError::kTruncatedHeader);
  EXPECT_EQ(decode_record(std::string_view(good).substr(0, good.size() - 1), &r),
            RecordError::kTruncatedPayload);
  std::string bad = good;
  bad[12] = 9;
  EXPECT_EQ(decode_record(bad, &r), RecordError::kBadType);
  bad = good;
  bad[14] = 1;  // batch_offset 256 at index 1
  EXPECT_EQ(decode_record(bad, &r), RecordError::kBadBatchOffset);
  bad = good;
  bad[11] = 0x40;  // length > limit: rejected before anything is read or allocated
  EXPECT_EQ(decode_record(bad, &r), RecordError::kBadLength);
  bad = good;
  bad[good.size() - 1] ^= 1;
  EXPECT_EQ(decode_record(bad, &r), RecordError::kChecksumMismatch);
  bad = good;
  bad[20] ^= 1;  // index
  EXPECT_EQ(decode_record(bad, &r), RecordError::kChecksumMismatch);
}

// Records lo..hi with `bytes`-byte payloads, as sync batches starting at the
// given indexes (batch_starts[0] == lo).
std::string records(uint64_t lo, uint64_t hi, std::vector<uint64_t> batch_starts,
                    size_t bytes = 100) {
  std::string seg;
  for (uint64_t i = lo; i <= hi; ++i) {
    uint64_t first = lo;
    for (uint64_t b : batch_starts) {
      if (b <= i) first = b;
    }
    encode_record(entry(i, 1, std::string(bytes, 'a')), static_cast<uint32_t>(i - first), &seg);
  }
  return seg;
}
constexpr uint64_t kRecord = kRecordHeaderBytes + 100;

std::string three_records() {
  return records(1, 3, {1});
}

// The bad record at `offset` of a segment starting at index 1, all of whose
// records before it are valid and hold 100-byte payloads.
TailContext where(std::string_view seg, uint64_t offset) {
  TailContext w{LogIndex(1), LogIndex(offset / kRecord + 1), std::nullopt};
  if (offset >= kRecord) {
    RecordView prev;
    EXPECT_EQ(decode_record(seg.substr(offset - kRecord), &prev), RecordError::kNone);
    w.previous_batch_first = prev.batch_first();
  }
  return w;
}

TEST(ClassifyBadTailTest, PartialHeaderIsTorn) {
  std::string seg = three_records();
  const uint64_t end = seg.size();
  encode_record(entry(4, 1, "zz"), 3, &seg);
  seg.resize(end + 10);
  RecordView r;
  const auto err = decode_record(std::string_view(seg).substr(end), &r);
  EXPECT_TRUE(classify_bad_tail(seg, end, err, where(seg, end)).torn);
}

TEST(ClassifyBadTailTest, PartialPayloadIsTorn) {
  std::string seg = three_records();
  const uint64_t end = seg.size();
  encode_record(entry(4, 1, std::string(100, 'b')), 3, &seg);
  seg.resize(seg.size() - 30);
  EXPECT_TRUE(classify_bad_tail(seg, end, RecordError::kTruncatedPayload, where(seg, end)).torn);
}

TEST(ClassifyBadTailTest, ZeroFilledTailIsTorn) {
  std::string seg = three_records();
  const uint64_t end = seg.size();
  seg.append(4096, '\0');
  EXPECT_TRUE(classify_bad_tail(seg, end, RecordError::kBadType, where(seg, end)).torn);
}

TEST(ClassifyBadTailTest, FinalRecordWithZeroSectorIsTorn) {
  std::string seg = three_records();
  const uint64_t end = seg.size();
  encode_record(entry(4, 1, std::string(2000, 'c')), 3, &seg);
  // The sector containing file offsets [1024, 1536) never landed.
  std::fill(seg.begin() + 1024, seg.begin() + 1536, '\0');
  TailContext w{LogIndex(1), LogIndex(4), LogIndex(1)};
  EXPECT_TRUE(classify_bad_tail(seg, end, RecordError::kChecksumMismatch, w).torn);
}

TEST(ClassifyBadTailTest, BitFlipInCompleteFinalRecordIsNotTorn) {
  std::string seg = three_records();
  const uint64_t last = 2 * seg.size() / 3;
  seg[last + 50] ^= 4;
  const auto v = classify_bad_tail(seg, last, RecordError::kChecksumMismatch, where(seg, last));
  EXPECT_FALSE(v.torn) << v.reason;
}

TEST(ClassifyBadTailTest, LengthBitFlipInFinalRecordIsNotTorn) {
  std::string seg = three_records();
  const uint64_t last = 2 * seg.size() / 3;
  seg[last + 8 + 1] ^= 0x10;  // length 100 -> 4196: runs past the end of file
  RecordView r;
  ASSERT_EQ(decode_record(std::string_view(seg).substr(last), &r), RecordError::kTruncatedPayload);
  const auto v = classify_bad_tail(seg, last, RecordError::kTruncatedPayload, where(seg, last));
  EXPECT_FALSE(v.torn) << v.reason;
}

TEST(ClassifyBadTailTest, DamageFollowedByAValidRecordIsNotTorn) {
  std::string seg = three_records();
  seg[40] ^= 1;  // payload of record 1
  const auto v = classify_bad_tail(seg, 0, RecordError::kChecksumMismatch, where(seg, 0));
  EXPECT_FALSE(v.torn);
  EXPECT_NE(v.reason.find("valid record follows"), std::string::npos);
}

// Records 1..20, one sync batch; the sector [512, 1024) never landed, which
// damages records 4..8 (offsets 396..1055); 9..20 are valid and of the same
// batch, so nothing shows the batch was synced.
TEST(ClassifyBadTailTest, LostSectorFollowedByRecordsOfTheSameBatchIsTorn) {
  std::string seg = records(1, 20, {1});
  std::fill(seg.begin() + 512, seg.begin() + 1024, '\0');
  const uint64_t bad = 3 * kRecord;
  RecordView r;
  ASSERT_EQ(decode_record(std::string_view(seg).substr(bad), &r), RecordError::kChecksumMismatch);
  const auto v = classify_bad_tail(seg, bad, RecordError::kChecksumMismatch, where(seg, bad));
  EXPECT_TRUE(v.torn) << v.reason;
  EXPECT_EQ(v.records_dropped, 12u);
  EXPECT_NE(v.reason.find("zero-filled sector at offset 512"), std::string::npos) << v.reason;
  EXPECT_NE(v.reason.find("indexes 9..20"), std::string::npos) << v.reason;
}

// The same lost sector, but records 11..20 are a later sync batch: it was
// written only after the batch holding record 4 had been synced.
TEST(ClassifyBadTailTest, LostSectorFollowedByALaterBatchIsNotTorn) {
  std::string seg = records(1, 20, {1, 11});
  std::fill(seg.begin() + 512, seg.begin() + 1024, '\0');
  const uint64_t bad = 3 * kRecord;
  const auto v = classify_bad_tail(seg, bad, RecordError::kChecksumMismatch, where(seg, bad));
  EXPECT_FALSE(v.torn);
  EXPECT_NE(v.reason.find("later sync batch follows at offset " + std::to_string(10 * kRecord)),
            std::string::npos)
      << v.reason;
}

// A log written before records carried a batch offset (all zero) reads as
// one batch per record: any valid record after damage proves a sync, exactly
// the rule such logs were written under.
TEST(ClassifyBadTailTest, LostSectorInALogWithoutBatchOffsetsIsNotTorn) {
  std::string seg;
  for (uint64_t i = 1; i <= 20; ++i) encode_record(entry(i, 1, std::string(100, 'a')), 0, &seg);
  std::fill(seg.begin() + 512, seg.begin() + 1024, '\0');
  const uint64_t bad = 3 * kRecord;
  const auto v = classify_bad_tail(seg, bad, RecordError::kChecksumMismatch, where(seg, bad));
  EXPECT_FALSE(v.torn);
  EXPECT_NE(v.reason.find("later sync batch"), std::string::npos) << v.reason;
}

// Records after the damage say their batch began at index 2, before the bad
// record 5, yet record 4 (before the damage) is in the batch from index 1:
// the batch fields contradict each other, which no crash produces.
TEST(ClassifyBadTailTest, ValidRecordsWhoseBatchExcludesTheRecordBeforeTheDamageAreNotTorn) {
  std::string seg = records(1, 4, {1});
  for (uint64_t i = 5; i <= 10; ++i) {
    encode_record(entry(i, 1, std::string(100, 'a')), static_cast<uint32_t>(i - 2), &seg);
  }
  const uint64_t bad = 4 * kRecord;
  std::fill(seg.begin() + static_cast<ptrdiff_t>(bad), seg.begin() + 1024, '\0');
  const auto v = classify_bad_tail(seg, bad, RecordError::kBadType, where(seg, bad));
  EXPECT_FALSE(v.torn);
  EXPECT_NE(v.reason.find("not in that batch"), std::string::npos) << v.reason;
}

// A bit flip (no zero sector) in a record of the last batch, with valid
// records of that batch after it: not the signature of a lost write, and the
// batch may have been synced. Stop.
TEST(ClassifyBadTailTest, BitFlipFollowedByRecordsOfTheSameBatchIsNotTorn) {
  std::string seg = records(1, 20, {1});
  const uint64_t bad = 5 * kRecord;
  seg[bad + 60] ^= 0x10;
  const auto v = classify_bad_tail(seg, bad, RecordError::kChecksumMismatch, where(seg, bad));
  EXPECT_FALSE(v.torn);
  EXPECT_NE(v.reason.find("a valid record follows at offset " + std::to_string(bad + kRecord)),
            std::string::npos)
      << v.reason;
}

TEST(SegmentNameTest, RoundTripAndRejects) {
  const std::string name = segment_name(3, LogIndex(1234));
  EXPECT_EQ(name, "wal-0000000000000003-00000000000000001234.log");
  uint64_t seq = 0;
  LogIndex first;
  ASSERT_TRUE(parse_segment_name(name, &seq, &first));
  EXPECT_EQ(seq, 3u);
  EXPECT_EQ(first, LogIndex(1234));
  EXPECT_FALSE(parse_segment_name("wal-000000000000000x-00000000000000001234.log", &seq, &first));
  EXPECT_FALSE(
      parse_segment_name("wal-0000000000000003-00000000000000001234.log.tmp", &seq, &first));
  EXPECT_FALSE(parse_segment_name("meta", &seq, &first));
}

}  // namespace
}  // namespace chorus::storage
