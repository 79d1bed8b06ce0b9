// Shared by the command handlers (commands*.cc): RESP encoding, Redis's error texts,
// argument parsing, plan builders, and the handlers that the table in commands.cc names.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/resp/resp_encoder.h"
#include "server/commands.h"

namespace chorus::server::internal {

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
inline void append_bulk_or_null(std::string* out, const std::optional<std::string>& value) {
  if (value.has_value()) {
    resp::append_bulk_string(out, *value);
  } else {
    resp::append_null_bulk(out);
  }
}

// ---- Error texts (Redis 7, byte for byte) ------------------------------------------

inline constexpr std::string_view kErrSyntax = "ERR syntax error";
inline constexpr std::string_view kErrNotInteger = "ERR value is not an integer or out of range";
inline constexpr std::string_view kErrIncrOverflow = "ERR increment or decrement would overflow";
inline constexpr std::string_view kErrTimeoutNegative = "ERR timeout is negative";
inline constexpr std::string_view kErrInvalidCursor = "ERR invalid cursor";
// Redis answers any password for the default user when none is configured.
inline constexpr std::string_view kErrWrongPass =
    "WRONGPASS invalid username-password pair or user is disabled.";
inline constexpr std::string_view kErrClientName =
    "ERR Client names cannot contain spaces, newlines or special characters.";

// The version Redis clients see (HELLO, INFO redis_version): the Redis release
// whose command semantics Chorus follows. Chorus's own is ServerView::version.
inline constexpr std::string_view kRedisCompatVersion = "7.0.0";

std::string arity_error(std::string_view fullname);

// ---- Argument parsing (commands.cc, where each is described) ---------------------

std::string lower(std::string_view s);
bool iequals(std::string_view a, std::string_view b);
std::optional<int64_t> parse_int64(std::string_view s);
std::optional<uint64_t> parse_scan_cursor(const std::string& s);
std::string_view c_prefix(std::string_view s, size_t n);
std::string unknown_command_error(const std::vector<std::string>& args);
bool valid_client_name(std::string_view name);

// ---- Plans (commands.cc) ---------------------------------------------------------

// A handler's input: the arguments (the command name first), the session, the node's view.
struct Call {
  const std::vector<std::string>& args;
  Session& session;
  const ServerView& view;
};

// Plan builders: an immediate reply or error line, a local read, a replicated
// write with its reply; and the replies writes share.
Plan reply(std::string resp);
Plan fail(std::string_view line);
std::string storage_error(const Status& s);
Plan read_op(std::function<std::string(const kv::StateMachine&)> run);
Plan write_op(kvpb::Command command, bool conditional,
              std::function<std::string(const kvpb::Result&)> on_applied);
std::string reply_ok(const kvpb::Result&);
std::string reply_integer(const kvpb::Result& r);
std::string reply_applied_flag(const kvpb::Result& r);
std::string reply_old_value(const kvpb::Result& r);

// Whether this node leads its group, as HELLO and INFO report it (commands_connection.cc).
bool is_leader(const ServerView& view);

// ---- Handlers: one per row of kCommands (commands.cc) ----------------------------

// commands_strings.cc
Plan cmd_get(const Call& c);
Plan cmd_set(const Call& c);
Plan cmd_setnx(const Call& c);
Plan cmd_setex(const Call& c);
Plan cmd_psetex(const Call& c);
Plan cmd_getset(const Call& c);
Plan cmd_append(const Call& c);
Plan cmd_strlen(const Call& c);
Plan cmd_mget(const Call& c);
Plan cmd_mset(const Call& c);
Plan cmd_incr(const Call& c);
Plan cmd_decr(const Call& c);
Plan cmd_incrby(const Call& c);
Plan cmd_decrby(const Call& c);

// commands_keys.cc
Plan cmd_del(const Call& c);
Plan cmd_exists(const Call& c);
Plan cmd_type(const Call& c);
Plan cmd_dbsize(const Call& c);
Plan cmd_scan(const Call& c);

// commands_connection.cc
Plan cmd_ping(const Call& c);
Plan cmd_echo(const Call& c);
Plan cmd_quit(const Call& c);
Plan cmd_select(const Call& c);
Plan cmd_hello(const Call& c);
Plan cmd_client_id(const Call& c);
Plan cmd_client_getname(const Call& c);
Plan cmd_client_setname(const Call& c);
Plan cmd_client_setinfo(const Call& c);

// commands_admin.cc
Plan cmd_info(const Call& c);
Plan cmd_config_get(const Call& c);
Plan cmd_config_set(const Call& c);
Plan cmd_chorus_status(const Call& c);
Plan cmd_chorus_cas(const Call& c);
Plan cmd_chorus_consistency(const Call& c);
Plan cmd_keyspace_create(const Call& c);
Plan cmd_keyspace_drop(const Call& c);
Plan cmd_keyspace_list(const Call& c);
Plan cmd_keyspace_info(const Call& c);

// commands_tokens.cc
Plan cmd_wait(const Call& c);
Plan cmd_chorus_token(const Call& c);
Plan cmd_chorus_poll(const Call& c);

}  // namespace chorus::server::internal
