#include "server/primary_manager.h"

#include <algorithm>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "net/codec/manager_codec.h"
#include "server/primary_setup.h"
#include "storage/kv/state_machine.h"

namespace chorus::server {
namespace {

constexpr uint64_t kLow32 = 0xffffffffULL;
constexpr int kTickBits = 40;  // report ticks below 2^40; the nonce above
constexpr uint64_t kTickMask = (uint64_t{1} << kTickBits) - 1;
constexpr auto kLoadRetry = std::chrono::seconds(5);
// As primary::ManagerOptions::clock_drift_bound's default.
constexpr double kClockDriftBound = 1.1;

std::string nodes(const std::vector<NodeId>& v) {
  std::string out;
  for (NodeId n : v) out += fmt::format("{}n{}", out.empty() ? "" : ",", n.value());
  return out;
}

}  // namespace

std::string manager_state_key(GroupId group) {
  return fmt::format("primary/{}", group.value());
}

PrimaryManagers::PrimaryManagers(Deps d)
    : d_(std::move(d)), prng_(d_.prng_seed ^ 0x6a09e667f3bcc908ULL) {
  incarnation_ = (prng_.next_u64() & 0xffffff) | 1;
}

bool PrimaryManagers::still_leading() const {
  const core::SoftState ss = d_.meta->soft_state();
  return leading_ && d_.meta->healthy() && ss.role == core::Role::kLeader &&
         ss.term.value() == managed_term_;
}

void PrimaryManagers::tick() {
  report_all();
  manage();
}

Status PrimaryManagers::receive(const net::IncomingMessage& m) {
  CHORUS_ASSIGN_OR_RETURN(net::ManagerMessage msg, net::decode_manager_message(m));
  const GroupId g(m.message.group_id());
  if (auto* r = std::get_if<primary::ReplicaReport>(&msg)) {
    on_report(g, *r);
  } else {
    const auto& grant = std::get<net::ManagerGrant>(msg);
    on_grant(g, grant.config, grant.round);
  }
  return Status::ok();
}

std::optional<primary::ManagerStatus> PrimaryManagers::status(GroupId group) const {
  auto it = slots_.find(group);
  if (!leading_ || it == slots_.end()) return std::nullopt;
  return it->second.mgr->status();
}

// ---------------------------------------------------------------------------
// Replica side

void PrimaryManagers::report_all() {
  for (const auto& def : d_.table().proto().keyspaces()) {
    if (!is_primary_strategy(def.strategy())) continue;
    const GroupId g(def.group_id());
    ReplicaGroup* rg = d_.group(g);
    if (rg != nullptr && rg->managed()) send_report(g, *rg);
  }
}

void PrimaryManagers::send_report(GroupId g, ReplicaGroup& rg) {
  const NodeId leader = d_.meta->soft_state().leader;
  if (leader == kNoNode) return;
  auto lg = last_grant_.find(g);
  auto r = rg.manager_report(
      round_heard_[g],
      lg == last_grant_.end() ? std::nullopt : std::optional<primary::Configuration>(lg->second));
  if (!r) return;
  r->node = self();
  if (r->sent_tick > kTickMask) return;  // 348 years of 10 ms ticks
  r->sent_tick |= incarnation_ << kTickBits;
  if (leader == self()) {
    on_report(g, *r);
  } else {
    d_.transport->send(net::encode_manager_report(g, leader, *r));
  }
}

void PrimaryManagers::on_grant(GroupId g, const std::optional<primary::Configuration>& c,
                               uint64_t round) {
  uint64_t& heard = round_heard_[g];
  // A manager older than the newest heard from: a deposed metadata leader
  // that has not stepped down yet, or a delayed message. Its grants are void.
  if ((round >> 32) < (heard >> 32)) return;
  heard = std::max(heard, round);
  if (!c) return;
  auto [it, fresh] = last_grant_.try_emplace(g, *c);
  if (!fresh && std::tie(c->epoch, c->version) >= std::tie(it->second.epoch, it->second.version)) {
    it->second = *c;
  }
  ReplicaGroup* rg = d_.group(g);
  if (rg == nullptr || !rg->managed()) return;
  primary::Configuration mine = *c;
  if (mine.primary == self() && mine.lease_ticks > 0) {
    // The lease counts from a report of this incarnation, or not at all.
    if ((mine.lease_anchor_tick >> kTickBits) == incarnation_) {
      mine.lease_anchor_tick &= kTickMask;
    } else {
      mine.lease_ticks = 0;
      mine.lease_anchor_tick = 0;
    }
  } else {
    mine.lease_anchor_tick &= kTickMask;
  }
  if (Status st = rg->configure(mine); !st.is_ok()) {
    // Normal for a delayed grant; a restarted primary named again says so
    // in its next report (ReplicaReport::serving).
    spdlog::debug("group {}: configuration of epoch {} refused: {}", g.value(), c->epoch.value(),
                  st.to_string());
  }
}

// ---------------------------------------------------------------------------
// Manager side

void PrimaryManagers::manage() {
  const core::SoftState ss = d_.meta->soft_state();
  const bool leader = d_.meta->healthy() && ss.role == core::Role::kLeader;
  if (!leader) {
    if (leading_) {
      slots_.clear();
      leading_ = false;
      ++generation_;
      spdlog::info("primary-backup managers stopped: this node no longer leads the metadata group");
    }
    return;
  }
  if (!leading_ || ss.term.value() != managed_term_) {
    slots_.clear();
    reloads_.clear();
    leading_ = true;
    loading_ = false;
    managed_term_ = ss.term.value();
    leading_since_ = Clock::now();
    ++generation_;
  }
  // Keyspaces dropped since: forget their managers.
  for (auto it = slots_.begin(); it != slots_.end();) {
    const auto* def = [&]() -> const metapb::KeyspaceDef* {
      for (const auto& d : d_.table().proto().keyspaces()) {
        if (GroupId(d.group_id()) == it->first) return &d;
      }
      return nullptr;
    }();
    it = def == nullptr ? slots_.erase(it) : std::next(it);
  }
  load_missing();
  for (auto& [g, s] : slots_) {
    advance(s);
    process(g, s);
    if (s.mgr->status().phase == primary::ManagerStatus::Phase::kProbing) probe(g, s);
  }
}

// The manager's clock follows this node's monotonic clock, caught up before
// every input: a report must count as received when it arrived, not at the
// last timer tick (review: a renewal was then recorded before the report it
// anchors on, and the manager's view of the lease ended before the primary's).
void PrimaryManagers::advance(Slot& s) {
  const auto tick = std::chrono::milliseconds(std::max<uint32_t>(1, d_.config->raft.tick_ms));
  const auto due = static_cast<uint64_t>((Clock::now() - s.origin) / tick);
  while (s.ticks_done < due) {
    s.mgr->tick();
    ++s.ticks_done;
  }
}

void PrimaryManagers::load_missing() {
  if (loading_) return;
  // The previous leader may still renew leases until CheckQuorum deposes it:
  // one election timeout after its last answer from a majority, while this
  // one was elected at least one (randomized, at most two) after that. Wait
  // one maximal election timeout, stretched by the drift bound.
  const auto& raft = d_.config->raft;
  const auto quiet =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(
          2.0 * raft.election_timeout_ticks * raft.tick_ms * kClockDriftBound));
  if (Clock::now() - leading_since_ < quiet) return;
  bool missing = false;
  const auto now = Clock::now();
  for (const auto& def : d_.table().proto().keyspaces()) {
    const GroupId g(def.group_id());
    auto later = retry_after_.find(g);
    if (later != retry_after_.end() && later->second > now) continue;
    if (is_primary_strategy(def.strategy()) && !slots_.contains(g)) missing = true;
  }
  if (!missing) return;
  loading_ = true;
  const uint64_t gen = generation_;
  // A read barrier first: this leader has applied everything committed, so
  // the state read below holds every appointment ever made.
  d_.meta->read(host::Consistency::kLinearizable, [this, gen](Result<LogIndex> r) {
    if (gen != generation_) return;
    loading_ = false;
    if (!r.is_ok()) return;
    // A keyspace whose manager cannot start is tried again in a while, not
    // every tick (each try is a read barrier and a log line).
    const auto give_up = [this](GroupId g) { retry_after_[g] = Clock::now() + kLoadRetry; };
    for (const auto& def : d_.table().proto().keyspaces()) {
      const GroupId g(def.group_id());
      if (!is_primary_strategy(def.strategy()) || slots_.contains(g)) continue;
      const std::map<std::string, std::string> options(def.options().begin(), def.options().end());
      auto settings = primary_settings(def.strategy(), options, *d_.config);
      if (!settings.is_ok()) {
        spdlog::error("keyspace '{}': its manager cannot start: {}", def.name(),
                      settings.status().to_string());
        give_up(g);
        continue;
      }
      auto bytes = d_.meta->state().read(manager_state_key(g));
      if (!bytes.is_ok()) {
        spdlog::error("keyspace '{}': manager state unreadable: {}", def.name(),
                      bytes.status().to_string());
        give_up(g);
        continue;
      }
      primary::ManagerState st;
      std::string raw;
      if (bytes->has_value()) {
        raw = **bytes;
        auto decoded = net::decode_manager_state(raw);
        if (!decoded.is_ok()) {
          spdlog::error("keyspace '{}': {}", def.name(), decoded.status().to_string());
          give_up(g);
          continue;
        }
        st = std::move(decoded).value();
      } else {
        for (uint64_t id : d_.config->voter_ids()) st.replicas.push_back(NodeId(id));
      }
      Slot s;
      primary::ManagerOptions mo = settings->manager;
      mo.prefer_not = self();
      s.mgr = std::make_unique<primary::ConfigManager>(mo, st);
      s.persisted = st;
      s.persisted_bytes = std::move(raw);
      // Unique across incarnations (node id, 48 random bits): exactly-once
      // sessions of the metadata state machine.
      s.session = (d_.config->node_id << 48) | (prng_.next_u64() >> 16) | 1;
      s.origin = Clock::now();
      s.generation = ++generation_;
      // A new tag for every manager of this keyspace in this term (at most
      // 256; then the metadata leader must change before another reload).
      uint64_t& reloads = reloads_[g];
      if (reloads > 0xff) {
        spdlog::error("keyspace '{}': its manager reloaded too often in metadata term {}",
                      def.name(), managed_term_);
        give_up(g);
        continue;
      }
      s.tag = ((managed_term_ & 0xffffff) << 8) | reloads++;
      spdlog::info("keyspace '{}': managing from epoch {} (primary n{})", def.name(),
                   st.config.epoch.value(), st.config.primary.value());
      slots_.emplace(g, std::move(s));
    }
  });
}

void PrimaryManagers::on_report(GroupId g, primary::ReplicaReport r) {
  auto it = slots_.find(g);
  if (!still_leading() || it == slots_.end()) return;
  // A round of another manager answers none of this one's probes.
  r.round = (r.round >> 32) == it->second.tag ? (r.round & kLow32) : 0;
  const uint64_t nonce = r.sent_tick >> kTickBits;
  auto [seen, first] = it->second.incarnations.try_emplace(r.node, nonce);
  const bool restarted = !first && seen->second != nonce;
  seen->second = nonce;
  advance(it->second);
  it->second.mgr->report(r);
  process(g, it->second);
  // A restarted replica learns the configuration now, not at the next
  // renewal: a sync-all write waits for it, a learner's re-admission too.
  if (restarted) refresh(g, it->second, r.node);
}

void PrimaryManagers::process(GroupId g, Slot& s) {
  for (auto& d : s.mgr->take_decisions()) {
    if (d.kind == primary::Decision::Kind::kRenewal) {
      // A newer renewal of the same configuration supersedes a queued one.
      std::erase_if(s.queue, [&](const primary::Decision& q) {
        return q.kind == primary::Decision::Kind::kRenewal && q.config == d.config;
      });
    }
    if (d.routine && s.queue.empty() && d.config == s.persisted.config) {
      // A lease on the committed configuration waits for nothing: holding
      // it behind a slow metadata write (of witnesses, say) let the
      // primary's lease lapse.
      deliver(g, d, s.persisted);
      continue;
    }
    s.queue.push_back(std::move(d));
  }
  if (s.persisting) return;
  if (s.mgr->state() != s.persisted) {
    persist(g, s);
    return;
  }
  while (!s.queue.empty()) {
    deliver(g, s.queue.front(), s.persisted);
    s.queue.pop_front();
  }
}

void PrimaryManagers::persist(GroupId g, Slot& s) {
  const primary::ManagerState next = s.mgr->state();
  std::string bytes = net::encode_manager_state(next);
  kvpb::Command cmd;
  if (s.persisted_bytes.empty()) {
    cmd = kv::make_put(manager_state_key(g), bytes);
    cmd.mutable_put()->set_condition(kvpb::Put::IF_ABSENT);
  } else {
    cmd = kv::make_cas(manager_state_key(g), s.persisted_bytes, bytes);
  }
  cmd.set_client_id(s.session);
  cmd.set_seq(++s.seq);
  s.persisting = true;
  const uint64_t gen = s.generation;
  d_.meta->write(std::move(cmd), [this, g, gen, next, bytes](Result<kvpb::Result> r) {
    auto it = slots_.find(g);
    if (it == slots_.end() || it->second.generation != gen) return;
    Slot& s = it->second;
    s.persisting = false;
    if (!r.is_ok()) {
      // Perhaps applied: if so the next compare-and-set fails and the
      // manager reloads what was stored.
      spdlog::warn("group {}: storing the manager's state: {}", g.value(), r.status().to_string());
      return;
    }
    if (r->code() != kvpb::Result::OK) {
      spdlog::warn("group {}: the stored manager state changed under this manager; reloading",
                   g.value());
      slots_.erase(it);
      return;
    }
    s.persisted = next;
    s.persisted_bytes = bytes;
    process(g, s);
  });
}

uint64_t PrimaryManagers::wire_round(const Slot& s) const {
  return (s.tag << 32) | (s.mgr->probe_round() & kLow32);
}

void PrimaryManagers::deliver(GroupId g, const primary::Decision& d,
                              const primary::ManagerState& st) {
  if (!still_leading()) return;  // a deposed manager decides nothing
  primary::Configuration c = d.config;
  c.lease_anchor_tick = d.lease_anchor_tick;
  if (!d.routine) {
    spdlog::info("group {}: epoch {} primary n{} members {} (version {}): {}", g.value(),
                 c.epoch.value(), c.primary.value(), nodes(c.members), c.version, d.why);
  }
  auto it = slots_.find(g);
  const uint64_t round = it == slots_.end() ? 0 : wire_round(it->second);
  for (NodeId n : st.replicas) grant(g, n, c, round);
}

// To a replica: over the transport, or straight to this node's own side.
void PrimaryManagers::grant(GroupId g, NodeId n, const std::optional<primary::Configuration>& c,
                            uint64_t round) {
  if (n == self()) {
    on_grant(g, c, round);
  } else {
    d_.transport->send(net::encode_manager_grant(g, n, {c, round}));
  }
}

// The committed configuration, without a lease (a refresh grants none; a
// restarted primary refuses it and says so in its next report).
void PrimaryManagers::refresh(GroupId g, const Slot& s, NodeId n) {
  if (!still_leading() || s.persisted.config.epoch == primary::Epoch(0)) return;
  const auto& replicas = s.persisted.replicas;
  if (std::find(replicas.begin(), replicas.end(), n) == replicas.end()) return;
  primary::Configuration c = s.persisted.config;
  c.lease_ticks = 0;
  c.lease_anchor_tick = 0;
  grant(g, n, c, wire_round(s));
}

void PrimaryManagers::probe(GroupId g, const Slot& s) {
  const uint64_t round = wire_round(s);
  for (NodeId n : s.mgr->state().replicas) grant(g, n, std::nullopt, round);
}

}  // namespace chorus::server
