// Tests for the node configuration file: defaults, every key, every
// validation error (each message must name the offending key), and the
// render -> parse round trip.
#include "server/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

namespace chorus::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr std::string_view kMinimal = R"(
node_id = 1
data_dir = "/var/lib/chorus/1"
)";

// A file that sets every key to a non-default value.
constexpr std::string_view kEveryKey = R"(
node_id = 2
cluster_id = "prod-eu_1"
data_dir = "data/node 2"

[listen]
peer = "127.0.0.12:7102"
client = "127.0.0.12:7002"
admin = "127.0.0.12:8002"

[[peers]]
id = 1
peer = "127.0.0.11:7101"

[[peers]]
id = 2
peer = "127.0.0.12:7102"

[[peers]]
id = 3
peer = "node3.example:7103"

[raft]
tick_ms = 5
election_timeout_ticks = 30
heartbeat_interval_ticks = 3
pre_vote = false
check_quorum = true
lease_reads = true
lease_ticks = 20
max_entries_per_append = 100
max_bytes_per_append = 65536
max_inflight_appends = 8
max_uncommitted_bytes = 1_000_000
snapshot_every_entries = 5000
snapshot_trailing_entries = 500

[storage]
state_machine = "rocksdb"
wal_segment_bytes = 8388608
sync_threads = 4

[limits]
max_clients = 100
max_bulk_bytes = 1048576
max_args = 1000
max_inline_bytes = 4096
max_pipeline_bytes = 2097152
request_timeout_ms = 3000
no_leader_wait_ms = 1000

[log]
level = "debug"

[keyspace.users]
prefix = "user:"
strategy = "raft"

[keyspace.sessions]
prefix = "session:"
strategy = "raft"
)";

NodeConfig parse_ok(std::string_view text) {
  Result<NodeConfig> r = parse_config(text);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : NodeConfig{};
}

// Parses kMinimal plus `extra` and returns the error message (empty if ok).
std::string error_of(std::string_view text) {
  Result<NodeConfig> r = parse_config(text);
  if (r.is_ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos) << "one line only";
  return r.status().message();
}

std::string minimal_plus(std::string_view extra) {
  return std::string(kMinimal) + "\n" + std::string(extra);
}

// ---- Defaults ------------------------------------------------------------------

TEST(ConfigDefaults, MinimalFileGetsEveryDefault) {
  NodeConfig c = parse_ok(kMinimal);
  EXPECT_EQ(c.node_id, 1u);
  EXPECT_EQ(c.cluster_id, "chorus");
  EXPECT_EQ(c.data_dir, "/var/lib/chorus/1");
  EXPECT_EQ(c.listen.peer, (Endpoint{"127.0.0.11", 7101}));
  EXPECT_EQ(c.listen.client, (Endpoint{"127.0.0.11", 7001}));
  EXPECT_EQ(c.listen.admin, (Endpoint{"127.0.0.11", 8001}));
  EXPECT_TRUE(c.peers.empty());
  EXPECT_EQ(c.raft.tick_ms, 10u);
  EXPECT_EQ(c.raft.election_timeout_ticks, 10u);
  EXPECT_EQ(c.raft.heartbeat_interval_ticks, 1u);
  EXPECT_TRUE(c.raft.pre_vote);
  EXPECT_TRUE(c.raft.check_quorum);
  EXPECT_FALSE(c.raft.lease_reads);
  EXPECT_EQ(c.raft.lease_ticks, 5u);
  EXPECT_EQ(c.raft.max_entries_per_append, 256u);
  EXPECT_EQ(c.raft.max_bytes_per_append, 1u << 20);
  EXPECT_EQ(c.raft.max_inflight_appends, 64u);
  EXPECT_EQ(c.raft.max_uncommitted_bytes, 64u << 20);
  EXPECT_EQ(c.raft.snapshot_every_entries, 100000u);
  EXPECT_EQ(c.raft.snapshot_trailing_entries, 10000u);
  EXPECT_EQ(c.storage.state_machine, StateMachineKind::kMemory);
  EXPECT_EQ(c.storage.wal_segment_bytes, 64u << 20);
  EXPECT_EQ(c.storage.sync_threads, 1u);
  EXPECT_EQ(c.limits.max_clients, 10000u);
  EXPECT_EQ(c.limits.max_bulk_bytes, 512u << 20);
  EXPECT_EQ(c.limits.max_args, 1u << 20);
  EXPECT_EQ(c.limits.max_inline_bytes, 64u << 10);
  EXPECT_EQ(c.limits.max_pipeline_bytes, 1u << 30);
  EXPECT_EQ(c.limits.request_timeout_ms, 5000u);
  EXPECT_EQ(c.limits.no_leader_wait_ms, 2000u);
  EXPECT_EQ(c.log.level, "info");
  EXPECT_TRUE(c.keyspaces.empty()) << "only the implicit default keyspace";
  EXPECT_TRUE(config_warnings(c).empty());
}

TEST(ConfigDefaults, DefaultNodeConfigEqualsMinimalFileExceptRequiredKeys) {
  NodeConfig c = default_node_config();
  EXPECT_FALSE(validate_config(c).is_ok());  // node_id and data_dir are required
  c.node_id = 1;
  c.data_dir = "/var/lib/chorus/1";
  EXPECT_TRUE(validate_config(c).is_ok());
  EXPECT_EQ(c, parse_ok(kMinimal));
}

TEST(ConfigDefaults, SingleNodeClusterHasOneVoter) {
  NodeConfig c = parse_ok(kMinimal);
  EXPECT_EQ(c.voter_ids(), std::vector<uint64_t>{1});
  EXPECT_TRUE(c.other_peers().empty());
}

// ---- Every key -----------------------------------------------------------------

TEST(ConfigKeys, EveryKeyIsRead) {
  NodeConfig c = parse_ok(kEveryKey);
  EXPECT_EQ(c.node_id, 2u);
  EXPECT_EQ(c.cluster_id, "prod-eu_1");
  EXPECT_EQ(c.data_dir, "data/node 2");
  EXPECT_EQ(c.listen.peer, (Endpoint{"127.0.0.12", 7102}));
  EXPECT_EQ(c.listen.client, (Endpoint{"127.0.0.12", 7002}));
  EXPECT_EQ(c.listen.admin, (Endpoint{"127.0.0.12", 8002}));
  ASSERT_EQ(c.peers.size(), 3u);
  EXPECT_EQ(c.peers[0], (PeerConfig{1, {"127.0.0.11", 7101}}));
  EXPECT_EQ(c.peers[1], (PeerConfig{2, {"127.0.0.12", 7102}}));
  EXPECT_EQ(c.peers[2], (PeerConfig{3, {"node3.example", 7103}}));
  EXPECT_EQ(c.raft.tick_ms, 5u);
  EXPECT_EQ(c.raft.election_timeout_ticks, 30u);
  EXPECT_EQ(c.raft.heartbeat_interval_ticks, 3u);
  EXPECT_FALSE(c.raft.pre_vote);
  EXPECT_TRUE(c.raft.check_quorum);
  EXPECT_TRUE(c.raft.lease_reads);
  EXPECT_EQ(c.raft.lease_ticks, 20u);
  EXPECT_EQ(c.raft.max_entries_per_append, 100u);
  EXPECT_EQ(c.raft.max_bytes_per_append, 65536u);
  EXPECT_EQ(c.raft.max_inflight_appends, 8u);
  EXPECT_EQ(c.raft.max_uncommitted_bytes, 1000000u);
  EXPECT_EQ(c.raft.snapshot_every_entries, 5000u);
  EXPECT_EQ(c.raft.snapshot_trailing_entries, 500u);
  EXPECT_EQ(c.storage.state_machine, StateMachineKind::kRocksDb);
  EXPECT_EQ(c.storage.wal_segment_bytes, 8388608u);
  EXPECT_EQ(c.storage.sync_threads, 4u);
  EXPECT_EQ(c.limits.max_clients, 100u);
  EXPECT_EQ(c.limits.max_bulk_bytes, 1048576u);
  EXPECT_EQ(c.limits.max_args, 1000u);
  EXPECT_EQ(c.limits.max_inline_bytes, 4096u);
  EXPECT_EQ(c.limits.max_pipeline_bytes, 2097152u);
  EXPECT_EQ(c.limits.request_timeout_ms, 3000u);
  EXPECT_EQ(c.limits.no_leader_wait_ms, 1000u);
  EXPECT_EQ(c.log.level, "debug");
  ASSERT_EQ(c.keyspaces.size(), 2u);  // sorted by name
  EXPECT_EQ(c.keyspaces[0].name, "sessions");
  EXPECT_EQ(c.keyspaces[0].prefix, "session:");
  EXPECT_EQ(c.keyspaces[1].name, "users");
  EXPECT_EQ(c.keyspaces[1].strategy, "raft");
}

TEST(ConfigKeys, VotersIncludeSelfOnceAndOtherPeersExcludeIt) {
  NodeConfig c = parse_ok(kEveryKey);
  EXPECT_EQ(c.voter_ids(), (std::vector<uint64_t>{1, 2, 3}));
  std::vector<PeerConfig> others = c.other_peers();
  ASSERT_EQ(others.size(), 2u);
  EXPECT_EQ(others[0].id, 1u);
  EXPECT_EQ(others[1].id, 3u);
}

TEST(ConfigKeys, SelfMayBeLeftOutOfPeers) {
  NodeConfig c = parse_ok(minimal_plus(R"(
[[peers]]
id = 2
peer = "127.0.0.12:7101"
[[peers]]
id = 3
peer = "127.0.0.13:7101"
)"));
  EXPECT_EQ(c.voter_ids(), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(c.other_peers().size(), 2u);
}

// storage.fsync is gone (every write is synced before it is acknowledged);
// `true`, which older files carry, still loads, with a warning.
TEST(ConfigKeys, FsyncTrueStillLoadsWithAWarningThatItDoesNothing) {
  NodeConfig c = parse_ok(minimal_plus("[storage]\nfsync = true\n"));
  std::vector<std::string> w = config_warnings(c);
  ASSERT_EQ(w.size(), 1u);
  EXPECT_THAT(w[0], HasSubstr("storage.fsync = true has no effect and can be deleted"));
  EXPECT_THAT(render_config(c), Not(HasSubstr("fsync")));
}

TEST(ConfigKeys, KeyspacesCarryAPrefixAStrategyAndItsOptions) {
  NodeConfig c = parse_ok(minimal_plus(R"(
[keyspace.default]
strategy = "raft"
[keyspace.orders]
prefix = "orders:"
strategy = "raft"
)"));
  ASSERT_EQ(c.keyspaces.size(), 1u) << "default is implicit; it is not listed";
  EXPECT_EQ(c.keyspaces[0], (KeyspaceSpec{"orders", "orders:", "raft", {}}));
  EXPECT_TRUE(config_warnings(c).empty());
  // Rendering and parsing again gives the same keyspaces.
  EXPECT_EQ(parse_ok(render_config(c)).keyspaces, c.keyspaces);
}

TEST(ConfigKeys, PortZeroMeansEphemeralForClientAndAdmin) {
  NodeConfig c = parse_ok(minimal_plus(R"(
[listen]
client = "127.0.0.1:0"
admin = "127.0.0.1:0"
)"));
  EXPECT_EQ(c.listen.client.port, 0);
  EXPECT_EQ(c.listen.admin.port, 0);
}

TEST(ConfigKeys, LoadFileReadsFromDisk) {
  std::string path = ::testing::TempDir() + "/chorus_config_test_node.toml";
  {
    std::ofstream f(path);
    f << kEveryKey;
  }
  Result<NodeConfig> r = load_config_file(path);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r.value(), parse_ok(kEveryKey));
  std::remove(path.c_str());
}

// ---- Validation errors: each names its key ----------------------------------------

struct ErrorCase {
  const char* name;
  std::string text;      // the whole file
  const char* expected;  // a substring of the message, including the key
};

std::vector<ErrorCase> error_cases() {
  const std::string m(kMinimal);
  return {
      // Required keys and types.
      {"MissingNodeId", "data_dir = \"d\"\n", "config error: node_id: missing"},
      {"MissingDataDir", "node_id = 1\n", "config error: data_dir: missing"},
      {"NodeIdZero", "node_id = 0\ndata_dir = \"d\"\n", "node_id: must be >= 1 (got 0)"},
      {"NodeIdNegative", "node_id = -4\ndata_dir = \"d\"\n", "node_id: must be >= 1 (got -4)"},
      {"NodeIdString", "node_id = \"1\"\ndata_dir = \"d\"\n",
       "node_id: expected an integer, got string"},
      {"DataDirInteger", "node_id = 1\ndata_dir = 5\n", "data_dir: expected a string, got integer"},
      {"DataDirEmpty", "node_id = 1\ndata_dir = \"\"\n", "data_dir: must not be empty"},
      {"ClusterIdBad", m + "cluster_id = \"a b\"\n", "cluster_id: \"a b\" is not"},
      {"ClusterIdEmpty", m + "cluster_id = \"\"\n", "cluster_id: \"\" is not"},
      {"TickFloat", m + "[raft]\ntick_ms = 1.5\n", "raft.tick_ms: expected an integer, got float"},
      {"BoolAsString", m + "[raft]\npre_vote = \"yes\"\n",
       "raft.pre_vote: expected a boolean (true or false), got string"},
      {"SectionNotTable", m + "raft = 3\n", "config error: raft: expected a table, got integer"},
      // Unknown keys, with a suggestion for typos.
      {"UnknownTopLevel", m + "nodes = 3\n", "config error: nodes: unknown key"},
      {"TypoSuggestion", m + "[raft]\nelection_timout_ticks = 5\n",
       "raft.election_timout_ticks: unknown key (did you mean election_timeout_ticks?)"},
      {"UnknownInListen", m + "[listen]\nhttp = \"127.0.0.1:80\"\n",
       "listen.http: unknown key (valid keys: peer, client, admin)"},
      {"UnknownInStorage", m + "[storage]\nfsink = true\n",
       "storage.fsink: unknown key (valid keys: wal_segment_bytes, sync_threads, state_machine)"},
      {"UnknownInLimits", m + "[limits]\nmaxclients = 3\n",
       "limits.maxclients: unknown key (did you mean max_clients?)"},
      {"UnknownInLog", m + "[log]\nfile = \"x\"\n", "log.file: unknown key"},
      {"UnknownInPeer", m + "[[peers]]\nid = 2\npeer = \"h:1\"\nweight = 3\n",
       "peers[0].weight: unknown key"},
      {"UnknownOptionInKeyspace",
       m + "[keyspace.users]\nprefix = \"u:\"\nstrategy = \"raft\"\nreplicas = 3\n",
       "keyspace.users.replicas: unknown for strategy raft (its options: none)"},
      {"UnknownQuotedKeyIsShownQuoted", m + "\"odd key\" = 1\n", "\"odd key\": unknown key"},
      // Addresses.
      {"ListenNotHostPort", m + "[listen]\nclient = \"127.0.0.11\"\n",
       "listen.client: \"127.0.0.11\" is not host:port"},
      {"ListenWrongType", m + "[listen]\nadmin = 8001\n",
       "listen.admin: expected a string \"host:port\", got integer"},
      {"ListenPeerPortZero", m + "[listen]\npeer = \"127.0.0.1:0\"\n",
       "listen.peer: port must be >= 1"},
      {"ListenSameAddress", m + "[listen]\nclient = \"127.0.0.11:7101\"\n",
       "listen.client: same address as listen.peer (127.0.0.11:7101)"},
      // Peers.
      {"PeersNotArray", m + "[peers]\nid = 2\n",
       "peers: expected an array of tables ([[peers]]), got table"},
      {"PeerNotTable", m + "peers = [1, 2]\n", "peers[0]: expected a table, got integer"},
      {"PeerMissingId", m + "[[peers]]\npeer = \"h:1\"\n", "peers[0].id: missing"},
      {"PeerMissingAddress", m + "[[peers]]\nid = 2\n", "peers[0].peer: missing"},
      {"PeerIdZero", m + "[[peers]]\nid = 0\npeer = \"h:1\"\n",
       "peers[0].id: must be >= 1 (got 0)"},
      {"PeerAddressNotHostPort",
       m + "[[peers]]\nid = 2\npeer = \"127.0.0.12:7101\"\n[[peers]]\nid = 3\npeer = "
           "\"127.0.0.13:7101\"\n[[peers]]\nid = 4\npeer = \"127.0.0.12\"\n",
       "config error: peers[2].peer: \"127.0.0.12\" is not host:port"},
      {"PeerPortZero", m + "[[peers]]\nid = 2\npeer = \"h:0\"\n",
       "peers[0].peer: port must be >= 1"},
      {"DuplicatePeerId",
       m + "[[peers]]\nid = 2\npeer = \"h:1\"\n[[peers]]\nid = 2\npeer = \"h:2\"\n",
       "peers[1].id: duplicate id 2 (also peers[0])"},
      {"DuplicatePeerAddress",
       m + "[[peers]]\nid = 2\npeer = \"h:1\"\n[[peers]]\nid = 3\npeer = \"h:1\"\n",
       "peers[1].peer: duplicate address h:1 (also peers[0])"},
      {"SelfListedAtOtherAddress", m + "[[peers]]\nid = 1\npeer = \"127.0.0.11:9999\"\n",
       "peers[0].peer: this node (id 1) is listed at 127.0.0.11:9999 but listen.peer is "
       "127.0.0.11:7101"},
      {"NodeIdNotInPeersButAddressIs", m + "[[peers]]\nid = 5\npeer = \"127.0.0.11:7101\"\n",
       "peers[0].peer: 127.0.0.11:7101 is this node's listen.peer, but the entry's id is 5, not "
       "node_id 1"},
      // Raft timers and limits.
      {"TickZero", m + "[raft]\ntick_ms = 0\n", "raft.tick_ms: must be between 1 and 1000 (got 0)"},
      {"ElectionNotAboveHeartbeat",
       m + "[raft]\nelection_timeout_ticks = 5\nheartbeat_interval_ticks = 5\n",
       "raft.election_timeout_ticks: must be > heartbeat_interval_ticks (got 5"},
      {"ElectionTooSmall", m + "[raft]\nelection_timeout_ticks = 1\n",
       "raft.election_timeout_ticks: must be between 2 and"},
      {"HeartbeatZero", m + "[raft]\nheartbeat_interval_ticks = 0\n",
       "raft.heartbeat_interval_ticks: must be between 1 and"},
      {"LeaseWithoutCheckQuorum", m + "[raft]\nlease_reads = true\ncheck_quorum = false\n",
       "raft.lease_reads: requires raft.check_quorum = true"},
      {"LeaseTooLong", m + "[raft]\nlease_reads = true\nlease_ticks = 10\n",
       "raft.lease_ticks: leaves no margin for clock drift when lease_reads is on: at most 7 with "
       "election_timeout_ticks 10 (got 10"},
      {"LeaseWithoutMarginForDrift", m + "[raft]\nlease_reads = true\nlease_ticks = 8\n",
       "raft.lease_ticks: leaves no margin for clock drift when lease_reads is on: at most 7"},
      {"MaxEntriesZero", m + "[raft]\nmax_entries_per_append = 0\n",
       "raft.max_entries_per_append: must be between 1 and"},
      {"MaxBytesZero", m + "[raft]\nmax_bytes_per_append = 0\n",
       "raft.max_bytes_per_append: must be between 1"},
      {"MaxInflightZero", m + "[raft]\nmax_inflight_appends = 0\n",
       "raft.max_inflight_appends: must be between 1"},
      {"MaxUncommittedZero", m + "[raft]\nmax_uncommitted_bytes = 0\n",
       "raft.max_uncommitted_bytes: must be between 1"},
      {"SnapshotEveryNegative", m + "[raft]\nsnapshot_every_entries = -1\n",
       "raft.snapshot_every_entries: must be >= 0 (got -1)"},
      {"SnapshotTrailingNegative", m + "[raft]\nsnapshot_trailing_entries = -1\n",
       "raft.snapshot_trailing_entries: must be >= 0 (got -1)"},
      // Storage.
      {"UnknownStateMachine", m + "[storage]\nstate_machine = \"leveldb\"\n",
       "storage.state_machine: \"leveldb\" is not a state machine (valid: memory, rocksdb)"},
      {"SegmentTooSmall", m + "[storage]\nwal_segment_bytes = 100\n",
       "storage.wal_segment_bytes: must be between 4096 and 1073741824 (got 100)"},
      {"NoSyncThreads", m + "[storage]\nsync_threads = 0\n",
       "storage.sync_threads: must be between 1 and 64 (got 0)"},
      {"FsyncNotBool", m + "[storage]\nfsync = 1\n", "storage.fsync: expected a boolean"},
      {"FsyncFalseCannotBeHonoured", m + "[storage]\nfsync = false\n",
       "storage.fsync: false is not supported: chorusd always syncs the log before it "
       "acknowledges a write (delete the line)"},
      // Limits.
      {"MaxClientsZero", m + "[limits]\nmax_clients = 0\n",
       "limits.max_clients: must be between 1"},
      {"MaxBulkZero", m + "[limits]\nmax_bulk_bytes = 0\n",
       "limits.max_bulk_bytes: must be between 1"},
      {"MaxArgsZero", m + "[limits]\nmax_args = 0\n", "limits.max_args: must be between 1"},
      {"MaxInlineZero", m + "[limits]\nmax_inline_bytes = 0\n",
       "limits.max_inline_bytes: must be between 1"},
      {"PipelineBelowBulk", m + "[limits]\nmax_bulk_bytes = 1000\nmax_pipeline_bytes = 999\n",
       "limits.max_pipeline_bytes: must be >= max_bulk_bytes (got 999"},
      {"PipelineBelowInline",
       m + "[limits]\nmax_bulk_bytes = 10\nmax_inline_bytes = 1000\nmax_pipeline_bytes = 999\n",
       "limits.max_pipeline_bytes: must be >= max_inline_bytes (got 999"},
      {"RequestTimeoutZero", m + "[limits]\nrequest_timeout_ms = 0\n",
       "limits.request_timeout_ms: must be between 1"},
      {"NoLeaderWaitAboveTimeout", m + "[limits]\nno_leader_wait_ms = 6000\n",
       "limits.no_leader_wait_ms: must be <= request_timeout_ms (got 6000; request_timeout_ms is "
       "5000)"},
      // Log.
      {"UnknownLogLevel", m + "[log]\nlevel = \"verbose\"\n",
       "log.level: \"verbose\" is not a level (valid: trace, debug, info, warn, error, critical, "
       "off)"},
      // Keyspaces.
      {"PlannedStrategy", m + "[keyspace.users]\nprefix = \"u:\"\nstrategy = \"zab\"\n",
       "keyspace.users.strategy: 'zab' is not built yet (built: raft, paxos, sync-all, semi-sync, "
       "async)"},
      {"PaxosTakesNoOptions",
       m + "[keyspace.users]\nprefix = \"u:\"\nstrategy = \"paxos\"\nacks = \"1\"\n",
       "keyspace.users.acks: unknown for strategy paxos (its options: none)"},
      {"UnknownStrategy", m + "[keyspace.users]\nprefix = \"u:\"\nstrategy = \"quorum\"\n",
       "keyspace.users.strategy: 'quorum' is not a strategy (built: raft, paxos, sync-all, "
       "semi-sync, async)"},
      {"MissingStrategy", m + "[keyspace.users]\nprefix = \"u:\"\n",
       "keyspace.users.strategy: missing (valid strategies: raft, paxos, sync-all, semi-sync, "
       "async)"},
      {"MissingPrefix", m + "[keyspace.users]\nstrategy = \"raft\"\n",
       "keyspace.users.prefix: missing"},
      {"EmptyPrefix", m + "[keyspace.users]\nprefix = \"\"\nstrategy = \"raft\"\n",
       "keyspace.users.prefix: must not be empty"},
      {"SharedPrefix",
       m + "[keyspace.a]\nprefix = \"x:\"\nstrategy = \"raft\"\n[keyspace.b]\nprefix = "
           "\"x:\"\nstrategy = \"raft\"\n",
       "keyspace.b.prefix: 'x:' is the prefix of keyspace 'a'"},
      {"DefaultNotRaft", m + "[keyspace.default]\nstrategy = \"zab\"\n",
       "keyspace.default.strategy: the default keyspace is replicated by raft (got \"zab\")"},
      {"KeyspaceNotTable", m + "[keyspace]\nusers = \"raft\"\n",
       "keyspace.users: expected a table, got string"},
      {"KeyspaceBadName", m + "[keyspace.\"a b\"]\nprefix = \"u:\"\nstrategy = \"raft\"\n",
       "keyspace.\"a b\".name: keyspace names are"},
      // Syntax.
      {"SyntaxError", m + "[raft\n", "config error: line "},
      {"DuplicateKeyIsSyntaxError", m + "node_id = 2\n", "config error: line "},
  };
}

class ConfigErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrors, OneLineNamingTheKey) {
  const ErrorCase& c = GetParam();
  std::string msg = error_of(c.text);
  EXPECT_THAT(msg, StartsWith("config error: "));
  EXPECT_THAT(msg, HasSubstr(c.expected));
}

INSTANTIATE_TEST_SUITE_P(All, ConfigErrors, ::testing::ValuesIn(error_cases()),
                         [](const ::testing::TestParamInfo<ErrorCase>& i) { return i.param.name; });

TEST(ConfigFile, MissingFileIsIoErrorNamingThePath) {
  Result<NodeConfig> r = load_config_file("/nonexistent/chorus/node.toml");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIoError);
  EXPECT_THAT(r.status().message(),
              HasSubstr("config error: cannot read /nonexistent/chorus/node.toml: "));
}

TEST(ConfigFile, SyntaxErrorNamesFileLineAndColumn) {
  std::string path = ::testing::TempDir() + "/chorus_config_test_bad.toml";
  {
    std::ofstream f(path);
    f << "node_id = 1\ndata_dir = \"d\"\nraft.tick_ms = = 3\n";
  }
  Result<NodeConfig> r = load_config_file(path);
  ASSERT_FALSE(r.is_ok());
  EXPECT_THAT(r.status().message(), StartsWith("config error: " + path + ":3:"));
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  std::remove(path.c_str());
}

// validate_config() gives configs built in code the same checks.
TEST(ConfigValidate, CodeBuiltConfigsAreChecked) {
  NodeConfig c = parse_ok(kMinimal);
  c.raft.heartbeat_interval_ticks = 20;
  EXPECT_THAT(validate_config(c).message(), HasSubstr("raft.election_timeout_ticks"));
  c = parse_ok(kMinimal);
  c.raft.max_uncommitted_bytes = ~uint64_t{0};
  EXPECT_THAT(validate_config(c).message(), HasSubstr("raft.max_uncommitted_bytes: must be"));
  c = parse_ok(kMinimal);
  c.keyspaces.push_back(KeyspaceSpec{"orders", "o:", "raft", {}});
  c.keyspaces.push_back(KeyspaceSpec{"orders", "p:", "raft", {}});
  EXPECT_THAT(validate_config(c).message(),
              HasSubstr("keyspace.orders.name: keyspace 'orders' exists"));
  c = parse_ok(kMinimal);
  c.listen.admin.host = "";
  EXPECT_THAT(validate_config(c).message(), HasSubstr("listen.admin: host must not be empty"));
}

// ---- Round trip --------------------------------------------------------------------

TEST(ConfigRender, RoundTripOfDefaults) {
  NodeConfig c = parse_ok(kMinimal);
  std::string text = render_config(c);
  EXPECT_EQ(parse_ok(text), c) << text;
}

TEST(ConfigRender, RoundTripOfEveryKey) {
  NodeConfig c = parse_ok(kEveryKey);
  std::string text = render_config(c);
  EXPECT_EQ(parse_ok(text), c) << text;
  // Rendering is stable.
  EXPECT_EQ(render_config(parse_ok(text)), text);
}

TEST(ConfigRender, RoundTripOfACodeBuiltClusterConfig) {
  // What `chorus up` does: build configs in code, write them, start nodes.
  for (uint64_t id = 1; id <= 3; ++id) {
    NodeConfig c = default_node_config();
    c.node_id = id;
    c.data_dir = "./data/local/node" + std::to_string(id) + "/with \"quotes\" and \\ and \t";
    std::string host = "127.0.0." + std::to_string(10 + id);
    c.listen = {{host, 7101}, {host, static_cast<uint16_t>(7000 + id)}, {host, 8001}};
    for (uint64_t p = 1; p <= 3; ++p)
      c.peers.push_back({p, {"127.0.0." + std::to_string(10 + p), 7101}});
    c.peers.push_back({4, {"::1", 7104}});
    ASSERT_TRUE(validate_config(c).is_ok()) << validate_config(c).message();
    std::string text = render_config(c);
    EXPECT_EQ(parse_ok(text), c) << text;
  }
}

TEST(ConfigRender, OutputLooksLikeTheDocumentedFile) {
  NodeConfig c = parse_ok(kEveryKey);
  std::string text = render_config(c);
  EXPECT_THAT(text, HasSubstr("node_id = 2\n"));
  EXPECT_THAT(text, HasSubstr("[[peers]]\nid = 3\npeer = \"node3.example:7103\"\n"));
  EXPECT_THAT(text, HasSubstr("[keyspace.users]\nprefix = \"user:\"\nstrategy = \"raft\""));
  EXPECT_THAT(text, HasSubstr("state_machine = \"rocksdb\"\n"));
  EXPECT_THAT(text, Not(HasSubstr("fsync")));
}

// ---- docs/config.md ------------------------------------------------------------------

#ifdef CHORUS_CONFIG_DOC
std::string read_doc() {
  std::ifstream in(CHORUS_CONFIG_DOC);
  EXPECT_TRUE(in) << "cannot read " << CHORUS_CONFIG_DOC;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(ConfigDoc, CompleteExampleParsesAndSetsEveryKey) {
  std::string doc = read_doc();
  size_t at = doc.find("## A complete example");
  ASSERT_NE(at, std::string::npos);
  size_t begin = doc.find("```toml\n", at);
  ASSERT_NE(begin, std::string::npos);
  begin += 8;
  size_t end = doc.find("```", begin);
  ASSERT_NE(end, std::string::npos);
  std::string example = doc.substr(begin, end - begin);
  NodeConfig c = parse_ok(example);
  EXPECT_EQ(c.node_id, 2u);
  EXPECT_EQ(c.voter_ids(), (std::vector<uint64_t>{1, 2, 3}));
  // Every key render_config() writes appears in the example and in a table row.
  std::string rendered = render_config(c);
  size_t keys = 0;
  for (size_t pos = 0; pos < rendered.size();) {
    size_t eol = rendered.find('\n', pos);
    std::string line = rendered.substr(pos, eol - pos);
    pos = eol + 1;
    size_t eq = line.find(" = ");
    if (line.empty() || line[0] == '#' || line[0] == '[' || eq == std::string::npos) continue;
    std::string key = line.substr(0, eq);
    EXPECT_THAT(example, HasSubstr(key + " = ")) << key;
    EXPECT_THAT(doc, HasSubstr("| `" + key + "` |")) << key;
    ++keys;
  }
  EXPECT_GE(keys, 30u);
}
#endif

}  // namespace
}  // namespace chorus::server
