#include "core/primary/options.h"

namespace chorus::primary {

Status Options::validate() const {
  if (id == kNoNode) return Status::invalid_argument("id: must be a node id (non-zero)");
  if (acks == 0) return Status::invalid_argument("acks: must be at least 1");
  if (prepare_timeout_ticks == 0)
    return Status::invalid_argument("prepare_timeout: must be at least one tick");
  if (ack_timeout_ticks == 0)
    return Status::invalid_argument("ack_timeout: must be at least one tick");
  if (heartbeat_interval_ticks == 0)
    return Status::invalid_argument("heartbeat_interval: must be at least one tick");
  if (heartbeat_interval_ticks >= prepare_timeout_ticks)
    return Status::invalid_argument("prepare_timeout: must be longer than heartbeat_interval");
  if (heartbeat_interval_ticks >= ack_timeout_ticks)
    return Status::invalid_argument("ack_timeout: must be longer than heartbeat_interval");
  if (max_entries_per_append == 0)
    return Status::invalid_argument("max_entries_per_append: must be at least 1");
  if (max_bytes_per_append == 0)
    return Status::invalid_argument("max_bytes_per_append: must be at least 1");
  if (max_uncommitted_bytes == 0)
    return Status::invalid_argument("max_uncommitted_bytes: must be at least 1");
  if (max_prepared_bytes < max_bytes_per_append)
    return Status::invalid_argument("max_prepared_bytes: must be at least max_bytes_per_append");
  if (max_pending_reads == 0)
    return Status::invalid_argument("max_pending_reads: must be at least 1");
  return Status::ok();
}

namespace {
void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_u64(std::string_view b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{static_cast<unsigned char>(b[i])} << (8 * i);
  return v;
}
constexpr size_t kDurableBytes = 17;
constexpr char kDurableVersion = 1;
}  // namespace

// One version byte, then epoch and commit as little-endian u64.
std::string encode_durable_state(const DurableState& ds) {
  std::string out;
  out.push_back(kDurableVersion);
  put_u64(out, ds.epoch.value());
  put_u64(out, ds.commit.value());
  return out;
}

Result<DurableState> decode_durable_state(std::string_view bytes) {
  if (bytes.empty()) return DurableState{};  // a new node
  if (bytes.size() != kDurableBytes || bytes[0] != kDurableVersion) {
    return Status::corruption("primary-backup durable state: expected " +
                              std::to_string(kDurableBytes) + " bytes of version 1, got " +
                              std::to_string(bytes.size()));
  }
  const Epoch epoch(get_u64(bytes.substr(1)));
  if (epoch > kMaxEpoch) {
    return Status::corruption("primary-backup durable state: epoch " +
                              std::to_string(epoch.value()) + " is beyond the largest, " +
                              std::to_string(kMaxEpoch.value()));
  }
  return DurableState{epoch, LogIndex(get_u64(bytes.substr(9)))};
}

}  // namespace chorus::primary
