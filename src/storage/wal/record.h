// The WAL record and segment-name formats (docs/formats/wal.md), shared by
// the Wal and wal_dump. Pure functions over bytes; no I/O.
//
//   record  = checksum:u64 length:u32 type:u8 reserved:3*u8(0) index:u64 term:u64 payload
//   checksum = XXH3-64 of every record byte after the checksum field
//   segment file name = "wal-" seq:16 decimal digits "-" first_index:20 decimal digits ".log"
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/ids.h"
#include "core/common/types.h"

namespace chorus::storage {

enum class RecordType : uint8_t {
  // 0 is never written: zero-filled space (a torn write) is not a record.
  kEntryNormal = 1,  // a core::Entry of type kNormal
  kEntryNoop = 2,    // a core::Entry of type kNoop
};

inline constexpr size_t kRecordHeaderBytes = 32;
// The largest payload a record may carry. Checked before a record is written
// and before anything is allocated for one on read, so a corrupt length field
// cannot make recovery allocate gigabytes.
inline constexpr uint32_t kMaxRecordPayloadBytes = 64u << 20;
// Torn-write detection looks at sector-sized pieces (see classify_bad_tail).
inline constexpr uint64_t kSectorBytes = 512;

// The bytes encode_record() appends for `e`.
inline size_t record_bytes(const core::Entry& e) {
  return kRecordHeaderBytes + e.data.size();
}
// Appends the record for `e`. Precondition: e.data.size() <= kMaxRecordPayloadBytes.
void encode_record(const core::Entry& e, std::string* out);

// Why bytes at an offset are not a valid record.
enum class RecordError : uint8_t {
  kNone = 0,
  kTruncatedHeader,   // fewer than kRecordHeaderBytes bytes remain
  kBadLength,         // length > kMaxRecordPayloadBytes
  kBadType,           // type byte is not a RecordType
  kBadReserved,       // reserved bytes are not zero
  kTruncatedPayload,  // the payload runs past the end of the file
  kChecksumMismatch,
};
std::string_view record_error_name(RecordError e);

// A decoded record; payload points into the decoded buffer.
struct RecordView {
  RecordType type = RecordType::kEntryNormal;
  LogIndex index;
  Term term;
  std::string_view payload;
  uint64_t checksum = 0;  // as stored
  size_t size = 0;        // header + payload bytes
};

// Decodes the record at the start of `buf` (which runs to the end of the
// segment). Returns kNone and fills *out, or the first reason it is invalid
// (checked in the order of the enum; *out is then partially filled).
RecordError decode_record(std::string_view buf, RecordView* out);
core::Entry to_entry(const RecordView& r);

// What a bad record in the last segment is (see classify_bad_tail).
struct TailVerdict {
  bool torn = false;   // true: a partial write that was never acknowledged; safe to cut
  std::string reason;  // why, for the recovery report or the corruption error
};

// Decides whether the bad record at `offset` of the LAST segment is a torn
// write (the crash happened while appending it: cut the file there) or
// damage to data that may have been acknowledged (stop). Torn only when all
// of these hold:
//   * no valid record starts anywhere after `offset` (a torn append leaves
//     nothing valid behind it; a valid record after the damage proves the
//     damage is in the middle of durable data);
//   * and one of:
//     - everything from `offset` to the end is zero bytes (the file was
//       extended but the data never landed);
//     - the header or the payload runs past the end of the file (a prefix of
//       the record), and the record does not verify with its length set to
//       what remains (which would mean a bit flip in the length field of a
//       complete record);
//     - the record is complete, ends at the end of the file (or only zeros
//       follow), and one of its sector-aligned 512-byte pieces is all zeros
//       (a sector that was never written, etcd's "torn entry" rule).
// Anything else — e.g. a complete final record whose checksum fails with no
// zero sector — is treated as corruption: the node stops rather than guess.
TailVerdict classify_bad_tail(std::string_view segment, uint64_t offset, RecordError error);

// Offset of the first valid record that starts after `offset`, if any.
std::optional<uint64_t> find_valid_record_after(std::string_view segment, uint64_t offset);

inline constexpr std::string_view kSegmentPrefix = "wal-";
inline constexpr std::string_view kSegmentSuffix = ".log";
// "wal-0000000000000001-00000000000000000001.log"
std::string segment_name(uint64_t seq, LogIndex first_index);
// Parses a segment file name; false if `name` is not one.
bool parse_segment_name(std::string_view name, uint64_t* seq, LogIndex* first_index);

}  // namespace chorus::storage
