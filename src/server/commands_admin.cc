// The server and Chorus commands: INFO, CONFIG GET/SET, CHORUS.STATUS/CAS/CONSISTENCY/KEYSPACE.
#include <fmt/format.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/commands_internal.h"
#include "server/glob.h"

namespace chorus::server::internal {

// ---- INFO -----------------------------------------------------------------------

namespace {

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

}  // namespace

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

// ---- CONFIG ----------------------------------------------------------------------

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

}  // namespace chorus::server::internal
