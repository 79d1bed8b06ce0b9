#include "server/config.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <span>

#include <toml++/toml.h>

#include "core/raft/raft.h"
#include "server/primary_setup.h"

namespace chorus::server {
namespace {

constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();
constexpr size_t kMaxPeers = 64;  // voters; Raft clusters are 3, 5 or 7 nodes
// Leases are sized against this bound on the ratio of two nodes' monotonic
// clock rates (raft::Config::clock_drift_bound, docs/config.md).
constexpr double kClockDriftBound = 1.1;
constexpr size_t kMaxNameBytes = 64;                  // cluster_id and keyspace names
constexpr uint64_t kMinWalSegmentBytes = 4096;        // storage/wal/wal.h kMinSegmentBytes
constexpr uint64_t kMaxWalSegmentBytes = 1ull << 30;  // storage/wal/wal.h kMaxSegmentBytes
constexpr uint64_t kMaxConfigFileBytes = 1 << 20;

constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug",    "info", "warn",
                                                        "error", "critical", "off"};

// ---- The scalar keys of [raft], [storage] and [limits] ----------------------
//
// One table drives parsing (known keys, types, ranges), validation and
// rendering, so the three cannot drift apart.

enum class Kind { kInt, kBool };

struct ScalarKey {
  std::string_view section;
  std::string_view key;
  Kind kind;
  int64_t min;  // ints only
  int64_t max;  // ints only
  uint64_t (*get)(const NodeConfig&);
  void (*set)(NodeConfig&, uint64_t);
  std::string_view doc;  // one line, rendered as a comment
};

// clang-format off
#define CHORUS_CFG_INT(sec, field, lo, hi, doc)                                      \
  ScalarKey{#sec, #field, Kind::kInt, lo, hi,                                        \
            [](const NodeConfig& c) -> uint64_t { return c.sec.field; },             \
            [](NodeConfig& c, uint64_t v) {                                          \
              c.sec.field = static_cast<decltype(c.sec.field)>(v);                   \
            },                                                                       \
            doc}
#define CHORUS_CFG_BOOL(sec, field, doc)                                             \
  ScalarKey{#sec, #field, Kind::kBool, 0, 1,                                         \
            [](const NodeConfig& c) -> uint64_t { return c.sec.field ? 1 : 0; },     \
            [](NodeConfig& c, uint64_t v) { c.sec.field = v != 0; },                 \
            doc}
// clang-format on

const std::array kScalarKeys = {
    CHORUS_CFG_INT(raft, tick_ms, 1, 1000, "wall-clock milliseconds per logical tick"),
    CHORUS_CFG_INT(raft, election_timeout_ticks, 2, 100000,
                   "randomized in [T, 2T); failover takes about this long"),
    CHORUS_CFG_INT(raft, heartbeat_interval_ticks, 1, 100000,
                   "leader heartbeat period; < election_timeout_ticks"),
    CHORUS_CFG_BOOL(raft, pre_vote, "Raft thesis 9.6: a partitioned node cannot disrupt"),
    CHORUS_CFG_BOOL(raft, check_quorum, "a leader that loses its quorum steps down"),
    CHORUS_CFG_BOOL(raft, lease_reads, "serve leader reads under a lease (needs check_quorum)"),
    CHORUS_CFG_INT(raft, lease_ticks, 1, 100000,
                   "lease length; at most (election_timeout_ticks - 1) / 1.21"),
    CHORUS_CFG_INT(raft, max_entries_per_append, 1, 1 << 20, "entries per AppendEntries"),
    CHORUS_CFG_INT(raft, max_bytes_per_append, 1, 1ll << 30, "payload bytes per AppendEntries"),
    CHORUS_CFG_INT(raft, max_inflight_appends, 1, 1 << 16, "unacknowledged appends per follower"),
    CHORUS_CFG_INT(raft, max_uncommitted_bytes, 1, 1ll << 40,
                   "leader refuses proposals beyond this"),
    CHORUS_CFG_INT(raft, snapshot_every_entries, 0, kNoMax,
                   "snapshot after this many applied entries; 0 = never"),
    CHORUS_CFG_INT(raft, snapshot_trailing_entries, 0, kNoMax,
                   "log entries kept behind a snapshot for lagging followers"),
    CHORUS_CFG_INT(storage, wal_segment_bytes, kMinWalSegmentBytes, kMaxWalSegmentBytes,
                   "a new WAL segment file starts beyond this size"),
    CHORUS_CFG_INT(storage, sync_threads, 1, 64,
                   "storage threads shared by the keyspaces; each syncs once per batch"),
    CHORUS_CFG_INT(limits, max_clients, 1, 1 << 20, "client connections; more are refused"),
    CHORUS_CFG_INT(limits, max_bulk_bytes, 1, 1ll << 32, "largest RESP bulk string"),
    CHORUS_CFG_INT(limits, max_args, 1, 1 << 24, "most arguments in one command"),
    CHORUS_CFG_INT(limits, max_inline_bytes, 1, 1ll << 32, "longest inline command line"),
    CHORUS_CFG_INT(limits, max_pipeline_bytes, 1, 1ll << 40,
                   "unparsed input buffered per connection"),
    CHORUS_CFG_INT(limits, request_timeout_ms, 1, 3600000, "a command's deadline"),
    CHORUS_CFG_INT(limits, no_leader_wait_ms, 0, 3600000,
                   "wait for a leader, then -TRYAGAIN no leader"),
};

#undef CHORUS_CFG_INT
#undef CHORUS_CFG_BOOL

// ---- Messages ---------------------------------------------------------------

Status config_error(std::string_view key, std::string_view problem) {
  std::string m = "config error: ";
  m += key;
  m += ": ";
  m += problem;
  return Status::invalid_argument(std::move(m));
}

// Bare TOML keys are [A-Za-z0-9_-]+; anything else is shown quoted.
bool is_bare_key(std::string_view k) {
  if (k.empty()) return false;
  return std::all_of(k.begin(), k.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
  });
}

// A TOML basic string: "..." with \\, \" and control characters escaped.
std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch < 0x20 || ch == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  out += '"';
  return out;
}

std::string join_key(std::string_view prefix, std::string_view key) {
  std::string k = is_bare_key(key) ? std::string(key) : quote(key);
  if (prefix.empty()) return k;
  return std::string(prefix) + "." + k;
}

std::string join(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    case toml::node_type::date:
      return "date";
    case toml::node_type::time:
      return "time";
    case toml::node_type::date_time:
      return "date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

Status type_error(std::string_view key, std::string_view expected, const toml::node& got) {
  return config_error(key,
                      std::string("expected ") + std::string(expected) + ", got " + type_name(got));
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// "unknown key (did you mean election_timeout_ticks?)"; valid keys are listed
// when none is close.
Status unknown_key(std::string_view prefix, std::string_view key,
                   std::span<const std::string_view> known) {
  std::string_view best;
  size_t best_d = std::numeric_limits<size_t>::max();
  for (std::string_view k : known) {
    size_t d = edit_distance(key, k);
    if (d < best_d) {
      best_d = d;
      best = k;
    }
  }
  std::string problem = "unknown key";
  if (!best.empty() && best_d <= std::max<size_t>(2, key.size() / 4)) {
    problem += " (did you mean " + std::string(best) + "?)";
  } else {
    problem += " (valid keys: " + join(known) + ")";
  }
  return config_error(join_key(prefix, key), problem);
}

Status check_known_keys(const toml::table& t, std::string_view prefix,
                        std::span<const std::string_view> known) {
  for (const auto& [k, v] : t) {
    (void)v;
    if (std::find(known.begin(), known.end(), k.str()) == known.end()) {
      return unknown_key(prefix, k.str(), known);
    }
  }
  return Status::ok();
}

std::string range_problem(int64_t min, int64_t max, uint64_t got_unsigned, bool negative,
                          int64_t got_signed) {
  std::string got = negative ? std::to_string(got_signed) : std::to_string(got_unsigned);
  if (max == kNoMax) return "must be >= " + std::to_string(min) + " (got " + got + ")";
  return "must be between " + std::to_string(min) + " and " + std::to_string(max) + " (got " + got +
         ")";
}

// ---- Reading typed values ----------------------------------------------------

Status read_int(const toml::node& n, const std::string& key, int64_t min, int64_t max,
                uint64_t* out) {
  const auto* v = n.as_integer();
  if (v == nullptr) return type_error(key, "an integer", n);
  int64_t x = v->get();
  if (x < min || x > max) {
    return config_error(key, range_problem(min, max, static_cast<uint64_t>(x), x < 0, x));
  }
  *out = static_cast<uint64_t>(x);
  return Status::ok();
}

Status read_bool(const toml::node& n, const std::string& key, bool* out) {
  const auto* v = n.as_boolean();
  if (v == nullptr) return type_error(key, "a boolean (true or false)", n);
  *out = v->get();
  return Status::ok();
}

Status read_string(const toml::node& n, const std::string& key, std::string* out) {
  const auto* v = n.as_string();
  if (v == nullptr) return type_error(key, "a string", n);
  *out = v->get();
  return Status::ok();
}

Status read_endpoint(const toml::node& n, const std::string& key, Endpoint* out) {
  const auto* v = n.as_string();
  if (v == nullptr) return type_error(key, "a string \"host:port\"", n);
  Result<Endpoint> ep = Endpoint::parse(v->get());
  if (!ep.is_ok()) return config_error(key, ep.status().message());
  *out = std::move(ep).value();
  return Status::ok();
}

const toml::table* as_section(const toml::node& n, const std::string& key, Status* st) {
  const toml::table* t = n.as_table();
  if (t == nullptr) *st = type_error(key, "a table", n);
  return t;
}

// ---- Sections ----------------------------------------------------------------

// [raft], [storage] or [limits]: the keys of kScalarKeys plus `extra` (read by the caller).
Status read_scalar_section(const toml::table& t, std::string_view section, NodeConfig* c,
                           std::span<const std::string_view> extra) {
  std::vector<std::string_view> known;
  for (const ScalarKey& k : kScalarKeys) {
    if (k.section == section) known.push_back(k.key);
  }
  known.insert(known.end(), extra.begin(), extra.end());
  CHORUS_RETURN_IF_ERROR(check_known_keys(t, section, known));
  for (const ScalarKey& k : kScalarKeys) {
    if (k.section != section) continue;
    const toml::node* n = t.get(k.key);
    if (n == nullptr) continue;
    std::string key = join_key(section, k.key);
    if (k.kind == Kind::kBool) {
      bool b = false;
      CHORUS_RETURN_IF_ERROR(read_bool(*n, key, &b));
      k.set(*c, b ? 1 : 0);
    } else {
      uint64_t x = 0;
      CHORUS_RETURN_IF_ERROR(read_int(*n, key, k.min, k.max, &x));
      k.set(*c, x);
    }
  }
  return Status::ok();
}

Status read_listen(const toml::table& t, ListenConfig* l) {
  static constexpr std::array<std::string_view, 3> kKnown = {"peer", "client", "admin"};
  CHORUS_RETURN_IF_ERROR(check_known_keys(t, "listen", kKnown));
  if (const toml::node* n = t.get("peer"))
    CHORUS_RETURN_IF_ERROR(read_endpoint(*n, "listen.peer", &l->peer));
  if (const toml::node* n = t.get("client")) {
    CHORUS_RETURN_IF_ERROR(read_endpoint(*n, "listen.client", &l->client));
  }
  if (const toml::node* n = t.get("admin")) {
    CHORUS_RETURN_IF_ERROR(read_endpoint(*n, "listen.admin", &l->admin));
  }
  return Status::ok();
}

Status read_peers(const toml::node& n, std::vector<PeerConfig>* peers) {
  const toml::array* arr = n.as_array();
  if (arr == nullptr) return type_error("peers", "an array of tables ([[peers]])", n);
  if (arr->size() > kMaxPeers) {
    return config_error("peers", "at most " + std::to_string(kMaxPeers) + " entries (got " +
                                     std::to_string(arr->size()) + ")");
  }
  static constexpr std::array<std::string_view, 2> kKnown = {"id", "peer"};
  for (size_t i = 0; i < arr->size(); ++i) {
    std::string prefix = "peers[" + std::to_string(i) + "]";
    const toml::node& elem = *arr->get(i);
    Status st;
    const toml::table* t = as_section(elem, prefix, &st);
    if (t == nullptr) return st;
    CHORUS_RETURN_IF_ERROR(check_known_keys(*t, prefix, kKnown));
    PeerConfig p;
    const toml::node* id = t->get("id");
    if (id == nullptr) return config_error(prefix + ".id", "missing (every peer needs an id >= 1)");
    CHORUS_RETURN_IF_ERROR(read_int(*id, prefix + ".id", 1, kNoMax, &p.id));
    const toml::node* addr = t->get("peer");
    if (addr == nullptr) {
      return config_error(prefix + ".peer", "missing (the peer's host:port address)");
    }
    CHORUS_RETURN_IF_ERROR(read_endpoint(*addr, prefix + ".peer", &p.peer));
    peers->push_back(std::move(p));
  }
  return Status::ok();
}

// A scalar TOML value as an option string: strings as they are, integers in
// decimal, booleans as true/false. Strategies parse their options themselves.
Status read_option(const toml::node& n, const std::string& key, std::string* out) {
  if (const auto* v = n.as_string()) {
    *out = v->get();
  } else if (const auto* v = n.as_integer()) {
    *out = std::to_string(v->get());
  } else if (const auto* v = n.as_boolean()) {
    *out = v->get() ? "true" : "false";
  } else {
    return config_error(key, "expected a string, an integer or a boolean");
  }
  return Status::ok();
}

// [keyspace.default] may only restate what default is.
Status read_default_keyspace(const toml::table& ks) {
  static constexpr std::array<std::string_view, 1> kKnown = {"strategy"};
  const std::string prefix = join_key("keyspace", kDefaultKeyspace);
  CHORUS_RETURN_IF_ERROR(check_known_keys(ks, prefix, kKnown));
  if (const toml::node* strategy = ks.get("strategy")) {
    std::string s;
    CHORUS_RETURN_IF_ERROR(read_string(*strategy, prefix + ".strategy", &s));
    if (s != "raft") {
      return config_error(prefix + ".strategy",
                          "the default keyspace is replicated by raft (got \"" + s + "\")");
    }
  }
  return Status::ok();
}

Status read_keyspace(const std::string& name, const toml::table& ks, KeyspaceSpec* k) {
  const std::string prefix = join_key("keyspace", name);
  k->name = name;
  for (const auto& [key, node] : ks) {
    const std::string field(key.str());
    const std::string full = prefix + "." + field;
    if (field == "prefix") {
      CHORUS_RETURN_IF_ERROR(read_string(node, full, &k->prefix));
    } else if (field == "strategy") {
      CHORUS_RETURN_IF_ERROR(read_string(node, full, &k->strategy));
    } else {
      CHORUS_RETURN_IF_ERROR(read_option(node, full, &k->options[field]));
    }
  }
  if (k->prefix.empty() && ks.get("prefix") == nullptr)
    return config_error(prefix + ".prefix", "missing");
  if (ks.get("strategy") == nullptr) {
    return config_error(prefix + ".strategy",
                        "missing (valid strategies: " + valid_strategy_names() + ")");
  }
  return Status::ok();
}

Status read_keyspaces(const toml::table& t, std::vector<KeyspaceSpec>* out) {
  for (const auto& [name_key, node] : t) {
    std::string name(name_key.str());
    Status st;
    const toml::table* ks = as_section(node, join_key("keyspace", name), &st);
    if (ks == nullptr) return st;
    if (name == kDefaultKeyspace) {
      CHORUS_RETURN_IF_ERROR(read_default_keyspace(*ks));
      continue;
    }
    KeyspaceSpec k;
    CHORUS_RETURN_IF_ERROR(read_keyspace(name, *ks, &k));
    out->push_back(std::move(k));
  }
  return Status::ok();
}

// storage.fsync, a key that no longer exists: every write is synced before
// it is acknowledged, and nothing turns that off. `false` asked for weaker
// durability than the node gives, so the operator must hear of it: an error,
// like any key the node cannot honour. `true` asked for what happens anyway,
// and older files (docs/config.md's example, `chorus up`) wrote it: a
// warning, so that an upgrade does not stop a node over a no-op line.
Status read_retired_fsync(const toml::node& n, NodeConfig* c) {
  bool on = true;
  CHORUS_RETURN_IF_ERROR(read_bool(n, "storage.fsync", &on));
  if (!on) {
    return config_error("storage.fsync",
                        "false is not supported: chorusd always syncs the log before it "
                        "acknowledges a write (delete the line)");
  }
  c->ignored_settings.push_back(
      "storage.fsync = true has no effect and can be deleted: chorusd always syncs the log "
      "before it acknowledges a write");
  return Status::ok();
}

Status read_document(const toml::table& doc, NodeConfig* c) {
  static constexpr std::array<std::string_view, 10> kTop = {
      "node_id", "cluster_id", "data_dir", "listen", "peers",
      "raft",    "storage",    "limits",   "log",    "keyspace"};
  CHORUS_RETURN_IF_ERROR(check_known_keys(doc, "", kTop));

  const toml::node* id = doc.get("node_id");
  if (id == nullptr) return config_error("node_id", "missing (this node's id, an integer >= 1)");
  CHORUS_RETURN_IF_ERROR(read_int(*id, "node_id", 1, kNoMax, &c->node_id));
  if (const toml::node* n = doc.get("cluster_id")) {
    CHORUS_RETURN_IF_ERROR(read_string(*n, "cluster_id", &c->cluster_id));
  }
  const toml::node* dir = doc.get("data_dir");
  if (dir == nullptr) return config_error("data_dir", "missing (the node's data directory)");
  CHORUS_RETURN_IF_ERROR(read_string(*dir, "data_dir", &c->data_dir));

  Status st;
  if (const toml::node* n = doc.get("listen")) {
    const toml::table* t = as_section(*n, "listen", &st);
    if (t == nullptr) return st;
    CHORUS_RETURN_IF_ERROR(read_listen(*t, &c->listen));
  }
  if (const toml::node* n = doc.get("peers")) CHORUS_RETURN_IF_ERROR(read_peers(*n, &c->peers));
  for (std::string_view section : {"raft", "limits"}) {
    if (const toml::node* n = doc.get(section)) {
      const toml::table* t = as_section(*n, std::string(section), &st);
      if (t == nullptr) return st;
      CHORUS_RETURN_IF_ERROR(read_scalar_section(*t, section, c, {}));
    }
  }
  if (const toml::node* n = doc.get("storage")) {
    const toml::table* section = as_section(*n, "storage", &st);
    if (section == nullptr) return st;
    // The keys other than the retired fsync, which is read here and so is
    // never suggested for a misspelt key.
    toml::table t = *section;
    if (const toml::node* fsync = section->get("fsync")) {
      CHORUS_RETURN_IF_ERROR(read_retired_fsync(*fsync, c));
      t.erase("fsync");
    }
    static constexpr std::array<std::string_view, 1> kExtra = {"state_machine"};
    CHORUS_RETURN_IF_ERROR(read_scalar_section(t, "storage", c, kExtra));
    if (const toml::node* sm = t.get("state_machine")) {
      std::string name;
      CHORUS_RETURN_IF_ERROR(read_string(*sm, "storage.state_machine", &name));
      if (name == "memory") {
        c->storage.state_machine = StateMachineKind::kMemory;
      } else if (name == "rocksdb") {
        c->storage.state_machine = StateMachineKind::kRocksDb;
      } else {
        return config_error("storage.state_machine",
                            quote(name) + " is not a state machine (valid: memory, rocksdb)");
      }
    }
  }
  if (const toml::node* n = doc.get("log")) {
    const toml::table* t = as_section(*n, "log", &st);
    if (t == nullptr) return st;
    static constexpr std::array<std::string_view, 1> kKnown = {"level"};
    CHORUS_RETURN_IF_ERROR(check_known_keys(*t, "log", kKnown));
    if (const toml::node* lv = t->get("level")) {
      CHORUS_RETURN_IF_ERROR(read_string(*lv, "log.level", &c->log.level));
    }
  }
  c->keyspaces.clear();
  if (const toml::node* n = doc.get("keyspace")) {
    const toml::table* t = as_section(*n, "keyspace", &st);
    if (t == nullptr) return st;
    CHORUS_RETURN_IF_ERROR(read_keyspaces(*t, &c->keyspaces));
  }
  std::sort(c->keyspaces.begin(), c->keyspaces.end(),
            [](const KeyspaceSpec& a, const KeyspaceSpec& b) { return a.name < b.name; });
  return Status::ok();
}

Result<NodeConfig> parse_document(std::string_view text, const std::string& source) {
  toml::table doc;
#if TOML_EXCEPTIONS
  try {
    doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const toml::source_position& at = e.source().begin;
    std::string where =
        source.empty() ? "line " + std::to_string(at.line) + ", column " + std::to_string(at.column)
                       : source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
    return Status::invalid_argument("config error: " + where + ": " + std::string(e.description()));
  }
#else
  toml::parse_result r = toml::parse(text, source);
  if (!r) {
    const toml::source_position& at = r.error().source().begin;
    std::string where =
        source.empty() ? "line " + std::to_string(at.line) + ", column " + std::to_string(at.column)
                       : source + ":" + std::to_string(at.line) + ":" + std::to_string(at.column);
    return Status::invalid_argument("config error: " + where + ": " +
                                    std::string(r.error().description()));
  }
  doc = std::move(r).table();
#endif
  NodeConfig c = default_node_config();
  CHORUS_RETURN_IF_ERROR(read_document(doc, &c));
  CHORUS_RETURN_IF_ERROR(validate_config(c));
  return c;
}

// ---- Validation ----------------------------------------------------------------

bool is_name(std::string_view s) {
  return !s.empty() && s.size() <= kMaxNameBytes && is_bare_key(s);
}

Status validate_listen(const NodeConfig& c) {
  if (c.listen.peer.port == 0) {
    return config_error("listen.peer", "port must be >= 1 (peers connect to it; got 0)");
  }
  struct Named {
    const char* key;
    const Endpoint* ep;
  };
  const std::array<Named, 3> all = {{{"listen.peer", &c.listen.peer},
                                     {"listen.client", &c.listen.client},
                                     {"listen.admin", &c.listen.admin}}};
  for (size_t i = 0; i < all.size(); ++i) {
    if (all[i].ep->host.empty()) return config_error(all[i].key, "host must not be empty");
    for (size_t j = 0; j < i; ++j) {
      if (all[i].ep->port != 0 && *all[i].ep == *all[j].ep) {
        return config_error(all[i].key, "same address as " + std::string(all[j].key) + " (" +
                                            all[i].ep->to_string() + ")");
      }
    }
  }
  return Status::ok();
}

Status validate_peers(const NodeConfig& c) {
  if (c.peers.size() > kMaxPeers) {
    return config_error("peers", "at most " + std::to_string(kMaxPeers) + " entries (got " +
                                     std::to_string(c.peers.size()) + ")");
  }
  for (size_t i = 0; i < c.peers.size(); ++i) {
    const PeerConfig& p = c.peers[i];
    std::string prefix = "peers[" + std::to_string(i) + "]";
    if (p.id == 0) return config_error(prefix + ".id", "must be >= 1 (got 0)");
    if (p.peer.host.empty()) return config_error(prefix + ".peer", "host must not be empty");
    if (p.peer.port == 0) return config_error(prefix + ".peer", "port must be >= 1 (got 0)");
    for (size_t j = 0; j < i; ++j) {
      if (c.peers[j].id == p.id) {
        return config_error(prefix + ".id", "duplicate id " + std::to_string(p.id) +
                                                " (also peers[" + std::to_string(j) + "])");
      }
      if (c.peers[j].peer == p.peer) {
        return config_error(prefix + ".peer", "duplicate address " + p.peer.to_string() +
                                                  " (also peers[" + std::to_string(j) + "])");
      }
    }
    if (p.id == c.node_id && p.peer != c.listen.peer) {
      return config_error(prefix + ".peer", "this node (id " + std::to_string(p.id) +
                                                ") is listed at " + p.peer.to_string() +
                                                " but listen.peer is " + c.listen.peer.to_string());
    }
    if (p.id != c.node_id && p.peer == c.listen.peer) {
      return config_error(prefix + ".peer",
                          p.peer.to_string() +
                              " is this node's listen.peer, but the entry's id is " +
                              std::to_string(p.id) + ", not node_id " + std::to_string(c.node_id) +
                              " (wrong node_id?)");
    }
  }
  return Status::ok();
}

Status validate_scalars(const NodeConfig& c) {
  for (const ScalarKey& k : kScalarKeys) {
    if (k.kind != Kind::kInt) continue;
    uint64_t v = k.get(c);
    if (v < static_cast<uint64_t>(k.min) || v > static_cast<uint64_t>(k.max)) {
      return config_error(join_key(k.section, k.key), range_problem(k.min, k.max, v, false, 0));
    }
  }
  const RaftSection& r = c.raft;
  if (r.election_timeout_ticks <= r.heartbeat_interval_ticks) {
    return config_error(
        "raft.election_timeout_ticks",
        "must be > heartbeat_interval_ticks (got " + std::to_string(r.election_timeout_ticks) +
            "; heartbeat_interval_ticks is " + std::to_string(r.heartbeat_interval_ticks) + ")");
  }
  if (r.lease_reads && !r.check_quorum) {
    return config_error("raft.lease_reads", "requires raft.check_quorum = true");
  }
  if (r.lease_reads &&
      r.lease_ticks > raft::max_safe_lease_ticks(r.election_timeout_ticks, kClockDriftBound)) {
    return config_error(
        "raft.lease_ticks",
        "leaves no margin for clock drift when lease_reads is on: at most " +
            std::to_string(raft::max_safe_lease_ticks(r.election_timeout_ticks, kClockDriftBound)) +
            " with election_timeout_ticks " + std::to_string(r.election_timeout_ticks) + " (got " +
            std::to_string(r.lease_ticks) +
            "; lease_ticks * 1.1^2 must stay below election_timeout_ticks - 1)");
  }
  const LimitsSection& l = c.limits;
  if (l.max_pipeline_bytes < l.max_bulk_bytes) {
    return config_error("limits.max_pipeline_bytes",
                        "must be >= max_bulk_bytes (got " + std::to_string(l.max_pipeline_bytes) +
                            "; max_bulk_bytes is " + std::to_string(l.max_bulk_bytes) + ")");
  }
  if (l.max_pipeline_bytes < l.max_inline_bytes) {
    return config_error("limits.max_pipeline_bytes",
                        "must be >= max_inline_bytes (got " + std::to_string(l.max_pipeline_bytes) +
                            "; max_inline_bytes is " + std::to_string(l.max_inline_bytes) + ")");
  }
  if (l.no_leader_wait_ms > l.request_timeout_ms) {
    return config_error("limits.no_leader_wait_ms", "must be <= request_timeout_ms (got " +
                                                        std::to_string(l.no_leader_wait_ms) +
                                                        "; request_timeout_ms is " +
                                                        std::to_string(l.request_timeout_ms) + ")");
  }
  return Status::ok();
}

// Each keyspace on its own (keyspaces.h says what is valid), then the set:
// the table the metadata group would build from them must build.
Status validate_keyspaces(const NodeConfig& c) {
  if (c.keyspaces.size() > kMaxKeyspaces) {
    return config_error("keyspace", "at most " + std::to_string(kMaxKeyspaces) +
                                        " keyspaces (got " + std::to_string(c.keyspaces.size()) +
                                        ")");
  }
  KeyspaceTable table;
  for (const KeyspaceSpec& k : c.keyspaces) {
    auto next = table.with(k);
    Status st = next.status();
    // Options that depend on this node's settings (the node count, the tick).
    if (st.is_ok() && is_primary_strategy(k.strategy)) {
      st = primary_settings(k.strategy, k.options, c).status();
    }
    if (!st.is_ok()) {
      // "strategy: 'x' is not built yet" -> "keyspace.orders.strategy: ..."
      const std::string& m = st.message();
      const size_t colon = m.find(": ");
      const std::string field = colon == std::string::npos ? "" : m.substr(0, colon);
      const bool named = field == "name" || field == "prefix" || field == "strategy";
      std::string key = join_key("keyspace", k.name);
      if (named) key += "." + field;
      if (field.starts_with("option '")) key += "." + field.substr(8, field.size() - 9);
      return config_error(key, colon == std::string::npos ? m : m.substr(colon + 2));
    }
    table = std::move(next).value();
  }
  return Status::ok();
}

std::string render_scalar(const ScalarKey& k, const NodeConfig& c) {
  std::string out = "# " + std::string(k.doc) + "\n" + std::string(k.key) + " = ";
  out += k.kind == Kind::kBool ? (k.get(c) ? "true" : "false") : std::to_string(k.get(c));
  out += "\n";
  return out;
}

void render_section(std::string_view section, const NodeConfig& c, std::string* out) {
  for (const ScalarKey& k : kScalarKeys) {
    if (k.section == section) *out += render_scalar(k, c);
  }
}

}  // namespace

// ---- Public -----------------------------------------------------------------------

std::string valid_strategy_names() {
  std::string out;
  for (std::string_view n : built_strategies()) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

std::string_view state_machine_name(StateMachineKind k) {
  switch (k) {
    case StateMachineKind::kMemory:
      return "memory";
    case StateMachineKind::kRocksDb:
      return "rocksdb";
  }
  CHORUS_UNREACHABLE();
}

std::vector<uint64_t> NodeConfig::voter_ids() const {
  std::vector<uint64_t> ids = {node_id};
  for (const PeerConfig& p : peers) ids.push_back(p.id);
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::vector<PeerConfig> NodeConfig::other_peers() const {
  std::vector<PeerConfig> out;
  for (const PeerConfig& p : peers) {
    if (p.id != node_id) out.push_back(p);
  }
  return out;
}

NodeConfig default_node_config() {
  return NodeConfig{};
}

Result<NodeConfig> parse_config(std::string_view toml_text) {
  return parse_document(toml_text, "");
}

Result<NodeConfig> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::io_error("config error: cannot read " + path + ": " + std::strerror(errno));
  }
  std::string text;
  char buf[8192];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxConfigFileBytes) {
      return Status::invalid_argument("config error: " + path + ": larger than " +
                                      std::to_string(kMaxConfigFileBytes) + " bytes");
    }
  }
  if (in.bad()) {
    return Status::io_error("config error: cannot read " + path + ": " + std::strerror(errno));
  }
  return parse_document(text, path);
}

Status validate_config(const NodeConfig& c) {
  if (c.node_id == 0) return config_error("node_id", "must be >= 1 (got 0)");
  if (!is_name(c.cluster_id)) {
    return config_error("cluster_id",
                        quote(c.cluster_id) + " is not 1 to 64 characters from [A-Za-z0-9_-]");
  }
  if (c.data_dir.empty()) return config_error("data_dir", "must not be empty");
  CHORUS_RETURN_IF_ERROR(validate_listen(c));
  CHORUS_RETURN_IF_ERROR(validate_peers(c));
  CHORUS_RETURN_IF_ERROR(validate_scalars(c));
  if (std::find(kLogLevels.begin(), kLogLevels.end(), c.log.level) == kLogLevels.end()) {
    return config_error("log.level",
                        quote(c.log.level) + " is not a level (valid: " + join(kLogLevels) + ")");
  }
  return validate_keyspaces(c);
}

std::string render_config(const NodeConfig& c) {
  std::string out;
  out += "# Chorus node configuration: every key is described in docs/config.md.\n";
  out += "node_id = " + std::to_string(c.node_id) + "\n";
  out += "cluster_id = " + quote(c.cluster_id) + "\n";
  out += "data_dir = " + quote(c.data_dir) + "\n";
  out += "\n[listen]\n";
  out += "peer = " + quote(c.listen.peer.to_string()) + "    # Raft traffic between nodes\n";
  out += "client = " + quote(c.listen.client.to_string()) + "  # RESP: redis-cli -h HOST -p PORT\n";
  out += "admin = " + quote(c.listen.admin.to_string()) + "   # HTTP: /status /metrics /healthz\n";
  for (const PeerConfig& p : c.peers) {
    out += "\n[[peers]]\n";
    out += "id = " + std::to_string(p.id) + "\n";
    out += "peer = " + quote(p.peer.to_string()) + "\n";
  }
  out += "\n[raft]\n";
  render_section("raft", c, &out);
  out += "\n[storage]\n";
  out += "# memory | rocksdb\n";
  out += "state_machine = " + quote(state_machine_name(c.storage.state_machine)) + "\n";
  render_section("storage", c, &out);
  out += "\n[limits]\n";
  render_section("limits", c, &out);
  out += "\n[log]\n";
  out += "# " + join(kLogLevels) + "\n";
  out += "level = " + quote(c.log.level) + "\n";
  for (const KeyspaceSpec& k : c.keyspaces) {
    out += "\n[" + join_key("keyspace", k.name) + "]\n";
    out += "prefix = " + quote(k.prefix) + "\n";
    out += "strategy = " + quote(k.strategy) + "  # valid: " + valid_strategy_names() + "\n";
    for (const auto& [option, value] : k.options) out += option + " = " + quote(value) + "\n";
  }
  return out;
}

std::vector<std::string> config_warnings(const NodeConfig& c) {
  return c.ignored_settings;
}

}  // namespace chorus::server
