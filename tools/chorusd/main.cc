// chorusd: one Chorus node. `chorusd --config node.toml`.
//
// Startup: read and validate the config (any error: one line naming the key,
// exit 2), recover the node's storage (a damaged log or snapshot: a clear
// error naming the file and offset, exit 1), open the state machine, then
// serve peers (Raft), clients (RESP) and operators (admin HTTP) from one
// event loop. SIGINT/SIGTERM stop it cleanly.
#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include <spdlog/spdlog.h>

#include "net/codec/raft_codec.h"
#include "net/transport/transport.h"
#include "server/admin_http.h"
#include "server/client_server.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/raft_node.h"
#include "storage/env/posix_env.h"
#include "storage/kv/rocksdb_state_machine.h"
#include "storage/replica/replica_storage.h"

namespace chorus {
namespace {

// The one replication group this node runs (Raft), on the peer wire.
constexpr GroupId kRaftGroup{0};

raft::Config raft_config(const server::NodeConfig& c) {
  raft::Config r;
  r.id = NodeId(c.node_id);
  for (uint64_t v : c.voter_ids()) r.voters.push_back(NodeId(v));
  r.election_timeout_ticks = c.raft.election_timeout_ticks;
  r.heartbeat_interval_ticks = c.raft.heartbeat_interval_ticks;
  r.pre_vote = c.raft.pre_vote;
  r.check_quorum = c.raft.check_quorum;
  r.lease_reads = c.raft.lease_reads;
  r.lease_ticks = c.raft.lease_ticks;
  r.max_entries_per_append = c.raft.max_entries_per_append;
  r.max_bytes_per_append = c.raft.max_bytes_per_append;
  r.max_inflight_appends = c.raft.max_inflight_appends;
  r.max_uncommitted_bytes = c.raft.max_uncommitted_bytes;
  r.snapshot_trailing_entries = c.raft.snapshot_trailing_entries;
  return r;
}

Result<std::unique_ptr<kv::StateMachine>> open_state_machine(const server::NodeConfig& c) {
  if (c.storage.state_machine == server::StateMachineKind::kRocksDb) {
    CHORUS_ASSIGN_OR_RETURN(auto sm, kv::RocksDbStateMachine::open(c.data_dir + "/rocksdb", {}));
    return std::unique_ptr<kv::StateMachine>(std::move(sm));
  }
  return std::unique_ptr<kv::StateMachine>(std::make_unique<kv::MemoryStateMachine>());
}

// Everything the node exports on /metrics.
struct ServerMetrics {
  metrics::Registry reg;
  metrics::Counter& proposals =
      reg.counter("chorus_proposals_total", "Client writes proposed to Raft");
  metrics::Counter& commits =
      reg.counter("chorus_applied_entries_total", "Log entries applied to the state machine");
  metrics::Counter& elections =
      reg.counter("chorus_elections_total", "Elections this node started");
  metrics::Counter& leader_changes =
      reg.counter("chorus_leader_changes_total", "Times this node became leader");
  metrics::Histogram& fsync =
      reg.histogram("chorus_fsync_seconds", "Time to persist one Ready (write + fdatasync)",
                    metrics::latency_seconds_buckets());
  metrics::Histogram& batch =
      reg.histogram("chorus_append_batch_entries", "Log entries persisted per fdatasync",
                    metrics::batch_size_buckets());
  metrics::Gauge& bytes_sent = reg.gauge("chorus_peer_bytes_sent", "Bytes sent to peers");
  metrics::Gauge& bytes_received =
      reg.gauge("chorus_peer_bytes_received", "Bytes received from peers");
  metrics::Gauge& clients = reg.gauge("chorus_connected_clients", "Open client connections");
  metrics::Gauge& term = reg.gauge("chorus_term", "Current Raft term");
  metrics::Gauge& commit_index = reg.gauge("chorus_commit_index", "Highest committed log index");
  metrics::CounterFamily& commands = reg.counter_family(
      "chorus_client_commands_total", "Client commands by name and result", {"command", "result"});
};

int run(const server::NodeConfig& cfg) {
  for (const auto& w : server::config_warnings(cfg)) spdlog::warn("config: {}", w);
  spdlog::info("chorusd node {} of cluster '{}' starting; data in {}", cfg.node_id, cfg.cluster_id,
               cfg.data_dir);

  storage::Env* env = storage::PosixEnv::get();
  storage::ReplicaStorageOptions so;
  so.wal.segment_bytes = cfg.storage.wal_segment_bytes;
  auto store = storage::ReplicaStorage::open(env, cfg.data_dir + "/raft", so);
  if (!store.is_ok()) {
    spdlog::critical("cannot recover storage: {}", store.status().to_string());
    return 1;
  }
  storage::Recovered recovered = (*store)->take_recovered();
  auto sm = open_state_machine(cfg);
  if (!sm.is_ok()) {
    spdlog::critical("cannot open the state machine: {}", sm.status().to_string());
    return 1;
  }

  asio::io_context io;
  ServerMetrics m;
  server::NodeMetrics hooks;
  hooks.fsync_latency = [&](double s) { m.fsync.observe(s); };
  hooks.append_batch = [&](size_t n) { m.batch.observe(static_cast<double>(n)); };
  hooks.proposals = [&](uint64_t n) { m.proposals.inc(n); };
  hooks.commits = [&](uint64_t n) { m.commits.inc(n); };
  hooks.elections = [&] { m.elections.inc(); };
  hooks.leader_changes = [&] { m.leader_changes.inc(); };

  net::TransportConfig tc;
  tc.self = NodeId(cfg.node_id);
  tc.cluster_id = cfg.cluster_id;
  tc.listen = cfg.listen.peer;
  for (const auto& p : cfg.other_peers()) tc.peers[NodeId(p.id)] = p.peer;
  if (Status st = tc.validate(); !st.is_ok()) {
    std::fprintf(stderr, "config error: %s\n", st.message().c_str());
    return 2;
  }
  net::Transport transport(io, tc);

  server::RaftNodeOptions no;
  no.raft = raft_config(cfg);
  no.tick = std::chrono::milliseconds(cfg.raft.tick_ms);
  no.request_timeout = std::chrono::milliseconds(cfg.limits.request_timeout_ms);
  no.no_leader_wait = std::chrono::milliseconds(cfg.limits.no_leader_wait_ms);
  no.snapshot_every_entries =
      cfg.raft.snapshot_every_entries == 0 ? UINT64_MAX : cfg.raft.snapshot_every_entries;
  std::random_device rd;
  server::RaftNode node(
      io, no, Prng((uint64_t{rd()} << 32) ^ rd()), std::move(store).value(), std::move(recovered),
      std::move(sm).value(),
      [&](raft::Message msg) { transport.send(net::encode_raft_message(msg, kRaftGroup)); },
      &hooks);
  if (Status st = node.init(); !st.is_ok()) {
    spdlog::critical("cannot start: {}", st.to_string());
    return 1;
  }
  transport.set_receiver([&](net::IncomingMessage in) -> Status {
    if (in.message.group_id() != kRaftGroup.value()) return Status::ok();  // not hosted here
    // A message the codec refuses: the error closes the connection.
    CHORUS_ASSIGN_OR_RETURN(raft::Message msg, net::decode_raft_message(in));
    node.receive(std::move(msg));
    return Status::ok();
  });
  if (Status st = transport.start(); !st.is_ok()) {
    spdlog::critical("{}", st.to_string());
    return 1;
  }

  server::ClientServerOptions co;
  co.limits.args_max = cfg.limits.max_args;
  co.limits.bulk_bytes_max = cfg.limits.max_bulk_bytes;
  co.limits.inline_bytes_max = cfg.limits.max_inline_bytes;
  co.limits.command_bytes_max = cfg.limits.max_pipeline_bytes;
  co.max_clients = cfg.limits.max_clients;
  co.lease_reads_enabled = cfg.raft.lease_reads;
  co.on_command = [&](std::string_view name, std::string_view result) {
    m.commands.with({std::string(name), std::string(result)}).inc();
  };
  server::ClientServer clients(io, node, cfg.node_id, co);
  if (Status st = clients.start(cfg.listen.client.host, cfg.listen.client.port); !st.is_ok()) {
    spdlog::critical("{}", st.to_string());
    return 1;
  }

  server::StatusPublisher publisher;
  server::AdminServerOptions ao;
  ao.host = cfg.listen.admin.host;
  ao.port = cfg.listen.admin.port;
  ao.status_json = publisher.status_callback();
  ao.health = publisher.health_callback();
  ao.metrics = &m.reg;
  server::AdminServer admin(ao);
  if (Status st = admin.start(); !st.is_ok()) {
    spdlog::critical("{}", st.to_string());
    return 1;
  }

  // Publish status and gauges for the admin thread every 100 ms.
  asio::steady_timer publish_timer(io);
  std::function<void()> publish = [&] {
    publisher.publish(node.status_json());
    publisher.publish_health(
        server::Health{node.healthy(), node.healthy() ? "" : node.failure().to_string()});
    const auto ts = transport.stats();
    uint64_t sent = 0, received = 0;
    for (const auto& p : ts.peers) {
      sent += p.bytes_sent;
      received += p.bytes_received;
    }
    m.bytes_sent.set(static_cast<double>(sent));
    m.bytes_received.set(static_cast<double>(received));
    m.clients.set(static_cast<double>(clients.connected_clients()));
    m.term.set(static_cast<double>(node.soft_state().term.value()));
    m.commit_index.set(static_cast<double>(node.core().log().committed().value()));
    publish_timer.expires_after(std::chrono::milliseconds(100));
    publish_timer.async_wait([&](std::error_code ec) {
      if (!ec) publish();
    });
  };
  publish();
  node.start();
  spdlog::info("serving clients on {}, peers on {}, admin on {}", cfg.listen.client.to_string(),
               cfg.listen.peer.to_string(), cfg.listen.admin.to_string());

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int sig) {
    spdlog::info("signal {}: stopping", sig);
    clients.stop();
    node.stop();
    transport.stop();
    publish_timer.cancel();
    io.stop();
  });
  io.run();
  admin.stop();
  spdlog::info("stopped");
  return 0;
}

}  // namespace
}  // namespace chorus

int main(int argc, char** argv) {
  CLI::App app{"chorusd: a Chorus node"};
  std::string config_path;
  app.add_option("--config", config_path, "The node's TOML config file")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  auto cfg = chorus::server::load_config_file(config_path);
  if (!cfg.is_ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().message().c_str());
    return 2;
  }
  spdlog::set_pattern(fmt::format("%Y-%m-%d %H:%M:%S.%e n{} %^%l%$ %v", cfg->node_id));
  spdlog::set_level(spdlog::level::from_str(cfg->log.level));
  return chorus::run(*cfg);
}
