// The semantics of the key-value commands, written once and shared by every
// state machine implementation, so that the in-memory and the RocksDB machine
// cannot drift apart: they differ only in how a record is loaded and stored
// (KeyStore) and how sessions are persisted.
//
// Internal to src/storage/kv; the public surface is state_machine.h.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "chorus/kv.pb.h"

namespace chorus::kv {

// Limits that change command results. Replicated: equal on every replica.
struct Limits {
  size_t max_sessions = 100000;
  size_t key_bytes_max = size_t{64} << 10;     // longer keys: TOO_LARGE
  size_t value_bytes_max = size_t{512} << 20;  // as Redis's proto-max-bulk-len
};

// A stored record. It may be dead (expired) but not yet purged.
struct StoredValue {
  std::string data;
  int64_t expire_at_ms = 0;  // 0 = never
};

// The expiry rule: dead once the replicated time reaches expire_at_ms.
inline bool is_live(int64_t expire_at_ms, int64_t now_ms) {
  return expire_at_ms == 0 || expire_at_ms > now_ms;
}

// Redis's string2ll: optional '-', no '+', no spaces, no leading zeros
// ("0" itself is fine, "-0" is not), within int64.
std::optional<int64_t> parse_redis_int64(std::string_view s);

// Physical record access for the command logic. Writes must be visible to
// later loads at once (the RocksDB machine reads through its pending batch).
class KeyStore {
 public:
  virtual ~KeyStore() = default;
  // The stored record, live or dead.
  virtual Result<std::optional<StoredValue>> load(std::string_view key) = 0;
  // `old` is what load(key) returned, so index upkeep needs no second read.
  virtual Status store(std::string_view key, StoredValue v,
                       const std::optional<StoredValue>& old) = 0;
  virtual Status erase(std::string_view key, const StoredValue& old) = 0;
};

// The bounded table of client sessions (exactly-once application).
// Invariant: by_index_ maps each session's last_index to its client id, and
// the sizes of sessions_ and by_index_ are equal and <= max_sessions after
// every public call.
class SessionTable {
 public:
  explicit SessionTable(size_t max_sessions) : max_sessions_(max_sessions) {}

  // The answer for a command of this session that must not apply: the cached
  // result of a retry of the last seq, or STALE_SEQUENCE for an older seq.
  std::optional<kvpb::Result> check(uint64_t client_id, uint64_t seq) const;
  // Records the result of the command applied at `index` and evicts the
  // sessions applied longest ago beyond max_sessions. Ids whose record changed
  // (written or evicted) are appended to `touched`.
  void record(uint64_t client_id, uint64_t seq, LogIndex index, const kvpb::Result& r,
              std::vector<uint64_t>* touched);
  // Adds a session read back from storage. Rejects client id 0 and duplicate
  // client ids or last indexes. Call trim() after the last insert.
  Status insert(kvpb::Session s);
  void trim(std::vector<uint64_t>* touched);

  const kvpb::Session* find(uint64_t client_id) const;
  // In client id order.
  const std::map<uint64_t, kvpb::Session>& by_client() const { return sessions_; }
  size_t size() const { return sessions_.size(); }

 private:
  size_t max_sessions_;
  std::map<uint64_t, kvpb::Session> sessions_;
  std::map<uint64_t, uint64_t> by_index_;  // last_index -> client_id
};

// Decodes and applies one command: advances *now_ms, answers retries from the
// session table, executes, records the session. Ids of sessions whose record
// changed are appended to `touched_sessions`. An error Status comes only from
// the KeyStore (storage failure); command outcomes are in the kvpb::Result.
Result<kvpb::Result> apply_command(std::string_view bytes, LogIndex index, const Limits& limits,
                                   int64_t* now_ms, SessionTable& sessions, KeyStore& store,
                                   std::vector<uint64_t>* touched_sessions);

}  // namespace chorus::kv
