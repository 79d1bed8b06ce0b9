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
constexpr size_t kReservedAt = 13;
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

// Whether any sector-aligned piece of [begin, end) of the segment is all zeros.
bool has_zero_sector(std::string_view segment, uint64_t begin, uint64_t end) {
  uint64_t piece = begin;
  while (piece < end) {
    const uint64_t next = std::min(end, (piece / kSectorBytes + 1) * kSectorBytes);
    if (all_zero(segment.substr(piece, next - piece))) return true;
    piece = next;
  }
  return false;
}

}  // namespace

void encode_record(const core::Entry& e, std::string* out) {
  CHORUS_ASSERT(e.data.size() <= kMaxRecordPayloadBytes);
  const size_t start = out->size();
  out->resize(start + kRecordHeaderBytes);
  char* h = out->data() + start;
  const auto length = static_cast<uint32_t>(e.data.size());
  std::memcpy(h + kLengthAt, &length, sizeof length);
  h[kTypeAt] = static_cast<char>(e.type == core::EntryType::kNoop ? RecordType::kEntryNoop
                                                                  : RecordType::kEntryNormal);
  std::fill_n(h + kReservedAt, 3, '\0');
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
    case RecordError::kBadReserved:
      return "reserved bytes not zero";
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
  if (h[kReservedAt] != 0 || h[kReservedAt + 1] != 0 || h[kReservedAt + 2] != 0) {
    return RecordError::kBadReserved;
  }
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

std::optional<uint64_t> find_valid_record_after(std::string_view segment, uint64_t offset) {
  for (uint64_t at = offset + 1; at + kRecordHeaderBytes <= segment.size(); ++at) {
    // Cheap filters first: a valid type byte followed by three zero bytes.
    const auto type = static_cast<uint8_t>(segment[at + kTypeAt]);
    if (!valid_type(type) || segment[at + kReservedAt] != 0 || segment[at + kReservedAt + 1] != 0 ||
        segment[at + kReservedAt + 2] != 0) {
      continue;
    }
    RecordView r;
    if (decode_record(segment.substr(at), &r) == RecordError::kNone) return at;
  }
  return std::nullopt;
}

TailVerdict classify_bad_tail(std::string_view segment, uint64_t offset, RecordError error) {
  CHORUS_ASSERT(offset <= segment.size() && error != RecordError::kNone);
  if (auto later = find_valid_record_after(segment, offset)) {
    return {false, "a valid record follows at offset " + std::to_string(*later)};
  }
  const std::string_view rest = segment.substr(offset);
  if (all_zero(rest)) return {true, "zero-filled tail"};
  if (error == RecordError::kTruncatedHeader) return {true, "partial record header"};
  const uint32_t length = get_u32(rest.data() + kLengthAt);
  if (error == RecordError::kTruncatedPayload) {
    const auto remaining = static_cast<uint32_t>(rest.size() - kRecordHeaderBytes);
    if (checksum_with_length(rest, remaining) == get_u64(rest.data() + kChecksumAt)) {
      return {false, "length field damaged in a complete record"};
    }
    return {true, "partial record payload"};
  }
  if (error == RecordError::kChecksumMismatch || error == RecordError::kBadType ||
      error == RecordError::kBadReserved) {
    const uint64_t end = offset + kRecordHeaderBytes + std::min<uint64_t>(length, rest.size());
    const bool last = end >= segment.size() || all_zero(segment.substr(end));
    if (last && has_zero_sector(segment, offset, std::min<uint64_t>(end, segment.size()))) {
      return {true, "final record has a zero-filled sector"};
    }
  }
  return {false, std::string(record_error_name(error)) + " in a record that may be durable"};
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
