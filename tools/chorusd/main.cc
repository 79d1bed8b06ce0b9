// chorusd: one Chorus node. `chorusd --config node.toml`.
//
// Startup: read and validate the config (any error: one line naming the key,
// exit 2), recover the node's storage (a damaged log or snapshot: a clear
// error naming the file and offset, exit 1), open the state machine, then
// serve peers, clients (RESP) and operators (admin HTTP) from one event
// loop. SIGINT/SIGTERM stop it cleanly.
//
// The node (server/node.h) runs the metadata group, the default keyspace's
// group and one group per keyspace, each with the strategy the registry
// builds for it (host/registry.h).
#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include <spdlog/spdlog.h>

#include "net/transport/transport.h"
#include "server/admin_http.h"
#include "server/client_server.h"
#include "server/config.h"
#include "server/metrics.h"
#include "server/node.h"
#include "storage/env/posix_env.h"

namespace chorus {
namespace {

// Everything the node exports on /metrics.
struct ServerMetrics {
  metrics::Registry reg;
  metrics::Counter& proposals =
      reg.counter("chorus_proposals_total", "Client writes proposed to the replication group");
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
  metrics::Gauge& term = reg.gauge("chorus_term", "Current term (epoch) of the group");
  metrics::Gauge& commit_index = reg.gauge("chorus_commit_index", "Highest committed log index");
  metrics::CounterFamily& commands = reg.counter_family(
      "chorus_client_commands_total", "Client commands by name and result", {"command", "result"});
  // Every keyspace's group shares the node's disk: what it cost the device.
  metrics::CounterFamily& device_syncs = reg.counter_family(
      "chorus_device_syncs_total",
      "Device syncs this node made, all keyspaces together (fdatasync of a log, fsync of a "
      "directory, syncfs of a shared batch)",
      {"kind"});
  // Ready::dropped, counted once per (keyspace, term, index) on this node
  // (docs/strategies.md, "Loss is counted").
  metrics::CounterFamily& dropped = reg.counter_family(
      "chorus_dropped_writes_total",
      "Writes this node dropped from a keyspace's log: lost-acknowledged (a client was told OK), "
      "rolled-back (certainly never acknowledged) or in-doubt",
      {"keyspace", "kind"});
  // Per keyspace (default included), as this node sees its group.
  metrics::GaugeFamily& ks_leader = reg.gauge_family(
      "chorus_keyspace_is_leader", "1 if this node leads (or is primary of) the keyspace's group",
      {"keyspace"});
  metrics::GaugeFamily& ks_term =
      reg.gauge_family("chorus_keyspace_term",
                       "The keyspace group's term (Raft) or epoch (primary-backup)", {"keyspace"});
  metrics::GaugeFamily& ks_commit = reg.gauge_family(
      "chorus_keyspace_commit_index", "The keyspace group's commit index here", {"keyspace"});
  metrics::GaugeFamily& ks_applied = reg.gauge_family(
      "chorus_keyspace_applied_index", "The keyspace group's applied index here", {"keyspace"});
  metrics::GaugeFamily& ks_lag = reg.gauge_family(
      "chorus_keyspace_replica_lag_entries",
      "On the leader or primary: entries each replica lacks of the log", {"keyspace", "replica"});
  metrics::Counter& fdatasyncs = device_syncs.with({"fdatasync"});
  metrics::Counter& fsyncs = device_syncs.with({"fsync"});
  metrics::Counter& syncfs = device_syncs.with({"syncfs"});
};

// The host's hooks, bound to the metrics and the log. Every role change is
// logged with the engine's reason.
host::HostMetrics host_hooks(ServerMetrics& m) {
  host::HostMetrics h;
  h.fsync_latency = [&m](double s) { m.fsync.observe(s); };
  h.append_batch = [&m](size_t n) { m.batch.observe(static_cast<double>(n)); };
  h.proposals = [&m](uint64_t n) { m.proposals.inc(n); };
  h.commits = [&m](uint64_t n) { m.commits.inc(n); };
  h.elections = [&m] { m.elections.inc(); };
  h.leader_changes = [&m] { m.leader_changes.inc(); };
  h.role_change = [](const core::SoftState& s, std::string_view role, std::string_view why) {
    const std::string leader =
        s.leader == kNoNode ? "no leader" : fmt::format("leader n{}", s.leader.value());
    spdlog::info("{} in term {} ({}){}{}", role, s.term.value(), leader, why.empty() ? "" : ": ",
                 why);
  };
  h.info = [](std::string_view line) { spdlog::info("{}", line); };
  h.error = [](std::string_view line) { spdlog::error("{}", line); };
  return h;
}

Result<net::TransportConfig> transport_config(const server::NodeConfig& cfg) {
  net::TransportConfig tc;
  tc.self = NodeId(cfg.node_id);
  tc.cluster_id = cfg.cluster_id;
  tc.listen = cfg.listen.peer;
  for (const auto& p : cfg.other_peers()) tc.peers[NodeId(p.id)] = p.peer;
  CHORUS_RETURN_IF_ERROR(tc.validate());
  return tc;
}

server::ClientServerOptions client_options(const server::NodeConfig& cfg, ServerMetrics& m) {
  server::ClientServerOptions co;
  co.limits.args_max = cfg.limits.max_args;
  co.limits.bulk_bytes_max = cfg.limits.max_bulk_bytes;
  co.limits.inline_bytes_max = cfg.limits.max_inline_bytes;
  co.limits.command_bytes_max = cfg.limits.max_pipeline_bytes;
  co.max_clients = cfg.limits.max_clients;
  co.lease_reads_enabled = cfg.raft.lease_reads;
  co.wait_timeout_max_ms = cfg.limits.request_timeout_ms;
  co.replicas_configured = cfg.voter_ids().size() - 1;
  co.on_command = [&m](std::string_view name, std::string_view result) {
    m.commands.with({std::string(name), std::string(result)}).inc();
  };
  return co;
}

// Publishes status and gauges for the admin threads every 100 ms.
class Publisher {
 public:
  Publisher(asio::io_context& io, ServerMetrics& m, server::Node& node, net::Transport& transport,
            server::ClientServer& clients)
      : timer_(io), m_(m), node_(node), transport_(transport), clients_(clients) {}
  server::StatusPublisher& status() { return status_; }
  void start() { tick(); }
  void stop() { timer_.cancel(); }

 private:
  void tick() {
    status_.publish(node_.status_json());
    status_.publish_health(server::Health{node_.healthy(), node_.failure()});
    uint64_t sent = 0, received = 0;
    for (const auto& p : transport_.stats().peers) {
      sent += p.bytes_sent;
      received += p.bytes_received;
    }
    m_.bytes_sent.set(static_cast<double>(sent));
    m_.bytes_received.set(static_cast<double>(received));
    m_.clients.set(static_cast<double>(clients_.connected_clients()));
    const host::HostStatus s = node_.default_group().status();
    m_.term.set(static_cast<double>(s.engine.soft.term.value()));
    m_.commit_index.set(static_cast<double>(s.engine.commit_index.value()));
    publish_syncs();
    publish_keyspaces();
    timer_.expires_after(std::chrono::milliseconds(100));
    timer_.async_wait([this](std::error_code ec) {
      if (!ec) tick();
    });
  }

  void publish_keyspaces() {
    for (const auto& [name, g] : node_.named_groups()) {
      const host::HostStatus s = g->status();
      const bool leads = s.engine.soft.role == core::Role::kLeader;
      m_.ks_leader.with({name}).set(leads ? 1 : 0);
      m_.ks_term.with({name}).set(static_cast<double>(s.engine.soft.term.value()));
      m_.ks_commit.with({name}).set(static_cast<double>(s.engine.commit_index.value()));
      m_.ks_applied.with({name}).set(static_cast<double>(s.applied_index.value()));
      if (!leads) continue;
      for (const auto& p : s.engine.peers) {
        m_.ks_lag.with({name, std::to_string(p.id.value())}).set(static_cast<double>(p.lag));
      }
    }
  }

  // The process-wide sync counters, carried into the counters as deltas.
  void publish_syncs() {
    const storage::PosixEnv::SyncCounts now = storage::PosixEnv::sync_counts();
    m_.fdatasyncs.inc(now.fdatasyncs - syncs_.fdatasyncs);
    m_.fsyncs.inc(now.fsyncs - syncs_.fsyncs);
    m_.syncfs.inc(now.syncfs - syncs_.syncfs);
    syncs_ = now;
  }

  asio::steady_timer timer_;
  storage::PosixEnv::SyncCounts syncs_;
  ServerMetrics& m_;
  server::Node& node_;
  net::Transport& transport_;
  server::ClientServer& clients_;
  server::StatusPublisher status_;
};

int run(const server::NodeConfig& cfg) {
  for (const auto& w : server::config_warnings(cfg)) spdlog::warn("config: {}", w);
  spdlog::info("chorusd node {} of cluster '{}' starting; data in {}", cfg.node_id, cfg.cluster_id,
               cfg.data_dir);
  auto tc = transport_config(cfg);
  if (!tc.is_ok()) {
    std::fprintf(stderr, "config error: %s\n", tc.status().message().c_str());
    return 2;
  }
  asio::io_context io;
  ServerMetrics m;
  host::HostMetrics hooks = host_hooks(m);
  net::Transport transport(io, *tc);
  // Before the groups, so that it outlives them: they queue jobs on it.
  server::StorageExecutorOptions so;
  so.threads = static_cast<size_t>(cfg.storage.sync_threads);
  server::StorageExecutor storage_executor(storage::PosixEnv::get(), so);
  std::random_device rd;
  server::Node::Options no;
  no.io = &io;
  no.config = &cfg;
  no.transport = &transport;
  no.storage = &storage_executor;
  no.hooks = &hooks;
  no.env = storage::PosixEnv::get();
  no.prng_seed = (uint64_t{rd()} << 32) ^ rd();
  no.on_dropped = [&m](std::string_view keyspace, const core::DroppedEntry& d) {
    m.dropped.with({std::string(keyspace), std::string(core::drop_kind_name(d.kind))})
        .inc(d.range_positions > 0 ? d.range_positions : 1);
  };
  auto opened = server::Node::open(no);
  if (!opened.is_ok()) {
    spdlog::critical("{}", opened.status().message());
    return 1;
  }
  std::unique_ptr<server::Node> node = std::move(opened).value();
  transport.set_receiver([&](net::IncomingMessage in) { return node->deliver(std::move(in)); });
  if (Status st = transport.start(); !st.is_ok()) {
    spdlog::critical("{}", st.to_string());
    return 1;
  }
  server::ClientServer clients(io, *node, cfg.node_id, client_options(cfg, m));
  if (Status st = clients.start(cfg.listen.client.host, cfg.listen.client.port); !st.is_ok()) {
    spdlog::critical("{}", st.to_string());
    return 1;
  }
  Publisher publisher(io, m, *node, transport, clients);
  server::AdminServerOptions ao;
  ao.host = cfg.listen.admin.host;
  ao.port = cfg.listen.admin.port;
  ao.status_json = publisher.status().status_callback();
  ao.health = publisher.status().health_callback();
  ao.metrics = &m.reg;
  server::AdminServer admin(ao);
  if (Status st = admin.start(); !st.is_ok()) {
    spdlog::critical("{}", st.to_string());
    return 1;
  }
  publisher.start();
  node->start();
  spdlog::info("serving clients on {}, peers on {}, admin on {}", cfg.listen.client.to_string(),
               cfg.listen.peer.to_string(), cfg.listen.admin.to_string());

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](std::error_code, int sig) {
    spdlog::info("signal {}: stopping", sig);
    clients.stop();
    node->stop();
    transport.stop();
    publisher.stop();
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
