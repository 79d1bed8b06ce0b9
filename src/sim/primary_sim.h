// The primary-backup engines in the simulator (sync-all, semi-sync, async;
// core/primary): how a seed configures them, their invariants, and the
// actor they need beside their replicas — the configuration manager.
//
// The manager. The engines elect nobody: a configuration manager
// (core/primary/config_manager.h, pure) appoints the primary of each epoch
// and grants its leases. Here it runs as its own simulated process (the
// metadata group's leader), endpoint n+1 of the network: its messages are
// delayed, lost, duplicated and partitioned like the replicas'. It has its
// own loop and its own clock rate; it crashes and restarts from the
// ManagerState it persisted before delivering any decision (a new
// metadata leader starts from the committed state), and its loop stalls.
//
//   manager --Poll{round}--> every replica, every manager tick
//   replica --Report{epoch, last durable entry, commit, sent_tick, round}--> manager,
//             every replica tick and at once when a new probe round arrives
//   manager --Decision{config, lease anchor}--> every replica
//
// A replica's host calls configure() with the decision (the primary with
// the lease, anchored at the report's sent_tick; the others without one)
// through ReplicaHost::configure_engine. Probe rounds are numbered per
// manager incarnation: a report echoing a round of an earlier incarnation
// answers no probe of this one (a restarted manager counts from 1 again).
//
// Serving, as chorusd reports it (primary::reports_serving): a replica
// holding an epoch with no decision received since it started, or one
// whose newest decision names it primary of the epoch it holds though it
// does not lead it (it restarted: a primary is never primary of an epoch
// twice), reports serving = false: the manager must see it as failed and
// appoint a successor, not renew a lease it cannot use. And, as chorusd's
// PrimaryManagers::refresh does, the manager sends the committed
// configuration, without a lease, to a replica whose report shows it
// restarted since its last report to this manager incarnation.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "core/primary/config_manager.h"
#include "core/primary/primary.h"
#include "sim/cluster.h"

namespace chorus::sim {

// Checked after every event on a node: at most one primary per epoch (the
// manager appoints one, and a node leads only an epoch it had not seen).
class PrimaryInvariants {
 public:
  struct Applied {
    Term term;
    uint64_t hash = 0;
  };
  explicit PrimaryInvariants(size_t /*nodes*/) {}
  template <class E, class AppliedAt, class Hash>
  std::optional<std::string> observe(size_t i, const E& e, const AppliedAt& /*applied_at*/,
                                     const Hash& /*hash*/) {
    if (!e.is_primary()) return std::nullopt;
    auto [it, fresh] = primary_of_.emplace(e.epoch().value(), i);
    if (fresh || it->second == i) return std::nullopt;
    return fmt::format("two primaries of epoch {}: n{} and n{}", e.epoch().value(), it->second + 1,
                       i + 1);
  }
  void reset(size_t /*i*/) {}

 private:
  std::map<uint64_t, size_t> primary_of_;  // epoch -> node index
};

// The configuration manager's process (see the file comment). C is the Cluster.
template <class C>
class ManagerActor {
 public:
  static constexpr int kEndpoints = 1;

  explicit ManagerActor(C& c);
  void start();
  void node_started(size_t i);
  void heal();
  std::string describe() const { return fmt::format(" manager={:.3f}", loop_->rate()); }

 private:
  using Engine = typename C::EngineType;
  struct Poll {
    uint64_t round = 0;
    uint64_t incarnation = 0;
  };
  struct Report {
    primary::ReplicaReport report;
    uint64_t incarnation = 0;  // of the manager whose round it echoes
    uint64_t boot = 0;         // the replica's start count (chorusd: its nonce)
  };
  // What a replica's host knows of the manager.
  struct Heard {
    uint64_t round = 0;
    uint64_t incarnation = 0;
  };

  int self() const { return c_.opts_.nodes; }
  void send(int from, int to, std::function<void()> fn);
  void boot();
  void crash();
  void arm();
  void on_tick();
  void sync();
  void flush();
  void on_report(const Report& r);
  void refresh(NodeId n, const primary::ManagerState& committed);
  void schedule_faults();
  void every(Time mean, std::function<void()> fn);
  void arm_report(size_t i);
  void report(size_t i);
  void on_poll(size_t i, const Poll& p);
  void on_decision(size_t i, const primary::Decision& d, uint64_t incarnation);

  C& c_;
  std::unique_ptr<NodeLoop> loop_;
  primary::ManagerOptions mopts_;
  std::optional<primary::ConfigManager> cm_;
  primary::ManagerState persisted_;  // the metadata group's committed state
  uint64_t incarnation_ = 0;
  int64_t origin_ns_ = 0;
  uint64_t ticks_done_ = 0;
  std::vector<Heard> heard_;
  // Per replica: the newest decision it received since it started, and how
  // many times it started.
  std::vector<std::optional<primary::Configuration>> granted_;
  std::vector<uint64_t> boots_;
  // The manager's (volatile): each replica's start count in its last report.
  std::map<NodeId, uint64_t> seen_boot_;
};

template <class C>
ManagerActor<C>::ManagerActor(C& c) : c_(c) {
  mopts_ = c_.knobs_.manager;
  loop_ = std::make_unique<NodeLoop>(c_.q_, c_.prng_);
  Prng setup(c_.opts_.seed ^ 0x3a3a6e6167657231ULL);
  const double skew = c_.opts_.faults.max_clock_skew;
  const double rate = skew <= 1.0 ? 1.0 : (1.0 / skew) + setup.real() * (skew - 1.0 / skew);
  loop_->set_clock(rate, static_cast<int64_t>(setup.uniform(0, 1ull << 40)) * 1000);
  for (const auto& n : c_.nodes_) persisted_.replicas.push_back(n->id);
  heard_.resize(c_.nodes_.size());
  granted_.resize(c_.nodes_.size());
  boots_.resize(c_.nodes_.size());
}

template <class C>
void ManagerActor<C>::start() {
  boot();
  schedule_faults();
}

template <class C>
void ManagerActor<C>::heal() {
  if (!loop_->up()) boot();
}

template <class C>
void ManagerActor<C>::boot() {
  ++incarnation_;
  loop_->begin_incarnation();
  cm_.emplace(mopts_, persisted_);
  seen_boot_.clear();
  origin_ns_ = loop_->local_ns();
  ticks_done_ = 0;
  c_.trace(fmt::format("manager starts (incarnation {}, epoch {})", incarnation_,
                       persisted_.config.epoch.value()));
  loop_->at(c_.q_.now(), [this] {
    flush();
    arm();
  });
}

template <class C>
void ManagerActor<C>::crash() {
  if (!loop_->up()) return;
  loop_->crash();
  cm_.reset();
  c_.trace("manager CRASHES");
}

template <class C>
void ManagerActor<C>::send(int from, int to, std::function<void()> fn) {
  ++c_.report_.messages_sent;
  auto delays = c_.net_->fate(from, to, c_.prng_);
  if (delays.empty()) {
    ++c_.report_.messages_dropped;
    return;
  }
  auto shared = std::make_shared<std::function<void()>>(std::move(fn));
  for (Time d : delays) {
    c_.q_.after(d, [this, to, shared] {
      NodeLoop& loop = to == self() ? *loop_ : *c_.nodes_[static_cast<size_t>(to)]->loop;
      if (!loop.up()) return;
      loop.at(c_.q_.now(), [shared] { (*shared)(); });
    });
  }
}

template <class C>
void ManagerActor<C>::arm() {
  const auto tick = std::chrono::microseconds(c_.opts_.tick_us);
  loop_->at(c_.q_.now() + loop_->real_delay(tick), [this] { on_tick(); });
}

// The manager's ticks follow its own clock, caught up before every input
// (as the host does for an engine): a report handled after a stall is
// received at the manager's true time, never earlier.
template <class C>
void ManagerActor<C>::sync() {
  const int64_t tick_ns = static_cast<int64_t>(c_.opts_.tick_us) * 1000;
  const auto due = static_cast<uint64_t>((loop_->local_ns() - origin_ns_) / tick_ns);
  while (ticks_done_ < due) {
    cm_->tick();
    ++ticks_done_;
  }
}

template <class C>
void ManagerActor<C>::on_tick() {
  sync();
  flush();
  const Poll p{cm_->probe_round(), incarnation_};
  for (size_t i = 0; i < c_.nodes_.size(); ++i) {
    send(self(), static_cast<int>(i), [this, i, p] { on_poll(i, p); });
  }
  arm();
}

// Decisions leave only once persisted (the metadata group committed them).
template <class C>
void ManagerActor<C>::flush() {
  auto decisions = cm_->take_decisions();
  if (decisions.empty()) return;
  persisted_ = cm_->state();
  for (const auto& d : decisions) {
    c_.trace(fmt::format("manager: {} epoch {} primary n{} members {} v{} anchor {}: {}",
                         d.kind == primary::Decision::Kind::kAppointment ? "APPOINTS" : "renews",
                         d.config.epoch.value(), d.config.primary.value(), d.config.members.size(),
                         d.config.version, d.lease_anchor_tick, d.why));
    for (size_t i = 0; i < c_.nodes_.size(); ++i) {
      send(self(), static_cast<int>(i),
           [this, i, d, inc = incarnation_] { on_decision(i, d, inc); });
    }
  }
}

template <class C>
void ManagerActor<C>::on_report(const Report& r) {
  sync();
  primary::ReplicaReport rep = r.report;
  if (r.incarnation != incarnation_) rep.round = 0;  // an earlier manager's round
  auto [seen, first] = seen_boot_.try_emplace(rep.node, r.boot);
  const bool restarted = !first && seen->second != r.boot;
  seen->second = r.boot;
  // chorusd refreshes with the configuration committed before this report:
  // a change the report causes is still being written to the metadata group
  // (here flush() commits it at once).
  const primary::ManagerState committed = persisted_;
  cm_->report(rep);
  flush();
  if (restarted) refresh(rep.node, committed);
}

// The committed configuration, without a lease, to a replica that restarted.
template <class C>
void ManagerActor<C>::refresh(NodeId n, const primary::ManagerState& committed) {
  if (committed.config.epoch == primary::Epoch(0)) return;
  const auto& replicas = committed.replicas;
  if (std::find(replicas.begin(), replicas.end(), n) == replicas.end()) return;
  primary::Decision d{primary::Decision::Kind::kRenewal, committed.config, 0, "refresh", true};
  d.config.lease_ticks = 0;
  c_.trace(fmt::format("manager: refreshes n{} with epoch {} (it restarted)", n.value(),
                       d.config.epoch.value()));
  for (size_t i = 0; i < c_.nodes_.size(); ++i) {
    if (c_.nodes_[i]->id != n) continue;
    send(self(), static_cast<int>(i), [this, i, d, inc = incarnation_] { on_decision(i, d, inc); });
  }
}

// The manager's own faults: crashes (it restarts from the persisted state),
// stalls, and partitions that cut it off from some replicas (until the
// cluster's next partition change heals them).
template <class C>
void ManagerActor<C>::schedule_faults() {
  const FaultConfig& f = c_.opts_.faults;
  if (f.mean_crash_interval_us > 0) {
    every(f.mean_crash_interval_us * 3, [this] {
      crash();
      const FaultConfig& ff = c_.opts_.faults;
      c_.q_.after(c_.uniform_time(ff.min_down_us, ff.max_down_us), [this] {
        if (!loop_->up()) boot();
      });
    });
  }
  if (f.mean_stall_interval_us > 0) {
    every(f.mean_stall_interval_us * 3, [this] {
      const FaultConfig& ff = c_.opts_.faults;
      const Time d = c_.uniform_time(ff.min_stall_us, ff.max_stall_us);
      loop_->stall(d);
      ++c_.report_.stalls;
      c_.trace(fmt::format("manager STALLS for {}ms", d / kMillisecond));
    });
  }
  if (f.mean_partition_interval_us > 0) {
    every(f.mean_partition_interval_us * 2, [this] {
      for (int j = 0; j < c_.opts_.nodes; ++j) {
        if (!c_.prng_.chance(0.5)) continue;
        c_.net_->block(self(), j);
        c_.net_->block(j, self());
      }
      ++c_.report_.partitions;
      c_.trace("partition: manager cut off: " + c_.net_->describe());
    });
  }
}

// Runs fn about every `mean` while the safety phase lasts.
template <class C>
void ManagerActor<C>::every(Time mean, std::function<void()> fn) {
  c_.q_.after(c_.jittered(mean), [this, mean, fn = std::move(fn)]() mutable {
    if (!c_.faults_on_) return;
    fn();
    every(mean, std::move(fn));
  });
}

template <class C>
void ManagerActor<C>::node_started(size_t i) {
  granted_[i].reset();
  heard_[i] = Heard{};  // chorusd's round_heard_ is per process
  ++boots_[i];
  arm_report(i);
}

template <class C>
void ManagerActor<C>::arm_report(size_t i) {
  NodeLoop& loop = *c_.nodes_[i]->loop;
  const auto tick = std::chrono::microseconds(c_.opts_.tick_us);
  loop.at(c_.q_.now() + loop.real_delay(tick), [this, i] {
    report(i);
    arm_report(i);
  });
}

template <class C>
void ManagerActor<C>::report(size_t i) {
  auto& n = *c_.nodes_[i];
  if (!n.host) return;
  const Heard& h = heard_[i];
  const NodeId me = n.id;
  const LogIndex durable = n.host->storage().durable_index();
  auto r = n.host->configure_engine([&](Engine& e) -> std::optional<primary::ReplicaReport> {
    primary::ReplicaReport rep;
    // Named primary of the epoch it holds, yet not primary (it restarted),
    // or no decision since it started: the manager must fail it over, not
    // renew its lease.
    rep.serving = primary::reports_serving(me, e.epoch(), e.is_primary(), granted_[i]);
    rep.node = me;
    rep.epoch = e.epoch();
    rep.last_index = std::min(e.log().last_index(), durable);
    rep.last_term = e.term_at(rep.last_index).value_or(Term(0));
    rep.commit = e.status().commit_index;
    rep.sent_tick = e.ticks();
    rep.round = h.round;
    return rep;
  });
  if (!r) return;
  const Report msg{*r, h.incarnation, boots_[i]};
  send(static_cast<int>(i), self(), [this, msg] {
    if (cm_) on_report(msg);
  });
}

template <class C>
void ManagerActor<C>::on_poll(size_t i, const Poll& p) {
  Heard& h = heard_[i];
  const bool new_round = p.incarnation != h.incarnation || p.round != h.round;
  if (p.incarnation < h.incarnation) return;  // an earlier manager's late poll
  h = Heard{p.round, p.incarnation};
  if (new_round) report(i);
}

template <class C>
void ManagerActor<C>::on_decision(size_t i, const primary::Decision& d, uint64_t incarnation) {
  auto& n = *c_.nodes_[i];
  if (!n.host) return;
  // A manager older than the newest heard from (a delayed message): its
  // decisions are void, as chorusd's on_grant drops an older tag's.
  Heard& h = heard_[i];
  if (incarnation < h.incarnation) return;
  if (incarnation > h.incarnation) h = Heard{0, incarnation};
  auto& g = granted_[i];
  if (!g || std::tie(d.config.epoch, d.config.version) >= std::tie(g->epoch, g->version)) {
    g = d.config;
  }
  primary::Configuration cfg = d.config;
  if (cfg.primary == n.id) {
    cfg.lease_anchor_tick = d.lease_anchor_tick;
  } else {
    cfg.lease_ticks = 0;  // a lease is the primary's; its anchor is on the primary's clock
  }
  const Status st = n.host->configure_engine([&](Engine& e) { return e.configure(cfg); });
  if (!st.is_ok() && c_.opts_.trace) {
    c_.trace(fmt::format("n{} refuses configuration epoch {}: {}", i + 1, cfg.epoch.value(),
                         st.to_string()));
  }
}

// The settings a seed draws for a primary-backup engine. RunOptions::knobs
// fixes any by name: "acks", "promotion" (0 safe, 1 available), "on_timeout"
// (0 error, 1 degrade), "on_replica_failure" (0 block, 1 reconfigure),
// "prepare_timeout_ticks", "ack_timeout_ticks", "lease_ticks",
// "failure_timeout_ticks", "forward_proposals" (0 or 1),
// "retain_unreplicated_bytes" (0: unbounded).
template <primary::AckRule R>
struct PrimaryTraits {
  using Engine = primary::PrimaryBackup<R>;
  struct Knobs {
    primary::Options engine;
    primary::ManagerOptions manager;
    bool lease_reads = false;
  };
  using Invariants = PrimaryInvariants;
  template <class C>
  using Controller = ManagerActor<C>;

  static Knobs draw(const RunOptions& o, Prng& setup);
  static std::string describe(const Knobs& k);
  // The settings under which acknowledged writes may be lost (and are
  // reported): cluster_loss.h holds such a run to its reports.
  static bool lossy(const Knobs& k) {
    return Engine::capabilities(k.engine).may_lose_acknowledged_writes ||
           k.manager.promotion == primary::Promotion::kAvailable;
  }
  static bool lease_reads(const Knobs& k) { return k.lease_reads; }
  // A backup answers reads (and writes, with forward_proposals off) with
  // kNotLeader and the primary: clients follow it.
  static constexpr bool kForwards = false;

  static std::unique_ptr<Engine> make(NodeId id, std::vector<NodeId> /*voters*/, Prng /*prng*/,
                                      primary::PersistentState state, const Knobs& k) {
    primary::Options o = k.engine;
    o.id = id;
    return std::make_unique<Engine>(o, std::move(state));
  }
  static std::vector<core::Entry> log_entries(const Engine& e) {
    std::vector<core::Entry> out;
    const auto& log = e.log();
    for (LogIndex i = log.first_index(); i <= log.last_index(); i = i.next())
      out.push_back(log.at(i));
    return out;
  }
  // A backup acknowledges only what it holds durably (messages.h).
  static std::optional<LogIndex> promised_durable(const primary::Message& m) {
    const auto* r = std::get_if<primary::AppendResponse>(&m.body);
    if (!r || r->refusal != primary::Refusal::kNone) return std::nullopt;
    return r->match_index;
  }
  static NodeId from(const primary::Message& m) { return m.from; }
  static NodeId to(const primary::Message& m) { return m.to; }
};

template <primary::AckRule R>
typename PrimaryTraits<R>::Knobs PrimaryTraits<R>::draw(const RunOptions& o, Prng& setup) {
  auto given = [&](const char* name) -> std::optional<int> {
    auto it = o.knobs.find(name);
    if (it == o.knobs.end() || it->second < 0) return std::nullopt;
    return it->second;
  };
  auto pick = [&](const char* name, uint64_t lo, uint64_t hi) {
    return static_cast<uint32_t>(given(name).value_or(static_cast<int>(setup.uniform(lo, hi))));
  };
  Knobs k;
  primary::Options& e = k.engine;
  primary::ManagerOptions& m = k.manager;
  m.rule = R;
  const auto backups = static_cast<uint64_t>(std::max(1, o.nodes - 1));
  e.acks = R == primary::AckRule::kSemiSync ? pick("acks", 1, backups) : 1;
  m.acks = e.acks;
  e.prepare_timeout_ticks = pick("prepare_timeout_ticks", 5, 60);
  e.ack_timeout_ticks = pick("ack_timeout_ticks", 5, 60);
  if (R == primary::AckRule::kSemiSync) {
    e.on_timeout = given("on_timeout").value_or(setup.chance(0.5) ? 1 : 0) != 0
                       ? primary::OnTimeout::kDegrade
                       : primary::OnTimeout::kError;
  }
  // Async acknowledges on the primary alone: no promotion is safe. Sync-all
  // draws safe (available lets a rolled-back write come back, by design).
  const bool available =
      R == primary::AckRule::kAsync ||
      given("promotion").value_or(R == primary::AckRule::kSemiSync && setup.chance(0.5) ? 1 : 0) !=
          0;
  m.promotion = available ? primary::Promotion::kAvailable : primary::Promotion::kSafe;
  e.promotion_available = available;
  // Sync-all draws reconfigure for half the seeds: a dropped replica is a
  // learner that receives the log and is re-admitted once caught up. (From
  // its own stream, so the seed's other draws stay what they were.)
  Prng reconfigure_draw(o.seed ^ 0x7265636f6e666967ULL);
  if (R == primary::AckRule::kSyncAll &&
      given("on_replica_failure").value_or(reconfigure_draw.chance(0.5) ? 1 : 0) != 0) {
    m.on_replica_failure = primary::OnReplicaFailure::kReconfigure;
  }
  e.max_entries_per_append = size_t{1} << setup.uniform(0, 6);
  e.forward_proposals = given("forward_proposals").value_or(setup.chance(0.7) ? 1 : 0) != 0;
  e.snapshot_trailing_entries = o.snapshot_every_entries / 4;
  e.retain_unreplicated_entries = o.snapshot_every_entries;
  // Half the seeds also bound what the primary keeps for its backups by
  // bytes (chorusd: 128 MiB), small enough to bind. From its own stream, so
  // the seed's other draws stay what they were.
  // (It binds only with the entries bound, which needs snapshots on.)
  Prng bytes_draw(o.seed ^ 0x72657461696e6279ULL);
  const bool bound_bytes = bytes_draw.chance(0.5);
  const auto drawn_bytes = static_cast<int>(bytes_draw.uniform(64, 8192));
  if (e.retain_unreplicated_entries > 0) {
    e.retain_unreplicated_bytes = static_cast<size_t>(
        given("retain_unreplicated_bytes").value_or(bound_bytes ? drawn_bytes : 0));
  }
  m.lease_ticks = pick("lease_ticks", 4, 20);
  m.renew_interval_ticks = std::max<uint64_t>(1, setup.uniform(1, m.lease_ticks / 2));
  m.failure_timeout_ticks = pick("failure_timeout_ticks", 10, 40);
  m.promotion_wait_ticks = setup.uniform(2, 20);
  // Leases are sized against the clock skew the seed may apply.
  m.clock_drift_bound = std::max(1.0, o.faults.max_clock_skew);
  k.lease_reads = setup.chance(0.5);
  primary::Options check = e;
  check.id = NodeId(1);
  CHORUS_ASSERT(check.validate().is_ok());
  CHORUS_ASSERT(m.validate().is_ok());
  return k;
}

template <primary::AckRule R>
std::string PrimaryTraits<R>::describe(const Knobs& k) {
  const primary::Options& e = k.engine;
  const primary::ManagerOptions& m = k.manager;
  std::string s = fmt::format("{}:", Engine::kName);
  if (R == primary::AckRule::kSemiSync) {
    s += fmt::format(" acks {}  on_timeout {}  ack timeout {} ticks", e.acks,
                     e.on_timeout == primary::OnTimeout::kDegrade ? "degrade" : "error",
                     e.ack_timeout_ticks);
  }
  if (R == primary::AckRule::kSyncAll) {
    s += fmt::format(
        " on_replica_failure {}  prepare timeout {} ticks",
        m.on_replica_failure == primary::OnReplicaFailure::kReconfigure ? "reconfigure" : "block",
        e.prepare_timeout_ticks);
  }
  s += fmt::format("  forward {}", e.forward_proposals ? "on" : "off");
  if (e.retain_unreplicated_bytes > 0) {
    s += fmt::format("  retain <= {} bytes", e.retain_unreplicated_bytes);
  }
  s += fmt::format(
      "  promotion {}  append <= {} entries  lease reads {}\nmanager: lease {} ticks, renew every "
      "{}, failure timeout {}, promotion wait {}, clock drift bound {:.3f}{}",
      m.promotion == primary::Promotion::kAvailable ? "available" : "safe",
      e.max_entries_per_append, k.lease_reads ? "on" : "off", m.lease_ticks, m.renew_interval_ticks,
      m.failure_timeout_ticks, m.promotion_wait_ticks, m.clock_drift_bound,
      lossy(k) ? "  (lossy: losses must be reported exactly)" : "");
  return s;
}

template <>
inline constexpr bool kSimulated<primary::SyncAll> = true;
template <>
inline constexpr bool kSimulated<primary::SemiSync> = true;
template <>
inline constexpr bool kSimulated<primary::Async> = true;
template <>
struct EngineTraits<primary::SyncAll> : PrimaryTraits<primary::AckRule::kSyncAll> {};
template <>
struct EngineTraits<primary::SemiSync> : PrimaryTraits<primary::AckRule::kSemiSync> {};
template <>
struct EngineTraits<primary::Async> : PrimaryTraits<primary::AckRule::kAsync> {};

// Compiled once, in primary_sim.cc.
extern template class Cluster<primary::SyncAll>;
extern template class Cluster<primary::SemiSync>;
extern template class Cluster<primary::Async>;

}  // namespace chorus::sim
