#include "storage/wal/record.h"

#include <algorithm>
#include <cstdio>

#include "base/assert.h"
#include "storage/env/coding.h"

namespace chorus::storage {
namespace {

// Field offsets inside the 32-byte header.
constexpr size_t kChecksumAt = 0;
constexpr size_t kLengthAt = 8;
constexpr size_t kTypeAt = 12;
constexpr size_t kBatchOffsetAt = 13;  // u24, little-endian
constexpr size_t kIndexAt = 16;
constexpr size_t kTermAt = 24;
static_assert(kTermAt + 8 == kRecordHeaderBytes);

bool valid_type(uint8_t t) {
  return t == static_cast<uint8_t>(RecordType::kEntryNormal) ||
         t == static_cast<uint8_t>(RecordType::kEntryNoop);
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

// XXH3-64 of the record's bytes after the checksum field.
// Precondition: rec holds at least kRecordHeaderBytes + length bytes.
uint64_t record_checksum(std::string_view rec, uint32_t length) {
  return checksum64(rec.substr(kLengthAt, kRecordHeaderBytes - kLengthAt + length));
}

// The checksum the record would have if its length field said `length`
// (used only on the recovery error path).
uint64_t checksum_with_length(std::string_view rec, uint32_t length) {
  std::string copy(rec.substr(0, kRecordHeaderBytes + length));
  std::memcpy(copy.data() + kLengthAt, &length, sizeof length);
  return record_checksum(copy, length);
}

uint32_t get_u24(const char* p) {
  return static_cast<uint32_t>(static_cast<uint8_t>(p[0])) |
         static_cast<uint32_t>(static_cast<uint8_t>(p[1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(p[2])) << 16;
}

// The first sector intersecting [begin, end) that reads as zeros from
// max(begin, its start) to its end (or the end of the file): what a sector
// that never reached the disk reads as past the durable end of the file. The
// whole rest of the sector is checked, not just the part inside [begin, end):
// a sector is written or lost as a unit, so a lost one cannot hold the
// non-zero start of the next record.
std::optional<uint64_t> lost_sector(std::string_view segment, uint64_t begin, uint64_t end) {
  for (uint64_t sector = begin / kSectorBytes * kSectorBytes; sector < end;
       sector += kSectorBytes) {
    const uint64_t lo = std::max(begin, sector);
    const uint64_t hi = std::min<uint64_t>(sector + kSectorBytes, segment.size());
    if (lo < hi && all_zero(segment.substr(lo, hi - lo))) return lo;
  }
  return std::nullopt;
}

std::string n(uint64_t v) {
  return std::to_string(v);
}

}  // namespace

void encode_record(const core::Entry& e, uint32_t batch_offset, std::string* out) {
  CHORUS_ASSERT(e.data.size() <= kMaxRecordPayloadBytes);
  CHORUS_ASSERT(batch_offset <= kMaxBatchOffset && batch_offset < e.index.value());
  const size_t start = out->size();
  out->resize(start + kRecordHeaderBytes);
  char* h = out->data() + start;
  const auto length = static_cast<uint32_t>(e.data.size());
  std::memcpy(h + kLengthAt, &length, sizeof length);
  h[kTypeAt] = static_cast<char>(e.type == core::EntryType::kNoop ? RecordType::kEntryNoop
                                                                  : RecordType::kEntryNormal);
  h[kBatchOffsetAt] = static_cast<char>(batch_offset & 0xff);
  h[kBatchOffsetAt + 1] = static_cast<char>((batch_offset >> 8) & 0xff);
  h[kBatchOffsetAt + 2] = static_cast<char>((batch_offset >> 16) & 0xff);
  store_u64(h + kIndexAt, e.index.value());
  store_u64(h + kTermAt, e.term.value());
  out->append(e.data);
  const std::string_view rec(out->data() + start, kRecordHeaderBytes + e.data.size());
  store_u64(out->data() + start + kChecksumAt, record_checksum(rec, length));
}

std::string_view record_error_name(RecordError e) {
  switch (e) {
    case RecordError::kNone:
      return "ok";
    case RecordError::kTruncatedHeader:
      return "truncated header";
    case RecordError::kBadLength:
      return "length over limit";
    case RecordError::kBadType:
      return "unknown record type";
    case RecordError::kBadBatchOffset:
      return "batch offset reaches before index 1";
    case RecordError::kTruncatedPayload:
      return "payload runs past end of file";
    case RecordError::kChecksumMismatch:
      return "checksum mismatch";
  }
  return "?";
}

RecordError decode_record(std::string_view buf, RecordView* out) {
  if (buf.size() < kRecordHeaderBytes) return RecordError::kTruncatedHeader;
  const char* h = buf.data();
  out->checksum = get_u64(h + kChecksumAt);
  const uint32_t length = get_u32(h + kLengthAt);
  out->index = LogIndex(get_u64(h + kIndexAt));
  out->term = Term(get_u64(h + kTermAt));
  out->size = kRecordHeaderBytes + length;
  if (length > kMaxRecordPayloadBytes) return RecordError::kBadLength;
  const auto type = static_cast<uint8_t>(h[kTypeAt]);
  if (!valid_type(type)) return RecordError::kBadType;
  out->type = static_cast<RecordType>(type);
  out->batch_offset = get_u24(h + kBatchOffsetAt);
  if (out->batch_offset >= out->index.value()) return RecordError::kBadBatchOffset;
  if (buf.size() - kRecordHeaderBytes < length) return RecordError::kTruncatedPayload;
  if (record_checksum(buf, length) != out->checksum) return RecordError::kChecksumMismatch;
  out->payload = buf.substr(kRecordHeaderBytes, length);
  return RecordError::kNone;
}

core::Entry to_entry(const RecordView& r) {
  return core::Entry{
      r.term, r.index,
      r.type == RecordType::kEntryNoop ? core::EntryType::kNoop : core::EntryType::kNormal,
      std::string(r.payload)};
}

std::vector<FoundRecord> valid_records_after(std::string_view segment, uint64_t offset,
                                             const TailContext& where) {
  const uint64_t max_records = segment.size() / kRecordHeaderBytes + 1;
  const uint64_t expected = where.expected.value();
  std::vector<FoundRecord> out;
  uint64_t at = offset + 1;
  while (at + kRecordHeaderBytes <= segment.size()) {
    // Cheap filters first: a valid type byte and an index a record after the
    // bad one can have. Random bytes almost never pass the index filter, so
    // the checksum is rarely computed over bytes that are not a record.
    const char* h = segment.data() + at;
    const uint64_t index = get_u64(h + kIndexAt);
    if (valid_type(static_cast<uint8_t>(h[kTypeAt])) && index > expected &&
        index - expected <= max_records) {
      RecordView r;
      if (decode_record(segment.substr(at), &r) == RecordError::kNone &&
          r.batch_first() >= where.segment_first) {
        out.push_back(FoundRecord{at, r.index, r.batch_first()});
        at += r.size;
        continue;
      }
    }
    ++at;
  }
  return out;
}

namespace {

TailVerdict stop(std::string reason) {
  return TailVerdict{false, std::move(reason), 0};
}

// Rules 1 and 2 of classify_bad_tail: what the valid records after the bad
// one say about its sync batch. nullopt: it is in the last batch written.
std::optional<TailVerdict> check_later_batches(const std::vector<FoundRecord>& later,
                                               const TailContext& where) {
  for (const FoundRecord& r : later) {
    if (r.batch_first > where.expected) {
      return stop("a valid record of a later sync batch follows at offset " + n(r.offset) +
                  " (index " + n(r.index.value()) + ", batch from index " +
                  n(r.batch_first.value()) + "), so the batch holding index " +
                  n(where.expected.value()) + " had been synced");
    }
  }
  const LogIndex batch = later.front().batch_first;
  for (size_t i = 1; i < later.size(); ++i) {
    if (later[i].batch_first != batch || later[i].index <= later[i - 1].index) {
      return stop("the valid records at offsets " + n(later[i - 1].offset) + " and " +
                  n(later[i].offset) + " after it do not follow each other in one sync batch");
    }
  }
  if (batch < where.expected && where.previous_batch_first != batch) {
    return stop("a valid record follows at offset " + n(later.front().offset) +
                " whose sync batch began at index " + n(batch.value()) +
                ", but the record before the damage is not in that batch");
  }
  return std::nullopt;
}

// Rule 3 of classify_bad_tail: whether the damage at `offset` looks like a
// write that never landed. `limit` is the offset of the first valid record
// after it, or the end of the file.
TailVerdict classify_damage(std::string_view segment, uint64_t offset, RecordError error,
                            uint64_t limit) {
  const std::string_view rest = segment.substr(offset);
  const bool at_end = limit == segment.size();
  if (at_end && all_zero(rest)) return {true, "zero-filled tail", 0};
  if (error == RecordError::kTruncatedHeader) return {true, "partial record header", 0};
  const uint32_t length = get_u32(rest.data() + kLengthAt);
  if (error == RecordError::kTruncatedPayload) {
    if (!at_end) {
      return stop("its length runs over the valid record at offset " + n(limit) +
                  " (zeros never make a length larger)");
    }
    const auto remaining = static_cast<uint32_t>(rest.size() - kRecordHeaderBytes);
    if (checksum_with_length(rest, remaining) == get_u64(rest.data() + kChecksumAt)) {
      return stop("length field damaged in a complete record");
    }
    return {true, "partial record payload", 0};
  }
  if (error == RecordError::kChecksumMismatch || error == RecordError::kBadType ||
      error == RecordError::kBadBatchOffset) {
    const uint64_t end = std::min<uint64_t>(offset + kRecordHeaderBytes + length, segment.size());
    if (auto sector = lost_sector(segment, offset, end)) {
      return {true, "zero-filled sector at offset " + n(*sector) + " (a write that never landed)",
              0};
    }
  }
  std::string reason = std::string(record_error_name(error)) + " in a record that may be durable";
  if (!at_end) reason += ", and a valid record follows at offset " + n(limit);
  return stop(reason);
}

}  // namespace

TailVerdict classify_bad_tail(std::string_view segment, uint64_t offset, RecordError error,
                              const TailContext& where) {
  CHORUS_ASSERT(offset <= segment.size() && error != RecordError::kNone);
  CHORUS_ASSERT(where.segment_first <= where.expected);
  CHORUS_ASSERT(!where.previous_batch_first || *where.previous_batch_first < where.expected);
  const std::vector<FoundRecord> later = valid_records_after(segment, offset, where);
  if (!later.empty()) {
    if (auto verdict = check_later_batches(later, where)) return *verdict;
  }
  TailVerdict verdict =
      classify_damage(segment, offset, error, later.empty() ? segment.size() : later[0].offset);
  if (verdict.torn && !later.empty()) {
    verdict.records_dropped = later.size();
    verdict.reason += "; the " + n(later.size()) + " valid records after it (indexes " +
                      n(later.front().index.value()) + ".." + n(later.back().index.value()) +
                      ") are of its sync batch (from index " +
                      n(later.front().batch_first.value()) +
                      "), the last one written, which nothing shows was synced";
  }
  return verdict;
}

std::string segment_name(uint64_t seq, LogIndex first_index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "wal-%016llu-%020llu.log", static_cast<unsigned long long>(seq),
                static_cast<unsigned long long>(first_index.value()));
  return buf;
}

bool parse_segment_name(std::string_view name, uint64_t* seq, LogIndex* first_index) {
  // wal- + 16 digits + '-' + 20 digits + .log
  constexpr size_t kLen = 4 + 16 + 1 + 20 + 4;
  if (name.size() != kLen || !name.starts_with(kSegmentPrefix) || !name.ends_with(kSegmentSuffix) ||
      name[20] != '-') {
    return false;
  }
  auto digits = [](std::string_view s, uint64_t* v) {
    uint64_t x = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      const uint64_t d = static_cast<uint64_t>(c - '0');
      if (x > (UINT64_MAX - d) / 10) return false;
      x = x * 10 + d;
    }
    *v = x;
    return true;
  };
  uint64_t first = 0;
  if (!digits(name.substr(4, 16), seq) || !digits(name.substr(21, 20), &first)) return false;
  *first_index = LogIndex(first);
  return true;
}

}  // namespace chorus::storage
