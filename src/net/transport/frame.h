// The peer frame codec (docs/formats/wire.md, "Frames"). Pure: no I/O.
//
//   frame    = length checksum payload
//   length   = u32 little-endian, payload bytes, <= the decoder's max_frame_bytes
//   checksum = u64 little-endian, XXH3-64 (seed 0) of the payload
//
// Encoding appends frames to a caller's buffer. FrameDecoder is incremental:
// bytes are fed in pieces of any size (one byte, or many frames at once) and
// complete payloads come out in order. A length above the limit is refused
// as soon as the 12-byte header is in, before anything is allocated for the
// payload; a checksum mismatch is refused when the payload is complete. Both
// errors are final: the byte stream can no longer be trusted to be in sync,
// so the decoder stays failed and the connection must be closed.
//
// Cost: O(total bytes) — every byte is copied into the buffer once, hashed
// once, and moved at most once more by compaction (compaction only happens
// when the consumed prefix is at least as long as what remains).
//
// Thread-safety: none; one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace chorus::net {

inline constexpr size_t kFrameHeaderBytes = 12;
// Default payload limit on an established connection. Raft appends are
// capped at ~1 MiB (raft::Config::max_bytes_per_append) and snapshot chunks
// at 1 MiB, so this leaves ample room.
inline constexpr uint32_t kDefaultMaxFrameBytes = 16u << 20;
// Payload limit before the handshake completes: a stranger gets a small cap.
inline constexpr uint32_t kHandshakeMaxFrameBytes = 64u << 10;

// XXH3-64 (seed 0) of a payload.
uint64_t frame_checksum(std::string_view payload);

// Writes the 12-byte header for `payload` into `header`.
// Precondition: payload.size() <= UINT32_MAX.
void write_frame_header(std::string_view payload, char* header);

// Appends one frame holding `payload` to *out.
void append_frame(std::string_view payload, std::string* out);

class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_frame_bytes = kDefaultMaxFrameBytes)
      : max_frame_bytes_(max_frame_bytes) {}

  // Applies to every frame whose header has not been checked yet.
  void set_max_frame_bytes(uint32_t n) { max_frame_bytes_ = n; }
  uint32_t max_frame_bytes() const { return max_frame_bytes_; }

  // Adds received bytes. Ignored once the decoder has failed.
  void feed(std::string_view bytes);

  // Zero-copy alternative to feed(): a writable region of exactly n bytes at
  // the end of the buffer to read into, then commit(k) for the k <= n bytes
  // that were written.
  std::span<char> prepare(size_t n);
  void commit(size_t n);

  // The next complete payload, std::nullopt if more bytes are needed, or an
  // error (kCorruption: oversize length or checksum mismatch; final).
  // A returned view stays valid until the next feed() or prepare(): several
  // payloads returned in a row may all be used together.
  Result<std::optional<std::string_view>> next();

  bool failed() const { return !error_.is_ok(); }
  // Bytes received and not yet returned as payloads.
  size_t buffered_bytes() const { return end_ - begin_; }

 private:
  void make_room(size_t n);

  uint32_t max_frame_bytes_;
  std::string buf_;   // [begin_, end_) holds unconsumed bytes; [end_, size) is scratch
  size_t begin_ = 0;  // Invariant: begin_ <= end_ <= buf_.size()
  size_t end_ = 0;
  Status error_;
};

}  // namespace chorus::net
