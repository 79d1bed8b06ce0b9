// Cluster<E> (cluster.h): the run's phases and the nodes' lives — start with
// recovery, crash, fail-stop, the network between them.
#pragma once

#include "sim/cluster.h"

namespace chorus::sim {

template <core::Engine E>
Cluster<E>::Cluster(RunOptions opts, TraceSink trace)
    : opts_(std::move(opts)), prng_(opts_.seed), trace_(std::move(trace)) {
  Prng setup(opts_.seed ^ 0x5eed5eed5eedULL);
  if (opts_.faults_from_seed) opts_.faults = FaultConfig::random(setup);
  const bool churn = opts_.faults.leader_churn;
  if (opts_.nodes == 0) opts_.nodes = churn || setup.chance(0.4) ? 5 : 3;
  if (opts_.clients == 0) opts_.clients = static_cast<int>(setup.uniform(2, 8));
  if (opts_.keys == 0) opts_.keys = static_cast<int>(setup.uniform(1, 5));
  if (opts_.snapshot_every_entries == 0) opts_.snapshot_every_entries = setup.uniform(10, 400);
  if (opts_.durable_state_machine < 0) opts_.durable_state_machine = setup.chance(0.3) ? 1 : 0;
  knobs_ = Traits::draw(opts_, setup);
  net_ = std::make_unique<Network>(opts_.nodes + Controller::kEndpoints, opts_.faults);
  last_applied_.resize(static_cast<size_t>(opts_.nodes));
  for (int i = 0; i < opts_.nodes; ++i) voters_.push_back(NodeId(static_cast<uint64_t>(i + 1)));
  if (opts_.disk_faults_from_seed) opts_.disk = storage::SimEnvOptions::random(setup);
  invariants_ = std::make_unique<typename Traits::Invariants>(static_cast<size_t>(opts_.nodes));
  for (int i = 0; i < opts_.nodes; ++i) {
    auto n = std::make_unique<Node>();
    n->id = voters_[static_cast<size_t>(i)];
    n->env = std::make_unique<storage::SimEnv>(setup.fork(), opts_.disk);
    n->loop = std::make_unique<NodeLoop>(q_, prng_);
    const double skew = opts_.faults.max_clock_skew;
    const double rate = skew <= 1.0 ? 1.0 : (1.0 / skew) + setup.real() * (skew - 1.0 / skew);
    // Monotonic clocks start anywhere: nothing may compare them across nodes.
    n->loop->set_clock(rate, static_cast<int64_t>(setup.uniform(0, 1ull << 40)) * 1000);
    const size_t idx = static_cast<size_t>(i);
    n->loop->after_event = [this, idx] { after_event(idx); };
    if (opts_.durable_state_machine > 0) n->durable_sm = std::make_shared<kv::MemoryStateMachine>();
    nodes_.push_back(std::move(n));
  }
  controller_ = std::make_unique<Controller>(*this);
  report_.seed = opts_.seed;
  report_.settings = describe_settings();
}

template <core::Engine E>
std::string Cluster<E>::describe_settings() const {
  std::string s = fmt::format(
      "seed: {}\nnodes: {}  clients: {}  keys: {}  snapshot every {} entries  state machine {}\n",
      opts_.seed, opts_.nodes, opts_.clients, opts_.keys, opts_.snapshot_every_entries,
      opts_.durable_state_machine > 0 ? "durable (survives crashes)" : "in memory");
  s += Traits::describe(knobs_) + "\n";
  s += opts_.faults.describe();
  s += "\n" + opts_.disk.describe();
  s += "\nclock rates:";
  for (const auto& n : nodes_) s += fmt::format(" n{}={:.3f}", n->id.value(), n->loop->rate());
  s += controller_->describe();
  return s;
}

template <core::Engine E>
void Cluster<E>::start() {
  for (size_t i = 0; i < nodes_.size(); ++i) start_node(i);
  controller_->start();
  for (int k = 0; k < opts_.clients; ++k) {
    const size_t c = clients_.size();
    clients_.push_back(make_client());
    q_.after(static_cast<Time>(prng_.uniform(0, 10000)), [this, c] { client_next(c); });
  }
}

template <core::Engine E>
void Cluster<E>::run_phases() {
  start();
  schedule_partition();
  schedule_crash();
  schedule_stall();

  // Safety phase.
  q_.run_until(opts_.safety_phase_us);
  if (q_.stopped()) return;

  // Liveness phase: heal everything.
  heal_at_ = q_.now();
  heal_everything();
  trace("heal: network and disks reliable, all nodes restarting");
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

template <core::Engine E>
void Cluster<E>::heal_everything() {
  faults_on_ = false;
  net_->heal();
  net_->make_reliable();
  for (auto& n : nodes_) n->env->set_options(storage::SimEnvOptions{});
  for (size_t i = 0; i < nodes_.size(); ++i) restart(i);
  controller_->heal();
}

template <core::Engine E>
RunReport Cluster<E>::finish() {
  try {
    heal_everything();
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

template <core::Engine E>
host::HostOptions Cluster<E>::host_options() const {
  host::HostOptions o;
  o.tick = std::chrono::microseconds(opts_.tick_us);
  o.retry_interval = std::chrono::milliseconds(200);
  o.no_leader_wait = std::chrono::milliseconds(500);
  o.request_timeout = std::chrono::microseconds(opts_.client_timeout_us);
  o.snapshot_every_entries = opts_.snapshot_every_entries;
  return o;
}

template <core::Engine E>
host::HostMetrics Cluster<E>::make_metrics(size_t i) {
  host::HostMetrics m;
  m.role_change = [this, i](const core::SoftState& s, std::string_view role_name,
                            std::string_view why) { on_role_change(i, s, role_name, why); };
  m.snapshot = [this, i](core::SnapshotMeta meta, bool from_leader) {
    Node& n = *nodes_[i];
    n.local_snapshots = from_leader ? 0 : n.local_snapshots + 1;
    if (from_leader) note_restored(i, meta.index, meta.term);
    if (!from_leader) ++report_.snapshots;
    trace(fmt::format("n{} {} snapshot {}/{}", i + 1, from_leader ? "installs" : "takes",
                      meta.index.value(), meta.term.value()));
  };
  m.dropped = [this, i](const core::DroppedEntry& d) { note_dropped(i, d); };
  m.info = [this, i](std::string_view line) { trace(fmt::format("n{} {}", i + 1, line)); };
  m.error = [this, i](std::string_view line) { trace(fmt::format("n{} {}", i + 1, line)); };
  return m;
}

template <core::Engine E>
void Cluster<E>::start_node(size_t i) {
  Node& n = *nodes_[i];
  storage::ReplicaStorageOptions so;
  so.log_matching = E::kCapabilities.log_matching;
  auto opened = storage::ReplicaStorage::open(n.env.get(), "/data", so);
  if (!opened.is_ok()) {
    // A recovery error (e.g. a transient bad read) keeps the node down; the
    // operator (here: a timer) tries again. Never start from a damaged state.
    ++report_.recovery_failures;
    trace(fmt::format("n{} cannot recover: {}", n.id.value(), opened.status().to_string()));
    q_.after(100 * kMillisecond, [this, i] {
      if (!nodes_[i]->loop->up()) start_node(i);
    });
    return;
  }
  n.loop->begin_incarnation();
  invariants_->reset(i);
  std::unique_ptr<kv::StateMachine> sm;
  if (n.durable_sm) {
    sm = std::make_unique<SharedStateMachine>(n.durable_sm);
  } else {
    sm = std::make_unique<kv::MemoryStateMachine>();
  }
  n.metrics = make_metrics(i);
  host::HostProbes probes;
  probes.before_apply = [this, i](const core::Entry& e) { before_apply(i, e); };
  probes.write_acknowledged = [this](const core::Entry& e) {
    acked_.emplace(e.index.value(), entry_hash(e));
  };
  // Engines whose invariants watch what each node made durable (Paxos:
  // acceptance is a durable record, core/paxos/invariants.h).
  if constexpr (requires(typename Traits::Invariants & inv, std::span<const core::Entry> es) {
                  inv.observe_durable(i, es);
                }) {
    probes.entries_durable = [this, i](std::span<const core::Entry> es) {
      if (auto bad = invariants_->observe_durable(i, es)) violation(*bad);
    };
  }
  // New effects per incarnation: nothing queued for an earlier one reaches
  // them (NodeLoop drops it).
  n.fx = std::make_unique<Fx>(
      *n.loop, [this](Msg m) { deliver(std::move(m)); },
      [this] { return uniform_time(opts_.faults.min_fsync_us, opts_.faults.max_fsync_us); });
  n.host = std::make_unique<Host>(*n.fx, host_options(), std::move(opened).value(), std::move(sm),
                                  prng_.fork(), &n.metrics, std::move(probes));
  const NodeId id = n.id;
  Prng engine_prng = prng_.fork();
  Status st = n.host->init([&](core::PersistentState<typename E::DurableState> ps) {
    return Traits::make(id, voters_, engine_prng, std::move(ps), knobs_);
  });
  if (!st.is_ok()) {
    violation(
        fmt::format("n{} cannot start from what it made durable: {}", id.value(), st.to_string()));
    return;
  }
  // Engines whose invariants check what a node recovered (Paxos: what it
  // holds is durable, and it forgot nothing it accepted).
  if constexpr (requires(typename Traits::Invariants & inv, const E& e) {
                  inv.observe_recovered(i, e);
                }) {
    if (auto bad = invariants_->observe_recovered(i, n.host->engine())) {
      violation(*bad);
      return;
    }
  }
  trace(fmt::format("n{} starts (term {})", id.value(), n.host->soft_state().term.value()));
  const host::HostStatus hs = n.host->status();
  note_restored(i, hs.applied_index, hs.applied_term);
  n.host->start();
  controller_->node_started(i);
}

// Media corruption in the newest snapshot file (in its data, which the
// file's checksums cover). Recovery must reject it and fall back.
template <core::Engine E>
void Cluster<E>::corrupt_newest_snapshot(Node& n) {
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
template <core::Engine E>
void Cluster<E>::fail_stop(size_t i, const Status& why) {
  trace(fmt::format("n{} fail-stops: {}", nodes_[i]->id.value(), why.to_string()));
  ++report_.fail_stops;
  crash_node(i);
  q_.after(static_cast<Time>(prng_.uniform(50, 500)) * kMillisecond, [this, i] {
    if (!nodes_[i]->loop->up()) start_node(i);
  });
}

template <core::Engine E>
void Cluster<E>::crash_node(size_t i) {
  Node& n = *nodes_[i];
  if (!n.loop->up()) return;
  // The power fails in the middle of a disk job (a persist, a snapshot):
  // during one of its first fsyncs. What it wrote before is in the disk
  // cache, un-synced; nothing after happens; crash() below decides what
  // survives (nothing, a torn prefix, some pages).
  if (auto job = n.loop->take_first_disk_job(); job && prng_.chance(0.7)) {
    n.env->power_fail_at_sync(static_cast<int>(prng_.uniform(1, 3)));
    (*job)().ignore();  // its outcome dies with the node
    ++report_.crashes_mid_fsync;
  }
  n.loop->crash();  // whatever else was in flight never completes
  n.host.reset();
  n.env->crash();  // un-synced writes are lost, or torn
  if (n.local_snapshots >= 2 && prng_.chance(opts_.faults.corrupt_snapshot))
    corrupt_newest_snapshot(n);
  ++report_.crashes;
  trace(fmt::format("n{} CRASHES", n.id.value()));
}

// After every callback on node i: the engine's invariants, and fail-stop.
template <core::Engine E>
void Cluster<E>::after_event(size_t i) {
  Node& n = *nodes_[i];
  if (!n.host) return;
  if (!n.host->healthy()) {
    fail_stop(i, n.host->failure());
    return;
  }
  auto bad = invariants_->observe(
      i, n.host->engine(),
      [this](LogIndex idx) -> std::optional<typename Traits::Invariants::Applied> {
        auto a = applied_.at(idx.value());
        if (!a) return std::nullopt;
        return typename Traits::Invariants::Applied{Term(a->term), a->hash};
      },
      [](const core::Entry& e) { return entry_hash(e); });
  if (bad) violation(*bad);
}

template <core::Engine E>
void Cluster<E>::deliver(Msg m) {
  const size_t to = static_cast<size_t>(Traits::to(m).value() - 1);
  const size_t from = static_cast<size_t>(Traits::from(m).value() - 1);
  ++report_.messages_sent;
  if (auto promised = Traits::promised_durable(m)) {
    const Node& s = *nodes_[from];
    if (s.host && s.host->storage().durable_index() < *promised) {
      violation(fmt::format("n{} promised index {} is durable ({}) but its disk holds only {}",
                            s.id.value(), promised->value(), E::describe(m),
                            s.host->storage().durable_index().value()));
    }
  }
  // Engines whose invariants watch the messages sent (core/paxos/invariants.h).
  if constexpr (requires(typename Traits::Invariants & inv) { inv.observe_message(from, m); }) {
    if (auto bad = invariants_->observe_message(from, m)) violation(*bad);
  }
  auto delays = net_->fate(static_cast<int>(from), static_cast<int>(to), prng_);
  if (delays.empty()) {
    ++report_.messages_dropped;
    if (opts_.trace) trace("drop " + E::describe(m));
    return;
  }
  if (opts_.trace) trace("send " + E::describe(m));
  for (size_t k = 0; k < delays.size(); ++k) {
    auto shared = std::make_shared<Msg>(k + 1 == delays.size() ? std::move(m) : m);
    // Delivered into the node's loop: held while it stalls, lost if it crashes first.
    q_.after(delays[k], [this, to, shared] {
      Node& n = *nodes_[to];
      if (!n.loop->up()) return;
      n.loop->at(q_.now(), [this, to, shared] {
        if (on_deliver_) on_deliver_(*shared);
        nodes_[to]->host->receive(*shared);
      });
    });
  }
}

template <core::Engine E>
void Cluster<E>::on_role_change(size_t i, const core::SoftState& s, std::string_view role_name,
                                std::string_view why) {
  trace(fmt::format("n{} is {} in term {} (leader n{}){}{}", i + 1, role_name, s.term.value(),
                    s.leader.value(), why.empty() ? "" : ": ", why));
  if (s.role != core::Role::kLeader) return;
  ++report_.leader_changes;
  if (faults_on_ && prng_.chance(opts_.faults.kill_new_leader)) {
    schedule_leader_kill(i);
  } else if (faults_on_ && prng_.chance(opts_.faults.isolate_new_leader)) {
    schedule_leader_isolation(i);
  }
}

}  // namespace chorus::sim
