// The string commands (GET SET SETNX SETEX PSETEX GETSET APPEND STRLEN MGET MSET) and counters.
#include <fmt/format.h>

#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "server/commands_internal.h"

namespace chorus::server::internal {

// ---- Strings: GET SET SETNX SETEX PSETEX GETSET APPEND STRLEN MGET MSET ------------

Plan cmd_get(const Call& c) {
  return read_op([key = c.args[1]](const kv::StateMachine& sm) {
    auto v = sm.read(key);
    if (!v.is_ok()) return storage_error(v.status());
    return encode(append_bulk_or_null, *v);
  });
}

namespace {

enum class ExpireKind { kNone, kEx, kPx, kExAt, kPxAt };

// Redis getExpireMillisecondsOrReply: the absolute expiry in ms, or an error.
std::variant<int64_t, std::string> absolute_expire_ms(ExpireKind kind, std::string_view arg,
                                                      int64_t time_base_ms,
                                                      std::string_view command) {
  const std::string invalid = fmt::format("ERR invalid expire time in '{}' command", command);
  const std::optional<int64_t> v = parse_int64(arg);
  if (!v) return std::string(kErrNotInteger);
  const bool seconds = kind == ExpireKind::kEx || kind == ExpireKind::kExAt;
  int64_t ms = *v;
  if (ms <= 0 || (seconds && ms > std::numeric_limits<int64_t>::max() / 1000)) return invalid;
  if (seconds) ms *= 1000;
  const bool relative = kind == ExpireKind::kEx || kind == ExpireKind::kPx;
  if (relative && __builtin_add_overflow(ms, time_base_ms, &ms)) return invalid;
  if (ms <= 0) return invalid;
  return ms;
}

struct SetOptions {
  kvpb::Put::Condition condition = kvpb::Put::ALWAYS;
  bool get = false;
  bool keep_ttl = false;
  ExpireKind expire = ExpireKind::kNone;
  std::string_view expire_arg;
};

// Redis parseExtendedStringArgumentsOrReply for SET: NX/XX exclude each other,
// the expiry forms and KEEPTTL exclude each other (repeating the same one is
// allowed; the last wins). Returns false on a syntax error.
bool parse_set_options(const std::vector<std::string>& args, SetOptions* o) {
  static constexpr std::pair<std::string_view, ExpireKind> kExpireOptions[] = {
      {"ex", ExpireKind::kEx},
      {"px", ExpireKind::kPx},
      {"exat", ExpireKind::kExAt},
      {"pxat", ExpireKind::kPxAt}};
  for (size_t j = 3; j < args.size(); ++j) {
    const std::string opt = lower(args[j]);
    const bool has_next = j + 1 < args.size();
    if (opt == "nx" && o->condition != kvpb::Put::IF_PRESENT) {
      o->condition = kvpb::Put::IF_ABSENT;
    } else if (opt == "xx" && o->condition != kvpb::Put::IF_ABSENT) {
      o->condition = kvpb::Put::IF_PRESENT;
    } else if (opt == "get") {
      o->get = true;
    } else if (opt == "keepttl" && o->expire == ExpireKind::kNone) {
      o->keep_ttl = true;
    } else {
      bool matched = false;
      for (const auto& [name, kind] : kExpireOptions) {
        if (opt != name || o->keep_ttl || !has_next) continue;
        if (o->expire != ExpireKind::kNone && o->expire != kind) continue;
        o->expire = kind;
        o->expire_arg = args[++j];
        matched = true;
        break;
      }
      if (!matched) return false;
    }
  }
  return true;
}

}  // namespace

// SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL].
// KEEPTTL is parsed (so its conflicts give Redis's syntax error) but refused:
// kvpb::Put has no "keep the old expiry" form, and a Put without an expiry
// clears it, so honouring KEEPTTL needs a state machine change.
Plan cmd_set(const Call& c) {
  SetOptions o;
  if (!parse_set_options(c.args, &o)) return fail(kErrSyntax);
  int64_t expire_at_ms = 0;
  if (o.expire != ExpireKind::kNone) {
    auto at = absolute_expire_ms(o.expire, o.expire_arg, c.view.time_base_ms, "set");
    if (auto* err = std::get_if<std::string>(&at)) return fail(*err);
    expire_at_ms = std::get<int64_t>(at);
  }
  if (o.keep_ttl) return fail("ERR SET KEEPTTL is not supported");
  kvpb::Command cmd = kv::make_put(c.args[1], c.args[2]);
  cmd.mutable_put()->set_condition(o.condition);
  cmd.mutable_put()->set_expire_at_ms(expire_at_ms);
  cmd.mutable_put()->set_return_old(o.get);
  return write_op(std::move(cmd), /*conditional=*/true, [get = o.get](const kvpb::Result& r) {
    if (get) return reply_old_value(r);
    if (r.code() == kvpb::Result::OK) return encode(resp::append_simple_string, "OK");
    return encode(resp::append_null_bulk);
  });
}

Plan cmd_setnx(const Call& c) {
  kvpb::Command cmd = kv::make_put(c.args[1], c.args[2]);
  cmd.mutable_put()->set_condition(kvpb::Put::IF_ABSENT);
  return write_op(std::move(cmd), /*conditional=*/true, reply_applied_flag);
}

namespace {

// SETEX key seconds value / PSETEX key milliseconds value.
Plan set_with_ttl(const Call& c, ExpireKind kind, std::string_view command) {
  auto at = absolute_expire_ms(kind, c.args[2], c.view.time_base_ms, command);
  if (auto* err = std::get_if<std::string>(&at)) return fail(*err);
  kvpb::Command cmd = kv::make_put(c.args[1], c.args[3]);
  cmd.mutable_put()->set_expire_at_ms(std::get<int64_t>(at));
  return write_op(std::move(cmd), /*conditional=*/false, reply_ok);
}

}  // namespace

Plan cmd_setex(const Call& c) {
  return set_with_ttl(c, ExpireKind::kEx, "setex");
}
Plan cmd_psetex(const Call& c) {
  return set_with_ttl(c, ExpireKind::kPx, "psetex");
}

Plan cmd_getset(const Call& c) {
  kvpb::Command cmd = kv::make_put(c.args[1], c.args[2]);
  cmd.mutable_put()->set_return_old(true);
  return write_op(std::move(cmd), /*conditional=*/false, reply_old_value);
}

Plan cmd_append(const Call& c) {
  return write_op(kv::make_append(c.args[1], c.args[2]), /*conditional=*/false, reply_integer);
}

Plan cmd_strlen(const Call& c) {
  return read_op([key = c.args[1]](const kv::StateMachine& sm) {
    auto v = sm.read(key);
    if (!v.is_ok()) return storage_error(v.status());
    return encode(resp::append_integer, v->has_value() ? static_cast<int64_t>((*v)->size()) : 0);
  });
}

Plan cmd_mget(const Call& c) {
  std::vector<std::string> keys(c.args.begin() + 1, c.args.end());
  return read_op([keys = std::move(keys)](const kv::StateMachine& sm) {
    std::string out;
    resp::append_array_header(&out, keys.size());
    for (const std::string& key : keys) {
      auto v = sm.read(key);
      if (!v.is_ok()) return storage_error(v.status());
      append_bulk_or_null(&out, *v);
    }
    return out;
  });
}

Plan cmd_mset(const Call& c) {
  if (c.args.size() % 2 == 0) return fail(arity_error("mset"));
  std::vector<std::pair<std::string, std::string>> kvs;
  kvs.reserve(c.args.size() / 2);
  for (size_t i = 1; i + 1 < c.args.size(); i += 2) kvs.emplace_back(c.args[i], c.args[i + 1]);
  return write_op(kv::make_multi_put(std::move(kvs)), /*conditional=*/false, reply_ok);
}

// ---- Counters: INCR INCRBY DECR DECRBY ---------------------------------------------

namespace {

Plan incr_by(const std::string& key, int64_t delta) {
  return write_op(kv::make_incr_by(key, delta), /*conditional=*/false, reply_integer);
}

}  // namespace

Plan cmd_incr(const Call& c) {
  return incr_by(c.args[1], 1);
}
Plan cmd_decr(const Call& c) {
  return incr_by(c.args[1], -1);
}

Plan cmd_incrby(const Call& c) {
  const std::optional<int64_t> delta = parse_int64(c.args[2]);
  if (!delta) return fail(kErrNotInteger);
  return incr_by(c.args[1], *delta);
}

Plan cmd_decrby(const Call& c) {
  const std::optional<int64_t> delta = parse_int64(c.args[2]);
  if (!delta) return fail(kErrNotInteger);
  // -INT64_MIN does not exist (Redis decrbyCommand checks the same).
  if (*delta == std::numeric_limits<int64_t>::min()) return fail("ERR decrement would overflow");
  return incr_by(c.args[1], -*delta);
}

}  // namespace chorus::server::internal
