// LocalCluster: a Chorus cluster of chorusd processes on this machine, for
// `chorus up/down/status`, the black-box tests, the failover benchmark and
// the nemesis. It writes one config per node under `dir/nK/`, starts chorusd
// with its output in `dir/nK/chorusd.log` and its PID in `dir/nK/chorusd.pid`,
// and only ever signals the processes whose PIDs it recorded.
//
// Addresses: node K (1-based) listens for clients on base_port+K-1, for peers
// on base_port+100+K-1 and for admin HTTP on base_port+1000+K-1, on
// 127.0.0.1 — or, with ip_per_node, on 127.0.0.(10+K), so firewall rules
// between node addresses can partition the cluster.
//
// Not thread-safe. Not a pure module: it forks, signals and talks HTTP.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "server/config.h"

namespace chorus::tools {

struct LocalClusterOptions {
  int nodes = 3;
  std::string dir = "./data/local";
  uint16_t base_port = 7001;
  bool ip_per_node = false;
  std::string chorusd;  // path to the chorusd binary; empty: next to this executable
  // Applied to every node's config after the defaults (timeouts, snapshots...).
  std::function<void(server::NodeConfig&)> tune;
};

// A node's /status document, the fields the tools use.
struct NodeStatus {
  uint64_t node_id = 0;
  std::string role;
  uint64_t term = 0;
  uint64_t leader = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t last_index = 0;
  bool healthy = false;
  std::string error;
  std::string raw;  // the whole JSON document
};

class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterOptions opts);
  ~LocalCluster() = default;  // leaves processes running: call stop_all() to stop them

  const LocalClusterOptions& options() const { return opts_; }
  int size() const { return opts_.nodes; }
  const server::NodeConfig& config(int k) const { return configs_.at(static_cast<size_t>(k - 1)); }
  std::string node_dir(int k) const;

  // Writes dir/nK/node.toml for every node (creating directories).
  Status write_configs();
  // Starts node k (1-based). Error if it is already running.
  Status start(int k);
  Status start_all();
  // Sends a signal to node k's recorded process (SIGKILL, SIGSTOP, SIGCONT...).
  Status signal(int k, int sig);
  // SIGTERM, wait up to `grace`, then SIGKILL. OK if it was not running.
  Status stop(int k, std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  void stop_all();
  // Whether node k's recorded process is alive (and is a chorusd).
  bool running(int k) const;
  std::optional<pid_t> pid(int k) const;

  Result<NodeStatus> status(
      int k, std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) const;
  // The node that a majority... simply: a node reporting itself leader; nullopt on timeout.
  std::optional<int> wait_for_leader(std::chrono::milliseconds timeout) const;

 private:
  server::NodeConfig make_config(int k) const;
  std::string pid_file(int k) const;

  LocalClusterOptions opts_;
  std::vector<server::NodeConfig> configs_;
};

// The directory holding the running executable (/proc/self/exe).
std::string executable_dir();

}  // namespace chorus::tools
