// The RocksDB-backed key-value state machine, for data larger than memory.
// Same interface and same semantics as MemoryStateMachine (the command logic
// is shared: command_logic.h); the layout on disk is written down in
// docs/formats/kv-command.md ("RocksDB layout").
//
// Durability and crash semantics:
//  * apply_batch() writes one RocksDB WriteBatch holding every change of the
//    batch, the touched sessions and the meta record (applied index, now_ms,
//    key count), so the data and the applied index are always consistent.
//  * RocksDB's own WAL is on, written without sync by default
//    (sync_writes=false). A process crash loses nothing; a machine crash may
//    lose the last batches — whole batches only (point-in-time recovery), and
//    the meta record goes back with them, so after reopening applied_index()
//    is exactly what the data reflects, and the node replays its Raft log from
//    applied_index()+1. Hence the rule for the node: call sync() before
//    deleting log entries at or below applied_index() (log compaction).
//  * The state lives in a "generation" column family g<N>; the default column
//    family names the current one. load_snapshot() fills a fresh g<N+1>
//    (without WAL), validates the whole stream, flushes it, then switches the
//    name with one synced write and drops g<N>. A crash at any point leaves
//    either the old or the new state, never a mix: open() drops every column
//    family that is not current (an interrupted restore) and reports it in
//    dropped_on_open().
//  * A storage error poisons the machine: every later call returns it
//    (fail-stop); reopen to continue from the last durable batch.
//
// Threading: not thread-safe; one owner. RocksDB's background threads
// (flush, compaction) are its own business.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "storage/kv/state_machine.h"

namespace rocksdb {
class ColumnFamilyHandle;
class DB;
}  // namespace rocksdb

namespace chorus::kv {

struct RocksDbStateMachineOptions {
  StateMachineOptions sm;
  // fsync RocksDB's WAL on every apply batch. Off by default: the Raft log
  // replays what a machine crash loses (see the file comment).
  bool sync_writes = false;
  // Tuned for a small (2-core) box; see rocksdb_state_machine.cc.
  size_t block_cache_bytes = size_t{128} << 20;
  size_t write_buffer_bytes = size_t{64} << 20;
  int background_jobs = 2;
  // load_snapshot() writes the new state in batches of about this size (and
  // holds one batch in memory).
  size_t restore_batch_bytes = size_t{4} << 20;
};

class RocksDbStateMachine final : public StateMachine {
 public:
  // Opens (or creates) the database at `path` and recovers its state.
  static Result<std::unique_ptr<RocksDbStateMachine>> open(const std::string& path,
                                                           RocksDbStateMachineOptions opts = {});
  ~RocksDbStateMachine() override;
  RocksDbStateMachine(const RocksDbStateMachine&) = delete;
  RocksDbStateMachine& operator=(const RocksDbStateMachine&) = delete;

  Result<std::vector<kvpb::Result>> apply_batch(std::span<const Entry> entries) override;
  LogIndex applied_index() const override { return applied_; }
  int64_t now_ms() const override { return now_ms_; }
  Result<std::optional<std::string>> read(std::string_view key) const override;
  Result<uint64_t> key_count() const override;
  Result<ScanPage> scan(std::string_view start, size_t limit) const override;
  Status save_snapshot(const ChunkSink& sink) const override;
  Status load_snapshot(const ChunkSource& next_chunk) override;
  Status sync() override;

  // One entry at a time (a batch of one).
  Result<kvpb::Result> apply(LogIndex index, std::string_view command);
  Status apply_noop(LogIndex index);

  const std::string& path() const { return path_; }
  uint64_t generation() const { return generation_; }
  // Column families found and dropped by open(): restores a crash interrupted.
  const std::vector<std::string>& dropped_on_open() const { return dropped_on_open_; }

 private:
  class BatchKeys;
  class Restorer;
  struct Tuning;

  RocksDbStateMachine(std::string path, RocksDbStateMachineOptions opts);
  Status open_db();
  Status recover();
  Status load_state_mirror();
  Status purge_expired(BatchKeys& keys);
  Status check_healthy() const;
  Status poison(Status st);

  std::string path_;
  RocksDbStateMachineOptions opts_;
  std::unique_ptr<Tuning> tuning_;
  rocksdb::DB* db_ = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // every open column family
  rocksdb::ColumnFamilyHandle* state_cf_ = nullptr;    // g<generation_>
  uint64_t generation_ = 0;
  std::vector<std::string> dropped_on_open_;
  Status poisoned_;  // ok while healthy

  // Mirrors of the state in state_cf_, updated with each batch.
  LogIndex applied_;
  int64_t now_ms_ = 0;
  uint64_t stored_keys_ = 0;  // records under 'k', live or not yet purged
  SessionTable sessions_;
};

}  // namespace chorus::kv
