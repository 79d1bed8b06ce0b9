// Cluster<E>: the deterministic simulator's host for any replication engine.
//
// One thread, virtual time, one Prng: a run is a pure function of its seed.
// The cluster hosts N nodes, each an engine E plus what a real server would
// give it — a disk (durable only once an fsync completes), a key-value state
// machine, a tick timer running at the node's own clock speed — and drives
// every engine through the Ready contract exactly as the server does:
// send `messages`, persist (taking a virtual fsync latency), send
// `messages_after_persist`, apply, answer, advance.
//
// Around the nodes: a faulty network (network.h), a fault schedule
// (partitions that change over time, crashes that lose un-synced state,
// restarts), and concurrent clients doing get / put / cas / append on a few
// keys, recording every operation into a check::History.
//
// A run has two phases:
//  - safety: faults on for safety_phase_us;
//  - liveness: everything healed and restarted; within liveness_bound_us a
//    leader must exist and every client must complete a new operation.
// Then clients stop, every key is read once more, and the checks run:
// linearizability of the history, at most one leader per term, every replica
// applied the same entry at every index (a committed entry never changes),
// log matching between every pair of logs, and convergence of the replicas'
// state.
//
// Engine-specific knowledge (how to build an engine, how to read its log for
// the log-matching check) lives in EngineTraits<E>; everything else is shared
// by all engines.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/prng.h"
#include "check/history.h"
#include "check/linearizability.h"
#include "core/common/engine.h"
#include "sim/assertion.h"
#include "sim/event_queue.h"
#include "sim/faults.h"
#include "sim/network.h"
#include "storage/env/sim_env.h"
#include "storage/kv/state_machine.h"
#include "storage/replica/replica_storage.h"

namespace chorus::sim {

// Specialized per engine (see raft_sim.h):
//   static std::unique_ptr<E> make(NodeId id, std::vector<NodeId> voters, Prng prng,
//                                  core::PersistentState state, const RunOptions& opts);
//   static std::string describe(const typename E::Message& m);
//   static NodeId from(const typename E::Message& m);
//   static NodeId to(const typename E::Message& m);
//   static void compact(E& e, core::SnapshotRef snap);
//   static std::vector<core::Entry> log_entries(const E& e);  // for log matching
//   static LogIndex commit_index(const E& e);
//   static std::optional<Term> term_at(const E& e, LogIndex i);  // the term of a log entry
//   static std::optional<LogIndex> promised_durable(const typename E::Message& m);
//       // the log index a message tells its receiver is durable at the sender
template <class E>
struct EngineTraits;

using TraceSink = std::function<void(const std::string&)>;

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
  uint64_t partitions = 0;
  uint64_t snapshots = 0;
  uint64_t events = 0;
  uint64_t entries_committed = 0;
  uint64_t checks_inconclusive = 0;  // the linearizability search ran out of budget
  uint64_t fail_stops = 0;           // nodes stopped by a failed write or fsync
  uint64_t recovery_failures = 0;    // restarts refused by recovery (corruption found)
  uint64_t corruptions = 0;          // snapshot files corrupted on purpose
  Time sim_time_us = 0;
  check::History history;
};

template <core::Engine E>
class Cluster {
  using Traits = EngineTraits<E>;
  using Msg = typename E::Message;
  using ReadyT = core::Ready<Msg>;

 public:
  Cluster(RunOptions opts, TraceSink trace)
      : opts_(std::move(opts)), prng_(opts_.seed), trace_(std::move(trace)) {
    Prng setup(opts_.seed ^ 0x5eed5eed5eedULL);
    if (opts_.faults_from_seed) opts_.faults = FaultConfig::random(setup);
    const bool churn = opts_.faults.leader_churn;
    if (opts_.nodes == 0) opts_.nodes = churn || setup.chance(0.4) ? 5 : 3;
    if (opts_.clients == 0) opts_.clients = static_cast<int>(setup.uniform(2, 8));
    if (opts_.keys == 0) opts_.keys = static_cast<int>(setup.uniform(1, 5));
    if (opts_.snapshot_every_entries == 0) opts_.snapshot_every_entries = setup.uniform(10, 400);
    if (opts_.pre_vote < 0) opts_.pre_vote = setup.chance(0.7) ? 1 : 0;
    if (opts_.check_quorum < 0) opts_.check_quorum = setup.chance(0.6) ? 1 : 0;
    if (opts_.max_entries_per_append == 0) {
      opts_.max_entries_per_append = churn ? 1 : static_cast<int>(1u << setup.uniform(0, 6));
    }
    if (opts_.max_inflight_appends == 0)
      opts_.max_inflight_appends = static_cast<int>(setup.uniform(1, 8));
    if (opts_.lease_reads < 0) opts_.lease_reads = opts_.check_quorum && setup.chance(0.3) ? 1 : 0;
    net_ = std::make_unique<Network>(opts_.nodes, opts_.faults);
    for (int i = 0; i < opts_.nodes; ++i) voters_.push_back(NodeId(static_cast<uint64_t>(i + 1)));
    if (opts_.disk_faults_from_seed) opts_.disk = storage::SimEnvOptions::random(setup);
    for (int i = 0; i < opts_.nodes; ++i) {
      auto& n = nodes_.emplace_back();
      n.id = voters_[static_cast<size_t>(i)];
      n.env = std::make_unique<storage::SimEnv>(setup.fork(), opts_.disk);
      const double skew = opts_.faults.max_clock_skew;
      const double factor = skew <= 1.0 ? 1.0 : (1.0 / skew) + setup.real() * (skew - 1.0 / skew);
      n.tick_us = std::max<Time>(1, static_cast<Time>(static_cast<double>(opts_.tick_us) * factor));
    }
    report_.seed = opts_.seed;
    report_.settings = describe_settings();
  }

  // Runs the whole randomized scenario. A failed assertion inside an engine
  // (with the throwing handler from assertion.h installed) ends the run as a
  // violation.
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
  void start() {
    for (size_t i = 0; i < nodes_.size(); ++i) start_node(i);
    for (int k = 0; k < opts_.clients; ++k) {
      const size_t c = clients_.size();
      clients_.push_back(make_client());
      q_.after(static_cast<Time>(prng_.uniform(0, 10000)), [this, c] { client_next(c); });
    }
  }
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
    if (!nodes_[i].up) start_node(i);
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
  bool up(size_t i) const { return nodes_[i].up; }
  const E& engine(size_t i) const { return *nodes_[i].engine; }
  const kv::MemoryStateMachine& state(size_t i) const { return *nodes_[i].sm; }
  Time now() const { return q_.now(); }
  size_t size() const { return nodes_.size(); }
  // Observes every message as it is delivered (tests count message kinds).
  void on_deliver(std::function<void(const Msg&)> fn) { on_deliver_ = std::move(fn); }

  // One client operation sent to node i; runs the simulation until it
  // completes or times out and returns the recorded operation.
  check::Operation execute(size_t i, check::OpKind kind, std::string key, std::string value = {},
                           std::string expected = {}, Time timeout = 2 * kSecond) {
    const size_t c = scripted_client();
    clients_[c].target = i;
    const size_t op = record(c, kind, std::move(key), std::move(value), std::move(expected));
    submit(c, op);
    run_until([&] { return report_.history[op].complete_us != 0; }, timeout);
    if (report_.history[op].complete_us == 0) client_timeout(c, op);
    return report_.history[op];
  }
  // Fire-and-forget proposal (for scenarios that crash leaders mid-write).
  void submit_async(size_t i, check::OpKind kind, std::string key, std::string value) {
    const size_t c = scripted_client();
    clients_[c].target = i;
    const size_t op = record(c, kind, std::move(key), std::move(value), {});
    submit(c, op);
    q_.after(opts_.client_timeout_us, [this, c, op] { client_timeout(c, op); });
  }

  // Heals, restarts every node, waits for convergence and runs every check.
  RunReport finish() {
    try {
      faults_on_ = false;
      net_->heal();
      net_->make_reliable();
      for (auto& n : nodes_) n.env->set_options(storage::SimEnvOptions{});
      for (size_t i = 0; i < nodes_.size(); ++i) restart(i);
      clients_stopped_ = true;
      run_until([&] { return current_leader().has_value(); }, opts_.liveness_bound_us);
      run_for(opts_.client_timeout_us);
      if (!q_.stopped()) final_reads();
      if (!q_.stopped()) wait_for_convergence();
      if (!q_.stopped()) check_logs();
      check_history();
    } catch (const AssertionFailure& e) {
      violation(std::string("assertion failed: ") + e.what());
    }
    return take_report();
  }

 private:
  RunReport take_report() {
    report_.events = q_.events_run();
    report_.sim_time_us = q_.now();
    return std::move(report_);
  }

  void run_phases() {
    start();
    schedule_partition();
    schedule_crash();

    // Safety phase.
    q_.run_until(opts_.safety_phase_us);
    if (q_.stopped()) return;

    // Liveness phase: heal everything.
    faults_on_ = false;
    heal_at_ = q_.now();
    net_->heal();
    net_->make_reliable();
    for (auto& n : nodes_) n.env->set_options(storage::SimEnvOptions{});
    trace("heal: network and disks reliable, all nodes restarting");
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i].up) start_node(i);
    }
    q_.run_until(heal_at_ + opts_.liveness_bound_us);
    if (q_.stopped()) return;
    check_liveness();
    if (q_.stopped()) return;

    // Quiesce, final reads, convergence.
    clients_stopped_ = true;
    q_.run_until(q_.now() + opts_.client_timeout_us + 100 * kMillisecond);
    final_reads();
    if (q_.stopped()) return;
    wait_for_convergence();
    if (q_.stopped()) return;
    check_logs();
    check_history();
  }

  struct PendingWrite {
    size_t op = 0;
    uint64_t seq = 0;
  };
  struct PendingRead {
    size_t op = 0;
    std::optional<LogIndex> index;
    LogIndex min_index;  // the highest commit index anywhere when the read began
  };
  struct Node {
    NodeId id;
    bool up = false;
    uint64_t incarnation = 0;
    Time tick_us = 0;
    std::unique_ptr<E> engine;
    std::unique_ptr<storage::SimEnv> env;            // the node's disk: survives crashes
    std::unique_ptr<storage::ReplicaStorage> store;  // open while the node is up
    LogIndex snapshot_index;                         // of the latest local snapshot
    int local_snapshots = 0;  // taken locally since the last one installed from a leader
    std::unique_ptr<kv::MemoryStateMachine> sm;
    Term applied_term;
    bool ready_outstanding = false;
    core::SoftState watched;  // soft state and commit at the last Ready (for the commit-rule check)
    LogIndex watched_commit;
    std::map<uint64_t, PendingWrite> writes;  // client id -> its write in flight here
    std::map<uint64_t, PendingRead> reads;    // read ctx (op id) -> read
  };
  struct Client {
    uint64_t id = 0;
    uint64_t seq = 0;
    size_t target = 0;         // node index it talks to
    std::optional<size_t> op;  // history index of the operation in flight
    bool ok_after_heal = false;
    bool scripted = false;  // driven by a scenario test, not the random workload
  };

  // ---- trace and settings -------------------------------------------------

  void trace(const std::string& what) {
    if (trace_ && opts_.trace)
      trace_(fmt::format("[{:>10.3f}ms] {}", static_cast<double>(q_.now()) / 1000.0, what));
  }

  std::string describe_settings() const {
    std::string s = fmt::format(
        "seed: {}\nnodes: {}  clients: {}  keys: {}  snapshot every {} entries\n"
        "engine: pre-vote {}  check-quorum {}  lease reads {}  append <= {} entries, window {}\n",
        opts_.seed, opts_.nodes, opts_.clients, opts_.keys, opts_.snapshot_every_entries,
        opts_.pre_vote ? "on" : "off", opts_.check_quorum ? "on" : "off",
        opts_.lease_reads ? "on" : "off", opts_.max_entries_per_append, opts_.max_inflight_appends);
    s += opts_.faults.describe();
    s += "\n" + opts_.disk.describe();
    s += "\ntick periods:";
    for (const auto& n : nodes_) s += fmt::format(" n{}={}us", n.id.value(), n.tick_us);
    return s;
  }

  // Records a broken invariant and ends the run: once the cluster is known
  // broken, what follows is noise, and a broken cluster can make the
  // simulation itself arbitrarily expensive (message storms).
  void violation(std::string what) {
    trace("VIOLATION: " + what);
    report_.violations.push_back(std::move(what));
    q_.stop();
  }

  // ---- nodes ----------------------------------------------------------------

  void start_node(size_t i) {
    Node& n = nodes_[i];
    auto opened = storage::ReplicaStorage::open(n.env.get(), "/data");
    if (!opened.is_ok()) {
      // A recovery error (e.g. a transient bad read) keeps the node down; the
      // operator (here: a timer) tries again. Never start from a damaged state.
      ++report_.recovery_failures;
      trace(fmt::format("n{} cannot recover: {}", n.id.value(), opened.status().to_string()));
      const uint64_t inc = n.incarnation;
      q_.after(100 * kMillisecond, [this, i, inc] {
        if (!nodes_[i].up && nodes_[i].incarnation == inc) start_node(i);
      });
      return;
    }
    n.store = std::move(opened).value();
    storage::Recovered rec = n.store->take_recovered();
    for (const auto& note : rec.notes) trace(fmt::format("n{} recovery: {}", n.id.value(), note));
    n.up = true;
    ++n.incarnation;
    n.sm = std::make_unique<kv::MemoryStateMachine>();
    LogIndex applied;
    n.applied_term = Term(0);
    n.snapshot_index = LogIndex(0);
    if (rec.snapshot) {
      Status st = n.sm->restore(*rec.snapshot->data);
      if (!st.is_ok()) {
        violation(fmt::format(
            "n{}: the snapshot store vouched for snapshot {}/{} but its content is corrupt: {}",
            n.id.value(), rec.snapshot->meta.index.value(), rec.snapshot->meta.term.value(),
            st.to_string()));
      }
      applied = rec.snapshot->meta.index;
      n.applied_term = rec.snapshot->meta.term;
      n.snapshot_index = applied;
    }
    trace(fmt::format("n{} starts (term {}, {} log entries after snapshot {})", n.id.value(),
                      rec.hard_state.term.value(), rec.entries.size(), n.snapshot_index.value()));
    core::PersistentState ps{rec.hard_state, std::move(rec.snapshot), std::move(rec.entries),
                             applied};
    n.engine = Traits::make(n.id, voters_, prng_.fork(), std::move(ps), opts_);
    n.ready_outstanding = false;
    n.watched = {};
    n.watched_commit = LogIndex(0);
    n.writes.clear();
    n.reads.clear();
    schedule_tick(i, n.incarnation);
  }

  // Media corruption in the newest snapshot file (in its data, which the
  // file's checksums cover). Recovery must reject it and fall back.
  void corrupt_newest_snapshot(Node& n) {
    const std::string dir = "/data/snapshots";
    auto names = n.env->list_dir(dir);
    if (!names.is_ok()) return;
    std::string newest;
    core::SnapshotMeta best;
    for (const auto& name : *names) {
      core::SnapshotMeta m;
      if (storage::parse_snapshot_file_name(name, &m) && m.index > best.index) {
        best = m;
        newest = name;
      }
    }
    if (newest.empty()) return;
    const std::string path = dir + "/" + newest;
    auto size = n.env->file_size(path);
    if (!size.is_ok() || *size < 200) return;
    const uint64_t at = prng_.uniform(*size / 2, *size - 60);
    if (n.env->corrupt(path, at, 1).is_ok()) {
      ++report_.corruptions;
      n.local_snapshots = 0;  // the corrupt file stays until two newer ones push it out
      trace(fmt::format("n{}: media corruption in {} at offset {}", n.id.value(), path, at));
    }
  }

  // A failed write or fsync stops the node (fail-stop); it restarts from disk later.
  void fail_stop(size_t i, const Status& why) {
    trace(fmt::format("n{} fail-stops: {}", nodes_[i].id.value(), why.to_string()));
    ++report_.fail_stops;
    crash_node(i);
    q_.after(static_cast<Time>(prng_.uniform(50, 500)) * kMillisecond, [this, i] {
      if (!nodes_[i].up) start_node(i);
    });
  }

  void crash_node(size_t i) {
    Node& n = nodes_[i];
    if (!n.up) return;
    n.up = false;
    ++n.incarnation;  // an fsync in progress never completes: its data is lost
    n.store.reset();
    n.env->crash();  // un-synced writes are lost, or torn
    if (n.local_snapshots >= 2 && prng_.chance(opts_.faults.corrupt_snapshot))
      corrupt_newest_snapshot(n);
    n.engine.reset();
    n.sm.reset();
    n.writes.clear();
    n.reads.clear();
    n.ready_outstanding = false;
    ++report_.crashes;
    trace(fmt::format("n{} CRASHES", n.id.value()));
  }

  void schedule_tick(size_t i, uint64_t inc) {
    q_.after(nodes_[i].tick_us, [this, i, inc] {
      Node& n = nodes_[i];
      if (!n.up || n.incarnation != inc) return;
      n.engine->tick();
      maybe_ready(i);
      schedule_tick(i, inc);
    });
  }

  void deliver(Msg m) {
    const size_t to = static_cast<size_t>(Traits::to(m).value() - 1);
    const size_t from = static_cast<size_t>(Traits::from(m).value() - 1);
    ++report_.messages_sent;
    if (auto promised = Traits::promised_durable(m)) {
      const Node& s = nodes_[from];
      if (s.up && s.store && s.store->durable_index() < *promised) {
        violation(fmt::format("n{} promised index {} is durable ({}) but its disk holds only {}",
                              s.id.value(), promised->value(), Traits::describe(m),
                              s.store->durable_index().value()));
      }
    }
    auto delays = net_->fate(static_cast<int>(from), static_cast<int>(to), prng_);
    if (delays.empty()) {
      ++report_.messages_dropped;
      if (opts_.trace) trace("drop " + Traits::describe(m));
      return;
    }
    if (opts_.trace) trace("send " + Traits::describe(m));
    for (size_t k = 0; k < delays.size(); ++k) {
      auto shared = std::make_shared<Msg>(k + 1 == delays.size() ? std::move(m) : m);
      q_.after(delays[k], [this, to, shared] {
        Node& n = nodes_[to];
        if (!n.up) return;
        if (on_deliver_) on_deliver_(*shared);
        n.engine->step(*shared);
        maybe_ready(to);
      });
    }
  }

  void maybe_ready(size_t i) {
    Node& n = nodes_[i];
    if (!n.up) return;
    if (n.ready_outstanding) {
      // As the server does while a persist takes long: what may leave before
      // it (heartbeats, the leader's appends, ...) leaves now.
      if (n.engine->has_messages()) {
        for (auto& m : n.engine->take_messages()) deliver(std::move(m));
      }
      return;
    }
    if (!n.engine->has_ready()) return;
    auto rd = std::make_shared<ReadyT>(n.engine->ready());
    n.ready_outstanding = true;
    check_leader_commit_rule(n);
    if (rd->soft_state) on_soft_state(n, *rd->soft_state);
    for (auto& m : rd->messages) deliver(std::move(m));
    rd->messages.clear();
    // As the server does: what is committed and already durable here is
    // applied now, in parallel with this Ready's fsync.
    size_t early = 0;
    while (early < rd->committed.size() && rd->committed[early].index <= n.store->durable_index())
      ++early;
    if (early > 0) {
      std::vector<core::Entry> now(rd->committed.begin(),
                                   rd->committed.begin() + static_cast<std::ptrdiff_t>(early));
      rd->committed.erase(rd->committed.begin(),
                          rd->committed.begin() + static_cast<std::ptrdiff_t>(early));
      apply(n, now);
      serve_reads(n);
    }
    if (rd->must_persist()) {
      const Time fsync =
          static_cast<Time>(prng_.uniform(static_cast<uint64_t>(opts_.faults.min_fsync_us),
                                          static_cast<uint64_t>(opts_.faults.max_fsync_us)));
      const uint64_t inc = n.incarnation;
      q_.after(fsync, [this, i, inc, rd] {
        if (nodes_[i].incarnation != inc) return;  // crashed before the fsync completed
        finish_ready(i, *rd);
      });
    } else {
      finish_ready(i, *rd);
    }
  }

  void finish_ready(size_t i, ReadyT& rd) {
    Node& n = nodes_[i];
    if (!persist(i, rd)) return;
    for (auto& m : rd.messages_after_persist) deliver(std::move(m));
    apply(n, rd.committed);
    for (const auto& rs : rd.reads) {
      auto it = n.reads.find(rs.ctx);
      if (it == n.reads.end()) continue;
      it->second.index = rs.index;
      // Thesis §6.4: a read index is at least the commit index at the moment
      // the read began; anything lower can miss a completed write.
      if (rs.index < it->second.min_index) {
        violation(fmt::format(
            "stale read index: n{} served read {} at index {}, but index {} was committed "
            "before the read began",
            n.id.value(), rs.ctx, rs.index.value(), it->second.min_index.value()));
      }
    }
    for (const auto& o : rd.outcomes) {
      auto it = n.reads.find(o.id);
      if (it == n.reads.end()) continue;
      const size_t op = it->second.op;
      n.reads.erase(it);
      complete(op, check::OpStatus::kFail);
    }
    serve_reads(n);
    n.engine->advance(rd);
    n.ready_outstanding = false;
    if (!maybe_snapshot(i)) return;
    maybe_ready(i);
  }

  // Step 2 of the Ready contract. Returns false when the node fail-stopped.
  bool persist(size_t i, const ReadyT& rd) {
    Node& n = nodes_[i];
    if (rd.must_persist()) {
      Status st = n.store->persist(rd.snapshot, rd.entries, rd.hard_state);
      if (!st.is_ok()) {
        fail_stop(i, st);
        return false;
      }
    }
    if (rd.snapshot) {
      Status st = n.sm->restore(*rd.snapshot->data);
      if (!st.is_ok())
        violation(fmt::format("n{}: bad snapshot from leader: {}", n.id.value(), st.to_string()));
      n.applied_term = rd.snapshot->meta.term;
      n.snapshot_index = rd.snapshot->meta.index;
      n.local_snapshots = 0;  // the log now starts at the leader's snapshot: no fallback
      trace(fmt::format("n{} installs snapshot {}/{}", n.id.value(),
                        rd.snapshot->meta.index.value(), rd.snapshot->meta.term.value()));
    }
    return true;
  }

  void apply(Node& n, const std::vector<core::Entry>& committed) {
    for (const auto& e : committed) {
      const uint64_t h = entry_hash(e);
      auto [it, inserted] = applied_.try_emplace(e.index.value(), e.term, h);
      if (inserted) {
        ++report_.entries_committed;
        max_applied_ = std::max(max_applied_, e.index.value());
      } else if (it->second.first != e.term || it->second.second != h) {
        violation(
            fmt::format("n{} applied index {} term {}, but index {} was applied with term {} "
                        "elsewhere: a committed entry changed",
                        n.id.value(), e.index.value(), e.term.value(), e.index.value(),
                        it->second.first.value()));
      }
      if (e.index <= n.sm->applied_index()) {
        violation(fmt::format("n{} asked to apply index {} again (applied {})", n.id.value(),
                              e.index.value(), n.sm->applied_index().value()));
        continue;
      }
      n.applied_term = e.term;
      if (e.type != core::EntryType::kNormal) {
        n.sm->apply_noop(e.index);
        continue;
      }
      kvpb::Result r = n.sm->apply(e.index, e.data);
      if (opts_.trace)
        trace(fmt::format("n{} applies {}/{}", n.id.value(), e.index.value(), e.term.value()));
      kvpb::Command cmd;
      if (!cmd.ParseFromString(e.data)) continue;
      auto w = n.writes.find(cmd.client_id());
      if (w == n.writes.end() || w->second.seq != cmd.seq()) continue;
      const size_t op = w->second.op;
      n.writes.erase(w);
      auto& o = report_.history[op];
      if (o.kind == check::OpKind::kCas) o.cas_ok = r.code() == kvpb::Result::OK;
      acked_.emplace(e.index.value(), h);
      complete(op, check::OpStatus::kOk);
    }
  }

  void serve_reads(Node& n) {
    for (auto it = n.reads.begin(); it != n.reads.end();) {
      if (!it->second.index || *it->second.index > n.sm->applied_index()) {
        ++it;
        continue;
      }
      auto& o = report_.history[it->second.op];
      auto v = n.sm->get(o.key);
      o.found = v.has_value();
      o.output = v.value_or("");
      const size_t op = it->second.op;
      it = n.reads.erase(it);
      complete(op, check::OpStatus::kOk);
    }
  }

  // Returns false when the node fail-stopped.
  bool maybe_snapshot(size_t i) {
    Node& n = nodes_[i];
    const LogIndex applied = n.sm->applied_index();
    if (applied - n.snapshot_index < opts_.snapshot_every_entries) return true;
    auto data = n.sm->snapshot();
    if (!data.is_ok()) {
      violation("snapshot failed: " + data.status().to_string());
      return true;
    }
    core::SnapshotRef ref{{applied, n.applied_term},
                          std::make_shared<const std::string>(std::move(data.value()))};
    Status st = n.store->save_snapshot(ref.meta, *ref.data);
    if (!st.is_ok()) {
      fail_stop(i, st);
      return false;
    }
    ++n.local_snapshots;
    n.snapshot_index = applied;
    Traits::compact(*n.engine, std::move(ref));
    ++report_.snapshots;
    trace(fmt::format("n{} snapshots through {}/{}", n.id.value(), applied.value(),
                      n.applied_term.value()));
    return true;
  }

  void on_soft_state(Node& n, const core::SoftState& s) {
    trace(fmt::format("n{} is {} in term {} (leader n{})", n.id.value(), core::role_name(s.role),
                      s.term.value(), s.leader.value()));
    if (s.role != core::Role::kLeader) return;
    ++report_.leader_changes;
    if (faults_on_ && prng_.chance(opts_.faults.kill_new_leader)) {
      schedule_leader_kill(n);
    } else if (faults_on_ && prng_.chance(opts_.faults.isolate_new_leader)) {
      schedule_leader_isolation(n);
    }
    auto [it, inserted] = leaders_.try_emplace(s.term.value(), n.id);
    if (!inserted && it->second != n.id) {
      violation(fmt::format("two leaders in term {}: n{} and n{} (Election Safety)", s.term.value(),
                            it->second.value(), n.id.value()));
    }
    check_leader_completeness(n);
  }

  // Raft §5.4.2: a leader advances its commit index only onto an entry of its
  // own term (earlier entries are committed indirectly, Figure 8).
  void check_leader_commit_rule(Node& n) {
    const core::SoftState s = n.engine->soft_state();
    const LogIndex commit = Traits::commit_index(*n.engine);
    if (s.role == core::Role::kLeader && n.watched.role == core::Role::kLeader &&
        n.watched.term == s.term && commit > n.watched_commit) {
      const auto t = Traits::term_at(*n.engine, commit);
      if (t && *t != s.term) {
        violation(fmt::format(
            "n{} (leader in term {}) advanced its commit index to {}, an entry of term {}, "
            "by counting replicas (Raft §5.4.2)",
            n.id.value(), s.term.value(), commit.value(), t->value()));
      }
    }
    n.watched = s;
    n.watched_commit = commit;
  }

  // The highest commit index any live node knows, or that anyone applied.
  LogIndex highest_commit() const {
    LogIndex best(max_applied_);
    for (const auto& n : nodes_) {
      if (n.up) best = std::max(best, Traits::commit_index(*n.engine));
    }
    return best;
  }

  // Leader Completeness (Raft §5.4): a new leader's log holds every entry
  // committed before its election. Anything applied anywhere was committed.
  void check_leader_completeness(const Node& n) {
    if (applied_.empty()) return;
    const std::vector<core::Entry> log = Traits::log_entries(*n.engine);
    const uint64_t last =
        log.empty() ? Traits::commit_index(*n.engine).value() : log.back().index.value();
    if (last < max_applied_) {
      violation(fmt::format(
          "leader completeness: n{} became leader with log ending at {} but index {} was "
          "committed",
          n.id.value(), last, max_applied_));
      return;
    }
    for (const auto& e : log) {
      auto it = applied_.find(e.index.value());
      if (it != applied_.end() &&
          (it->second.first != e.term || it->second.second != entry_hash(e))) {
        violation(fmt::format(
            "leader completeness: n{} became leader holding {}/{} where committed index {} "
            "has term {}",
            n.id.value(), e.index.value(), e.term.value(), e.index.value(),
            it->second.first.value()));
        return;
      }
    }
  }

  static uint64_t entry_hash(const core::Entry& e) {
    return std::hash<std::string>{}(e.data) ^ (static_cast<uint64_t>(e.type) << 60);
  }

  // ---- clients --------------------------------------------------------------

  std::string key_name(uint64_t k) const { return "k" + std::to_string(k); }

  void client_next(size_t c) {
    if (clients_stopped_ || clients_[c].scripted) return;
    const std::string key = key_name(prng_.uniform(1, static_cast<uint64_t>(opts_.keys)));
    const uint64_t dice = prng_.uniform(0, 99);
    const auto kind = dice < 40   ? check::OpKind::kGet
                      : dice < 65 ? check::OpKind::kPut
                      : dice < 85 ? check::OpKind::kAppend
                                  : check::OpKind::kCas;
    const uint64_t id = report_.history.size() + 1;
    std::string value = kind == check::OpKind::kAppend ? fmt::format(",{}.{}", clients_[c].id, id)
                                                       : fmt::format("{}.{}", clients_[c].id, id);
    std::string expected = kind == check::OpKind::kCas ? last_written_[key] : std::string();
    if (kind == check::OpKind::kPut) last_written_[key] = value;
    const size_t op = record(c, kind, key, std::move(value), std::move(expected));
    submit(c, op);
    q_.after(opts_.client_timeout_us, [this, c, op] { client_timeout(c, op); });
  }

  size_t record(size_t c, check::OpKind kind, std::string key, std::string value,
                std::string expected) {
    check::Operation o;
    o.id = report_.history.size() + 1;
    o.client = clients_[c].id;
    o.kind = kind;
    o.key = std::move(key);
    o.value = std::move(value);
    o.expected = std::move(expected);
    o.invoke_us = q_.now();
    o.status = check::OpStatus::kUnknown;
    const size_t op = report_.history.size();
    report_.history.push_back(std::move(o));
    clients_[c].op = op;
    return op;
  }

  // Invariant: clients_[i].id == i + 1.
  Client make_client() const {
    Client c;
    c.id = clients_.size() + 1;
    return c;
  }

  // A client for one scripted operation; each gets its own session.
  size_t scripted_client() {
    clients_.push_back(make_client());
    clients_.back().scripted = true;
    return clients_.size() - 1;
  }

  void submit(size_t c, size_t op) {
    Client& cl = clients_[c];
    Node& n = nodes_[cl.target];
    auto& o = report_.history[op];
    if (opts_.trace)
      trace(fmt::format("client {} -> n{}: {}", cl.id, n.id.value(), check::describe(o)));
    if (!n.up) return;  // the request is lost; the client times out
    core::ProposeResult res;
    if (o.kind == check::OpKind::kGet) {
      res = n.engine->read_index(o.id);
      if (accepted(res.status)) n.reads[o.id] = PendingRead{op, std::nullopt, highest_commit()};
    } else {
      kvpb::Command cmd;
      switch (o.kind) {
        case check::OpKind::kPut:
          cmd = kv::make_put(o.key, o.value);
          break;
        case check::OpKind::kAppend:
          cmd = kv::make_append(o.key, o.value);
          break;
        case check::OpKind::kCas:
          cmd = kv::make_cas(o.key, o.expected, o.value);
          break;
        case check::OpKind::kGet:
          break;
      }
      cmd.set_client_id(cl.id);
      cmd.set_seq(++cl.seq);
      res = n.engine->propose(kv::encode(cmd));
      if (accepted(res.status)) n.writes[cl.id] = PendingWrite{op, cl.seq};
    }
    if (!accepted(res.status)) {
      if (res.leader != kNoNode) cl.target = static_cast<size_t>(res.leader.value() - 1);
      complete(op, check::OpStatus::kFail);
    } else if (res.status == core::ProposeStatus::kForwarded && prng_.chance(0.3)) {
      // Some clients learn the leader and go straight there next time.
      cl.target = static_cast<size_t>(res.leader.value() - 1);
    }
    maybe_ready(static_cast<size_t>(n.id.value() - 1));
  }

  static bool accepted(core::ProposeStatus s) {
    return s == core::ProposeStatus::kAccepted || s == core::ProposeStatus::kForwarded;
  }

  void complete(size_t op, check::OpStatus status) {
    auto& o = report_.history[op];
    if (o.status != check::OpStatus::kUnknown || o.complete_us != 0) return;  // already finished
    o.status = status;
    o.complete_us = q_.now();
    if (opts_.trace) trace(fmt::format("client {} done: {}", o.client, check::describe(o)));
    if (o.client == 0) return;  // the final reader
    Client& cl = clients_[o.client - 1];
    if (cl.op != op) return;
    cl.op.reset();
    if (status == check::OpStatus::kOk) {
      ++report_.ops_ok;
      if (!faults_on_ && o.invoke_us >= heal_at_) cl.ok_after_heal = true;
    } else {
      ++report_.ops_failed;
      cl.target = static_cast<size_t>(prng_.uniform(0, nodes_.size() - 1));
    }
    const Time think = status == check::OpStatus::kOk
                           ? static_cast<Time>(prng_.uniform(0, 2000))
                           : static_cast<Time>(prng_.uniform(5000, 30000));
    const size_t c = static_cast<size_t>(o.client - 1);
    q_.after(think, [this, c] { client_next(c); });
  }

  void client_timeout(size_t c, size_t op) {
    Client& cl = clients_[c];
    if (cl.op != op) return;
    auto& o = report_.history[op];
    // Unknown: it may still take effect. Stop waiting for it anywhere.
    for (auto& n : nodes_) {
      auto w = n.writes.find(cl.id);
      if (w != n.writes.end() && w->second.op == op) n.writes.erase(w);
      n.reads.erase(o.id);
    }
    o.complete_us = q_.now();
    ++report_.ops_unknown;
    cl.op.reset();
    cl.target = static_cast<size_t>(prng_.uniform(0, nodes_.size() - 1));
    if (opts_.trace) trace(fmt::format("client {} gives up: {}", cl.id, check::describe(o)));
    q_.after(static_cast<Time>(prng_.uniform(0, 5000)), [this, c] { client_next(c); });
  }

  // ---- faults ---------------------------------------------------------------

  std::optional<size_t> current_leader() const {
    std::optional<size_t> best;
    Term best_term;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const Node& n = nodes_[i];
      if (!n.up) continue;
      auto s = n.engine->soft_state();
      if (s.role == core::Role::kLeader && (!best || s.term > best_term)) {
        best = i;
        best_term = s.term;
      }
    }
    return best;
  }

  Time jittered(Time mean) {
    return static_cast<Time>(
        prng_.uniform(static_cast<uint64_t>(mean / 2), static_cast<uint64_t>(mean * 3 / 2)));
  }

  void schedule_partition() {
    if (opts_.faults.mean_partition_interval_us == 0) return;
    q_.after(jittered(opts_.faults.mean_partition_interval_us), [this] {
      if (!faults_on_) return;
      change_partition();
      schedule_partition();
    });
  }

  void change_partition() {
    const int n = opts_.nodes;
    uint64_t kind = prng_.uniform(0, opts_.faults.asymmetric_partitions ? 6 : 4);
    if (kind == 4 && !opts_.faults.asymmetric_partitions) kind = 1;
    if (kind == 6) kind = 1;  // isolating the leader is the most telling partition: twice as likely
    std::vector<int> order(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    for (int i = n - 1; i > 0; --i)
      std::swap(order[static_cast<size_t>(i)], order[prng_.uniform(0, static_cast<uint64_t>(i))]);
    switch (kind) {
      case 0:
        net_->heal();
        break;
      case 1: {  // isolate the leader (or a random node)
        auto l = current_leader();
        net_->split({l ? static_cast<int>(*l) : order[0]});
        break;
      }
      case 2: {  // majority / minority
        const int minority = static_cast<int>(prng_.uniform(1, static_cast<uint64_t>((n - 1) / 2)));
        net_->split(std::vector<int>(order.begin(), order.begin() + minority));
        break;
      }
      case 3: {  // bridge: two halves that only one node connects
        net_->heal();
        const int bridge = order[0];
        for (int i = 1; i < n; ++i) {
          for (int j = 1; j < n; ++j) {
            if ((i % 2) != (j % 2))
              net_->block(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
          }
        }
        (void)bridge;
        break;
      }
      default: {  // asymmetric: some links drop in one direction only
        net_->heal();
        const int cuts = static_cast<int>(prng_.uniform(1, static_cast<uint64_t>(n)));
        for (int k = 0; k < cuts; ++k) {
          const int a = static_cast<int>(prng_.uniform(0, static_cast<uint64_t>(n - 1)));
          int b = static_cast<int>(prng_.uniform(0, static_cast<uint64_t>(n - 1)));
          if (a != b) net_->block(a, b);
        }
        break;
      }
    }
    ++report_.partitions;
    trace("partition: " + net_->describe());
  }

  // Crash a freshly elected leader soon, possibly before it replicated its
  // first entries (Figure 8), and restart it later.
  void schedule_leader_kill(const Node& n) {
    const size_t i = static_cast<size_t>(n.id.value() - 1);
    const uint64_t inc = n.incarnation;
    q_.after(static_cast<Time>(
                 prng_.uniform(0, static_cast<uint64_t>(opts_.faults.kill_new_leader_within_us))),
             [this, i, inc] {
               if (!faults_on_ || !nodes_[i].up || nodes_[i].incarnation != inc) return;
               crash_node(i);
               const Time down_for = static_cast<Time>(
                   prng_.uniform(static_cast<uint64_t>(opts_.faults.min_down_us),
                                 static_cast<uint64_t>(opts_.faults.max_down_us)));
               q_.after(down_for, [this, i] {
                 if (!nodes_[i].up && faults_on_) start_node(i);
               });
             });
  }

  void schedule_leader_isolation(const Node& n) {
    const int i = static_cast<int>(n.id.value() - 1);
    q_.after(static_cast<Time>(
                 prng_.uniform(0, static_cast<uint64_t>(opts_.faults.kill_new_leader_within_us))),
             [this, i] {
               if (!faults_on_) return;
               net_->split({i});
               ++report_.partitions;
               trace("partition: new leader cut off: " + net_->describe());
               q_.after(opts_.faults.isolate_new_leader_us, [this] {
                 if (!faults_on_) return;
                 net_->heal();
                 trace("partition: healed");
               });
             });
  }

  void schedule_crash() {
    if (opts_.faults.mean_crash_interval_us == 0) return;
    q_.after(jittered(opts_.faults.mean_crash_interval_us), [this] {
      if (!faults_on_) return;
      size_t down = 0;
      for (const auto& n : nodes_) down += n.up ? 0 : 1;
      if (down < static_cast<size_t>(opts_.nodes - 1) / 2 + 1) {
        auto l = current_leader();
        size_t victim = (l && prng_.chance(opts_.faults.crash_leader_bias))
                            ? *l
                            : static_cast<size_t>(prng_.uniform(0, nodes_.size() - 1));
        if (nodes_[victim].up) {
          crash_node(victim);
          const Time down_for =
              static_cast<Time>(prng_.uniform(static_cast<uint64_t>(opts_.faults.min_down_us),
                                              static_cast<uint64_t>(opts_.faults.max_down_us)));
          q_.after(down_for, [this, victim] {
            if (!nodes_[victim].up && faults_on_) start_node(victim);
          });
        }
      }
      schedule_crash();
    });
  }

  // ---- the end of a run -------------------------------------------------------

  void check_liveness() {
    if (!current_leader()) {
      violation(fmt::format("liveness: no leader {}ms after healing",
                            opts_.liveness_bound_us / kMillisecond));
      return;
    }
    for (const auto& c : clients_) {
      if (!c.scripted && !c.ok_after_heal) {
        violation(
            fmt::format("liveness: client {} completed no operation within {}ms after healing",
                        c.id, opts_.liveness_bound_us / kMillisecond));
        return;
      }
    }
  }

  void final_reads() {
    // One more linearizable read of every key, through the leader, recorded in
    // the history: every acknowledged write must be reflected in it.
    for (int k = 1; k <= opts_.keys; ++k) {
      auto l = current_leader();
      if (!l) break;
      Node& n = nodes_[*l];
      check::Operation o;
      o.id = report_.history.size() + 1;
      o.client = 0;
      o.kind = check::OpKind::kGet;
      o.key = key_name(static_cast<uint64_t>(k));
      o.invoke_us = q_.now();
      o.status = check::OpStatus::kUnknown;
      const size_t op = report_.history.size();
      report_.history.push_back(o);
      auto res = n.engine->read_index(o.id);
      if (!accepted(res.status)) {
        violation("final read refused: " + std::string(core::propose_status_name(res.status)));
        return;
      }
      n.reads[o.id] = PendingRead{op, std::nullopt, highest_commit()};
      maybe_ready(*l);
      const Time deadline = q_.now() + 2 * kSecond;
      while (report_.history[op].complete_us == 0 && q_.now() < deadline && !q_.stopped()) {
        q_.run_until(q_.now() + kMillisecond);
      }
      if (q_.stopped()) return;
      if (report_.history[op].complete_us == 0) {
        violation(
            fmt::format("final read of {} did not complete within 2s on a healed cluster", o.key));
      }
    }
  }

  void wait_for_convergence() {
    const Time deadline = q_.now() + 3 * kSecond;
    auto converged = [&] {
      LogIndex first = nodes_[0].sm->applied_index();
      for (const auto& n : nodes_) {
        if (!n.up || n.sm->applied_index() != first || Traits::commit_index(*n.engine) != first)
          return false;
      }
      return true;
    };
    while (!converged() && q_.now() < deadline && !q_.stopped())
      q_.run_until(q_.now() + 10 * kMillisecond);
    if (q_.stopped()) return;
    if (!converged()) {
      std::string s;
      for (const auto& n : nodes_)
        s += fmt::format(" n{}:{}", n.id.value(), n.sm ? n.sm->applied_index().value() : 0);
      violation("convergence: replicas did not reach the same applied index within 3s of quiet:" +
                s);
      return;
    }
    for (const auto& n : nodes_) {
      if (n.sm->digest() != nodes_[0].sm->digest()) {
        violation(
            fmt::format("convergence: n{} and n1 applied the same index {} but hold different data",
                        n.id.value(), n.sm->applied_index().value()));
      }
    }
  }

  void check_logs() {
    // Log Matching (Raft §5.3): if two logs hold an entry with the same index
    // and term, the logs are identical in all entries up through that index.
    std::vector<std::vector<core::Entry>> logs;
    for (const auto& n : nodes_)
      logs.push_back(n.up ? Traits::log_entries(*n.engine) : std::vector<core::Entry>{});
    for (size_t a = 0; a < logs.size(); ++a) {
      for (size_t b = a + 1; b < logs.size(); ++b) {
        std::map<uint64_t, const core::Entry*> in_b;
        for (const auto& e : logs[b]) in_b[e.index.value()] = &e;
        bool matched_above = false;
        for (auto it = logs[a].rbegin(); it != logs[a].rend(); ++it) {
          auto f = in_b.find(it->index.value());
          if (f == in_b.end()) continue;
          if (f->second->term == it->term) matched_above = true;
          if (matched_above && !(*f->second == *it)) {
            violation(
                fmt::format("log matching: n{} and n{} share a later entry but differ at index {}",
                            a + 1, b + 1, it->index.value()));
            break;
          }
        }
      }
    }
    // No write acknowledged to a client is missing after recovery: every log
    // still holds it (or a snapshot covers its index).
    for (size_t a = 0; a < logs.size(); ++a) {
      std::unordered_map<uint64_t, const core::Entry*> by_index;
      for (const auto& e : logs[a]) by_index[e.index.value()] = &e;
      const uint64_t first = logs[a].empty() ? UINT64_MAX : logs[a].front().index.value();
      for (const auto& [index, h] : acked_) {
        if (index < first) continue;  // covered by the snapshot (checked by convergence)
        auto it = by_index.find(index);
        const bool same = it != by_index.end() && entry_hash(*it->second) == h;
        if (!same) {
          violation(
              fmt::format("acknowledged write at index {} is missing from n{}'s log after recovery",
                          index, a + 1));
          break;
        }
      }
    }
    // Committed entries in every log equal what was applied anywhere.
    for (size_t a = 0; a < logs.size(); ++a) {
      if (!nodes_[a].up) continue;
      const LogIndex commit = Traits::commit_index(*nodes_[a].engine);
      for (const auto& e : logs[a]) {
        if (e.index > commit) break;
        auto it = applied_.find(e.index.value());
        if (it != applied_.end() && it->second.first != e.term) {
          violation(fmt::format(
              "n{} holds committed index {} with term {}, applied elsewhere with term {}", a + 1,
              e.index.value(), e.term.value(), it->second.first.value()));
          break;
        }
      }
    }
  }

  void check_history() {
    // A run that already broke a protocol invariant is reported as it is: a
    // broken cluster's history can be arbitrarily costly to search.
    if (!report_.violations.empty()) return;
    check::CheckOptions copts;
    copts.max_steps =
        5'000'000;  // bounded memory and time per seed; running out is counted, not hidden
    check::CheckResult r = check::check_linearizable(report_.history, copts);
    if (r.verdict == check::Verdict::kViolation || r.verdict == check::Verdict::kMalformed) {
      violation("linearizability: " + r.report);
    } else if (r.verdict == check::Verdict::kUnknown) {
      ++report_.checks_inconclusive;
      trace("linearizability check gave up (budget): " + r.report);
    }
  }

  RunOptions opts_;
  Prng prng_;
  TraceSink trace_;
  EventQueue q_;
  std::unique_ptr<Network> net_;
  std::vector<NodeId> voters_;
  std::vector<Node> nodes_;
  std::vector<Client> clients_;
  std::map<std::string, std::string> last_written_;
  std::unordered_map<uint64_t, std::pair<Term, uint64_t>> applied_;  // index -> (term, data hash)
  std::map<uint64_t, NodeId> leaders_;                               // term -> leader
  uint64_t max_applied_ = 0;
  std::map<uint64_t, uint64_t> acked_;  // index -> data hash of writes acknowledged to clients
  bool faults_on_ = true;
  bool clients_stopped_ = false;
  Time heal_at_ = 0;
  std::function<void(const Msg&)> on_deliver_;
  RunReport report_;
};

}  // namespace chorus::sim
