// Cluster<E>: the deterministic simulator for any replication engine E.
//
// One thread, virtual time, one Prng: a run is a pure function of its seed.
// Each node runs the production host, host::ReplicaHost<E, SimEffects> —
// the very driver chorusd runs — on a simulated event loop (sim_effects.h),
// a simulated disk (storage::SimEnv: un-synced writes lost or torn on a
// crash) and a key-value state machine. The simulator adds what a data
// centre would: a faulty network (network.h), crashes and restarts, loops
// that stall, clocks that run at different rates, and clients doing get /
// put / cas / append on a few keys, recording every operation into a
// check::History.
//
// A run has two phases:
//  - safety: faults on for safety_phase_us;
//  - liveness: everything healed and restarted; within liveness_bound_us a
//    leader must exist and every client must complete a new operation.
// Then clients stop, every key is read once more, and the checks run. Some
// run all along, after every event on a node: one value per log index
// (check::AppliedLog), lease reads never behind any commit, read indexes
// never behind the commit index at the read's start, promised durability,
// and the engine's own invariants (EngineTraits<E>::Invariants, e.g.
// core/raft/invariants.h). At the end: linearizability of the history, log
// matching, acknowledged writes present, convergence (check/).
//
// Engine-specific knowledge lives in EngineTraits<E> (sim/raft_sim.h): how a
// seed configures the engine, how to build one, its invariants, how to read
// its log, the actors it needs beside its replicas (Controller: the
// primary-backup engines' configuration manager, sim/primary_sim.h), and
// whether it may lose acknowledged writes (lossy(): then the loss-accounting
// checks of cluster_loss.h replace the zero-loss ones).
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/prng.h"
#include "check/history.h"
#include "check/linearizability.h"
#include "check/replica_checks.h"
#include "core/common/engine.h"
#include "host/replica_host.h"
#include "sim/assertion.h"
#include "sim/event_queue.h"
#include "sim/faults.h"
#include "sim/network.h"
#include "sim/shared_state_machine.h"
#include "sim/sim_effects.h"
#include "storage/env/sim_env.h"
#include "storage/kv/state_machine.h"
#include "storage/replica/replica_storage.h"

namespace chorus::sim {

// Specialized per engine (see raft_sim.h).
template <class E>
struct EngineTraits;
// True for the engines with an EngineTraits specialization.
template <class E>
inline constexpr bool kSimulated = false;

using TraceSink = std::function<void(const std::string&)>;

// The controller of an engine that needs no actor beside its replicas
// (EngineTraits<E>::Controller; see sim/primary_sim.h for one that does).
// C is the Cluster.
template <class C>
struct NoController {
  static constexpr int kEndpoints = 0;  // network endpoints after the nodes'
  explicit NoController(C& /*cluster*/) {}
  void start() {}
  void node_started(size_t /*i*/) {}
  void heal() {}
  bool healed() const { return true; }
  std::string describe() const { return {}; }
};

struct RunReport {
  uint64_t seed = 0;
  std::string settings;                 // what the seed chose, printed first
  std::vector<std::string> violations;  // empty when the run is clean
  uint64_t ops_ok = 0;
  uint64_t ops_failed = 0;
  uint64_t ops_unknown = 0;
  uint64_t messages_sent = 0;
  uint64_t messages_dropped = 0;
  uint64_t leader_changes = 0;
  uint64_t crashes = 0;
  uint64_t crashes_mid_fsync = 0;  // crashes that cut a disk job between its writes and fsyncs
  uint64_t partitions = 0;
  uint64_t stalls = 0;
  uint64_t snapshots = 0;
  uint64_t events = 0;
  uint64_t entries_committed = 0;
  uint64_t lease_reads = 0;          // reads served under a lease without a round
  uint64_t checks_inconclusive = 0;  // the linearizability search ran out of budget
  uint64_t fail_stops = 0;           // nodes stopped by a failed write or fsync
  uint64_t recovery_failures = 0;    // restarts refused by recovery (corruption found)
  uint64_t corruptions = 0;          // snapshot files corrupted on purpose
  // Lossy engines: entries some node reported dropped that a later primary
  // still held (they are in the final state).
  uint64_t drops_resurrected = 0;
  Time sim_time_us = 0;
  check::History history;
};

// A content hash of an entry, for the checks that compare entries across nodes.
inline uint64_t entry_hash(const core::Entry& e) {
  return std::hash<std::string>{}(e.data) ^ (static_cast<uint64_t>(e.type) << 60);
}

template <core::Engine E>
class Cluster {
  using Traits = EngineTraits<E>;
  using Msg = typename E::Message;
  using Fx = SimEffects<Msg>;
  using Host = host::ReplicaHost<E, Fx>;
  using Knobs = typename Traits::Knobs;
  using Controller = typename Traits::template Controller<Cluster>;
  friend Controller;

 public:
  using EngineType = E;
  Cluster(RunOptions opts, TraceSink trace);

  // Runs the whole randomized scenario. A failed assertion (with the throwing
  // handler from assertion.h installed) ends the run as a violation.
  RunReport run() {
    try {
      run_phases();
    } catch (const AssertionFailure& e) {
      violation(std::string("assertion failed: ") + e.what());
    }
    return take_report();
  }

  // ---- Scripting API for scenario tests ------------------------------------
  // Build with RunOptions{.clients = -1, .faults_from_seed = false} for a
  // quiet cluster, then drive it step by step. Node arguments are indexes 0..n-1.

  // Starts every node (and the random clients, if opts.clients > 0).
  void start();
  void run_for(Time d) { q_.run_until(q_.now() + d); }
  // Runs until pred() holds or `limit` passes; returns whether it held.
  bool run_until(const std::function<bool()>& pred, Time limit) {
    const Time end = q_.now() + limit;
    while (!pred() && q_.now() < end && !q_.stopped())
      q_.run_until(std::min(end, q_.now() + kMillisecond));
    return pred();
  }
  void crash(size_t i) { crash_node(i); }
  void restart(size_t i) {
    if (!nodes_[i]->loop->up()) start_node(i);
  }
  // Stops node i's event loop for d (its storage executor runs on).
  void stall(size_t i, Time d) {
    nodes_[i]->loop->stall(d);
    ++report_.stalls;
    trace(fmt::format("n{} STALLS for {}ms", i + 1, d / kMillisecond));
  }
  Network& network() { return *net_; }
  void isolate(size_t i) {
    net_->split({static_cast<int>(i)});
    trace("partition: " + net_->describe());
  }
  void heal() {
    net_->heal();
    trace("partition: healed");
  }
  std::optional<size_t> leader() const { return current_leader(); }
  bool up(size_t i) const { return nodes_[i]->loop->up() && nodes_[i]->host != nullptr; }
  const E& engine(size_t i) const { return nodes_[i]->host->engine(); }
  Host& host(size_t i) { return *nodes_[i]->host; }
  const kv::StateMachine& state(size_t i) const { return nodes_[i]->host->state(); }
  Time now() const { return q_.now(); }
  size_t size() const { return nodes_.size(); }
  const RunOptions& options() const { return opts_; }
  // Observes every message as it is delivered (tests count message kinds).
  void on_deliver(std::function<void(const Msg&)> fn) { on_deliver_ = std::move(fn); }

  // One client operation sent to node i; runs the simulation until it
  // completes or times out and returns the recorded operation. Reads use
  // `consistency` (linearizable by default).
  check::Operation execute(size_t i, check::OpKind kind, std::string key, std::string value = {},
                           std::string expected = {}, Time timeout = 2 * kSecond,
                           host::Consistency consistency = host::Consistency::kLinearizable);
  // Fire-and-forget operation (for scenarios that crash leaders mid-write);
  // returns its index in the history (see op()).
  size_t submit_async(size_t i, check::OpKind kind, std::string key, std::string value,
                      host::Consistency consistency = host::Consistency::kLinearizable);
  const check::Operation& op(size_t index) const { return report_.history[index]; }
  // Media corruption in node i's newest snapshot file (the node should be down).
  void corrupt_snapshot(size_t i) { corrupt_newest_snapshot(*nodes_[i]); }

  // Heals, restarts every node, waits for convergence and runs every check.
  RunReport finish();

 private:
  struct Node {
    NodeId id;
    std::unique_ptr<NodeLoop> loop;
    std::unique_ptr<storage::SimEnv> env;  // the node's disk: survives crashes
    std::unique_ptr<Fx> fx;
    host::HostMetrics metrics;
    std::unique_ptr<Host> host;  // null while the node is down
    // The state machine of a "durable state machine" run (survives crashes).
    std::shared_ptr<kv::MemoryStateMachine> durable_sm;
    int local_snapshots = 0;  // taken locally since the last one installed from a leader
  };
  struct Client {
    uint64_t id = 0;
    uint64_t seq = 0;
    size_t target = 0;         // node index it talks to
    std::optional<size_t> op;  // history index of the operation in flight
    bool ok_after_heal = false;
    bool scripted = false;  // driven by a scenario test, not the random workload
  };

  RunReport take_report() {
    report_.events = q_.events_run();
    report_.sim_time_us = q_.now();
    return std::move(report_);
  }
  void run_phases();
  void heal_everything();

  void trace(const std::string& what) {
    if (trace_ && opts_.trace)
      trace_(fmt::format("[{:>10.3f}ms] {}", static_cast<double>(q_.now()) / 1000.0, what));
  }
  std::string describe_settings() const;
  // Records a broken invariant and ends the run: once the cluster is known
  // broken, what follows is noise, and a broken cluster can make the
  // simulation itself arbitrarily expensive (message storms).
  void violation(std::string what) {
    trace("VIOLATION: " + what);
    report_.violations.push_back(std::move(what));
    q_.stop();
  }

  // ---- nodes (cluster_nodes.h) ----
  void start_node(size_t i);
  host::HostOptions host_options() const;
  host::HostMetrics make_metrics(size_t i);
  void corrupt_newest_snapshot(Node& n);
  void fail_stop(size_t i, const Status& why);
  void crash_node(size_t i);
  void after_event(size_t i);
  void deliver(Msg m);
  void on_role_change(size_t i, const core::SoftState& s, std::string_view role_name,
                      std::string_view why);

  // ---- checks (cluster_checks.h) ----
  bool lossy() const { return Traits::lossy(knobs_); }
  void before_apply(size_t i, const core::Entry& e);
  LogIndex highest_commit() const;
  std::optional<size_t> current_leader() const;
  void check_liveness();
  void final_reads();
  void wait_for_convergence();
  void check_logs();
  void check_history();

  // ---- loss accounting (cluster_loss.h) ----
  void note_applied(size_t i, const core::Entry& e);
  void note_restored(size_t i, LogIndex index, Term term);
  void note_dropped(size_t i, const core::DroppedEntry& d);
  void check_loss();
  check::History without_lost_timelines(
      const std::set<size_t>& removed,
      const std::set<std::pair<uint64_t, uint64_t>>& final_entries) const;

  // ---- clients (cluster_clients.h) ----
  std::string key_name(uint64_t k) const { return "k" + std::to_string(k); }
  void client_next(size_t c);
  size_t record(size_t c, check::OpKind kind, std::string key, std::string value,
                std::string expected);
  Client make_client() const {  // Invariant: clients_[i].id == i + 1.
    Client c;
    c.id = clients_.size() + 1;
    return c;
  }
  size_t scripted_client();
  void submit(size_t c, size_t op, host::Consistency consistency);
  void submit_read(size_t node, size_t op, host::Consistency consistency);
  void submit_write(size_t node, size_t c, size_t op);
  void serve_read(size_t node, size_t op, const char* how);
  host::Consistency pick_consistency();
  void complete(size_t op, check::OpStatus status);
  void client_timeout(size_t c, size_t op);
  size_t next_target(size_t failed);

  // ---- faults (cluster_faults.h) ----
  Time jittered(Time mean) {
    return static_cast<Time>(
        prng_.uniform(static_cast<uint64_t>(mean / 2), static_cast<uint64_t>(mean * 3 / 2)));
  }
  Time uniform_time(Time lo, Time hi) {
    return static_cast<Time>(prng_.uniform(static_cast<uint64_t>(lo), static_cast<uint64_t>(hi)));
  }
  void schedule_partition();
  void change_partition();
  void schedule_crash();
  void schedule_stall();
  void schedule_leader_kill(size_t i);
  void schedule_leader_isolation(size_t i);

  RunOptions opts_;
  Prng prng_;
  TraceSink trace_;
  EventQueue q_;
  Knobs knobs_;
  std::unique_ptr<Network> net_;
  std::vector<NodeId> voters_;
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<Client> clients_;
  std::map<std::string, std::string> last_written_;
  check::AppliedLog applied_;
  std::map<uint64_t, uint64_t> acked_;  // index -> hash of writes acknowledged to clients
  std::unique_ptr<typename Traits::Invariants> invariants_;
  bool faults_on_ = true;
  bool clients_stopped_ = false;
  Time heal_at_ = 0;
  std::function<void(const Msg&)> on_deliver_;
  std::unique_ptr<Controller> controller_;
  // Loss accounting (cluster_loss.h). Every entry applied anywhere, by
  // (index, term) — which names one entry and its whole prefix (Log
  // Matching) — with the term of the entry before it and the client
  // command it carries: a node's applied state is the chain from its last
  // applied entry down.
  struct Link {
    uint64_t prev_term = 0;
    uint64_t client = 0;  // 0: no client command (no-op, clock tick)
    uint64_t seq = 0;
  };
  std::map<std::pair<uint64_t, uint64_t>, Link> links_;
  std::vector<std::pair<uint64_t, uint64_t>> last_applied_;  // per node: (index, term)
  // Every drop a node reported, resolved to the command it carried.
  struct Drop {
    size_t node = 0;
    uint64_t index = 0;
    uint64_t term = 0;
    core::DropKind kind = core::DropKind::kInDoubt;
    bool range = false;
    uint64_t client = 0;
    uint64_t seq = 0;
  };
  std::vector<Drop> drops_;
  std::map<std::pair<uint64_t, uint64_t>, size_t> op_by_command_;  // (client, seq) -> history index
  // Reads: the last entry applied where each was served (history index ->).
  std::map<size_t, std::pair<uint64_t, uint64_t>> read_at_;
  RunReport report_;
};

}  // namespace chorus::sim

#include "sim/cluster_checks.h"   // IWYU pragma: export
#include "sim/cluster_clients.h"  // IWYU pragma: export
#include "sim/cluster_faults.h"   // IWYU pragma: export
#include "sim/cluster_loss.h"     // IWYU pragma: export
#include "sim/cluster_nodes.h"    // IWYU pragma: export
