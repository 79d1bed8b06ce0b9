// `chorus up`, `chorus down`, `chorus status`: a local cluster of chorusd
// processes for trying Chorus out (see tools/common/local_cluster.h).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "local_cluster.h"

namespace chorus::tools {
namespace {

namespace fs = std::filesystem;

struct ClusterArgs {
  int nodes = 3;
  std::string dir = "./data/local";
  int base_port = 7001;
  bool ip_per_node = false;
  bool foreground = false;
  std::string state_machine = "memory";
  bool lease_reads = false;
  std::vector<std::string> keyspaces;  // NAME:STRATEGY, prefix "NAME:"
};

// How long `chorus up` waits, once a leader is elected, for every node to
// report that leader in its term before it prints the table anyway.
constexpr std::chrono::seconds kJoinWait{10};

std::atomic<bool> g_interrupted{false};
void on_signal(int) {
  g_interrupted = true;
}

// The node count of an existing cluster directory (dir/n1, dir/n2, ...).
int nodes_in(const std::string& dir) {
  int n = 0;
  while (fs::exists(fmt::format("{}/n{}/node.toml", dir, n + 1))) ++n;
  return n;
}

// --keyspace orders:raft -> keyspace "orders", prefix "orders:", strategy raft.
Result<server::KeyspaceSpec> parse_keyspace_flag(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::invalid_argument("--keyspace " + text +
                                    ": expected NAME:STRATEGY (prefix NAME:), e.g. orders:raft");
  }
  server::KeyspaceSpec k{
      text.substr(0, colon), text.substr(0, colon) + ":", text.substr(colon + 1), {}};
  if (Status st = server::validate_keyspace(k); !st.is_ok()) {
    return Status::invalid_argument("--keyspace " + text + ": " + st.message());
  }
  return k;
}

LocalClusterOptions options_from(const ClusterArgs& a, int nodes) {
  LocalClusterOptions o;
  o.nodes = nodes;
  o.dir = a.dir;
  o.base_port = static_cast<uint16_t>(a.base_port);
  o.ip_per_node = a.ip_per_node;
  const std::string sm = a.state_machine;
  const bool lease = a.lease_reads;
  std::vector<server::KeyspaceSpec> keyspaces;
  for (const std::string& k : a.keyspaces) keyspaces.push_back(*parse_keyspace_flag(k));
  o.tune = [sm, lease, keyspaces](server::NodeConfig& c) {
    c.storage.state_machine =
        sm == "rocksdb" ? server::StateMachineKind::kRocksDb : server::StateMachineKind::kMemory;
    // Allows CHORUS.CONSISTENCY lease; connections still default to ReadIndex.
    if (lease) c.raft.lease_reads = true;
    c.keyspaces = keyspaces;
  };
  return o;
}

void print_status_table(const LocalCluster& c) {
  std::printf("%-5s %-22s %-10s %6s %7s %10s %10s %8s\n", "node", "client", "role", "term",
              "leader", "commit", "applied", "healthy");
  for (int k = 1; k <= c.size(); ++k) {
    const std::string addr = c.config(k).listen.client.to_string();
    auto s = c.status(k);
    if (!s.is_ok()) {
      std::printf("n%-4d %-22s %-10s\n", k, addr.c_str(), c.running(k) ? "no answer" : "down");
      continue;
    }
    std::printf("n%-4d %-22s %-10s %6llu %7s %10llu %10llu %8s\n", k, addr.c_str(), s->role.c_str(),
                (unsigned long long)s->term,
                s->leader ? fmt::format("n{}", s->leader).c_str() : "-",
                (unsigned long long)s->commit_index, (unsigned long long)s->applied_index,
                s->healthy ? "yes" : ("NO: " + s->error).c_str());
  }
}

// "n2", "n2 and n3", "n2, n3 and n4".
std::string node_list(const std::vector<int>& nodes) {
  std::string out;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (i > 0) out += i + 1 == nodes.size() ? " and " : ", ";
    out += fmt::format("n{}", nodes[i]);
  }
  return out;
}

// Waits until every node follows the elected leader, then prints the
// headline and the table; after kJoinWait prints them anyway, with a warning
// naming the nodes that have not joined.
void wait_for_followers_and_print(const LocalCluster& c, const std::string& dir) {
  std::printf("waiting up to %llds for every node to follow the leader ...\n",
              static_cast<long long>(kJoinWait.count()));
  std::fflush(stdout);
  const LeaderAgreement joined = c.wait_for_agreement(kJoinWait);
  if (joined.agreed()) {
    std::printf("\nChorus is up: %d nodes, leader n%llu in term %llu.\n\n", c.size(),
                static_cast<unsigned long long>(joined.leader),
                static_cast<unsigned long long>(joined.term));
  } else if (joined.leader == 0) {
    std::printf(
        "\nwarning: after %llds no node reports itself leader any more; the table shows what "
        "each node reports (logs: %s/n*/chorusd.log).\n\n",
        static_cast<long long>(kJoinWait.count()), dir.c_str());
  } else {
    const bool one = joined.not_joined.size() == 1;
    std::printf(
        "\nwarning: after %llds %s %s not joined leader n%llu in term %llu; the table shows what "
        "%s (logs: %s/n*/chorusd.log).\n\n",
        static_cast<long long>(kJoinWait.count()), node_list(joined.not_joined).c_str(),
        one ? "has" : "have", static_cast<unsigned long long>(joined.leader),
        static_cast<unsigned long long>(joined.term), one ? "it reports" : "they report",
        dir.c_str());
  }
  print_status_table(c);
}

// `chorus up --foreground` after the cluster is up: reaps its nodes as they
// exit, and returns once none is left (every node stopped by `chorus down`,
// crashed or killed) or on Ctrl-C / SIGTERM, after stopping the nodes it
// started. Exit code 1 if a node ended other than by a clean exit.
int stay_in_foreground(LocalCluster& c) {
  std::printf("Press Ctrl-C to stop every node.\n");
  std::fflush(stdout);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  int unclean = 0;
  while (!g_interrupted) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    for (const ChildExit& e : c.reap_exited()) {
      if (!e.clean()) ++unclean;
      std::printf("node %d (pid %d) %s; log: %s/chorusd.log\n", e.node, static_cast<int>(e.pid),
                  e.describe().c_str(), c.node_dir(e.node).c_str());
      std::fflush(stdout);
    }
    if (c.child_count() == 0) {
      std::printf("all %d nodes have exited%s; chorus up is done\n", c.size(),
                  unclean > 0 ? fmt::format(" ({} not cleanly)", unclean).c_str() : "");
      return unclean > 0 ? 1 : 0;
    }
  }
  std::printf("\nstopping...\n");
  c.stop_children();
  std::printf("all nodes stopped\n");
  return 0;
}

int cmd_up(const ClusterArgs& a) {
  if (a.nodes < 1 || a.nodes > 9) {
    std::fprintf(stderr, "chorus up: --nodes must be between 1 and 9\n");
    return 2;
  }
  LocalCluster c(options_from(a, a.nodes));
  for (int k = 1; k <= c.size(); ++k) {
    if (c.running(k)) {
      std::fprintf(
          stderr,
          "chorus up: node %d is already running (pid %d); run `chorus down --dir %s` first\n", k,
          *c.pid(k), a.dir.c_str());
      return 1;
    }
  }
  if (Status st = c.write_configs(); !st.is_ok()) {
    std::fprintf(stderr, "chorus up: %s\n", st.to_string().c_str());
    return 1;
  }
  std::printf("starting %d chorusd nodes in %s ...\n", c.size(), a.dir.c_str());
  std::fflush(stdout);
  if (Status st = c.start_all(); !st.is_ok()) {
    std::fprintf(stderr, "chorus up: %s\n", st.to_string().c_str());
    c.stop_children();
    return 1;
  }
  auto leader = c.wait_for_leader(std::chrono::seconds(15));
  if (!leader) {
    std::fprintf(stderr, "chorus up: no leader elected within 15s; see %s/n*/chorusd.log\n",
                 a.dir.c_str());
    print_status_table(c);
    c.stop_children();
    return 1;
  }
  wait_for_followers_and_print(c, a.dir);
  const auto& first = c.config(1).listen.client;
  std::printf("\nConnect with any Redis client, to any node:\n");
  std::printf("  redis-cli -h %s -p %u\n", first.host.c_str(), first.port);
  std::printf("  redis-cli -h %s -p %u SET greeting hello\n", first.host.c_str(), first.port);
  std::printf("Admin and dashboard: http://%s/   (status: chorus status --dir %s)\n",
              c.config(1).listen.admin.to_string().c_str(), a.dir.c_str());
  if (!a.foreground) {
    std::printf("Stop it with: chorus down --dir %s\n", a.dir.c_str());
    return 0;
  }
  return stay_in_foreground(c);
}

int cmd_down(const ClusterArgs& a) {
  const int n = nodes_in(a.dir);
  if (n == 0) {
    std::fprintf(stderr, "chorus down: no cluster in %s\n", a.dir.c_str());
    return 1;
  }
  LocalCluster c(options_from(a, n));
  int stopped = 0;
  for (int k = 1; k <= n; ++k) {
    if (c.running(k)) ++stopped;
    c.stop(k).ignore();
  }
  std::printf("stopped %d node(s) in %s\n", stopped, a.dir.c_str());
  return 0;
}

int cmd_status(const ClusterArgs& a) {
  const int n = nodes_in(a.dir);
  if (n == 0) {
    std::fprintf(stderr, "chorus status: no cluster in %s\n", a.dir.c_str());
    return 1;
  }
  // Read the configs that were written, so ports and addresses are the real ones.
  LocalClusterOptions o = options_from(a, n);
  std::vector<server::NodeConfig> configs;
  for (int k = 1; k <= n; ++k) {
    auto cfg = server::load_config_file(fmt::format("{}/n{}/node.toml", a.dir, k));
    if (!cfg.is_ok()) {
      std::fprintf(stderr, "chorus status: %s\n", cfg.status().message().c_str());
      return 1;
    }
    configs.push_back(*cfg);
  }
  o.tune = [configs](server::NodeConfig& c) { c = configs[c.node_id - 1]; };
  LocalCluster c(o);
  print_status_table(c);
  return 0;
}

}  // namespace

void add_cluster_commands(CLI::App& app) {
  auto args = std::make_shared<ClusterArgs>();
  CLI::App* up =
      app.add_subcommand("up", "Start a local cluster of chorusd processes and wait for a leader");
  up->add_option("--nodes", args->nodes, "Number of nodes")->capture_default_str();
  up->add_option("--dir", args->dir, "Where configs, data and logs go")->capture_default_str();
  up->add_option("--base-port", args->base_port, "Client port of node 1 (peers +100, admin +1000)")
      ->check(CLI::Range(1024, 60000))
      ->capture_default_str();
  up->add_flag("--ip-per-node", args->ip_per_node,
               "Node K listens on 127.0.0.(10+K) instead of 127.0.0.1");
  up->add_flag("--foreground", args->foreground, "Stay in the foreground; Ctrl-C stops every node");
  up->add_option("--state-machine", args->state_machine, "memory or rocksdb")
      ->check(CLI::IsMember({"memory", "rocksdb"}))
      ->capture_default_str();
  up->add_option("--keyspace", args->keyspaces,
                 "A keyspace NAME:STRATEGY with prefix NAME: (repeatable), e.g. orders:raft")
      ->check([](const std::string& v) {
        auto k = parse_keyspace_flag(v);
        return k.is_ok() ? std::string() : k.status().message();
      });
  up->add_flag("--lease-reads", args->lease_reads,
               "Allow leader-lease reads (raft.lease_reads; clients opt in with CHORUS.CONSISTENCY "
               "lease)");
  up->callback([args] {
    if (int rc = cmd_up(*args); rc != 0) throw CLI::RuntimeError(rc);
  });
  CLI::App* down = app.add_subcommand("down", "Stop the nodes `chorus up` started");
  down->add_option("--dir", args->dir, "The cluster directory")->capture_default_str();
  down->callback([args] {
    if (int rc = cmd_down(*args); rc != 0) throw CLI::RuntimeError(rc);
  });
  CLI::App* status = app.add_subcommand("status", "Print the local cluster as a table");
  status->add_option("--dir", args->dir, "The cluster directory")->capture_default_str();
  status->callback([args] {
    if (int rc = cmd_status(*args); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace chorus::tools
