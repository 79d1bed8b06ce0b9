// The key-value state machine every engine's committed log is applied to:
// the interface, and its in-memory implementation (the default). The
// RocksDB-backed one (rocksdb_state_machine.h) has the same semantics and is
// tested by the same suite (state_machine_test.cc).
//
// Commands and results are the protobuf messages of proto/chorus/kv.proto; the
// semantics of each command, the snapshot stream and the RocksDB layout are
// written down in docs/formats/kv-command.md.
//
// Determinism: applying a command depends only on the state and the command
// bytes (including the leader-stamped now_ms), never on a replica's clock,
// thread timing or batch boundaries, so every replica that applies the same
// log holds the same state at every index. The options marked "replicated"
// below change semantics and must be equal on every replica of a group.
//
// Replicated time and expiry: the state machine's clock now_ms() is the
// largest Command.now_ms of every decodable command applied so far (it never
// goes back, even when a new leader's clock is behind). It advances before the
// command executes. A key whose expire_at_ms != 0 is dead as soon as
// now_ms() >= expire_at_ms: reads, counts, scans, snapshots and conditions
// (NX/XX, CAS, INCRBY, APPEND) treat it as absent. Time only moves with the
// log, so a leader proposes a Tick now and then to expire keys on an idle
// cluster. Dead keys are also removed physically, a bounded number per apply
// batch (kExpiredPurgeMaxPerBatch); when that happens is not observable.
//
// Exactly-once: a command with a client session (client_id != 0) is applied
// at most once per (client_id, seq). A retry with the session's last seq
// returns the cached result without applying again; an older seq returns
// STALE_SEQUENCE; a newer seq applies. The session table is bounded
// (max_sessions); the session whose last command was applied longest ago
// (smallest log index) is evicted first, so eviction is deterministic. A client
// whose session was evicted is indistinguishable from a new one: a retry of
// its last command would apply again (Raft thesis §6.3 discusses the same
// limit), so max_sessions must exceed the number of concurrently active
// clients.
//
// Threading: not thread-safe; one owner applies, reads and snapshots.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "chorus/kv.pb.h"
#include "storage/kv/command_logic.h"

namespace chorus::kv {

// Most live keys one scan() returns; larger requests are clamped.
inline constexpr size_t kScanItemsMax = 10000;
// Most dead keys removed physically per apply batch (bounds an apply's work).
inline constexpr size_t kExpiredPurgeMaxPerBatch = 1024;

struct StateMachineOptions {
  // Replicated: limits on command effects (TOO_LARGE) and the session table.
  Limits limits;
  // Local: the size of the chunks save_snapshot() hands to its sink.
  size_t snapshot_chunk_bytes = size_t{1} << 20;
};
using MemoryStateMachineOptions = StateMachineOptions;

class StateMachine {
 public:
  // One committed log entry to apply: a command, or a no-op entry (leader
  // election marker, configuration change) that only advances the applied index.
  struct Entry {
    LogIndex index;
    std::string_view command;  // ignored when noop
    bool noop = false;
  };
  struct ScanPage {
    std::vector<std::pair<std::string, std::string>> items;
    std::string next;  // where to continue; "" = done
  };
  // Receives the snapshot stream, chunk by chunk (chunk boundaries mean nothing).
  using ChunkSink = std::function<Status(std::string_view chunk)>;
  // Yields the snapshot stream: a chunk, std::nullopt at the end, or an error.
  using ChunkSource = std::function<Result<std::optional<std::string>>()>;

  virtual ~StateMachine() = default;

  // Applies committed entries in log order and returns one result per entry
  // (OK for a no-op). Precondition (asserted): indexes strictly increase and
  // the first is > applied_index() (gaps are allowed only after a snapshot
  // restore). Undecodable command bytes yield BAD_COMMAND and change nothing
  // but the applied index. A durable implementation writes the whole batch,
  // with the new applied index, atomically. An error Status means the storage
  // failed: the machine is poisoned and refuses all later calls (fail-stop;
  // reopen it to recover from its last durable batch).
  virtual Result<std::vector<kvpb::Result>> apply_batch(std::span<const Entry> entries) = 0;
  virtual LogIndex applied_index() const = 0;
  // The replicated time (see the file comment).
  virtual int64_t now_ms() const = 0;

  // The value of `key`, unless absent or expired at now_ms().
  virtual Result<std::optional<std::string>> read(std::string_view key) const = 0;
  // The number of live keys (DBSIZE).
  virtual Result<uint64_t> key_count() const = 0;
  // Up to `limit` (clamped to [1, kScanItemsMax]) live keys >= start, in key order.
  virtual Result<ScanPage> scan(std::string_view start, size_t limit) const = 0;

  // Writes the whole state (data, sessions, applied index, now_ms) as a
  // snapshot stream (docs/formats/kv-command.md) to `sink`, in chunks of about
  // snapshot_chunk_bytes. The stream is a pure function of the state: equal
  // states give equal bytes. A sink error stops the write and is returned.
  virtual Status save_snapshot(const ChunkSink& sink) const = 0;
  // Replaces the whole state with the one in the stream. The stream is
  // validated to its end (structure, order, counts and its XXH3 checksum)
  // before anything is replaced: on any error the state is unchanged.
  virtual Status load_snapshot(const ChunkSource& next_chunk) = 0;
  // Makes every applied batch durable (no-op for a volatile machine). The
  // node calls it before deleting log entries the state machine has applied.
  virtual Status sync() = 0;

  // Conveniences built on the above: the snapshot stream as one string, and back.
  Result<std::string> snapshot() const;
  Status restore(std::string_view image);
  // A hash of the snapshot stream: equal iff the states are equal (up to
  // hash collisions), across implementations. For tests and the simulator.
  Result<uint64_t> state_digest() const;
};

// The default state machine: an ordered map in memory. Volatile: after a
// restart the node restores its last snapshot and replays the log after it.
class MemoryStateMachine final : public StateMachine {
 public:
  explicit MemoryStateMachine(StateMachineOptions opts = {});

  Result<std::vector<kvpb::Result>> apply_batch(std::span<const Entry> entries) override;
  LogIndex applied_index() const override { return applied_; }
  int64_t now_ms() const override { return now_ms_; }
  Result<std::optional<std::string>> read(std::string_view key) const override { return get(key); }
  Result<uint64_t> key_count() const override { return size(); }
  Result<ScanPage> scan(std::string_view start, size_t limit) const override;
  Status save_snapshot(const ChunkSink& sink) const override;
  Status load_snapshot(const ChunkSource& next_chunk) override;
  Status sync() override { return Status::ok(); }

  // Infallible forms of the above (memory never fails).
  kvpb::Result apply(LogIndex index, std::string_view command);
  void apply_noop(LogIndex index);
  std::optional<std::string> get(std::string_view key) const;
  uint64_t size() const;
  uint64_t digest() const;

 private:
  class Keys;
  using DataMap = std::map<std::string, StoredValue, std::less<>>;
  // Invariant: expiry_ holds (expire_at_ms, key) for exactly the keys of data_
  // whose expire_at_ms != 0.
  using ExpiryIndex = std::set<std::pair<int64_t, std::string>>;

  kvpb::Result apply_one(const Entry& e);
  void purge_expired();

  StateMachineOptions opts_;
  DataMap data_;
  ExpiryIndex expiry_;
  SessionTable sessions_;
  LogIndex applied_;
  int64_t now_ms_ = 0;
};

// Command builders (used by the server, the simulator and tests).
std::string encode(const kvpb::Command& cmd);
kvpb::Command make_put(std::string key, std::string value);
kvpb::Command make_delete(std::vector<std::string> keys);
kvpb::Command make_cas(std::string key, std::string expected, std::string value);
kvpb::Command make_append(std::string key, std::string value);
kvpb::Command make_incr_by(std::string key, int64_t delta);
kvpb::Command make_multi_put(std::vector<std::pair<std::string, std::string>> kvs);
kvpb::Command make_tick(int64_t now_ms);

}  // namespace chorus::kv
