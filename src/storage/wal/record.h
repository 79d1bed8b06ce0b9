// The WAL record and segment-name formats (docs/formats/wal.md), shared by
// the Wal and wal_dump. Pure functions over bytes; no I/O.
//
//   record  = checksum:u64 length:u32 type:u8 batch_offset:u24 index:u64 term:u64 payload
//   checksum = XXH3-64 of every record byte after the checksum field
//   batch_offset = records before this one in its sync batch (index - batch_offset
//                  is the first index of the batch); 0 in logs written before the
//                  field existed, which makes every such record a batch of its own
//   segment file name = "wal-" seq:16 decimal digits "-" first_index:20 decimal digits ".log"
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
// The largest batch_offset (a u24): a sync batch holds at most
// kMaxBatchOffset + 1 records; the Wal syncs before it would hold more.
inline constexpr uint32_t kMaxBatchOffset = (1u << 24) - 1;

// The bytes encode_record() appends for `e`.
inline size_t record_bytes(const core::Entry& e) {
  return kRecordHeaderBytes + e.data.size();
}
// Appends the record for `e`, the batch_offset-th record (from 0) of its sync
// batch. Preconditions: e.data.size() <= kMaxRecordPayloadBytes;
// batch_offset <= kMaxBatchOffset and batch_offset < e.index (the batch
// starts at index 1 or later).
void encode_record(const core::Entry& e, uint32_t batch_offset, std::string* out);

// Why bytes at an offset are not a valid record.
enum class RecordError : uint8_t {
  kNone = 0,
  kTruncatedHeader,   // fewer than kRecordHeaderBytes bytes remain
  kBadLength,         // length > kMaxRecordPayloadBytes
  kBadType,           // type byte is not a RecordType
  kBadBatchOffset,    // batch_offset >= index: the batch would start before index 1
  kTruncatedPayload,  // the payload runs past the end of the file
  kChecksumMismatch,
};
std::string_view record_error_name(RecordError e);

// A decoded record; payload points into the decoded buffer.
struct RecordView {
  RecordType type = RecordType::kEntryNormal;
  LogIndex index;
  Term term;
  uint32_t batch_offset = 0;
  std::string_view payload;
  uint64_t checksum = 0;  // as stored
  size_t size = 0;        // header + payload bytes

  // The first index of the record's sync batch. Invariant (decode_record): >= 1.
  LogIndex batch_first() const { return index - batch_offset; }
};

// Decodes the record at the start of `buf` (which runs to the end of the
// segment). Returns kNone and fills *out, or the first reason it is invalid
// (checked in the order of the enum; *out is then partially filled).
RecordError decode_record(std::string_view buf, RecordView* out);
core::Entry to_entry(const RecordView& r);

// Where a bad record of the last segment sits, for classify_bad_tail.
struct TailContext {
  LogIndex segment_first;  // the segment's first index (from its name)
  LogIndex expected;       // the index the bad record should have
  // batch_first() of the valid record just before the bad one; nullopt when
  // the bad record is the segment's first.
  std::optional<LogIndex> previous_batch_first;
};

// What a bad record in the last segment is (see classify_bad_tail).
struct TailVerdict {
  bool torn = false;   // true: part of a write that was never synced; safe to cut there
  std::string reason;  // why, for the recovery report or the corruption error
  // Valid records found after the bad one, all of its never-synced batch,
  // that the cut drops with it (0 unless torn).
  uint64_t records_dropped = 0;
};

// Decides whether the bad record at `offset` of the LAST segment is part of
// a write that never completed — cut the file there — or damage to data that
// may have been acknowledged — stop. The sync-batch rule (docs/formats/wal.md,
// "Recovery"): the writer writes a record of a new sync batch only after the
// fdatasync of the previous batch returned, and a batch never spans segments.
//   1. A valid record after the bad one whose batch began after where.expected
//      proves that the bad record's batch had been synced: stop.
//   2. Valid records after it that are not all of one batch, or whose batch
//      began before the bad record although the record before it is not in
//      that batch, contradict the rule: stop.
//   3. Otherwise the bad record is in the last batch written, which nothing
//      proves was synced. It is torn when the damage looks like a write that
//      never landed:
//      - everything from `offset` to the end is zero bytes;
//      - the header runs past the end of the file, or the payload does (and
//        nothing valid follows), and the record does not verify with its
//        length set to what remains (a bit flip in the length field);
//      - or a 512-byte sector it covers reads as zeros from the record (or
//        sector) start to the sector (or file) end: a sector that never
//        reached the disk past the durable end of the file (etcd's rule,
//        extended from the final record to any record of the last batch).
//      A complete record with no such sector (a bit flip) stops the node.
TailVerdict classify_bad_tail(std::string_view segment, uint64_t offset, RecordError error,
                              const TailContext& where);

// A valid record found by valid_records_after.
struct FoundRecord {
  uint64_t offset = 0;
  LogIndex index;
  LogIndex batch_first;
};
// Every valid record that starts after `offset` and can belong to the
// segment's log (index above where.expected, by at most the number of
// records that fit; batch starting at or after where.segment_first), in file
// order. A valid record is skipped whole; bad bytes one at a time.
std::vector<FoundRecord> valid_records_after(std::string_view segment, uint64_t offset,
                                             const TailContext& where);

inline constexpr std::string_view kSegmentPrefix = "wal-";
inline constexpr std::string_view kSegmentSuffix = ".log";
// "wal-0000000000000001-00000000000000000001.log"
std::string segment_name(uint64_t seq, LogIndex first_index);
// Parses a segment file name; false if `name` is not one.
bool parse_segment_name(std::string_view name, uint64_t* seq, LogIndex* first_index);

}  // namespace chorus::storage
