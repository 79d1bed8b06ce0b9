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
    encode_record(e, &buf);
    ASSERT_EQ(buf.size(), record_bytes(e));
    RecordView r;
    ASSERT_EQ(decode_record(buf, &r), RecordError::kNone);
    EXPECT_EQ(to_entry(r), e);
    EXPECT_EQ(r.size, buf.size());
  }
}

// The byte layout documented in docs/formats/wal.md ("worked example").
// If this test changes, the document must change with it.
TEST(RecordTest, ByteLayoutMatchesTheFormatDocument) {
  std::string buf;
  encode_record(entry(1, 2, "hello"), &buf);
  ASSERT_EQ(buf.size(), 37u);
  const std::string expected_after_checksum =
      "05000000"          // length 5
      "01"                // type 1 = entry/normal
      "000000"            // reserved
      "0100000000000000"  // index 1
      "0200000000000000"  // term 2
      "68656c6c6f";       // "hello"
  EXPECT_EQ(hex(buf.substr(8)), expected_after_checksum);
  EXPECT_EQ(get_u64(buf.data()), checksum64(std::string_view(buf).substr(8)));
  EXPECT_EQ(hex(buf.substr(0, 8)), "c64d48403eebf699");  // the example's checksum bytes
}

TEST(RecordTest, DecodeReportsEachDefect) {
  std::string good;
  encode_record(entry(1, 1, "payload"), &good);
  RecordView r;
  EXPECT_EQ(decode_record(std::string_view(good).substr(0, 31), &r), RecordError::kTruncatedHeader);
  EXPECT_EQ(decode_record(std::string_view(good).substr(0, good.size() - 1), &r),
            RecordError::kTruncatedPayload);
  std::string bad = good;
  bad[12] = 9;
  EXPECT_EQ(decode_record(bad, &r), RecordError::kBadType);
  bad = good;
  bad[14] = 1;
  EXPECT_EQ(decode_record(bad, &r), RecordError::kBadReserved);
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

std::string three_records() {
  std::string seg;
  for (uint64_t i = 1; i <= 3; ++i) encode_record(entry(i, 1, std::string(100, 'a')), &seg);
  return seg;
}

TEST(ClassifyBadTailTest, PartialHeaderIsTorn) {
  std::string seg = three_records();
  const uint64_t end = seg.size();
  encode_record(entry(4, 1, "zz"), &seg);
  seg.resize(end + 10);
  RecordView r;
  const auto err = decode_record(std::string_view(seg).substr(end), &r);
  EXPECT_TRUE(classify_bad_tail(seg, end, err).torn);
}

TEST(ClassifyBadTailTest, PartialPayloadIsTorn) {
  std::string seg = three_records();
  const uint64_t end = seg.size();
  encode_record(entry(4, 1, std::string(100, 'b')), &seg);
  seg.resize(seg.size() - 30);
  EXPECT_TRUE(classify_bad_tail(seg, end, RecordError::kTruncatedPayload).torn);
}

TEST(ClassifyBadTailTest, ZeroFilledTailIsTorn) {
  std::string seg = three_records();
  const uint64_t end = seg.size();
  seg.append(4096, '\0');
  EXPECT_TRUE(classify_bad_tail(seg, end, RecordError::kBadType).torn);
}

TEST(ClassifyBadTailTest, FinalRecordWithZeroSectorIsTorn) {
  std::string seg = three_records();
  const uint64_t end = seg.size();
  encode_record(entry(4, 1, std::string(2000, 'c')), &seg);
  // The sector containing file offsets [1024, 1536) never landed.
  std::fill(seg.begin() + 1024, seg.begin() + 1536, '\0');
  EXPECT_TRUE(classify_bad_tail(seg, end, RecordError::kChecksumMismatch).torn);
}

TEST(ClassifyBadTailTest, BitFlipInCompleteFinalRecordIsNotTorn) {
  std::string seg = three_records();
  const uint64_t last = 2 * seg.size() / 3;
  seg[last + 50] ^= 4;
  const auto v = classify_bad_tail(seg, last, RecordError::kChecksumMismatch);
  EXPECT_FALSE(v.torn) << v.reason;
}

TEST(ClassifyBadTailTest, LengthBitFlipInFinalRecordIsNotTorn) {
  std::string seg = three_records();
  const uint64_t last = 2 * seg.size() / 3;
  seg[last + 8 + 1] ^= 0x10;  // length 100 -> 4196: runs past the end of file
  RecordView r;
  ASSERT_EQ(decode_record(std::string_view(seg).substr(last), &r), RecordError::kTruncatedPayload);
  const auto v = classify_bad_tail(seg, last, RecordError::kTruncatedPayload);
  EXPECT_FALSE(v.torn) << v.reason;
}

TEST(ClassifyBadTailTest, DamageFollowedByAValidRecordIsNotTorn) {
  std::string seg = three_records();
  seg[40] ^= 1;  // payload of record 1
  const auto v = classify_bad_tail(seg, 0, RecordError::kChecksumMismatch);
  EXPECT_FALSE(v.torn);
  EXPECT_NE(v.reason.find("valid record follows"), std::string::npos);
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
