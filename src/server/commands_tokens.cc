// WAIT, CHORUS.TOKEN and CHORUS.POLL: how a client learns how far its writes
// have spread. The plans carry what the session knows (its writes' tokens);
// the node answers from the replication groups' status (client_server.cc).
#include <fmt/format.h>

#include <charconv>

#include "server/commands_internal.h"

namespace chorus::server {

namespace {

// A decimal uint64 with no sign, spaces or leading zeros ("0" alone is fine).
std::optional<uint64_t> parse_u64(std::string_view s) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  uint64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string WriteToken::to_string() const {
  return fmt::format("{}:{}:{}", keyspace, term, index);
}

std::optional<WriteToken> WriteToken::parse(std::string_view s) {
  const size_t last = s.rfind(':');
  if (last == std::string_view::npos || last == 0) return std::nullopt;
  const size_t middle = s.rfind(':', last - 1);
  if (middle == std::string_view::npos || middle == 0) return std::nullopt;
  const auto term = parse_u64(s.substr(middle + 1, last - middle - 1));
  const auto index = parse_u64(s.substr(last + 1));
  if (!term || !index || *index == 0) return std::nullopt;
  return WriteToken{std::string(s.substr(0, middle)), *term, *index};
}

namespace internal {

// WAIT numreplicas timeout (Redis 7): errors as Redis words them; a negative
// numreplicas is reached at once (Redis compares it with the count). The
// timeout is in ms, 0 = none; the node caps it at limits.request_timeout_ms
// (a deliberate difference: a connection never blocks forever).
Plan cmd_wait(const Call& c) {
  const auto numreplicas = parse_int64(c.args[1]);
  if (!numreplicas) return fail(kErrNotInteger);
  const auto timeout = parse_int64(c.args[2]);
  if (!timeout) return fail("ERR timeout is not an integer or out of range");
  if (*timeout < 0) return fail(kErrTimeoutNegative);
  WaitOp w;
  w.numreplicas = *numreplicas < 0 ? 0 : static_cast<uint64_t>(*numreplicas);
  w.timeout_ms = static_cast<uint64_t>(*timeout);
  for (const auto& [name, token] : c.session.last_write_by_keyspace) w.writes.push_back(token);
  return w;
}

// CHORUS.TOKEN: the token of this connection's last completed write, or nil
// when it has written nothing yet.
Plan cmd_chorus_token(const Call& c) {
  std::optional<std::string> token;
  if (c.session.last_write && c.session.last_write->uncertain) {
    return fail(
        "UNCERTAIN the connection's last write has an unknown outcome (it may still be applied), "
        "so it has no token");
  }
  if (c.session.last_write) token = c.session.last_write->to_string();
  std::string out;
  append_bulk_or_null(&out, token);
  return reply(std::move(out));
}

// CHORUS.POLL token: a token CHORUS.TOKEN handed out (any connection's).
Plan cmd_chorus_poll(const Call& c) {
  auto token = WriteToken::parse(c.args[1]);
  if (!token) {
    return fail(fmt::format(
        "ERR invalid write token '{}' (expected keyspace:term:index as CHORUS.TOKEN prints it)",
        c_prefix(c.args[1], 128)));
  }
  return PollOp{std::move(*token)};
}

}  // namespace internal

}  // namespace chorus::server
