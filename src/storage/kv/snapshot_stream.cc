#include "storage/kv/snapshot_stream.h"

#include <algorithm>
#include <climits>

#include "base/assert.h"
#include "storage/kv/command_logic.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace chorus::kv {

struct HashState {
  HashState() { XXH3_64bits_reset(&state); }
  void update(std::string_view bytes) { XXH3_64bits_update(&state, bytes.data(), bytes.size()); }
  uint64_t digest() const { return XXH3_64bits_digest(&state); }
  XXH3_state_t state;
};

namespace {

// Field tags of SnapshotRecord and KeyValue (wire type 2 = length-delimited, 0 = varint).
constexpr char kTagRecordKv = (2 << 3) | 2;
constexpr char kTagKvKey = (1 << 3) | 2;
constexpr char kTagKvValue = (2 << 3) | 2;
constexpr char kTagKvExpire = (3 << 3) | 0;
// A frame's record: one key and value plus a few bytes of tags and lengths.
constexpr size_t kRecordOverheadBytesMax = 64;

size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void put_varint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

std::string record_bytes(const kvpb::SnapshotRecord& rec) {
  std::string out;
  CHORUS_ASSERT(rec.SerializeToString(&out));
  return out;
}

}  // namespace

// ---- SnapshotWriter ---------------------------------------------------------

SnapshotWriter::SnapshotWriter(const Sink& sink, size_t chunk_bytes)
    : sink_(sink), chunk_bytes_(std::max<size_t>(chunk_bytes, 1)), hash_(new HashState) {}

SnapshotWriter::~SnapshotWriter() = default;

Status SnapshotWriter::begin(LogIndex applied_index, int64_t now_ms) {
  buf_.append(kSnapshotMagic);
  hash_->update(kSnapshotMagic);
  kvpb::SnapshotRecord rec;
  rec.mutable_header()->set_format_version(kSnapshotFormatVersion);
  rec.mutable_header()->set_applied_index(applied_index.value());
  rec.mutable_header()->set_now_ms(now_ms);
  return add_frame(record_bytes(rec));
}

Status SnapshotWriter::add_kv(std::string_view key, std::string_view value, int64_t expire_at_ms) {
  // Encoded by hand (the hot path of a snapshot, no copy into a message); the
  // bytes are what SnapshotRecord{kv: KeyValue{...}} serializes to: proto3
  // leaves out empty and zero fields.
  size_t kv_len = 0;
  if (!key.empty()) kv_len += 1 + varint_size(key.size()) + key.size();
  if (!value.empty()) kv_len += 1 + varint_size(value.size()) + value.size();
  const auto expire = static_cast<uint64_t>(expire_at_ms);
  if (expire != 0) kv_len += 1 + varint_size(expire);
  const size_t record_len = 1 + varint_size(kv_len) + kv_len;
  const size_t start = buf_.size();
  put_varint(&buf_, record_len);
  buf_.push_back(kTagRecordKv);
  put_varint(&buf_, kv_len);
  if (!key.empty()) {
    buf_.push_back(kTagKvKey);
    put_varint(&buf_, key.size());
    buf_.append(key);
  }
  if (!value.empty()) {
    buf_.push_back(kTagKvValue);
    put_varint(&buf_, value.size());
    buf_.append(value);
  }
  if (expire != 0) {
    buf_.push_back(kTagKvExpire);
    put_varint(&buf_, expire);
  }
  hash_->update(std::string_view(buf_).substr(start));
  ++kv_count_;
  return buf_.size() >= chunk_bytes_ ? emit() : Status::ok();
}

Status SnapshotWriter::add_session(const kvpb::Session& s) {
  kvpb::SnapshotRecord rec;
  *rec.mutable_session() = s;
  ++session_count_;
  return add_frame(record_bytes(rec));
}

Status SnapshotWriter::finish() {
  kvpb::SnapshotRecord rec;
  rec.mutable_trailer()->set_kv_count(kv_count_);
  rec.mutable_trailer()->set_session_count(session_count_);
  rec.mutable_trailer()->set_xxh3(hash_->digest());
  const std::string trailer = record_bytes(rec);
  put_varint(&buf_, trailer.size());  // the trailer's frame is not hashed
  buf_.append(trailer);
  CHORUS_RETURN_IF_ERROR(emit());
  if (!buf_.empty()) CHORUS_RETURN_IF_ERROR(sink_(buf_));
  buf_.clear();
  return Status::ok();
}

Status SnapshotWriter::add_frame(std::string_view record) {
  const size_t start = buf_.size();
  put_varint(&buf_, record.size());
  buf_.append(record);
  hash_->update(std::string_view(buf_).substr(start));
  return buf_.size() >= chunk_bytes_ ? emit() : Status::ok();
}

// Hands every full chunk to the sink: every chunk but the last is exactly
// chunk_bytes_ long.
Status SnapshotWriter::emit() {
  size_t off = 0;
  while (buf_.size() - off >= chunk_bytes_) {
    CHORUS_RETURN_IF_ERROR(sink_(std::string_view(buf_).substr(off, chunk_bytes_)));
    off += chunk_bytes_;
  }
  buf_.erase(0, off);
  return Status::ok();
}

// ---- SnapshotReader ---------------------------------------------------------

SnapshotReader::SnapshotReader(const Source& source, Bounds bounds)
    : source_(source), bounds_(bounds), hash_(new HashState) {}

SnapshotReader::~SnapshotReader() = default;

Status SnapshotReader::corrupt(const std::string& what) const {
  return Status::corruption("snapshot stream offset " + std::to_string(offset_ + pos_) + ": " +
                            what);
}

Status SnapshotReader::fill(size_t bytes) {
  while (buf_.size() - pos_ < bytes) {
    if (source_done_) return corrupt("truncated (the stream ended inside a record)");
    if (pos_ > 0) {  // drop consumed bytes before growing
      buf_.erase(0, pos_);
      offset_ += pos_;
      pos_ = 0;
    }
    CHORUS_ASSIGN_OR_RETURN(std::optional<std::string> chunk, source_());
    if (!chunk) {
      source_done_ = true;
    } else if (buf_.empty()) {
      buf_ = std::move(*chunk);
    } else {
      buf_.append(*chunk);
    }
  }
  return Status::ok();
}

// The frame at pos_, consumed, or std::nullopt at a clean end of the stream.
// The views live until the next fill().
Result<std::optional<SnapshotReader::Frame>> SnapshotReader::read_frame() {
  uint64_t len = 0;
  size_t n = 0;
  for (;; ++n) {
    if (n == 5) return corrupt("bad frame length");
    if (buf_.size() - pos_ <= n) {
      Status st = fill(n + 1);
      if (!st.is_ok()) {
        if (n == 0 && source_done_ && pos_ == buf_.size()) return std::optional<Frame>();
        return st;
      }
    }
    const auto byte = static_cast<unsigned char>(buf_[pos_ + n]);
    len |= static_cast<uint64_t>(byte & 0x7f) << (7 * n);
    if ((byte & 0x80) == 0) break;
  }
  const size_t prefix = n + 1;
  const uint64_t max_len =
      bounds_.key_bytes_max + bounds_.value_bytes_max + kRecordOverheadBytesMax;
  if (len == 0 || len > max_len || len > static_cast<uint64_t>(INT_MAX)) {
    return corrupt("frame length " + std::to_string(len) + " out of range");
  }
  CHORUS_RETURN_IF_ERROR(fill(prefix + len));
  Frame f;
  f.bytes = std::string_view(buf_.data() + pos_, prefix + len);
  f.record = f.bytes.substr(prefix);
  pos_ += f.bytes.size();
  return std::optional<Frame>(f);
}

Result<kvpb::SnapshotHeader> SnapshotReader::read_header() {
  CHORUS_ASSERT(offset_ == 0 && pos_ == 0);
  Status st = fill(kSnapshotMagic.size());
  if (!st.is_ok()) return corrupt("not a key-value snapshot (too short for the magic)");
  if (std::string_view(buf_).substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return corrupt("not a key-value snapshot (bad magic)");
  }
  hash_->update(kSnapshotMagic);
  pos_ += kSnapshotMagic.size();
  CHORUS_ASSIGN_OR_RETURN(std::optional<Frame> frame, read_frame());
  if (!frame) return corrupt("truncated (no header)");
  kvpb::SnapshotRecord rec;
  if (!rec.ParseFromArray(frame->record.data(), static_cast<int>(frame->record.size())) ||
      !rec.has_header()) {
    return corrupt("the first record is not a header");
  }
  if (rec.header().format_version() != kSnapshotFormatVersion) {
    return corrupt("unknown format version " + std::to_string(rec.header().format_version()));
  }
  hash_->update(frame->bytes);
  header_ = rec.header();
  return header_;
}

Result<std::optional<kvpb::SnapshotRecord>> SnapshotReader::next() {
  CHORUS_ASSERT(!done_);
  CHORUS_ASSIGN_OR_RETURN(std::optional<Frame> frame, read_frame());
  if (!frame) return corrupt("truncated (no trailer)");
  kvpb::SnapshotRecord rec;
  if (!rec.ParseFromArray(frame->record.data(), static_cast<int>(frame->record.size()))) {
    return corrupt("record does not parse");
  }
  switch (rec.record_case()) {
    case kvpb::SnapshotRecord::kKv: {
      const kvpb::KeyValue& kv = rec.kv();
      if (in_sessions_) return corrupt("key-value record after a session record");
      if (kv.key().size() > bounds_.key_bytes_max || kv.value().size() > bounds_.value_bytes_max) {
        return corrupt("key or value over the limits");
      }
      if (last_key_ && kv.key() <= *last_key_) return corrupt("keys out of order");
      if (!is_live(kv.expire_at_ms(), header_.now_ms())) return corrupt("a dead key");
      last_key_ = kv.key();
      ++kv_count_;
      break;
    }
    case kvpb::SnapshotRecord::kSession: {
      const kvpb::Session& s = rec.session();
      in_sessions_ = true;
      if (s.client_id() <= last_client_) return corrupt("sessions out of order");
      if (s.last_index() > header_.applied_index()) {
        return corrupt("a session applied after the snapshot's index");
      }
      last_client_ = s.client_id();
      ++session_count_;
      break;
    }
    case kvpb::SnapshotRecord::kTrailer: {
      CHORUS_RETURN_IF_ERROR(check_trailer(rec.trailer(), hash_->digest()));
      done_ = true;
      return std::optional<kvpb::SnapshotRecord>();
    }
    case kvpb::SnapshotRecord::kHeader:
    case kvpb::SnapshotRecord::RECORD_NOT_SET:
      return corrupt("unexpected record");
  }
  hash_->update(frame->bytes);
  return std::optional<kvpb::SnapshotRecord>(std::move(rec));
}

Status SnapshotReader::check_trailer(const kvpb::SnapshotTrailer& t, uint64_t hash_before) {
  if (t.kv_count() != kv_count_ || t.session_count() != session_count_) {
    return corrupt("trailer counts " + std::to_string(t.kv_count()) + "/" +
                   std::to_string(t.session_count()) + " but the stream holds " +
                   std::to_string(kv_count_) + "/" + std::to_string(session_count_));
  }
  if (t.xxh3() != hash_before) return corrupt("checksum mismatch");
  // Nothing may follow the trailer (empty chunks are fine).
  while (pos_ == buf_.size() && !source_done_) {
    CHORUS_ASSIGN_OR_RETURN(std::optional<std::string> chunk, source_());
    if (!chunk) {
      source_done_ = true;
    } else {
      buf_ = std::move(*chunk);
      offset_ += pos_;
      pos_ = 0;
    }
  }
  if (pos_ != buf_.size()) return corrupt("bytes after the trailer");
  return Status::ok();
}

}  // namespace chorus::kv
