#include "core/primary/config_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>

#include "base/assert.h"
#include "base/planted.h"

namespace chorus::primary {
namespace {

bool contains(const std::vector<NodeId>& v, NodeId n) {
  return std::find(v.begin(), v.end(), n) != v.end();
}

std::string names(const std::vector<NodeId>& v) {
  std::string out;
  for (NodeId n : v) out += fmt::format("{}n{}", out.empty() ? "" : ", ", n.value());
  return out.empty() ? "nobody" : out;
}

std::vector<NodeId> without(std::vector<NodeId> v, NodeId n) {
  v.erase(std::remove(v.begin(), v.end(), n), v.end());
  return v;
}

std::vector<NodeId> with(std::vector<NodeId> v, NodeId n) {
  if (!contains(v, n)) v.push_back(n);
  return v;
}

}  // namespace

Status ManagerOptions::validate() const {
  if (acks == 0) return Status::invalid_argument("acks: must be at least 1");
  if (failure_timeout_ticks == 0)
    return Status::invalid_argument("failure_timeout: must be at least one tick");
  if (lease_ticks == 0) return Status::invalid_argument("lease: must be at least one tick");
  if (renew_interval_ticks == 0 || renew_interval_ticks >= lease_ticks)
    return Status::invalid_argument("renew_interval: must be in [1, lease)");
  if (!(clock_drift_bound >= 1.0 && clock_drift_bound <= 4.0))
    return Status::invalid_argument("clock_drift_bound: must be in [1, 4]");
  if (rule == AckRule::kAsync && promotion == Promotion::kSafe)
    return Status::invalid_argument(
        "promotion: async acknowledges writes on the primary alone, so no promotion is safe; "
        "use available");
  if (rule != AckRule::kSyncAll && on_replica_failure == OnReplicaFailure::kReconfigure)
    return Status::invalid_argument(
        "on_replica_failure: reconfigure is for sync-all (a dropped semi-sync backup may hold "
        "the only copy of an acknowledged write)");
  return Status::ok();
}

std::string_view phase_name(ManagerStatus::Phase p) {
  switch (p) {
    case ManagerStatus::Phase::kServing:
      return "serving";
    case ManagerStatus::Phase::kLeaseExpiring:
      return "lease-expiring";
    case ManagerStatus::Phase::kProbing:
      return "probing";
  }
  return "?";
}

ConfigManager::ConfigManager(ManagerOptions opts, ManagerState state)
    : opts_(std::move(opts)), state_(std::move(state)) {
  CHORUS_ASSERT(opts_.validate().is_ok());
  CHORUS_ASSERT(!state_.replicas.empty());
  for (NodeId n : state_.replicas) replicas_[n] = Replica{};
  for (NodeId n : state_.config.members) CHORUS_ASSERT(replicas_.count(n) == 1);
  if (state_.witnesses.empty()) state_.witnesses = state_.config.members;
  if (state_.config.epoch == Epoch(0)) {
    // No primary yet: probe, and appoint the best replica that answers.
    state_.witnesses = state_.replicas;
    ++probe_round_;
    phase_ = Failover{kNoNode, now_};
  }
  evaluate();
}

void ConfigManager::tick() {
  ++now_;
  evaluate();
}

void ConfigManager::report(const ReplicaReport& r) {
  auto it = replicas_.find(r.node);
  if (it == replicas_.end()) return;  // not a replica of this keyspace
  // An epoch the manager never appointed: not from this keyspace's history.
  if (r.epoch > state_.config.epoch) return;
  it->second.last = r;
  it->second.received_tick = now_;
  evaluate();
}

std::vector<Decision> ConfigManager::take_decisions() {
  return std::exchange(decisions_, {});
}

uint64_t ConfigManager::lease_expiry_tick() const {
  const double d = opts_.clock_drift_bound;
  const auto stretched =
      static_cast<uint64_t>(std::ceil(static_cast<double>(opts_.lease_ticks) * d * d));
  return last_grant_tick_ + stretched + 1;
}

bool ConfigManager::silent(NodeId n) const {
  return now_ - replicas_.at(n).received_tick > opts_.failure_timeout_ticks;
}

bool ConfigManager::failed(NodeId n) const {
  if (silent(n)) return true;
  const auto& last = replicas_.at(n).last;
  return last && last->epoch == state_.config.epoch && !last->serving;
}

bool ConfigManager::is_member(NodeId n) const {
  return contains(state_.config.members, n);
}

void ConfigManager::evaluate() {
  if (const auto* f = std::get_if<Failover>(&phase_)) {
    const Failover failover = *f;  // try_promote() may replace phase_
    try_promote(failover);
    return;
  }
  serve();
}

void ConfigManager::serve() {
  const NodeId p = state_.config.primary;
  note_established();
  if (failed(p)) {
    start_failover_if_due();
    return;
  }
  maybe_reconfigure();
  maybe_renew();
  if (!std::holds_alternative<Serving>(phase_)) return;
  reason_ = fmt::format("n{} is primary of epoch {}; lease granted at tick {}", p.value(),
                        state_.config.epoch.value(), last_grant_tick_);
  if (opts_.rule != AckRule::kSyncAll) return;
  for (NodeId b : state_.config.members) {
    if (b != p && silent(b)) {
      reason_ += fmt::format(
          "; n{} silent, on_replica_failure = block: writes stall until it "
          "returns",
          b.value());
    }
  }
}

// A renewal answers a report the primary sent after the previous grant's.
void ConfigManager::maybe_renew() {
  const Replica& r = replicas_.at(state_.config.primary);
  if (!r.last || now_ - last_grant_tick_ < opts_.renew_interval_ticks) return;
  if (r.received_tick <= last_grant_tick_) return;  // nothing new to anchor on
  renew(state_.config.members, "lease renewal", /*routine=*/true);
}

void ConfigManager::maybe_reconfigure() {
  if (opts_.on_replica_failure != OnReplicaFailure::kReconfigure) return;
  const NodeId p = state_.config.primary;
  const Replica& pr = replicas_.at(p);
  if (!pr.last) return;  // a renewal needs an anchor
  for (NodeId b : state_.config.members) {
    // Never down to the primary alone: its writes would then live on no
    // other witness, and a failover could not be safe without it (writes
    // stall instead, as with block, until a learner is re-admitted).
    if (b != p && silent(b) && state_.config.members.size() > 2) {
      renew(without(state_.config.members, b),
            fmt::format("n{} silent for more than {} ticks: dropped", b.value(),
                        opts_.failure_timeout_ticks));
      return;
    }
  }
  // PacificA: a replica rejoins only once it holds (nearly) what the
  // primary committed. A last entry of this epoch came from this primary, so
  // the learner holds the primary's log through there (Log Matching); the
  // rest, at most readmit_lag_entries, the primary sends it.
  for (NodeId x : state_.replicas) {
    const Replica& r = replicas_.at(x);
    if (is_member(x) || silent(x) || !r.last || r.last->epoch != state_.config.epoch) continue;
    if (epoch_of(r.last->last_term) != state_.config.epoch) continue;
    if (r.last->last_index.value() + opts_.readmit_lag_entries < pr.last->commit.value()) continue;
    renew(with(state_.config.members, x),
          fmt::format("n{} caught up to {} (the primary's commit {}): re-admitted", x.value(),
                      r.last->last_index.value(), pr.last->commit.value()));
    return;
  }
}

// Every replica that is not a member learns the log (Configuration::learners).
std::vector<NodeId> ConfigManager::learners_besides(const std::vector<NodeId>& members) const {
  std::vector<NodeId> out;
  for (NodeId n : state_.replicas) {
    if (!contains(members, n)) out.push_back(n);
  }
  return out;
}

void ConfigManager::renew(std::vector<NodeId> members, std::string why, bool routine) {
  const NodeId p = state_.config.primary;
  CHORUS_ASSERT(contains(members, p));
  const Replica& r = replicas_.at(p);
  CHORUS_ASSERT(r.last.has_value());
  // A change of members gets a newer version: a delayed older decision can
  // then never undo it at a replica (options.h, Configuration::version).
  if (members != state_.config.members) ++state_.config.version;
  state_.config.members = std::move(members);
  state_.config.learners = learners_besides(state_.config.members);
  for (NodeId n : state_.config.members) state_.witnesses = with(state_.witnesses, n);
  state_.config.lease_ticks = opts_.lease_ticks;
  last_grant_tick_ = now_;
  decisions_.push_back(
      {Decision::Kind::kRenewal, state_.config, r.last->sent_tick, std::move(why), routine});
}

// The epoch is established once every member reported an entry of it: each
// then holds the primary's log through the epoch's no-op, so every write
// acknowledged before the epoch (and the new primary had them all).
void ConfigManager::note_established() {
  if (state_.inherited.empty()) return;
  for (NodeId n : state_.config.members) {
    const Replica& r = replicas_.at(n);
    if (!r.last || epoch_of(r.last->last_term) != state_.config.epoch) return;
  }
  state_.inherited.clear();
}

// Who may answer a probe: the epoch's witnesses and those it inherited.
std::vector<NodeId> ConfigManager::promotion_witnesses() const {
  std::vector<NodeId> w = state_.witnesses;
  for (NodeId n : state_.inherited) w = with(std::move(w), n);
  return w;
}

void ConfigManager::start_failover_if_due() {
  const NodeId p = state_.config.primary;
  const uint64_t silent_for = now_ - replicas_.at(p).received_tick;
  if (now_ < lease_expiry_tick()) {
    reason_ =
        fmt::format("n{} {}; waiting until tick {} when its lease has certainly expired", p.value(),
                    silent(p) ? fmt::format("silent for {} ticks", silent_for)
                              : std::string("restarted and cannot serve its epoch"),
                    lease_expiry_tick());
    return;
  }
  ++probe_round_;
  phase_ = Failover{p, now_};
  try_promote(std::get<Failover>(phase_));
}

// Whether `n` answered this probe round and is not silent since.
bool ConfigManager::answered_probe(NodeId n, const Failover& f) const {
  const Replica& r = replicas_.at(n);
  return r.last && !silent(n) && r.last->round >= probe_round_ && r.received_tick >= f.probe_tick;
}

// Witnesses (the failed primary excepted) that answered this probe round
// and are not silent since.
std::vector<NodeId> ConfigManager::answered(const Failover& f) const {
  std::vector<NodeId> out;
  for (NodeId n : promotion_witnesses()) {
    if (n != f.failed && answered_probe(n, f)) out.push_back(n);
  }
  return out;
}

// Which witnesses may answer, and (in *quorum) how many answers promotion =
// safe needs (the rules in the header).
std::vector<NodeId> ConfigManager::needed_answers(const Failover& f, size_t* quorum) const {
  std::vector<NodeId> w = without(promotion_witnesses(), f.failed);
  *quorum = w.size();
  if (opts_.rule == AckRule::kSemiSync) {
    const size_t m = without(state_.config.members, f.failed).size();
    *quorum = m >= opts_.acks ? m - opts_.acks + 1 : 1;
  }
  return w;
}

// The most up-to-date log by (last term, last index); on a tie not
// prefer_not, then the lower id.
std::optional<NodeId> ConfigManager::best_of(const std::vector<NodeId>& nodes) const {
  if constexpr (planted::kPbPromoteAny) {  // planted bug: log positions ignored
    if (!nodes.empty()) return nodes.front();
  }
  std::optional<NodeId> best;
  auto key = [&](NodeId n) {
    const ReplicaReport& r = *replicas_.at(n).last;
    return std::make_tuple(r.last_term, r.last_index, n != opts_.prefer_not);
  };
  for (NodeId n : nodes) {
    if (!best || key(n) > key(*best)) best = n;
  }
  return best;
}

void ConfigManager::try_promote(const Failover& f) {
  if (f.failed != kNoNode) {
    const Replica& old = replicas_.at(f.failed);
    if (!failed(f.failed) && old.last && old.last->round >= probe_round_) {
      // It is back before a successor: it holds every acknowledged write.
      phase_ = Serving{};
      renew(state_.config.members,
            fmt::format("n{} answered the probe: it stays primary", f.failed.value()));
      serve();
      return;
    }
  }
  size_t quorum = 0;
  const std::vector<NodeId> witnesses = needed_answers(f, &quorum);
  std::vector<NodeId> ans = answered(f);
  const bool safe = opts_.promotion == Promotion::kSafe && f.failed != kNoNode;
  const bool waited = now_ - f.probe_tick >= opts_.promotion_wait_ticks;
  const bool all = ans.size() == witnesses.size();
  // A failed primary that restarted and answered this probe holds, durably,
  // every write it acknowledged and every rollback marker it released: it is
  // a candidate, and with it any rule is met — used once no other witness
  // can answer, or after promotion_wait_ticks (else the usual rule decides,
  // with it among the candidates).
  const bool restarted_answered = f.failed != kNoNode && answered_probe(f.failed, f);
  const bool restart_decides = restarted_answered && (witnesses.empty() || waited);
  if (!restart_decides &&
      (ans.empty() || (safe && ans.size() < quorum) || (!safe && !all && !waited))) {
    reason_ = failover_reason(f);
    return;
  }
  if (restarted_answered) ans.push_back(f.failed);
  const NodeId best = *best_of(ans);
  std::vector<NodeId> members = with(state_.config.members, best);
  if (opts_.on_replica_failure == OnReplicaFailure::kReconfigure && f.failed != kNoNode &&
      best != f.failed) {
    members = without(std::move(members), f.failed);
    // Never a primary alone (see maybe_reconfigure): every other replica
    // that answered joins; the new epoch commits nothing until it prepared.
    for (NodeId n : state_.replicas) {
      if (n != f.failed && answered_probe(n, f)) members = with(std::move(members), n);
    }
    if (members.size() < 2 && safe && state_.replicas.size() > 1) {
      reason_ = fmt::format(
          "n{} failed; on_replica_failure = reconfigure with promotion = safe will not appoint "
          "n{} as the only member; waiting for another replica to answer",
          f.failed.value(), best.value());
      return;
    }
  }
  if (f.failed == kNoNode) members = state_.replicas;
  appoint(best, std::move(members),
          fmt::format("{}; n{} has the most durable log among {}",
                      f.failed == kNoNode ? "first appointment"
                                          : fmt::format("n{} failed", f.failed.value()),
                      best.value(), names(ans)),
          f.failed);
}

std::string ConfigManager::failover_reason(const Failover& f) const {
  size_t quorum = 0;
  const std::vector<NodeId> witnesses = needed_answers(f, &quorum);
  const std::vector<NodeId> ans = answered(f);
  std::vector<NodeId> missing;
  for (NodeId n : witnesses) {
    if (!contains(ans, n)) missing.push_back(n);
  }
  const std::string head = f.failed == kNoNode
                               ? fmt::format("no primary yet; probe round {}", probe_round_)
                               : fmt::format("n{} failed; its lease expired; probe round {}",
                                             f.failed.value(), probe_round_);
  if (opts_.promotion == Promotion::kSafe && f.failed != kNoNode) {
    const std::string rule = opts_.rule == AckRule::kSyncAll
                                 ? std::string("sync-all: every witness of the epoch")
                                 : fmt::format("semi-sync: m - k + 1 = {} of {} backups", quorum,
                                               without(state_.config.members, f.failed).size());
    return fmt::format(
        "{}; promotion = safe refuses to promote: {} of {} answers ({}); "
        "waiting for {}",
        head, ans.size(), quorum, rule, names(missing));
  }
  if (ans.empty()) return fmt::format("{}; no replica has answered yet", head);
  return fmt::format("{}; {} of {} answered; promoting the best at tick {} unless {} answer first",
                     head, ans.size(), witnesses.size(), f.probe_tick + opts_.promotion_wait_ticks,
                     names(missing));
}

void ConfigManager::appoint(NodeId primary, std::vector<NodeId> members, std::string why,
                            NodeId failed) {
  const Epoch next(state_.config.epoch.value() + 1);
  CHORUS_ASSERT(next > state_.config.epoch);
  CHORUS_ASSERT(contains(members, primary));
  // Sync-all: until every member holds an entry of the new epoch (its
  // no-op), writes acknowledged before it may be held only by its primary,
  // the previous witnesses and the primary that failed — members may have
  // been re-admitted or added without them (reconfigure). They stay
  // witnesses of the new epoch until it is established (note_established).
  if (opts_.rule == AckRule::kSyncAll && failed != kNoNode) {
    for (NodeId n : state_.witnesses) state_.inherited = with(state_.inherited, n);
    state_.inherited = with(state_.inherited, failed);
  }
  state_.config = Configuration{};
  state_.config.epoch = next;
  state_.config.primary = primary;
  state_.config.learners = learners_besides(members);
  state_.config.members = std::move(members);
  state_.config.lease_ticks = opts_.lease_ticks;
  state_.witnesses = state_.config.members;
  last_grant_tick_ = now_;
  phase_ = Serving{};
  reason_ = fmt::format("n{} appointed primary of epoch {}", primary.value(), next.value());
  decisions_.push_back({Decision::Kind::kAppointment, state_.config,
                        replicas_.at(primary).last->sent_tick, std::move(why)});
}

bool reports_serving(NodeId me, Epoch epoch, bool is_primary,
                     const std::optional<Configuration>& grant_since_start) {
  if (is_primary || epoch == Epoch(0)) return true;
  if (!grant_since_start) return false;
  return !(grant_since_start->primary == me && grant_since_start->epoch == epoch);
}

ManagerStatus ConfigManager::status() const {
  ManagerStatus s;
  s.config = state_.config;
  s.reason = reason_;
  for (NodeId n : state_.replicas) {
    if (!is_member(n)) s.excluded.push_back(n);
  }
  if (std::holds_alternative<Failover>(phase_)) {
    s.phase = ManagerStatus::Phase::kProbing;
  } else if (failed(state_.config.primary)) {
    s.phase = ManagerStatus::Phase::kLeaseExpiring;
  }
  return s;
}

}  // namespace chorus::primary
