// Fixed-width little-endian integers and the storage checksum, shared by the
// on-disk formats (docs/formats/wal.md, metadata.md, snapshot.md).
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include <xxhash.h>

namespace chorus::storage {

static_assert(std::endian::native == std::endian::little,
              "on-disk formats are little-endian; add byte swaps for this platform");

inline void put_u32(std::string* out, uint32_t v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
inline void put_u64(std::string* out, uint64_t v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}
inline void store_u64(char* dst, uint64_t v) {
  std::memcpy(dst, &v, sizeof v);
}

// Precondition: p points to at least 4 (8) readable bytes.
inline uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint64_t get_u64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// XXH3-64 (seed 0): the checksum of every Chorus storage format.
inline uint64_t checksum64(std::string_view data) {
  return XXH3_64bits(data.data(), data.size());
}

// Incremental XXH3-64 over a stream of pieces; equals checksum64 of their concatenation.
class StreamingChecksum {
 public:
  StreamingChecksum() : state_(XXH3_createState()) { XXH3_64bits_reset(state_); }
  ~StreamingChecksum() { XXH3_freeState(state_); }
  StreamingChecksum(const StreamingChecksum&) = delete;
  StreamingChecksum& operator=(const StreamingChecksum&) = delete;

  void update(std::string_view data) { XXH3_64bits_update(state_, data.data(), data.size()); }
  uint64_t digest() const { return XXH3_64bits_digest(state_); }

 private:
  XXH3_state_t* state_;
};

// "0x00000000deadbeef"
inline std::string hex64(uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 60; shift >= 0; shift -= 4) s += kDigits[(v >> shift) & 0xf];
  return s;
}

}  // namespace chorus::storage
