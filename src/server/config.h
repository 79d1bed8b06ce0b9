// The node configuration file (`chorusd --config node.toml`), parsed into a
// plain struct.
//
// Format: TOML (toml++). Every key, its type, default and meaning is in
// docs/config.md, which also holds a complete example. The rules:
//
//  * Unknown keys are errors, never ignored: a typo such as
//    `election_timout_ticks` would otherwise silently run with the default.
//  * Every error is ONE line naming the key and the problem, e.g.
//      config error: raft.election_timeout_ticks: must be > heartbeat_interval_ticks (got 1)
//      config error: peers[2].peer: "127.0.0.12" is not host:port
//    chorusd prints Status::message() and exits with code 2.
//  * Cross-field rules (quorum membership, timers, limits) are checked here,
//    where the operator's file is at hand, not later deep inside the server.
//
// Membership: the cluster's voters are node_id plus every `[[peers]]` id. The
// node itself may be listed in `[[peers]]` (so that every node of a cluster can
// share one peer list); its entry's address must then equal listen.peer.
//
// Thread-safety: pure functions over values; call from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/endpoint.h"
#include "base/status.h"
#include "server/keyspaces.h"

namespace chorus::server {

// The strategies a keyspace may name ("raft"; the registry's, host/registry.h).
std::string valid_strategy_names();

struct ListenConfig {
  // Raft traffic from other nodes; outgoing peer connections bind to its host.
  Endpoint peer{"127.0.0.11", 7101};
  // The RESP (Redis protocol) client port. Port 0 = an ephemeral port.
  Endpoint client{"127.0.0.11", 7001};
  // The admin HTTP port (/status, /metrics, /healthz, dashboard). Port 0 = ephemeral.
  Endpoint admin{"127.0.0.11", 8001};
  bool operator==(const ListenConfig&) const = default;
};

struct PeerConfig {
  uint64_t id = 0;  // >= 1, unique
  Endpoint peer;    // its listen.peer address; unique; port >= 1
  bool operator==(const PeerConfig&) const = default;
};

// Defaults match raft::Config (src/core/raft/raft.h).
struct RaftSection {
  uint32_t tick_ms = 10;                 // wall-clock length of one logical tick
  uint32_t election_timeout_ticks = 10;  // randomized in [T, 2T) by the core
  uint32_t heartbeat_interval_ticks = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  bool lease_reads = false;  // requires check_quorum
  // Invariant (when lease_reads): lease_ticks < election_timeout_ticks.
  uint32_t lease_ticks = 5;
  uint64_t max_entries_per_append = 256;
  uint64_t max_bytes_per_append = uint64_t{1} << 20;
  uint64_t max_inflight_appends = 64;
  uint64_t max_uncommitted_bytes = uint64_t{64} << 20;
  // Take a state machine snapshot every this many applied entries; 0 = never.
  uint64_t snapshot_every_entries = 100000;
  // Entries kept behind a snapshot so that slightly lagging followers get
  // entries, not a whole snapshot.
  uint64_t snapshot_trailing_entries = 10000;
  bool operator==(const RaftSection&) const = default;
};

enum class StateMachineKind { kMemory, kRocksDb };
std::string_view state_machine_name(StateMachineKind k);  // "memory" | "rocksdb"

struct StorageSection {
  StateMachineKind state_machine = StateMachineKind::kMemory;
  // Range [4096, 1 GiB], as storage/wal/wal.h (kMinSegmentBytes, kMaxSegmentBytes).
  uint64_t wal_segment_bytes = uint64_t{64} << 20;
  // Storage threads shared by the node's groups (keyspaces), each group
  // pinned to one; every thread commits one batch of its groups' jobs with
  // one sync. 1 = fewest device syncs (N busy keyspaces cost one keyspace's
  // syncs); more = more commits in flight, for disks whose syncs run in
  // parallel (docs/benchmarks.md, "Many groups, one disk"). Range [1, 64].
  uint64_t sync_threads = 1;
  // There is no fsync switch: a write is acknowledged only after the log
  // holding it is synced (src/storage/env/env.h). The file may still say
  // `fsync = true` (older files did) and gets a warning; `fsync = false` is
  // an error.
  bool operator==(const StorageSection&) const = default;
};

// Limits on client (RESP) input, checked where input enters, before allocating.
struct LimitsSection {
  uint64_t max_clients = 10000;                     // Redis maxclients
  uint64_t max_bulk_bytes = uint64_t{512} << 20;    // Redis proto-max-bulk-len
  uint64_t max_args = uint64_t{1} << 20;            // Redis: 1024*1024 per command
  uint64_t max_inline_bytes = uint64_t{64} << 10;   // Redis PROTO_INLINE_MAX_SIZE
  uint64_t max_pipeline_bytes = uint64_t{1} << 30;  // Redis client-query-buffer-limit
  uint32_t request_timeout_ms = 5000;               // a command's deadline
  uint32_t no_leader_wait_ms = 2000;                // then -TRYAGAIN no leader
  bool operator==(const LimitsSection&) const = default;
};

struct LogSection {
  // spdlog level names: trace, debug, info, warn, error, critical, off.
  std::string level = "info";
  bool operator==(const LogSection&) const = default;
};

// The keyspace that holds every key the file does not route elsewhere.
inline constexpr std::string_view kDefaultKeyspace = "default";

struct NodeConfig {
  uint64_t node_id = 0;  // required, >= 1
  std::string cluster_id = "chorus";
  std::string data_dir;  // required; relative paths are relative to chorusd's cwd
  ListenConfig listen;
  // As written in the file, in file order. May include this node.
  std::vector<PeerConfig> peers;
  RaftSection raft;
  StorageSection storage;
  LimitsSection limits;
  LogSection log;
  // The [keyspace.NAME] tables other than default, sorted by name: each a
  // prefix, a strategy and its options (the other keys of the table). The
  // metadata group takes them when the cluster first starts; afterwards
  // CHORUS.KEYSPACE changes keyspaces and these are not read again.
  // `[keyspace.default]` may only say `strategy = "raft"`.
  std::vector<KeyspaceSpec> keyspaces;
  // Keys the file sets that have no effect (`storage.fsync = true`), one
  // line each. config_warnings() reports them; render_config() drops them,
  // so a config parsed from such a file renders to one without them.
  std::vector<std::string> ignored_settings;

  // node_id and every peer id, sorted, without duplicates.
  std::vector<uint64_t> voter_ids() const;
  // The [[peers]] entries other than this node, in file order.
  std::vector<PeerConfig> other_peers() const;

  bool operator==(const NodeConfig&) const = default;
};

// A NodeConfig with every default and no required field set (node_id = 0,
// data_dir empty): the starting point for programs that build a config, such
// as `chorus up`. It does not pass validate_config() until those are set.
NodeConfig default_node_config();

// Parses and validates a TOML document. Errors are InvalidArgument with a
// one-line message starting with "config error: ".
Result<NodeConfig> parse_config(std::string_view toml_text);

// Reads `path` and parses it. A file that cannot be read is an IoError
// ("config error: cannot read PATH: REASON"); syntax errors name PATH:LINE:COLUMN.
Result<NodeConfig> load_config_file(const std::string& path);

// The cross-field and range checks parse_config() applies, for configs built
// in code. Same message format.
Status validate_config(const NodeConfig& c);

// Writes `c` as a TOML file (with comments) that parse_config() reads back
// into an equal NodeConfig (ignored_settings aside: they are not written).
// Precondition: validate_config(c) is ok.
std::string render_config(const NodeConfig& c);

// Settings that are valid but do not do what the file suggests: keys that
// have no effect (ignored_settings). One line each, for chorusd to log at
// warn level at startup.
std::vector<std::string> config_warnings(const NodeConfig& c);

}  // namespace chorus::server
