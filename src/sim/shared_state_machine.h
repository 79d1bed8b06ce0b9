// A state machine that outlives its node's crashes, for the simulator's
// "durable state machine" runs: RocksDB keeps what it applied across a
// kill -9, so after a restart the state machine may be ahead of the
// snapshot, and the host must recover the applied term from the log and
// never let the state machine get ahead of the durable log. The node owns
// the MemoryStateMachine; each incarnation's host gets one of these
// forwarding to it.
#pragma once

#include <memory>

#include "storage/kv/state_machine.h"

namespace chorus::sim {

class SharedStateMachine final : public kv::StateMachine {
 public:
  explicit SharedStateMachine(std::shared_ptr<kv::MemoryStateMachine> sm) : sm_(std::move(sm)) {}

  Result<std::vector<kvpb::Result>> apply_batch(std::span<const Entry> entries) override {
    return sm_->apply_batch(entries);
  }
  LogIndex applied_index() const override { return sm_->applied_index(); }
  int64_t now_ms() const override { return sm_->now_ms(); }
  Result<std::optional<std::string>> read(std::string_view key) const override {
    return sm_->read(key);
  }
  Result<uint64_t> key_count() const override { return sm_->key_count(); }
  Result<ScanPage> scan(std::string_view start, size_t limit) const override {
    return sm_->scan(start, limit);
  }
  Status save_snapshot(const ChunkSink& sink) const override { return sm_->save_snapshot(sink); }
  Status load_snapshot(const ChunkSource& next_chunk) override {
    return sm_->load_snapshot(next_chunk);
  }
  Status sync() override { return Status::ok(); }

 private:
  std::shared_ptr<kv::MemoryStateMachine> sm_;
};

}  // namespace chorus::sim
