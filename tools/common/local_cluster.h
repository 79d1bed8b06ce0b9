// LocalCluster: a Chorus cluster of chorusd processes on this machine, for
// `chorus up/down/status`, the black-box tests, the failover benchmark and
// the nemesis. It writes one config per node under `dir/nK/`, starts chorusd
// with its output in `dir/nK/chorusd.log` and its PID in `dir/nK/chorusd.pid`,
// and only ever signals the processes whose PIDs it recorded.
//
// Children: the processes this object started are its children until it
// reaps them (reap_exited(), stop(), or start() of the same node). For those
// it uses the PID it got from fork(), not the pid file, which another process
// (`chorus down`) may remove or rewrite; an unreaped child's PID cannot be
// reused, so signalling it is always safe. For other nodes (`chorus down`
// and `chorus status` see a cluster some other process started) it reads the
// pid file and checks that the process is still a chorusd.
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
#include <map>
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
  // The node follows a keyspace table, so it serves data commands (a node
  // before keyspaces has no such field: it always routes).
  bool routing_ready = true;
  std::string error;
  std::string raw;  // the whole JSON document
};

// Whether the nodes agree on who leads. The leader is the node that reports
// itself leader in the highest term (an old leader cut off from the others
// may still report itself leader in a lower one); a node has joined when it
// reports that leader in that term.
struct LeaderAgreement {
  uint64_t leader = 0;  // node id; 0 = no node reports itself leader
  uint64_t term = 0;    // the leader's term; 0 when leader is 0
  // 1-based node numbers, ascending: every node when leader is 0.
  std::vector<int> not_joined;

  bool agreed() const { return leader != 0 && not_joined.empty(); }
};

// Pure. statuses[k-1] is node k's /status, nullopt if it did not answer.
// Node k is expected to have node_id k (as LocalCluster configures it).
LeaderAgreement leader_agreement(const std::vector<std::optional<NodeStatus>>& statuses);

// A child that exited, as waitpid() reported it.
struct ChildExit {
  int node = 0;  // 1-based
  pid_t pid = 0;
  int wait_status = 0;  // decode with WIFEXITED / WEXITSTATUS / WIFSIGNALED / WTERMSIG

  bool clean() const;  // exited with status 0
  // "exited with status 0", "exited with status 2", "killed by signal 9 (Killed)".
  std::string describe() const;
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
  // SIGTERM, wait up to `grace`, then SIGKILL; reaps it if it is a child.
  // OK if it was not running.
  Status stop(int k, std::chrono::milliseconds grace = std::chrono::milliseconds(5000));
  void stop_all();
  // stop() for every node that is still a child of this object, and for no
  // other process: what the starter of a cluster does when it is told to stop.
  void stop_children();
  // Whether node k's process is alive (a child that has not exited, or the
  // pid file's process, still a chorusd). Does not reap.
  bool running(int k) const;
  // Node k's child PID if it has one, else the pid file's.
  std::optional<pid_t> pid(int k) const;

  // Reaps, without blocking, every child that has exited (on its own, by a
  // signal, or stopped by another process such as `chorus down`).
  std::vector<ChildExit> reap_exited();
  // Children started and not yet reaped.
  size_t child_count() const { return children_.size(); }

  Result<NodeStatus> status(
      int k, std::chrono::milliseconds timeout = std::chrono::milliseconds(500)) const;
  // A node reporting itself leader of the default group and following the
  // keyspace table (the first found); nullopt on timeout.
  std::optional<int> wait_for_leader(std::chrono::milliseconds timeout) const;
  // Polls every node's /status until leader_agreement() is agreed, or until
  // `timeout`; returns the last agreement seen.
  LeaderAgreement wait_for_agreement(std::chrono::milliseconds timeout) const;

 private:
  server::NodeConfig make_config(int k) const;
  std::string pid_file(int k) const;
  // Blocks until child k is reaped (it must have exited or be about to);
  // removes its pid file if the file still names it.
  ChildExit reap(int k);

  LocalClusterOptions opts_;
  std::vector<server::NodeConfig> configs_;
  // Node -> PID of the process this object started and has not reaped.
  std::map<int, pid_t> children_;
};

// The directory holding the running executable (/proc/self/exe).
std::string executable_dir();

}  // namespace chorus::tools
