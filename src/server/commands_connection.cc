// The connection commands: PING ECHO QUIT SELECT HELLO and CLIENT's subcommands.
#include <fmt/format.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/commands_internal.h"

namespace chorus::server::internal {

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

}  // namespace chorus::server::internal
