#include "server/commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <limits>
#include <span>
#include <utility>

#include "base/assert.h"
#include "net/resp/resp_encoder.h"
#include "server/glob.h"

namespace chorus::server {
namespace {

// ---- RESP2 encoding (src/net/resp) ---------------------------------------------

namespace resp = ::chorus::net::resp;

// A reply that is one RESP value: encode(resp::append_integer, 42) is ":42\r\n".
// Replies of several values append each one to a single string instead.
template <typename... Params, typename... Args>
std::string encode(void (*append)(std::string*, Params...), Args&&... args) {
  std::string out;
  append(&out, std::forward<Args>(args)...);
  return out;
}

// A bulk string, or the nil reply when there is no value (GET of a missing key).
void append_bulk_or_null(std::string* out, const std::optional<std::string>& value) {
  if (value.has_value()) {
    resp::append_bulk_string(out, *value);
  } else {
    resp::append_null_bulk(out);
  }
}

// ---- Error texts (Redis 7, byte for byte) ------------------------------------------

constexpr std::string_view kErrSyntax = "ERR syntax error";
constexpr std::string_view kErrNotInteger = "ERR value is not an integer or out of range";
constexpr std::string_view kErrIncrOverflow = "ERR increment or decrement would overflow";
constexpr std::string_view kErrInvalidCursor = "ERR invalid cursor";
// Redis answers any password for the default user when none is configured.
constexpr std::string_view kErrWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";
constexpr std::string_view kErrClientName =
    "ERR Client names cannot contain spaces, newlines or special characters.";

// The version Redis clients see (HELLO, INFO redis_version): the Redis release
// whose command semantics Chorus follows. Chorus's own is ServerView::version.
constexpr std::string_view kRedisCompatVersion = "7.0.0";

std::string arity_error(std::string_view fullname) {
  return fmt::format("ERR wrong number of arguments for '{}' command", fullname);
}

// ---- Argument parsing --------------------------------------------------------------

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = ascii_lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// Redis's string2ll: optional '-', digits, no '+', no spaces, no leading zeros
// ("0" is fine, "-0" is not), within int64. What every integer argument obeys.
std::optional<int64_t> parse_int64(std::string_view s) {
  const bool negative = !s.empty() && s[0] == '-';
  const std::string_view digits = s.substr(negative ? 1 : 0);
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  if (digits[0] == '0' && (digits.size() > 1 || negative)) return std::nullopt;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  constexpr uint64_t kMaxPositive = std::numeric_limits<int64_t>::max();
  if (negative) {
    if (v > kMaxPositive + 1) return std::nullopt;
    return v == kMaxPositive + 1 ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(v);
  }
  if (v > kMaxPositive) return std::nullopt;
  return static_cast<int64_t>(v);
}

// A SCAN cursor, as Redis's parseScanCursorOrReply reads it: strtoul, so "" is
// 0, "+5" is 5 and "-1" wraps; no leading space, no trailing bytes, no ERANGE.
std::optional<uint64_t> parse_scan_cursor(const std::string& s) {
  if (!s.empty() && std::isspace(static_cast<unsigned char>(s[0]))) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno == ERANGE || end != s.c_str() + s.size()) return std::nullopt;
  return static_cast<uint64_t>(v);
}

// At most `n` bytes of `s`, stopping at a NUL: what C's "%.*s" prints.
std::string_view c_prefix(std::string_view s, size_t n) {
  s = s.substr(0, std::min(n, s.size()));
  return s.substr(0, std::min(s.find('\0'), s.size()));
}

// Redis 7 processCommand(): the name and up to ~128 bytes of arguments.
std::string unknown_command_error(const std::vector<std::string>& args) {
  std::string shown;
  for (size_t i = 1; i < args.size() && shown.size() < 128; ++i) {
    const size_t budget = 128 - shown.size();
    shown += fmt::format("'{}' ", c_prefix(args[i], budget));
  }
  return fmt::format("ERR unknown command '{}', with args beginning with: {}",
                     c_prefix(args[0], 128), shown);
}

// Redis's validateClientName: printable ASCII without spaces ('!'..'~').
bool valid_client_name(std::string_view name) {
  for (char c : name) {
    if (c < '!' || c > '~') return false;
  }
  return true;
}

// ---- Plans ----------------------------------------------------------------------

struct Call {
  const std::vector<std::string>& args;
  Session& session;
  const ServerView& view;
};

Plan reply(std::string resp) {
  return ImmediateReply{std::move(resp)};
}
Plan fail(std::string_view line) {
  return ImmediateReply{encode(resp::append_error, line)};
}

std::string storage_error(const Status& s) {
  return encode(resp::append_error, "ERR storage error: " + s.to_string());
}

Plan read_op(std::function<std::string(const kv::StateMachine&)> run) {
  ReadOp op;
  op.run = std::move(run);
  return op;
}

// The reply for result codes that mean the same for every write. OK is the
// command's own business, and so is CONDITION_FAILED when `conditional`.
std::optional<std::string> common_write_failure(const kvpb::Result& r, bool conditional) {
  switch (r.code()) {
    case kvpb::Result::OK:
      return std::nullopt;
    case kvpb::Result::CONDITION_FAILED:
      if (conditional) return std::nullopt;
      break;
    case kvpb::Result::NOT_INTEGER:
      return encode(resp::append_error, kErrNotInteger);
    case kvpb::Result::OVERFLOW:
      return encode(resp::append_error, kErrIncrOverflow);
    case kvpb::Result::STALE_SEQUENCE:
      return encode(resp::append_error, "ERR stale request");
    case kvpb::Result::BAD_COMMAND:
      return encode(resp::append_error, "ERR internal: bad command");
    case kvpb::Result::TOO_LARGE:
      return encode(resp::append_error, "ERR value too large");
    default:
      break;
  }
  return encode(resp::append_error, fmt::format("ERR internal: unexpected result {}",
                                                kvpb::Result::Code_Name(r.code())));
}

// A replicated write whose reply, after the common failures, is `on_applied`.
Plan write_op(kvpb::Command command, bool conditional,
              std::function<std::string(const kvpb::Result&)> on_applied) {
  WriteOp op;
  op.command = std::move(command);
  op.reply = [conditional, on_applied = std::move(on_applied)](const kvpb::Result& r) {
    if (auto failure = common_write_failure(r, conditional)) return *std::move(failure);
    return on_applied(r);
  };
  return op;
}

std::string reply_ok(const kvpb::Result&) {
  return encode(resp::append_simple_string, "OK");
}
std::string reply_integer(const kvpb::Result& r) {
  return encode(resp::append_integer, r.integer());
}
// :1 if the condition held and the write applied, :0 if not (SETNX, CHORUS.CAS).
std::string reply_applied_flag(const kvpb::Result& r) {
  return encode(resp::append_integer, r.code() == kvpb::Result::OK ? 1 : 0);
}
std::string reply_old_value(const kvpb::Result& r) {
  return r.found() ? encode(resp::append_bulk_string, r.value()) : encode(resp::append_null_bulk);
}

// ---- Strings: GET SET SETNX SETEX PSETEX GETSET APPEND STRLEN MGET MSET ------------

Plan cmd_get(const Call& c) {
  return read_op([key = c.args[1]](const kv::StateMachine& sm) {
    auto v = sm.read(key);
    if (!v.is_ok()) return storage_error(v.status());
    return encode(append_bulk_or_null, *v);
  });
}

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

// SETEX key seconds value / PSETEX key milliseconds value.
Plan set_with_ttl(const Call& c, ExpireKind kind, std::string_view command) {
  auto at = absolute_expire_ms(kind, c.args[2], c.view.time_base_ms, command);
  if (auto* err = std::get_if<std::string>(&at)) return fail(*err);
  kvpb::Command cmd = kv::make_put(c.args[1], c.args[3]);
  cmd.mutable_put()->set_expire_at_ms(std::get<int64_t>(at));
  return write_op(std::move(cmd), /*conditional=*/false, reply_ok);
}
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

Plan incr_by(const std::string& key, int64_t delta) {
  return write_op(kv::make_incr_by(key, delta), /*conditional=*/false, reply_integer);
}
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

// ---- Keys: DEL UNLINK EXISTS TYPE DBSIZE SCAN --------------------------------------

Plan cmd_del(const Call& c) {
  std::vector<std::string> keys(c.args.begin() + 1, c.args.end());
  return write_op(kv::make_delete(std::move(keys)), /*conditional=*/false, reply_integer);
}

// A key named twice counts twice, as in Redis.
Plan cmd_exists(const Call& c) {
  std::vector<std::string> keys(c.args.begin() + 1, c.args.end());
  return read_op([keys = std::move(keys)](const kv::StateMachine& sm) {
    int64_t n = 0;
    for (const std::string& key : keys) {
      auto v = sm.read(key);
      if (!v.is_ok()) return storage_error(v.status());
      if (v->has_value()) ++n;
    }
    return encode(resp::append_integer, n);
  });
}

// Every Chorus value is a string.
Plan cmd_type(const Call& c) {
  return read_op([key = c.args[1]](const kv::StateMachine& sm) {
    auto v = sm.read(key);
    if (!v.is_ok()) return storage_error(v.status());
    return encode(resp::append_simple_string, v->has_value() ? "string" : "none");
  });
}

Plan cmd_dbsize(const Call&) {
  return read_op([](const kv::StateMachine& sm) {
    auto n = sm.key_count();
    if (!n.is_ok()) return storage_error(n.status());
    return encode(resp::append_integer, static_cast<int64_t>(*n));
  });
}

struct ScanRequest {
  std::string start;         // the first key this page may return
  size_t count = 10;         // keys examined (Redis's COUNT), before MATCH filters
  std::string pattern;       // "" = no MATCH
  bool strings_only = true;  // TYPE: false when a type other than "string" was asked
};

// Redis scanGenericCommand's options. Returns an error line, or nullopt.
std::optional<std::string> parse_scan_options(const std::vector<std::string>& args,
                                              ScanRequest* r) {
  for (size_t i = 2; i < args.size(); i += 2) {
    const std::string opt = lower(args[i]);
    if (i + 1 >= args.size()) return std::string(kErrSyntax);
    const std::string& value = args[i + 1];
    if (opt == "count") {
      const std::optional<int64_t> n = parse_int64(value);
      if (!n) return std::string(kErrNotInteger);
      if (*n < 1) return std::string(kErrSyntax);
      r->count = static_cast<size_t>(std::min<int64_t>(*n, kv::kScanItemsMax));
    } else if (opt == "match") {
      r->pattern = value == "*" ? "" : value;  // "*" matches everything, even "" (Redis)
    } else if (opt == "type") {
      r->strings_only = iequals(value, "string");
    } else {
      return std::string(kErrSyntax);
    }
  }
  return std::nullopt;
}

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. Keys come in key order; a
// key present from the first call to the last is returned exactly once, one
// added or removed meanwhile at most once (Redis gives "at least once").
// COUNT bounds the keys examined, so a page may be empty while the cursor is
// not 0, as in Redis.
Plan cmd_scan(const Call& c) {
  const std::optional<uint64_t> cursor = parse_scan_cursor(c.args[1]);
  if (!cursor) return fail(kErrInvalidCursor);
  ScanRequest req;
  if (auto err = parse_scan_options(c.args, &req)) return fail(*err);
  if (*cursor != 0) {
    std::optional<std::string> start = c.session.scan_cursors->find(*cursor);
    if (!start) return fail(kErrInvalidCursor);
    req.start = std::move(*start);
  }
  return read_op([req = std::move(req), table = c.session.scan_cursors,
                  session_id = c.session.id](const kv::StateMachine& sm) {
    auto page = sm.scan(req.start, req.count);
    if (!page.is_ok()) return storage_error(page.status());
    std::vector<std::string_view> keys;
    for (const auto& [key, value] : page->items) {
      if (!req.strings_only) continue;
      if (!req.pattern.empty() && !glob_match(req.pattern, key)) continue;
      keys.push_back(key);
    }
    const uint64_t next = page->next.empty() ? 0 : table->add(session_id, page->next);
    std::string out;
    resp::append_array_header(&out, 2);
    resp::append_bulk_string(&out, std::to_string(next));
    resp::append_array_header(&out, keys.size());
    for (std::string_view key : keys) resp::append_bulk_string(&out, key);
    return out;
  });
}

// ---- Connection: PING ECHO QUIT SELECT HELLO ----------------------------------------

Plan cmd_ping(const Call& c) {
  if (c.args.size() > 2) return fail(arity_error("ping"));
  if (c.args.size() == 1) return reply(encode(resp::append_simple_string, "PONG"));
  return reply(encode(resp::append_bulk_string, c.args[1]));
}

Plan cmd_echo(const Call& c) {
  return reply(encode(resp::append_bulk_string, c.args[1]));
}

Plan cmd_quit(const Call&) {
  return ImmediateReply{encode(resp::append_simple_string, "OK"), /*close_after=*/true};
}

// One database, as in Redis cluster mode; its index is 0.
Plan cmd_select(const Call& c) {
  const std::optional<int64_t> index = parse_int64(c.args[1]);
  if (!index || *index < std::numeric_limits<int>::min() ||
      *index > std::numeric_limits<int>::max()) {
    return fail(kErrNotInteger);
  }
  if (*index != 0) return fail("ERR DB index is out of range");
  return reply(encode(resp::append_simple_string, "OK"));
}

bool is_leader(const ServerView& view) {
  return view.role == "leader";
}

// HELLO [protover [AUTH username password] [SETNAME clientname]]. RESP2 only:
// a RESP3 client falls back to RESP2 on -NOPROTO (redis-py, Lettuce do).
// No password is configured, so AUTH accepts the default user (Redis "nopass").
Plan cmd_hello(const Call& c) {
  const std::vector<std::string>& a = c.args;
  if (a.size() >= 2) {
    const std::optional<int64_t> version = parse_int64(a[1]);
    if (!version) return fail("ERR Protocol version is not an integer or out of range");
    if (*version != 2) return fail("NOPROTO unsupported protocol version");
  }
  const std::string* name = nullptr;
  for (size_t j = 2; j < a.size(); ++j) {
    const size_t more = a.size() - 1 - j;
    if (iequals(a[j], "auth") && more >= 2) {
      if (a[j + 1] != "default") return fail(kErrWrongPass);
      j += 2;
    } else if (iequals(a[j], "setname") && more >= 1) {
      name = &a[++j];
      if (!valid_client_name(*name)) return fail(kErrClientName);
    } else {
      return fail(fmt::format("ERR Syntax error in HELLO option '{}'", c_prefix(a[j], 128)));
    }
  }
  if (name != nullptr) c.session.name = *name;
  std::string out;
  resp::append_array_header(&out, 14);
  auto field = [&out](std::string_view name) { resp::append_bulk_string(&out, name); };
  field("server");
  resp::append_bulk_string(&out, "redis");
  field("version");
  resp::append_bulk_string(&out, kRedisCompatVersion);
  field("proto");
  resp::append_integer(&out, 2);
  field("id");
  resp::append_integer(&out, static_cast<int64_t>(c.session.id));
  field("mode");
  resp::append_bulk_string(&out, "standalone");
  field("role");
  resp::append_bulk_string(&out, is_leader(c.view) ? "master" : "replica");
  field("modules");
  resp::append_array_header(&out, 0);
  return reply(std::move(out));
}

// ---- INFO -----------------------------------------------------------------------

enum InfoSection : uint32_t {
  kInfoServer = 1,
  kInfoClients = 2,
  kInfoPersistence = 4,
  kInfoReplication = 8,
  kInfoKeyspace = 16,
  kInfoAll = 31,
};

// INFO [section ...]: Redis 7 accepts several; "all", "default" and
// "everything" name every section we have. Sections Chorus has no data for
// (memory, stats, cpu...) are left out rather than filled with invented values.
uint32_t parse_info_sections(const std::vector<std::string>& args) {
  static constexpr std::pair<std::string_view, uint32_t> kNames[] = {
      {"server", kInfoServer},
      {"clients", kInfoClients},
      {"persistence", kInfoPersistence},
      {"replication", kInfoReplication},
      {"keyspace", kInfoKeyspace},
      {"all", kInfoAll},
      {"default", kInfoAll},
      {"everything", kInfoAll}};
  if (args.size() == 1) return kInfoAll;
  uint32_t sections = 0;
  for (size_t i = 1; i < args.size(); ++i) {
    for (const auto& [name, bits] : kNames) {
      if (iequals(args[i], name)) sections |= bits;
    }
  }
  return sections;
}

// The text of the sections that need no state machine (all but Keyspace).
// Redis's layout: "# Name\r\n" then "field:value\r\n" lines; a blank line
// ("\r\n") before every section but the first.
std::string info_static_sections(uint32_t sections, const ServerView& v) {
  std::string out;
  auto section = [&out](std::string_view title) {
    if (!out.empty()) out += "\r\n";
    out += fmt::format("# {}\r\n", title);
  };
  if (sections & kInfoServer) {
    section("Server");
    out += fmt::format(
        "redis_version:{}\r\nredis_mode:standalone\r\nchorus_version:{}\r\n"
        "chorus_node_id:{}\r\narch_bits:64\r\ntcp_port:{}\r\nuptime_in_seconds:{}\r\n",
        kRedisCompatVersion, v.version, v.node_id, v.tcp_port, v.uptime_s);
  }
  if (sections & kInfoClients) {
    section("Clients");
    out += fmt::format("connected_clients:{}\r\nmaxclients:{}\r\n", v.connected_clients,
                       v.max_clients);
  }
  if (sections & kInfoPersistence) {
    section("Persistence");
    out += "loading:0\r\n";
  }
  if (sections & kInfoReplication) {
    section("Replication");
    out += fmt::format("role:{}\r\nconnected_slaves:0\r\nchorus_role:{}\r\n",
                       is_leader(v) ? "master" : "slave", v.role);
  }
  return out;
}

// INFO reads the key count, so it is a ReadOp, but a local one: diagnostics
// must answer on a node without a leader. Keyspace lists db0 only when it has
// keys, as Redis does; expires/avg_ttl are not tracked by the state machine.
Plan cmd_info(const Call& c) {
  const uint32_t sections = parse_info_sections(c.args);
  std::string text = info_static_sections(sections, c.view);
  ReadOp op;
  op.local_ok = true;
  op.run = [sections, text = std::move(text)](const kv::StateMachine& sm) {
    std::string out = text;
    if (sections & kInfoKeyspace) {
      auto n = sm.key_count();
      if (!n.is_ok()) return storage_error(n.status());
      if (!out.empty()) out += "\r\n";
      out += "# Keyspace\r\n";
      if (*n > 0) out += fmt::format("db0:keys={},expires=0,avg_ttl=0\r\n", *n);
    }
    return encode(resp::append_bulk_string, out);
  };
  return op;
}

// ---- CLIENT ---------------------------------------------------------------------

Plan cmd_client_id(const Call& c) {
  return reply(encode(resp::append_integer, static_cast<int64_t>(c.session.id)));
}

Plan cmd_client_getname(const Call& c) {
  if (c.session.name.empty()) return reply(encode(resp::append_null_bulk));
  return reply(encode(resp::append_bulk_string, c.session.name));
}

Plan cmd_client_setname(const Call& c) {
  if (!valid_client_name(c.args[2])) return fail(kErrClientName);
  c.session.name = c.args[2];
  return reply(encode(resp::append_simple_string, "OK"));
}

// CLIENT SETINFO LIB-NAME|LIB-VER value (Redis 7.2; sent by newer clients on connect).
Plan cmd_client_setinfo(const Call& c) {
  const std::string& value = c.args[3];
  std::string* field = nullptr;
  std::string_view what;
  if (iequals(c.args[2], "lib-name")) {
    field = &c.session.lib_name;
    what = "lib-name";
  } else if (iequals(c.args[2], "lib-ver")) {
    field = &c.session.lib_version;
    what = "lib-ver";
  } else {
    return fail(fmt::format("ERR Unrecognized option '{}'", c_prefix(c.args[2], 128)));
  }
  if (!valid_client_name(value)) {
    return fail(fmt::format("ERR {} cannot contain spaces, newlines or special characters.", what));
  }
  *field = value;
  return reply(encode(resp::append_simple_string, "OK"));
}

// ---- CHORUS.* -------------------------------------------------------------------

Plan cmd_chorus_status(const Call& c) {
  return reply(encode(resp::append_bulk_string, c.view.status_json));
}

// CHORUS.CAS key expected new: :1 if the key held `expected` and now holds
// `new`, :0 otherwise (an absent key included: CAS never creates).
Plan cmd_chorus_cas(const Call& c) {
  return write_op(kv::make_cas(c.args[1], c.args[2], c.args[3]), /*conditional=*/true,
                  reply_applied_flag);
}

// CHORUS.CONSISTENCY [linearizable|lease|follower]: sets this connection's
// read mode (+OK), or with no argument returns it (bulk).
Plan cmd_chorus_consistency(const Call& c) {
  if (c.args.size() > 2) return fail(arity_error("chorus.consistency"));
  if (c.args.size() == 1)
    return reply(encode(resp::append_bulk_string, consistency_name(c.session.consistency)));
  static constexpr Consistency kModes[] = {Consistency::kLinearizable, Consistency::kLease,
                                           Consistency::kFollower};
  for (Consistency mode : kModes) {
    if (!iequals(c.args[1], consistency_name(mode))) continue;
    if (mode == Consistency::kLease && !c.view.lease_reads_enabled) {
      return fail("ERR lease reads are disabled (raft.lease_reads = false)");
    }
    c.session.consistency = mode;
    return reply(encode(resp::append_simple_string, "OK"));
  }
  return fail(
      fmt::format("ERR unknown consistency mode '{}' (expected linearizable, lease or follower)",
                  c_prefix(c.args[1], 128)));
}

// ---- The command table ------------------------------------------------------------

using Handler = Plan (*)(const Call&);

enum CommandFlag : uint32_t {
  kWrite = 1,     // proposes a replicated write
  kReadOnly = 2,  // reads the keyspace
  kFast = 4,      // O(1) or O(log n) (Redis's "fast")
};

// One command. Arity is Redis's: N = exactly N arguments with the name, -N = at
// least N. Key positions are Redis's (COMMAND): first, last (-1 = the last
// argument), step; 0 0 0 for commands without keys.
struct CommandSpec {
  std::string_view name;  // lowercase
  int arity;
  uint32_t flags;
  int first_key, last_key, key_step;
  Handler handler;                           // may be null for a container without own form
  std::span<const CommandSpec> subcommands;  // CLIENT ID, CONFIG GET...; empty for most
};

Plan cmd_command(const Call& c);
Plan cmd_command_count(const Call& c);
Plan cmd_command_docs(const Call& c);
Plan cmd_command_info(const Call& c);
Plan cmd_command_list(const Call& c);
Plan cmd_config_get(const Call& c);
Plan cmd_config_set(const Call& c);

// ---- CHORUS.KEYSPACE ------------------------------------------------------------
//
//   CHORUS.KEYSPACE CREATE name PREFIX p STRATEGY s [option value ...]
//   CHORUS.KEYSPACE DROP name
//   CHORUS.KEYSPACE LIST
//   CHORUS.KEYSPACE INFO name
// Checked here as far as the arguments go (keyspaces.h); the node checks
// the rest against the table (a name or prefix taken).

Plan cmd_keyspace_create(const Call& c) {
  KeyspaceOp op;
  op.kind = KeyspaceOp::Kind::kCreate;
  op.spec.name = c.args[2];
  bool has_prefix = false;
  bool has_strategy = false;
  for (size_t i = 3; i < c.args.size(); i += 2) {
    if (i + 1 >= c.args.size()) {
      return fail(
          fmt::format("ERR CHORUS.KEYSPACE CREATE: '{}' has no value", c_prefix(c.args[i], 64)));
    }
    const std::string& value = c.args[i + 1];
    if (iequals(c.args[i], "prefix")) {
      op.spec.prefix = value;
      has_prefix = true;
    } else if (iequals(c.args[i], "strategy")) {
      op.spec.strategy = value;
      has_strategy = true;
    } else {
      std::string option = c.args[i];
      for (char& ch : option) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      op.spec.options[option] = value;
    }
  }
  if (!has_prefix) return fail("ERR CHORUS.KEYSPACE CREATE: PREFIX is required");
  if (!has_strategy) return fail("ERR CHORUS.KEYSPACE CREATE: STRATEGY is required");
  if (Status st = validate_keyspace(op.spec); !st.is_ok()) {
    return fail("ERR invalid keyspace: " + st.message());
  }
  return op;
}

Plan cmd_keyspace_drop(const Call& c) {
  if (iequals(c.args[2], kDefaultKeyspaceName)) {
    return fail("ERR the default keyspace cannot be dropped");
  }
  return KeyspaceOp{KeyspaceOp::Kind::kDrop, {}, c.args[2]};
}

Plan cmd_keyspace_list(const Call&) {
  return KeyspaceOp{KeyspaceOp::Kind::kList, {}, {}};
}

Plan cmd_keyspace_info(const Call& c) {
  return KeyspaceOp{KeyspaceOp::Kind::kInfo, {}, c.args[2]};
}

constexpr CommandSpec kKeyspaceSubcommands[] = {
    {"create", -7, 0, 0, 0, 0, cmd_keyspace_create, {}},
    {"drop", 3, 0, 0, 0, 0, cmd_keyspace_drop, {}},
    {"list", 2, 0, 0, 0, 0, cmd_keyspace_list, {}},
    {"info", 3, 0, 0, 0, 0, cmd_keyspace_info, {}},
};

constexpr CommandSpec kClientSubcommands[] = {
    {"id", 2, kFast, 0, 0, 0, cmd_client_id, {}},
    {"getname", 2, kFast, 0, 0, 0, cmd_client_getname, {}},
    {"setname", 3, kFast, 0, 0, 0, cmd_client_setname, {}},
    {"setinfo", 4, kFast, 0, 0, 0, cmd_client_setinfo, {}},
};

constexpr CommandSpec kCommandSubcommands[] = {
    {"count", 2, 0, 0, 0, 0, cmd_command_count, {}},
    {"docs", -2, 0, 0, 0, 0, cmd_command_docs, {}},
    {"info", -2, 0, 0, 0, 0, cmd_command_info, {}},
    {"list", 2, 0, 0, 0, 0, cmd_command_list, {}},
};

constexpr CommandSpec kConfigSubcommands[] = {
    {"get", -3, 0, 0, 0, 0, cmd_config_get, {}},
    {"set", -4, 0, 0, 0, 0, cmd_config_set, {}},
};

constexpr uint32_t kW = kWrite;
constexpr uint32_t kWF = kWrite | kFast;
constexpr uint32_t kR = kReadOnly;
constexpr uint32_t kRF = kReadOnly | kFast;

constexpr CommandSpec kCommands[] = {
    {"get", 2, kRF, 1, 1, 1, cmd_get, {}},
    {"set", -3, kW, 1, 1, 1, cmd_set, {}},
    {"setnx", 3, kWF, 1, 1, 1, cmd_setnx, {}},
    {"setex", 4, kW, 1, 1, 1, cmd_setex, {}},
    {"psetex", 4, kW, 1, 1, 1, cmd_psetex, {}},
    {"getset", 3, kWF, 1, 1, 1, cmd_getset, {}},
    {"append", 3, kWF, 1, 1, 1, cmd_append, {}},
    {"strlen", 2, kRF, 1, 1, 1, cmd_strlen, {}},
    {"mget", -2, kRF, 1, -1, 1, cmd_mget, {}},
    {"mset", -3, kW, 1, -1, 2, cmd_mset, {}},
    {"incr", 2, kWF, 1, 1, 1, cmd_incr, {}},
    {"incrby", 3, kWF, 1, 1, 1, cmd_incrby, {}},
    {"decr", 2, kWF, 1, 1, 1, cmd_decr, {}},
    {"decrby", 3, kWF, 1, 1, 1, cmd_decrby, {}},
    {"del", -2, kW, 1, -1, 1, cmd_del, {}},
    {"unlink", -2, kWF, 1, -1, 1, cmd_del, {}},
    {"exists", -2, kRF, 1, -1, 1, cmd_exists, {}},
    {"type", 2, kRF, 1, 1, 1, cmd_type, {}},
    {"dbsize", 1, kRF, 0, 0, 0, cmd_dbsize, {}},
    {"scan", -2, kR, 0, 0, 0, cmd_scan, {}},
    {"ping", -1, kFast, 0, 0, 0, cmd_ping, {}},
    {"echo", 2, kFast, 0, 0, 0, cmd_echo, {}},
    {"quit", -1, kFast, 0, 0, 0, cmd_quit, {}},
    {"select", 2, kFast, 0, 0, 0, cmd_select, {}},
    {"hello", -1, kFast, 0, 0, 0, cmd_hello, {}},
    {"info", -1, 0, 0, 0, 0, cmd_info, {}},
    {"client", -2, 0, 0, 0, 0, nullptr, kClientSubcommands},
    {"command", -1, 0, 0, 0, 0, cmd_command, kCommandSubcommands},
    {"config", -2, 0, 0, 0, 0, nullptr, kConfigSubcommands},
    {"chorus.status", 1, kFast, 0, 0, 0, cmd_chorus_status, {}},
    {"chorus.cas", 4, kWF, 1, 1, 1, cmd_chorus_cas, {}},
    {"chorus.consistency", -1, kFast, 0, 0, 0, cmd_chorus_consistency, {}},
    {"chorus.keyspace", -2, 0, 0, 0, 0, nullptr, kKeyspaceSubcommands},
};

const CommandSpec* find_in(std::span<const CommandSpec> table, std::string_view name) {
  for (const CommandSpec& spec : table) {
    if (iequals(spec.name, name)) return &spec;
  }
  return nullptr;
}

bool arity_ok(const CommandSpec& spec, size_t argc) {
  const auto n = static_cast<size_t>(spec.arity < 0 ? -spec.arity : spec.arity);
  return spec.arity < 0 ? argc >= n : argc == n;
}

// ---- COMMAND and CONFIG -----------------------------------------------------------

// Redis 7's 10-element COMMAND entry: name, arity, flags, first key, last key,
// step, ACL categories, tips, key specs, subcommands (the last four kept
// empty except subcommands).
void append_command_entry(std::string* out, const CommandSpec& spec, std::string_view parent) {
  resp::append_array_header(out, 10);
  resp::append_bulk_string(
      out, parent.empty() ? std::string(spec.name) : fmt::format("{}|{}", parent, spec.name));
  resp::append_integer(out, spec.arity);
  std::vector<std::string_view> flags;
  if (spec.flags & kWrite) flags.push_back("write");
  if (spec.flags & kReadOnly) flags.push_back("readonly");
  if (spec.flags & kFast) flags.push_back("fast");
  resp::append_array_header(out, flags.size());
  for (std::string_view f : flags) resp::append_simple_string(out, f);
  resp::append_integer(out, spec.first_key);
  resp::append_integer(out, spec.last_key);
  resp::append_integer(out, spec.key_step);
  resp::append_array_header(out, 0);  // ACL categories
  resp::append_array_header(out, 0);  // tips
  resp::append_array_header(out, 0);  // key specs
  resp::append_array_header(out, spec.subcommands.size());
  for (const CommandSpec& sub : spec.subcommands) append_command_entry(out, sub, spec.name);
}

std::string all_command_entries() {
  std::string out;
  resp::append_array_header(&out, std::size(kCommands));
  for (const CommandSpec& spec : kCommands) append_command_entry(&out, spec, "");
  return out;
}

Plan cmd_command(const Call&) {
  return reply(all_command_entries());
}
Plan cmd_command_count(const Call&) {
  return reply(encode(resp::append_integer, static_cast<int64_t>(std::size(kCommands))));
}
// Command documentation (redis-cli's hints) is optional; an empty reply is valid.
Plan cmd_command_docs(const Call&) {
  return reply(encode(resp::append_array_header, 0));
}

Plan cmd_command_info(const Call& c) {
  if (c.args.size() == 2) return reply(all_command_entries());
  std::string out;
  resp::append_array_header(&out, c.args.size() - 2);
  for (size_t i = 2; i < c.args.size(); ++i) {
    const CommandSpec* spec = find_in(kCommands, c.args[i]);
    if (spec != nullptr) {
      append_command_entry(&out, *spec, "");
    } else {
      resp::append_null_bulk(&out);
    }
  }
  return reply(std::move(out));
}

Plan cmd_command_list(const Call&) {
  std::string out;
  resp::append_array_header(&out, std::size(kCommands));
  for (const CommandSpec& spec : kCommands) resp::append_bulk_string(&out, spec.name);
  return reply(std::move(out));
}

// CONFIG GET parameter [parameter ...]: glob patterns, matched without case
// against the few parameters clients and redis-benchmark ask for. A parameter
// matched by several patterns is listed once.
Plan cmd_config_get(const Call& c) {
  const ServerView& v = c.view;
  const std::pair<std::string_view, std::string> params[] = {
      {"save", ""},       {"appendonly", "no"},
      {"maxmemory", "0"}, {"proto-max-bulk-len", std::to_string(v.max_bulk_bytes)},
      {"databases", "1"}, {"maxclients", std::to_string(v.max_clients)},
      {"timeout", "0"},
  };
  std::vector<bool> matched(std::size(params), false);
  size_t n = 0;
  for (size_t i = 2; i < c.args.size(); ++i) {
    for (size_t p = 0; p < std::size(params); ++p) {
      if (matched[p] || !glob_match(c.args[i], params[p].first, /*nocase=*/true)) continue;
      matched[p] = true;
      ++n;
    }
  }
  std::string out;
  resp::append_array_header(&out, 2 * n);
  for (size_t p = 0; p < std::size(params); ++p) {
    if (!matched[p]) continue;
    resp::append_bulk_string(&out, params[p].first);
    resp::append_bulk_string(&out, params[p].second);
  }
  return reply(std::move(out));
}

// The configuration is the node's TOML file; nothing changes at run time.
Plan cmd_config_set(const Call&) {
  return fail("ERR CONFIG SET is not supported");
}

// ---- Dispatch --------------------------------------------------------------------

// Checks arity and resolves a subcommand, then runs the handler.
// The keys a command names, from its table entry (Redis's first key, last
// key, step; a negative last key counts from the end).
std::vector<std::string> command_keys(const CommandSpec& spec,
                                      const std::vector<std::string>& args) {
  std::vector<std::string> keys;
  if (spec.first_key <= 0 || spec.key_step <= 0) return keys;
  const int argc = static_cast<int>(args.size());
  const int last = spec.last_key < 0 ? argc + spec.last_key : spec.last_key;
  for (int i = spec.first_key; i <= last && i < argc; i += spec.key_step) {
    keys.push_back(args[static_cast<size_t>(i)]);
  }
  return keys;
}

// A data command's plan carries its keys, for routing.
Plan with_keys(Plan p, const CommandSpec& spec, const std::vector<std::string>& args) {
  if (auto* w = std::get_if<WriteOp>(&p)) w->keys = command_keys(spec, args);
  if (auto* r = std::get_if<ReadOp>(&p)) r->keys = command_keys(spec, args);
  return p;
}

Plan dispatch(const CommandSpec& spec, const Call& c) {
  if (!arity_ok(spec, c.args.size())) return fail(arity_error(spec.name));
  if (spec.subcommands.empty() || (c.args.size() == 1 && spec.handler != nullptr)) {
    return with_keys(spec.handler(c), spec, c.args);
  }
  const CommandSpec* sub = find_in(spec.subcommands, c.args[1]);
  if (sub == nullptr) {
    std::string upper(spec.name);
    for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    return fail(
        fmt::format("ERR unknown subcommand '{}'. Try {} HELP.", c_prefix(c.args[1], 128), upper));
  }
  if (!arity_ok(*sub, c.args.size())) {
    return fail(arity_error(fmt::format("{}|{}", spec.name, sub->name)));
  }
  return sub->handler(c);
}

}  // namespace

// ---- ScanCursorTable ------------------------------------------------------------

namespace {
constexpr uint64_t kMask63 = (uint64_t{1} << 63) - 1;

// A bijection on [0, 2^63): xor-shifts and odd multiplications mod 2^63 are
// each invertible there. Spreads (session, counter) over the cursor space.
uint64_t mix63(uint64_t x) {
  x &= kMask63;
  x ^= x >> 31;
  x = (x * 0x9E3779B97F4A7C15ULL) & kMask63;
  x ^= x >> 29;
  x = (x * 0xBF58476D1CE4E5B9ULL) & kMask63;
  x ^= x >> 32;
  return x;
}
}  // namespace

// Cursor = mix63(session_id << 24 | counter mod 2^24): distinct for distinct
// sessions below 2^39 ids, and within a table as long as fewer than 2^24
// cursors are alive (at most kCursorsMax are).
uint64_t ScanCursorTable::add(uint64_t session_id, std::string next_key) {
  uint64_t cursor = 0;
  while (cursor == 0) {
    counter_ = (counter_ + 1) & ((uint64_t{1} << 24) - 1);
    cursor = mix63((session_id << 24) | counter_);
  }
  key_bytes_ += next_key.size();
  entries_.push_back(Entry{cursor, std::move(next_key)});
  while (entries_.size() > kCursorsMax || (key_bytes_ > kKeyBytesMax && entries_.size() > 1)) {
    key_bytes_ -= entries_.front().key.size();
    entries_.pop_front();
  }
  return cursor;
}

std::optional<std::string> ScanCursorTable::find(uint64_t cursor) const {
  for (const Entry& e : entries_) {
    if (e.cursor == cursor) return e.key;
  }
  return std::nullopt;
}

// ---- Public surface -------------------------------------------------------------

Plan plan_command(const std::vector<std::string>& args, Session& session, const ServerView& view) {
  if (args.empty()) return ImmediateReply{};  // "*0\r\n": Redis sends nothing back
  const CommandSpec* spec = find_in(kCommands, args[0]);
  if (spec == nullptr) return fail(unknown_command_error(args));
  return dispatch(*spec, Call{args, session, view});
}

size_t command_count() {
  return std::size(kCommands);
}

bool command_is_write(std::string_view name) {
  const CommandSpec* spec = find_in(kCommands, name);
  return spec != nullptr && (spec->flags & kWrite) != 0;
}

std::string_view command_metric_name(std::string_view name) {
  const CommandSpec* spec = find_in(kCommands, name);
  return spec != nullptr ? spec->name : std::string_view("unknown");
}

std::string keyspace_reply(const KeyspaceAnswer& answer) {
  std::string out;
  if (std::holds_alternative<std::monostate>(answer)) {
    resp::append_simple_string(&out, "OK");
  } else if (const auto* list = std::get_if<std::vector<KeyspaceSpec>>(&answer)) {
    resp::append_array_header(&out, list->size());
    for (const KeyspaceSpec& k : *list) {
      resp::append_array_header(&out, 3);
      resp::append_bulk_string(&out, k.name);
      resp::append_bulk_string(&out, k.prefix);
      resp::append_bulk_string(&out, k.strategy);
    }
  } else {
    const auto& f = std::get<KeyspaceFields>(answer).fields;
    resp::append_array_header(&out, 2 * f.size());
    for (const auto& [k, v] : f) {
      resp::append_bulk_string(&out, k);
      resp::append_bulk_string(&out, v);
    }
  }
  return out;
}

std::string_view consistency_name(Consistency c) {
  switch (c) {
    case Consistency::kLinearizable:
      return "linearizable";
    case Consistency::kLease:
      return "lease";
    case Consistency::kFollower:
      return "follower";
  }
  CHORUS_UNREACHABLE();
}

}  // namespace chorus::server
