// The command layer's core: shared helpers, the command table, COMMAND, dispatch, public API.
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
#include "server/commands_internal.h"

namespace chorus::server::internal {

// ---- Error texts (Redis 7, byte for byte: the texts are in commands_internal.h) ------

std::string arity_error(std::string_view fullname) {
  return fmt::format("ERR wrong number of arguments for '{}' command", fullname);
}

// ---- Argument parsing --------------------------------------------------------------

namespace {

char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

}  // namespace

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

namespace {

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

}  // namespace

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

namespace {

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
    {"wait", 3, 0, 0, 0, 0, cmd_wait, {}},
    {"chorus.token", 1, kFast, 0, 0, 0, cmd_chorus_token, {}},
    {"chorus.poll", 2, kFast, 0, 0, 0, cmd_chorus_poll, {}},
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

// ---- COMMAND ----------------------------------------------------------------------

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
}  // namespace chorus::server::internal

namespace chorus::server {

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

using internal::Call;
using internal::CommandSpec;
using internal::dispatch;
using internal::fail;
using internal::find_in;
using internal::kCommands;
using internal::kWrite;
using internal::unknown_command_error;
namespace resp = internal::resp;

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
