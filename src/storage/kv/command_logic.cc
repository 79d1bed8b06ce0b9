#include "storage/kv/command_logic.h"

#include <algorithm>
#include <climits>
#include <limits>

#include "base/assert.h"

namespace chorus::kv {
namespace {

kvpb::Result code_only(kvpb::Result::Code c) {
  kvpb::Result r;
  r.set_code(c);
  return r;
}

// Stores `v`, or removes the key when `v` is already dead (SET with a past
// PXAT deletes the key, as in Redis): a dead record is never written.
Status write_value(KeyStore& ks, std::string_view key, StoredValue v,
                   const std::optional<StoredValue>& old, int64_t now_ms) {
  if (is_live(v.expire_at_ms, now_ms)) return ks.store(key, std::move(v), old);
  if (old) return ks.erase(key, *old);
  return Status::ok();
}

bool live_record(const std::optional<StoredValue>& v, int64_t now_ms) {
  return v && is_live(v->expire_at_ms, now_ms);
}

Result<kvpb::Result> execute_put(const kvpb::Put& p, int64_t now, const Limits& lim, KeyStore& ks) {
  kvpb::Result r;
  if (p.key().size() > lim.key_bytes_max || p.value().size() > lim.value_bytes_max) {
    return code_only(kvpb::Result::TOO_LARGE);
  }
  CHORUS_ASSIGN_OR_RETURN(std::optional<StoredValue> old, ks.load(p.key()));
  const bool exists = live_record(old, now);
  if (p.return_old() && exists) {
    r.set_found(true);
    r.set_value(old->data);
  }
  if ((p.condition() == kvpb::Put::IF_ABSENT && exists) ||
      (p.condition() == kvpb::Put::IF_PRESENT && !exists)) {
    r.set_code(kvpb::Result::CONDITION_FAILED);
    return r;
  }
  // SET without KEEPTTL replaces the expiry too.
  CHORUS_RETURN_IF_ERROR(write_value(ks, p.key(), {p.value(), p.expire_at_ms()}, old, now));
  return r;
}

Result<kvpb::Result> execute_delete(const kvpb::Delete& d, int64_t now, KeyStore& ks) {
  int64_t removed = 0;
  for (const auto& key : d.keys()) {
    CHORUS_ASSIGN_OR_RETURN(std::optional<StoredValue> old, ks.load(key));
    if (!old) continue;  // a key named twice counts once: the second load finds nothing
    if (is_live(old->expire_at_ms, now)) ++removed;
    CHORUS_RETURN_IF_ERROR(ks.erase(key, *old));
  }
  kvpb::Result r;
  r.set_integer(removed);
  return r;
}

Result<kvpb::Result> execute_cas(const kvpb::Cas& c, int64_t now, const Limits& lim, KeyStore& ks) {
  if (c.key().size() > lim.key_bytes_max || c.value().size() > lim.value_bytes_max) {
    return code_only(kvpb::Result::TOO_LARGE);
  }
  CHORUS_ASSIGN_OR_RETURN(std::optional<StoredValue> old, ks.load(c.key()));
  if (!live_record(old, now) || old->data != c.expected()) {
    return code_only(kvpb::Result::CONDITION_FAILED);
  }
  // Like SET, a successful CAS clears the expiry.
  CHORUS_RETURN_IF_ERROR(write_value(ks, c.key(), {c.value(), 0}, old, now));
  return kvpb::Result();
}

Result<kvpb::Result> execute_append(const kvpb::Append& a, int64_t now, const Limits& lim,
                                    KeyStore& ks) {
  if (a.key().size() > lim.key_bytes_max) return code_only(kvpb::Result::TOO_LARGE);
  CHORUS_ASSIGN_OR_RETURN(std::optional<StoredValue> old, ks.load(a.key()));
  // APPEND to a missing (or dead) key creates it without expiry; to a live
  // key it keeps the key's expiry (Redis).
  StoredValue next = live_record(old, now) ? *old : StoredValue{};
  if (next.data.size() + a.value().size() > lim.value_bytes_max) {
    return code_only(kvpb::Result::TOO_LARGE);
  }
  next.data += a.value();
  kvpb::Result r;
  r.set_integer(static_cast<int64_t>(next.data.size()));
  CHORUS_RETURN_IF_ERROR(write_value(ks, a.key(), std::move(next), old, now));
  return r;
}

Result<kvpb::Result> execute_incr_by(const kvpb::IncrBy& inc, int64_t now, const Limits& lim,
                                     KeyStore& ks) {
  if (inc.key().size() > lim.key_bytes_max) return code_only(kvpb::Result::TOO_LARGE);
  CHORUS_ASSIGN_OR_RETURN(std::optional<StoredValue> old, ks.load(inc.key()));
  int64_t cur = 0;
  int64_t expire = 0;
  if (live_record(old, now)) {
    std::optional<int64_t> v = parse_redis_int64(old->data);
    if (!v) return code_only(kvpb::Result::NOT_INTEGER);
    cur = *v;
    expire = old->expire_at_ms;  // INCR keeps the expiry (Redis)
  }
  int64_t next = 0;
  if (__builtin_add_overflow(cur, inc.delta(), &next)) return code_only(kvpb::Result::OVERFLOW);
  CHORUS_RETURN_IF_ERROR(write_value(ks, inc.key(), {std::to_string(next), expire}, old, now));
  kvpb::Result r;
  r.set_integer(next);
  return r;
}

Result<kvpb::Result> execute_multi_put(const kvpb::MultiPut& m, int64_t now, const Limits& lim,
                                       KeyStore& ks) {
  // All or nothing: check every pair before writing any.
  for (const auto& kv : m.kvs()) {
    if (kv.key().size() > lim.key_bytes_max || kv.value().size() > lim.value_bytes_max) {
      return code_only(kvpb::Result::TOO_LARGE);
    }
  }
  for (const auto& kv : m.kvs()) {  // a key named twice: the later pair wins
    CHORUS_ASSIGN_OR_RETURN(std::optional<StoredValue> old, ks.load(kv.key()));
    CHORUS_RETURN_IF_ERROR(write_value(ks, kv.key(), {kv.value(), kv.expire_at_ms()}, old, now));
  }
  return kvpb::Result();
}

Result<kvpb::Result> execute(const kvpb::Command& cmd, int64_t now, const Limits& lim,
                             KeyStore& ks) {
  switch (cmd.op_case()) {
    case kvpb::Command::kPut:
      return execute_put(cmd.put(), now, lim, ks);
    case kvpb::Command::kDel:
      return execute_delete(cmd.del(), now, ks);
    case kvpb::Command::kCas:
      return execute_cas(cmd.cas(), now, lim, ks);
    case kvpb::Command::kAppend:
      return execute_append(cmd.append(), now, lim, ks);
    case kvpb::Command::kIncrBy:
      return execute_incr_by(cmd.incr_by(), now, lim, ks);
    case kvpb::Command::kMultiPut:
      return execute_multi_put(cmd.multi_put(), now, lim, ks);
    case kvpb::Command::kTick:
      return kvpb::Result();  // the time already advanced
    case kvpb::Command::OP_NOT_SET:
      break;
  }
  CHORUS_UNREACHABLE();  // apply_command() rejects OP_NOT_SET
}

}  // namespace

std::optional<int64_t> parse_redis_int64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  if (s == "0") return 0;
  size_t i = 0;
  const bool negative = s[0] == '-';
  if (negative) ++i;
  if (i >= s.size() || s[i] < '1' || s[i] > '9') return std::nullopt;  // no "+1", "01", "-0", " 1"
  // Accumulate as a negative number so that INT64_MIN fits.
  int64_t v = 0;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') return std::nullopt;
    const int digit = s[i] - '0';
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_sub_overflow(v, digit, &v)) {
      return std::nullopt;
    }
  }
  if (negative) return v;
  if (v == std::numeric_limits<int64_t>::min()) return std::nullopt;
  return -v;
}

std::optional<kvpb::Result> SessionTable::check(uint64_t client_id, uint64_t seq) const {
  const kvpb::Session* s = find(client_id);
  if (s == nullptr || seq > s->last_seq()) return std::nullopt;
  if (seq == s->last_seq()) return s->last_result();
  return code_only(kvpb::Result::STALE_SEQUENCE);
}

void SessionTable::record(uint64_t client_id, uint64_t seq, LogIndex index, const kvpb::Result& r,
                          std::vector<uint64_t>* touched) {
  CHORUS_ASSERT(client_id != 0);
  auto [it, inserted] = sessions_.try_emplace(client_id);
  if (!inserted) by_index_.erase(it->second.last_index());
  kvpb::Session& s = it->second;
  s.set_client_id(client_id);
  s.set_last_seq(seq);
  *s.mutable_last_result() = r;
  s.set_last_index(index.value());
  // Invariant: one command per log index, so last indexes are unique.
  CHORUS_ASSERT(by_index_.emplace(index.value(), client_id).second);
  touched->push_back(client_id);
  trim(touched);
}

Status SessionTable::insert(kvpb::Session s) {
  if (s.client_id() == 0) return Status::corruption("session with client id 0");
  if (sessions_.contains(s.client_id())) {
    return Status::corruption("duplicate session for client " + std::to_string(s.client_id()));
  }
  if (!by_index_.emplace(s.last_index(), s.client_id()).second) {
    return Status::corruption("two sessions with last index " + std::to_string(s.last_index()));
  }
  const uint64_t id = s.client_id();
  sessions_.emplace(id, std::move(s));
  return Status::ok();
}

void SessionTable::trim(std::vector<uint64_t>* touched) {
  while (sessions_.size() > max_sessions_) {
    auto oldest = by_index_.begin();
    touched->push_back(oldest->second);
    sessions_.erase(oldest->second);
    by_index_.erase(oldest);
  }
}

const kvpb::Session* SessionTable::find(uint64_t client_id) const {
  auto it = sessions_.find(client_id);
  return it == sessions_.end() ? nullptr : &it->second;
}

Result<kvpb::Result> apply_command(std::string_view bytes, LogIndex index, const Limits& limits,
                                   int64_t* now_ms, SessionTable& sessions, KeyStore& store,
                                   std::vector<uint64_t>* touched_sessions) {
  kvpb::Command cmd;
  if (bytes.size() > static_cast<size_t>(INT_MAX) ||
      !cmd.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())) ||
      cmd.op_case() == kvpb::Command::OP_NOT_SET) {
    return code_only(kvpb::Result::BAD_COMMAND);  // never applied: no time, no session
  }
  // Every decodable command moves the replicated time, a retry included: the
  // time is a fact about the log position, not about the client.
  *now_ms = std::max(*now_ms, cmd.now_ms());
  if (cmd.client_id() != 0) {
    if (auto answer = sessions.check(cmd.client_id(), cmd.seq())) return *std::move(answer);
  }
  CHORUS_ASSIGN_OR_RETURN(kvpb::Result r, execute(cmd, *now_ms, limits, store));
  if (cmd.client_id() != 0) {
    sessions.record(cmd.client_id(), cmd.seq(), index, r, touched_sessions);
  }
  return r;
}

}  // namespace chorus::kv
