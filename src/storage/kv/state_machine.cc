#include "storage/kv/state_machine.h"

#include <algorithm>

#include "base/assert.h"
#include "storage/kv/snapshot_stream.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace chorus::kv {

// ---- StateMachine conveniences ----------------------------------------------

Result<std::string> StateMachine::snapshot() const {
  std::string out;
  CHORUS_RETURN_IF_ERROR(save_snapshot([&out](std::string_view chunk) {
    out.append(chunk);
    return Status::ok();
  }));
  return out;
}

Status StateMachine::restore(std::string_view image) {
  bool given = false;
  return load_snapshot([&]() -> Result<std::optional<std::string>> {
    if (given) return std::optional<std::string>();
    given = true;
    return std::optional<std::string>(std::string(image));
  });
}

Result<uint64_t> StateMachine::state_digest() const {
  XXH3_state_t state;
  XXH3_64bits_reset(&state);
  CHORUS_RETURN_IF_ERROR(save_snapshot([&state](std::string_view chunk) {
    XXH3_64bits_update(&state, chunk.data(), chunk.size());
    return Status::ok();
  }));
  return static_cast<uint64_t>(XXH3_64bits_digest(&state));
}

// ---- MemoryStateMachine -----------------------------------------------------

// The KeyStore over the map and its expiry index. The command logic always
// loads a key right before storing or erasing it, so load() keeps the map
// position it found for the write that follows (one tree walk per write).
class MemoryStateMachine::Keys final : public KeyStore {
 public:
  Keys(DataMap& data, ExpiryIndex& expiry) : data_(data), expiry_(expiry) {}

  Result<std::optional<StoredValue>> load(std::string_view key) override {
    hint_ = data_.lower_bound(key);
    hint_key_ = key;
    hint_valid_ = true;
    if (hint_ == data_.end() || hint_->first != key) return std::optional<StoredValue>();
    return std::optional<StoredValue>(hint_->second);
  }

  Status store(std::string_view key, StoredValue v,
               const std::optional<StoredValue>& old) override {
    if (old && old->expire_at_ms != 0) expiry_.erase({old->expire_at_ms, std::string(key)});
    if (v.expire_at_ms != 0) expiry_.emplace(v.expire_at_ms, std::string(key));
    auto it = position(key);
    if (it != data_.end() && it->first == key) {
      it->second = std::move(v);
    } else {
      data_.emplace_hint(it, std::string(key), std::move(v));
    }
    hint_valid_ = false;
    return Status::ok();
  }

  Status erase(std::string_view key, const StoredValue& old) override {
    if (old.expire_at_ms != 0) expiry_.erase({old.expire_at_ms, std::string(key)});
    auto it = position(key);
    CHORUS_ASSERT(it != data_.end() && it->first == key);
    data_.erase(it);
    hint_valid_ = false;
    return Status::ok();
  }

 private:
  // lower_bound(key), from the last load() when it was for this key.
  DataMap::iterator position(std::string_view key) {
    if (hint_valid_ && hint_key_ == key) return hint_;
    return data_.lower_bound(key);
  }

  DataMap& data_;
  ExpiryIndex& expiry_;
  // Valid between a load() and the next write: a write may invalidate it.
  DataMap::iterator hint_;
  std::string_view hint_key_;
  bool hint_valid_ = false;
};

MemoryStateMachine::MemoryStateMachine(StateMachineOptions opts)
    : opts_(opts), sessions_(opts.limits.max_sessions) {}

Result<std::vector<kvpb::Result>> MemoryStateMachine::apply_batch(std::span<const Entry> entries) {
  std::vector<kvpb::Result> results;
  results.reserve(entries.size());
  for (const Entry& e : entries) results.push_back(apply_one(e));
  purge_expired();
  return results;
}

kvpb::Result MemoryStateMachine::apply(LogIndex index, std::string_view command) {
  kvpb::Result r = apply_one(Entry{index, command});
  purge_expired();
  return r;
}

void MemoryStateMachine::apply_noop(LogIndex index) {
  apply_one(Entry{.index = index, .command = {}, .noop = true});
}

kvpb::Result MemoryStateMachine::apply_one(const Entry& e) {
  CHORUS_ASSERT_MSG(e.index > applied_, "state machine applied out of order");
  applied_ = e.index;
  if (e.noop) return kvpb::Result();
  Keys keys(data_, expiry_);
  std::vector<uint64_t> touched;  // sessions live only in memory: nothing to persist
  Result<kvpb::Result> r =
      apply_command(e.command, e.index, opts_.limits, &now_ms_, sessions_, keys, &touched);
  CHORUS_ASSERT(r.is_ok());  // the in-memory KeyStore never fails
  return std::move(r).value();
}

// Removes up to kExpiredPurgeMaxPerBatch dead keys (not observable: dead keys
// are invisible anyway; this only frees their memory).
void MemoryStateMachine::purge_expired() {
  size_t n = 0;
  while (!expiry_.empty() && n < kExpiredPurgeMaxPerBatch) {
    auto it = expiry_.begin();
    if (is_live(it->first, now_ms_)) break;
    data_.erase(it->second);
    expiry_.erase(it);
    ++n;
  }
}

std::optional<std::string> MemoryStateMachine::get(std::string_view key) const {
  auto it = data_.find(key);
  if (it == data_.end() || !is_live(it->second.expire_at_ms, now_ms_)) return std::nullopt;
  return it->second.data;
}

uint64_t MemoryStateMachine::size() const {
  // Dead keys not yet purged are all in the expiry index, at its front.
  uint64_t dead = 0;
  for (auto it = expiry_.begin(); it != expiry_.end() && !is_live(it->first, now_ms_); ++it) ++dead;
  return data_.size() - dead;
}

Result<StateMachine::ScanPage> MemoryStateMachine::scan(std::string_view start,
                                                        size_t limit) const {
  limit = std::clamp<size_t>(limit, 1, kScanItemsMax);
  ScanPage page;
  for (auto it = data_.lower_bound(start); it != data_.end(); ++it) {
    if (!is_live(it->second.expire_at_ms, now_ms_)) continue;
    if (page.items.size() >= limit) {
      page.next = it->first;
      break;
    }
    page.items.emplace_back(it->first, it->second.data);
  }
  return page;
}

uint64_t MemoryStateMachine::digest() const {
  Result<uint64_t> d = state_digest();
  CHORUS_ASSERT(d.is_ok());  // a hashing sink never fails
  return *d;
}

Status MemoryStateMachine::save_snapshot(const ChunkSink& sink) const {
  SnapshotWriter w(sink, opts_.snapshot_chunk_bytes);
  CHORUS_RETURN_IF_ERROR(w.begin(applied_, now_ms_));
  for (const auto& [key, v] : data_) {
    if (!is_live(v.expire_at_ms, now_ms_)) continue;
    CHORUS_RETURN_IF_ERROR(w.add_kv(key, v.data, v.expire_at_ms));
  }
  for (const auto& [id, s] : sessions_.by_client()) CHORUS_RETURN_IF_ERROR(w.add_session(s));
  return w.finish();
}

Status MemoryStateMachine::load_snapshot(const ChunkSource& next_chunk) {
  // Build the new state aside; swap it in only after the whole stream checked out.
  SnapshotReader r(next_chunk, {opts_.limits.key_bytes_max, opts_.limits.value_bytes_max});
  CHORUS_ASSIGN_OR_RETURN(kvpb::SnapshotHeader header, r.read_header());
  DataMap data;
  ExpiryIndex expiry;
  SessionTable sessions(opts_.limits.max_sessions);
  for (;;) {
    CHORUS_ASSIGN_OR_RETURN(std::optional<kvpb::SnapshotRecord> rec, r.next());
    if (!rec) break;
    if (rec->has_kv()) {
      kvpb::KeyValue* kv = rec->mutable_kv();
      if (kv->expire_at_ms() != 0) expiry.emplace(kv->expire_at_ms(), kv->key());
      data.emplace_hint(data.end(), std::move(*kv->mutable_key()),
                        StoredValue{std::move(*kv->mutable_value()), kv->expire_at_ms()});
    } else {
      CHORUS_RETURN_IF_ERROR(sessions.insert(std::move(*rec->mutable_session())));
    }
  }
  std::vector<uint64_t> evicted;
  sessions.trim(&evicted);  // a snapshot from a replica with a larger table
  data_ = std::move(data);
  expiry_ = std::move(expiry);
  sessions_ = std::move(sessions);
  applied_ = LogIndex(header.applied_index());
  now_ms_ = header.now_ms();
  return Status::ok();
}

// ---- Command builders -------------------------------------------------------

std::string encode(const kvpb::Command& cmd) {
  std::string out;
  CHORUS_ASSERT(cmd.SerializeToString(&out));
  return out;
}

kvpb::Command make_put(std::string key, std::string value) {
  kvpb::Command c;
  c.mutable_put()->set_key(std::move(key));
  c.mutable_put()->set_value(std::move(value));
  return c;
}

kvpb::Command make_delete(std::vector<std::string> keys) {
  kvpb::Command c;
  for (auto& k : keys) c.mutable_del()->add_keys(std::move(k));
  return c;
}

kvpb::Command make_cas(std::string key, std::string expected, std::string value) {
  kvpb::Command c;
  c.mutable_cas()->set_key(std::move(key));
  c.mutable_cas()->set_expected(std::move(expected));
  c.mutable_cas()->set_value(std::move(value));
  return c;
}

kvpb::Command make_append(std::string key, std::string value) {
  kvpb::Command c;
  c.mutable_append()->set_key(std::move(key));
  c.mutable_append()->set_value(std::move(value));
  return c;
}

kvpb::Command make_incr_by(std::string key, int64_t delta) {
  kvpb::Command c;
  c.mutable_incr_by()->set_key(std::move(key));
  c.mutable_incr_by()->set_delta(delta);
  return c;
}

kvpb::Command make_multi_put(std::vector<std::pair<std::string, std::string>> kvs) {
  kvpb::Command c;
  for (auto& [k, v] : kvs) {
    kvpb::KeyValue* kv = c.mutable_multi_put()->add_kvs();
    kv->set_key(std::move(k));
    kv->set_value(std::move(v));
  }
  return c;
}

kvpb::Command make_tick(int64_t now_ms) {
  kvpb::Command c;
  c.set_now_ms(now_ms);
  c.mutable_tick();
  return c;
}

}  // namespace chorus::kv
