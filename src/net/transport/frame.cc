#include "net/transport/frame.h"

#include <bit>
#include <cstring>

#include <fmt/format.h>
#include <xxhash.h>

namespace chorus::net {

static_assert(std::endian::native == std::endian::little,
              "the wire format is little-endian; add byte swaps for this platform");

uint64_t frame_checksum(std::string_view payload) {
  return XXH3_64bits(payload.data(), payload.size());
}

void write_frame_header(std::string_view payload, char* header) {
  CHORUS_ASSERT(payload.size() <= UINT32_MAX);
  const uint32_t length = static_cast<uint32_t>(payload.size());
  const uint64_t checksum = frame_checksum(payload);
  std::memcpy(header, &length, sizeof length);
  std::memcpy(header + 4, &checksum, sizeof checksum);
}

void append_frame(std::string_view payload, std::string* out) {
  const size_t at = out->size();
  out->resize(at + kFrameHeaderBytes);
  write_frame_header(payload, out->data() + at);
  out->append(payload);
}

void FrameDecoder::make_room(size_t n) {
  // Slide the unconsumed bytes to the front only when the consumed prefix is
  // at least as long: each byte is then moved at most once overall.
  const size_t live = end_ - begin_;
  if (begin_ > 0 && begin_ >= live) {
    std::memmove(buf_.data(), buf_.data() + begin_, live);
    begin_ = 0;
    end_ = live;
  }
  if (buf_.size() < end_ + n) buf_.resize(end_ + n);
}

void FrameDecoder::feed(std::string_view bytes) {
  if (failed() || bytes.empty()) return;
  make_room(bytes.size());
  std::memcpy(buf_.data() + end_, bytes.data(), bytes.size());
  end_ += bytes.size();
}

std::span<char> FrameDecoder::prepare(size_t n) {
  make_room(n);
  return {buf_.data() + end_, n};
}

void FrameDecoder::commit(size_t n) {
  CHORUS_ASSERT(end_ + n <= buf_.size());
  if (failed()) return;
  end_ += n;
}

Result<std::optional<std::string_view>> FrameDecoder::next() {
  if (failed()) return error_;
  const size_t live = end_ - begin_;
  if (live < kFrameHeaderBytes) return std::optional<std::string_view>();
  const char* header = buf_.data() + begin_;
  uint32_t length;
  uint64_t checksum;
  std::memcpy(&length, header, sizeof length);
  std::memcpy(&checksum, header + 4, sizeof checksum);
  // Checked before waiting for (and buffering) the payload.
  if (length > max_frame_bytes_) {
    error_ = Status::corruption(
        fmt::format("frame length {} exceeds the limit of {} bytes", length, max_frame_bytes_));
    return error_;
  }
  if (live - kFrameHeaderBytes < length) return std::optional<std::string_view>();
  std::string_view payload(header + kFrameHeaderBytes, length);
  if (frame_checksum(payload) != checksum) {
    error_ = Status::corruption(fmt::format("frame checksum mismatch ({} byte payload)", length));
    return error_;
  }
  begin_ += kFrameHeaderBytes + length;
  return std::optional<std::string_view>(payload);
}

}  // namespace chorus::net
