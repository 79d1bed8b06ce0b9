// Writer and reader of the key-value snapshot stream. The format is written
// down in docs/formats/kv-command.md ("Snapshot stream"):
//
//   stream  := magic header-frame (kv-frame)* (session-frame)* trailer-frame
//   magic   := "CHKVSNAP"
//   frame   := varint32 length | SnapshotRecord (length bytes)
//
// The writer buffers whole chunks and never holds more than one chunk plus one
// record; the reader holds at most one chunk plus one record, so neither needs
// the state to fit in memory.
//
// Internal to src/storage/kv.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/ids.h"
#include "base/status.h"
#include "chorus/kv.pb.h"

namespace chorus::kv {

inline constexpr std::string_view kSnapshotMagic = "CHKVSNAP";
inline constexpr uint32_t kSnapshotFormatVersion = 1;

struct HashState;  // XXH3 streaming state, kept out of this header

class SnapshotWriter {
 public:
  using Sink = std::function<Status(std::string_view chunk)>;
  SnapshotWriter(const Sink& sink, size_t chunk_bytes);
  ~SnapshotWriter();

  Status begin(LogIndex applied_index, int64_t now_ms);
  // Precondition: keys strictly increase; the key is live at now_ms.
  Status add_kv(std::string_view key, std::string_view value, int64_t expire_at_ms);
  // Precondition: after every add_kv; client ids strictly increase.
  Status add_session(const kvpb::Session& s);
  // Writes the trailer and the last chunk.
  Status finish();

 private:
  Status add_frame(std::string_view record);
  Status emit();

  const Sink& sink_;
  size_t chunk_bytes_;
  std::string buf_;
  std::string record_;
  std::unique_ptr<HashState> hash_;
  uint64_t kv_count_ = 0;
  uint64_t session_count_ = 0;
};

class SnapshotReader {
 public:
  using Source = std::function<Result<std::optional<std::string>>()>;
  struct Bounds {
    size_t key_bytes_max = 0;
    size_t value_bytes_max = 0;
  };
  SnapshotReader(const Source& source, Bounds bounds);
  ~SnapshotReader();

  // The first call: checks the magic and reads the header.
  Result<kvpb::SnapshotHeader> read_header();
  // The next KeyValue or Session record, or std::nullopt once the trailer was
  // read and verified (counts, checksum, nothing after it). Every rule of the
  // grammar is checked: order, uniqueness, limits, no dead keys.
  Result<std::optional<kvpb::SnapshotRecord>> next();

 private:
  struct Frame {
    std::string_view bytes;   // the whole frame, length prefix included
    std::string_view record;  // the SnapshotRecord bytes
  };
  Result<std::optional<Frame>> read_frame();
  Status fill(size_t bytes);  // until `bytes` unread bytes are buffered
  Status check_trailer(const kvpb::SnapshotTrailer& t, uint64_t hash_before);
  Status corrupt(const std::string& what) const;

  const Source& source_;
  Bounds bounds_;
  std::string buf_;
  size_t pos_ = 0;       // unread data starts at buf_[pos_]
  uint64_t offset_ = 0;  // stream offset of buf_[0]
  bool source_done_ = false;
  std::unique_ptr<HashState> hash_;
  kvpb::SnapshotHeader header_;
  std::optional<std::string> last_key_;
  uint64_t last_client_ = 0;
  bool in_sessions_ = false;
  bool done_ = false;
  uint64_t kv_count_ = 0;
  uint64_t session_count_ = 0;
};

}  // namespace chorus::kv
