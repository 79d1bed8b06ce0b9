// The Paxos core: construction, Ready, timers, and the acceptor and learner
// roles. The proposer's phase 1 and phase 2 are in paxos_proposer.cc.
#include "core/paxos/paxos.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "base/assert.h"
#include "base/overloaded.h"
#include "core/common/soft_state_report.h"

namespace chorus::paxos {

std::string_view paxos_role_name(PaxosRole r) {
  switch (r) {
    case PaxosRole::kFollower:
      return "follower";
    case PaxosRole::kPreparing:
      return "preparing";
    case PaxosRole::kLeader:
      return "leader";
  }
  CHORUS_UNREACHABLE();
}

Status Config::validate() const {
  if (id == kNoNode) return Status::invalid_argument("paxos: node id 0 is reserved");
  if (std::find(members.begin(), members.end(), id) == members.end()) {
    return Status::invalid_argument("paxos: members must include this node");
  }
  std::vector<NodeId> sorted = members;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    return Status::invalid_argument("paxos: duplicate member");
  }
  for (NodeId n : members) {
    if (n == kNoNode || n.value() >= (uint64_t{1} << kNodeBits)) {
      return Status::invalid_argument("paxos: member ids must be in [1, 65535]");
    }
  }
  if (election_timeout_ticks < 2 || heartbeat_interval_ticks == 0 ||
      heartbeat_interval_ticks >= election_timeout_ticks) {
    return Status::invalid_argument("paxos: need 0 < heartbeat_interval < election_timeout");
  }
  if (max_inflight_slots == 0 || max_slots_per_accept == 0 || max_slots_per_decide == 0 ||
      max_bytes_per_accept == 0 || max_bytes_per_decide == 0 || max_apply_slots_per_ready == 0 ||
      max_pending_reads == 0 || accept_retry_ticks == 0) {
    return Status::invalid_argument("paxos: every limit must be positive");
  }
  return Status::ok();
}

// ---- Slot codec -------------------------------------------------------------

core::Entry encode_slot(LogIndex slot, const Ballot& accepted, const Value& v) {
  CHORUS_ASSERT(!accepted.is_null());
  std::string data(8, '\0');
  const uint64_t origin = v.origin.to_term().value();
  for (int i = 0; i < 8; ++i) data[i] = static_cast<char>((origin >> (8 * i)) & 0xff);
  data += v.data;
  const Term t = accepted == kChosenBallot ? Term(~uint64_t{0}) : accepted.to_term();
  return core::Entry{t, slot, v.type, std::move(data)};
}

core::Entry encode_hole(LogIndex slot) {
  return core::Entry{Term(0), slot, core::EntryType::kNoop, {}};
}

bool is_hole(const core::Entry& e) {
  return e.term == Term(0);
}

std::optional<PValue> decode_slot(const core::Entry& e) {
  if (is_hole(e)) return std::nullopt;
  CHORUS_ASSERT_MSG(e.data.size() >= 8, "paxos slot entry shorter than its origin ballot");
  uint64_t origin = 0;
  for (int i = 0; i < 8; ++i) origin |= uint64_t{static_cast<uint8_t>(e.data[i])} << (8 * i);
  const Ballot b = e.term == Term(~uint64_t{0}) ? kChosenBallot : Ballot::from_term(e.term);
  return PValue{e.index, b, Value{Ballot::from_term(Term(origin)), e.type, e.data.substr(8)}};
}

// ---- Construction -----------------------------------------------------------

Paxos::Paxos(Config cfg, Prng prng, PersistentState st) : cfg_(std::move(cfg)), prng_(prng) {
  CHORUS_ASSERT_MSG(cfg_.validate().is_ok(), "invalid paxos config");
  promised_ = st.durable.promised;
  written_through_ = st.durable.written_through;
  durable_promised_ = promised_;
  prev_durable_ = st.durable;
  highest_seen_ = promised_;
  if (st.snapshot) {
    snapshot_index_ = st.snapshot->meta.index;
    snapshot_ = std::move(st.snapshot);
  }
  handed_last_ = snapshot_index_;
  for (const core::Entry& e : st.entries) {
    if (e.index <= snapshot_index_) continue;
    handed_last_ = std::max(handed_last_, e.index);
    const std::optional<PValue> pv = decode_slot(e);
    if (!pv) continue;
    slots_[e.index] = Record{pv->ballot, pv->value};
    if (pv->ballot != kChosenBallot) highest_seen_ = std::max(highest_seen_, pv->ballot);
  }
  disk_high_ = handed_last_;
  if (written_through_ > handed_last_) amnesic_through_ = written_through_;
  // What the host applied was chosen, and applied only once durable.
  applied_ = std::max(st.applied, snapshot_index_);
  chosen_through_ = applied_;
  for (LogIndex s = snapshot_index_.next(); s <= applied_; s = s.next()) {
    CHORUS_ASSERT_MSG(slots_.contains(s), "applied slot missing from the persisted log");
  }
  advance_chosen_prefix();
  prev_soft_ = soft_state();
  reset_timer();
}

// ---- Introspection ----------------------------------------------------------

PaxosRole Paxos::paxos_role() const {
  return std::visit(Overloaded{[](const Follower&) { return PaxosRole::kFollower; },
                               [](const Preparing&) { return PaxosRole::kPreparing; },
                               [](const Leader&) { return PaxosRole::kLeader; }},
                    role_);
}

core::Role Paxos::role() const {
  switch (paxos_role()) {
    case PaxosRole::kFollower:
      return core::Role::kFollower;
    case PaxosRole::kPreparing:
      return core::Role::kCandidate;
    case PaxosRole::kLeader:
      return core::Role::kLeader;
  }
  CHORUS_UNREACHABLE();
}

Ballot Paxos::ballot() const {
  if (const auto* p = std::get_if<Preparing>(&role_)) return p->ballot;
  if (const auto* l = std::get_if<Leader>(&role_)) return l->ballot;
  return Ballot{};
}

core::SoftState Paxos::soft_state() const {
  return core::SoftState{role(), promised_.to_term(), leader_};
}

std::optional<PValue> Paxos::accepted(LogIndex slot) const {
  auto it = slots_.find(slot);
  if (it == slots_.end()) return std::nullopt;
  return PValue{slot, it->second.ballot, it->second.value};
}

std::optional<Term> Paxos::term_at(LogIndex i) const {
  auto it = slots_.find(i);
  if (it == slots_.end()) return std::nullopt;
  return it->second.value.origin.to_term();
}

core::EngineStatus Paxos::status() const {
  core::EngineStatus st;
  st.soft = soft_state();
  st.role_name = paxos_role_name(paxos_role());
  st.commit_index = chosen_through_;
  st.first_index = snapshot_index_.next();
  st.last_index = slots_.empty() ? snapshot_index_ : slots_.rbegin()->first;
  st.snapshot_index = snapshot_index_;
  if (const auto* l = std::get_if<Leader>(&role_)) {
    for (NodeId peer : cfg_.members) {
      if (peer == cfg_.id) continue;
      // The peer matches through the slot before the first open slot it has
      // not accepted.
      LogIndex match = l->next_slot.prev();
      uint64_t lag = 0;
      for (const auto& [slot, s] : l->open) {
        if (s.accepted_by.contains(peer)) continue;
        if (lag == 0) match = slot.prev();
        ++lag;
      }
      st.peers.push_back(core::PeerStatus{peer, match, match.next(), lag});
    }
  }
  return st;
}

// ---- Ready ------------------------------------------------------------------

bool Paxos::has_ready() const {
  if (ready_outstanding_) return false;
  if (!msgs_.empty() || !msgs_after_persist_.empty() || !reads_.empty() || !outcomes_.empty() ||
      pending_install_ || unstable_from_ || applied_ < chosen_through_) {
    return true;
  }
  if ((DurableState{promised_, written_through_}) != prev_durable_ || soft_state() != prev_soft_) {
    return true;
  }
  const auto* l = std::get_if<Leader>(&role_);
  return l != nullptr && (l->accepts_pending || l->commit_pending);
}

bool Paxos::has_messages() const {
  const auto* l = std::get_if<Leader>(&role_);
  return !msgs_.empty() || (l != nullptr && (l->accepts_pending || l->commit_pending));
}

std::vector<Message> Paxos::take_messages() {
  flush_outbox();
  return std::exchange(msgs_, {});
}

void Paxos::flush_outbox() {
  auto* l = std::get_if<Leader>(&role_);
  if (l == nullptr) return;
  if (l->accepts_pending) {
    l->accepts_pending = false;
    send_accepts(*l, /*resend=*/false);
  }
  if (l->commit_pending) {
    // Learners hear of newly chosen slots at once (Paxos Made Moderately
    // Complex sends a decision per slot; one commit point covers them all).
    l->commit_pending = false;
    broadcast_heartbeat(*l);
  }
}

Ready Paxos::ready() {
  CHORUS_ASSERT_MSG(!ready_outstanding_, "ready() called before advance() of the previous Ready");
  flush_outbox();
  Ready rd;
  core::report_soft_state(rd, soft_state(), prev_soft_, role_reason_);
  // The host cuts a log's tail durably before it syncs the new copy, and
  // replaces the whole log for a snapshot: a crash in between loses slots
  // this acceptor accepted (found by the simulator). Before such a Ready,
  // one that makes written_through cover every slot on disk, so that a
  // restart can tell it may have lost some (amnesic_through()).
  const bool rewrites =
      pending_install_.has_value() ||
      (unstable_from_ && std::min(*unstable_from_, handed_last_.next()) <= handed_last_);
  const bool guard_first = rewrites && written_through_ < disk_high_;
  if (guard_first) written_through_ = disk_high_;
  const DurableState durable{promised_, written_through_};
  if (durable != prev_durable_) rd.durable_state = durable;
  prev_durable_ = durable;
  if (guard_first) {
    rd.messages = std::exchange(msgs_, {});
    ready_outstanding_ = true;
    return rd;  // the rewrite, and all that waits on it, in the next Ready
  }
  if (pending_install_) {
    rd.snapshot = std::move(*pending_install_);
    pending_install_.reset();
  }
  if (unstable_from_) {
    // Rewrite from the lowest changed slot to the last one: the host's log
    // is contiguous, so holes go down as term-0 entries.
    CHORUS_ASSERT(*unstable_from_ > snapshot_index_);
    const LogIndex last = slots_.empty() ? snapshot_index_ : slots_.rbegin()->first;
    const LogIndex from = std::min(*unstable_from_, handed_last_.next());
    for (LogIndex s = from; s <= last; s = s.next()) {
      auto it = slots_.find(s);
      rd.entries.push_back(it == slots_.end()
                               ? encode_hole(s)
                               : encode_slot(s, it->second.ballot, it->second.value));
    }
    unstable_from_.reset();
    handed_last_ = std::max(handed_last_, last);
    disk_high_ = std::max(disk_high_, last);
  }
  rd.messages = std::exchange(msgs_, {});
  rd.messages_after_persist = std::exchange(msgs_after_persist_, {});
  // Slots are applied strictly in order, from the first one not yet handed.
  CHORUS_ASSERT(applied_ >= snapshot_index_);
  for (size_t n = 0; applied_ < chosen_through_ && n < cfg_.max_apply_slots_per_ready; ++n) {
    applied_ = applied_.next();
    const Record& r = slots_.at(applied_);
    rd.committed.push_back(
        core::Entry{r.value.origin.to_term(), applied_, r.value.type, r.value.data});
  }
  rd.reads = std::exchange(reads_, {});
  rd.outcomes = std::exchange(outcomes_, {});
  ready_outstanding_ = true;
  return rd;
}

void Paxos::advance(const Ready& rd) {
  CHORUS_ASSERT(ready_outstanding_);
  ready_outstanding_ = false;
  if (rd.durable_state) {
    // Invariant: the durable promise only grows, and never passes the live one.
    CHORUS_ASSERT(rd.durable_state->promised >= durable_promised_);
    CHORUS_ASSERT(rd.durable_state->promised <= promised_);
    durable_promised_ = rd.durable_state->promised;
  }
  on_self_durable(rd);
}

void Paxos::compact(core::SnapshotRef snap) {
  CHORUS_ASSERT_MSG(snap.meta.index <= applied_, "snapshot beyond the applied slot");
  if (snap.meta.index <= snapshot_index_) return;
  CHORUS_ASSERT_MSG(!unstable_from_ || *unstable_from_ > snap.meta.index,
                    "compacting a slot that is not durable yet");
  snapshot_index_ = snap.meta.index;
  snapshot_ = std::move(snap);
  slots_.erase(slots_.begin(), slots_.upper_bound(snapshot_index_));
  handed_last_ = std::max(handed_last_, snapshot_index_);
}

// ---- Timers -----------------------------------------------------------------

void Paxos::reset_timer() {
  elapsed_ticks_ = 0;
  timeout_ticks_ = static_cast<uint32_t>(
      prng_.uniform(cfg_.election_timeout_ticks, 2 * cfg_.election_timeout_ticks - 1));
}

void Paxos::tick() {
  ++now_ticks_;
  if (auto* l = std::get_if<Leader>(&role_)) {
    if (++l->heartbeat_elapsed_ticks >= cfg_.heartbeat_interval_ticks) {
      l->heartbeat_elapsed_ticks = 0;
      broadcast_heartbeat(*l);
      send_accepts(*l, /*resend=*/true);  // Accepts or Accepteds may have been lost
    }
    return;
  }
  if (++elapsed_ticks_ < timeout_ticks_) return;
  if (std::holds_alternative<Preparing>(role_)) {
    start_phase1(fmt::format("phase 1 did not complete in {} ticks", timeout_ticks_));
  } else {
    start_phase1(fmt::format("no message from a proposer for {} ticks", timeout_ticks_));
  }
}

// ---- Dispatch ---------------------------------------------------------------

void Paxos::step(const Message& m) {
  CHORUS_ASSERT(m.to == cfg_.id);
  std::visit(Overloaded{
                 [&](const Prepare& p) { on_prepare(m, p); },
                 [&](const Promise& p) {
                   if (auto* pr = std::get_if<Preparing>(&role_)) on_promise(*pr, m.from, p);
                 },
                 [&](const Accept& a) { on_accept(m, a); },
                 [&](const Accepted& a) {
                   if (auto* l = std::get_if<Leader>(&role_)) on_accepted(*l, m, a);
                 },
                 [&](const Nack& n) { on_nack(n); },
                 [&](const Heartbeat& h) { on_heartbeat(m, h); },
                 [&](const CatchupRequest& c) { on_catchup(m, c); },
                 [&](const Decide& d) { on_decide(d); },
                 [&](const InstallSnapshot& s) { on_snapshot(s); },
             },
             m.body);
}

void Paxos::send(NodeId to, Body body) {
  CHORUS_ASSERT(to != cfg_.id);
  msgs_.push_back(Message{cfg_.id, to, std::move(body)});
}

void Paxos::send_after_persist(NodeId to, Body body) {
  CHORUS_ASSERT(to != cfg_.id);
  msgs_after_persist_.push_back(Message{cfg_.id, to, std::move(body)});
}

// ---- Acceptor ---------------------------------------------------------------

void Paxos::promise_at_least(Ballot b, NodeId from) {
  if (b <= promised_) return;
  promised_ = b;
  highest_seen_ = std::max(highest_seen_, b);
  const Ballot mine = ballot();
  if (!mine.is_null() && mine < b) {
    become_follower(kNoNode, fmt::format("preempted: promised ballot {}.{} of n{}", b.round,
                                         b.node.value(), from.value()));
  }
}

void Paxos::write_record(LogIndex slot, Ballot b, Value v) {
  CHORUS_ASSERT(slot > snapshot_index_);
  CHORUS_ASSERT(b == kChosenBallot || b <= promised_);
  Record& r = slots_[slot];
  // Paxos Made Simple §2.2 (P2c) makes a chosen value final: nothing may
  // replace a value this acceptor knows is chosen.
  CHORUS_ASSERT_MSG(r.ballot != kChosenBallot || r.value == v, "replacing a chosen value");
  if (r.ballot == b && r.value == v) return;  // a duplicate: already held
  r = Record{b, std::move(v)};
  if (!unstable_from_ || slot < *unstable_from_) unstable_from_ = slot;
}

Promise Paxos::make_promise(Ballot b, LogIndex first) const {
  Promise pr{b, {}, LogIndex(0)};
  if (snapshot_index_ >= first) pr.compacted_through = snapshot_index_;
  for (auto it = slots_.lower_bound(first); it != slots_.end(); ++it) {
    // A slot this learner knows chosen is reported as such: the proposer
    // must adopt it whatever ballot it was accepted under.
    const Ballot reported = it->first <= chosen_through_ ? kChosenBallot : it->second.ballot;
    pr.accepted.push_back(PValue{it->first, reported, it->second.value});
  }
  return pr;
}

void Paxos::on_prepare(const Message& m, const Prepare& p) {
  highest_seen_ = std::max(highest_seen_, p.ballot);
  // Paxos Made Simple §2.3: an acceptor never promises below a promise.
  if (p.ballot < promised_) {
    send(m.from, Nack{p.ballot, promised_});
    return;
  }
  // An acceptor that may have lost accepted slots answers nothing for them.
  if (!may_promise_from(p.first_slot)) return;
  if (p.ballot > promised_) reset_timer();  // give the new proposer a chance
  promise_at_least(p.ballot, m.from);
  // The promise leaves only once durable (messages_after_persist).
  send_after_persist(m.from, make_promise(p.ballot, p.first_slot));
}

void Paxos::on_accept(const Message& m, const Accept& a) {
  highest_seen_ = std::max(highest_seen_, a.ballot);
  // Paxos Made Simple §2.3 (P1a): accept only at or above the promise.
  if (a.ballot < promised_) {
    send(m.from, Nack{a.ballot, promised_});
    return;
  }
  promise_at_least(a.ballot, m.from);
  leader_ = a.ballot.node;
  elapsed_ticks_ = 0;
  Accepted reply{a.ballot, {}};
  reply.slots.reserve(a.proposals.size());
  for (const PValue& pv : a.proposals) {
    CHORUS_ASSERT(pv.ballot == a.ballot);
    // A slot known chosen keeps its value; the proposer's must be the same.
    if (!is_chosen_locally(pv.slot) && pv.slot > snapshot_index_) {
      write_record(pv.slot, a.ballot, pv.value);
    }
    reply.slots.push_back(pv.slot);
  }
  send_after_persist(m.from, std::move(reply));
  learn_commit(a.ballot, a.commit, /*may_catch_up=*/false);
}

void Paxos::on_heartbeat(const Message& m, const Heartbeat& h) {
  highest_seen_ = std::max(highest_seen_, h.ballot);
  if (h.ballot < promised_) {
    send(m.from, Nack{h.ballot, promised_});
    return;
  }
  const Ballot mine = ballot();
  if (!mine.is_null() && mine < h.ballot) {
    become_follower(h.ballot.node,
                    fmt::format("heartbeat from n{} with a higher ballot {}.{}", m.from.value(),
                                h.ballot.round, h.ballot.node.value()));
  }
  leader_ = h.ballot.node;
  elapsed_ticks_ = 0;
  learn_commit(h.ballot, h.commit, /*may_catch_up=*/true);
}

// ---- Learner ----------------------------------------------------------------

bool Paxos::is_chosen_locally(LogIndex slot) const {
  if (slot <= chosen_through_) return true;
  auto it = slots_.find(slot);
  if (it == slots_.end()) return false;
  if (it->second.ballot == kChosenBallot) return true;
  if (const auto* l = std::get_if<Leader>(&role_)) return l->chosen.contains(slot);
  // The proposer of ballot b proposes one value per slot, so holding its
  // ballot at a slot inside its commit point is holding the chosen value.
  return it->second.ballot == leader_ballot_ && slot <= leader_commit_;
}

void Paxos::advance_chosen_prefix() {
  auto* l = std::get_if<Leader>(&role_);
  while (is_chosen_locally(chosen_through_.next())) {
    chosen_through_ = chosen_through_.next();
    // Invariant: a chosen slot past the snapshot is held, to be applied.
    CHORUS_ASSERT(slots_.contains(chosen_through_));
    if (l == nullptr) continue;
    l->chosen.erase(chosen_through_);
    l->commit_pending = true;
    if (auto it = l->read_slots.find(chosen_through_); it != l->read_slots.end()) {
      for (uint64_t ctx : it->second) reads_.push_back(core::ReadState{ctx, chosen_through_});
      l->pending_reads -= it->second.size();
      l->read_slots.erase(it);
    }
  }
  // Every slot through amnesic_through_ is now learned as chosen: whatever
  // this acceptor lost there, a Promise reports the chosen values instead.
  if (amnesic_through_ && chosen_through_ >= *amnesic_through_) amnesic_through_.reset();
}

void Paxos::learn_commit(Ballot b, LogIndex commit, bool may_catch_up) {
  if (b > leader_ballot_) {
    leader_ballot_ = b;
    leader_commit_ = commit;
  } else if (b == leader_ballot_) {
    leader_commit_ = std::max(leader_commit_, commit);
  } else {
    return;
  }
  advance_chosen_prefix();
  if (may_catch_up && leader_commit_ > chosen_through_ && b.node != cfg_.id) {
    // A gap: slots the proposer knows chosen that we did not accept under
    // its ballot. Ask for them by range.
    send(b.node, CatchupRequest{chosen_through_.next(), leader_commit_});
  }
}

void Paxos::on_catchup(const Message& m, const CatchupRequest& c) {
  if (c.first <= snapshot_index_) {
    if (snapshot_) send(m.from, InstallSnapshot{*snapshot_});
    return;
  }
  // One page of the range, bounded by slots and bytes (at least one slot):
  // the learner asks for the rest once this is applied.
  Decide d;
  size_t bytes = 0;
  const LogIndex last = std::min(c.last, chosen_through_);
  for (LogIndex s = c.first; s <= last && d.chosen.size() < cfg_.max_slots_per_decide;
       s = s.next()) {
    PValue pv{s, kChosenBallot, slots_.at(s).value};
    bytes += pvalue_bytes(pv);
    if (!d.chosen.empty() && bytes > cfg_.max_bytes_per_decide) break;
    d.chosen.push_back(std::move(pv));
  }
  if (!d.chosen.empty()) send(m.from, std::move(d));
}

void Paxos::on_decide(const Decide& d) {
  // A leader learns every slot it needs from its own phase 1 and phase 2; a
  // late Decide (asked for while it followed) must not release its read
  // barriers, which only a slot chosen under its own ballot may do.
  if (std::holds_alternative<Leader>(role_)) return;
  for (const PValue& pv : d.chosen) {
    CHORUS_ASSERT(pv.ballot == kChosenBallot);
    if (pv.slot <= chosen_through_) {
      CHORUS_ASSERT_MSG(pv.slot <= snapshot_index_ || slots_.at(pv.slot).value == pv.value,
                        "two values chosen at one slot");
      continue;
    }
    write_record(pv.slot, kChosenBallot, pv.value);
  }
  advance_chosen_prefix();
}

void Paxos::on_snapshot(const InstallSnapshot& s) {
  const LogIndex idx = s.snapshot.meta.index;
  // A leader chose everything through its own chosen prefix itself; a late
  // snapshot from when it was behind is of no use to it.
  if (idx <= chosen_through_ || std::holds_alternative<Leader>(role_)) return;
  snapshot_index_ = idx;
  snapshot_ = s.snapshot;
  pending_install_ = s.snapshot;
  slots_.erase(slots_.begin(), slots_.upper_bound(idx));
  chosen_through_ = idx;
  applied_ = idx;
  handed_last_ = idx;
  // The host replaces its whole log with the snapshot: every slot we still
  // hold past it must be written again.
  unstable_from_ = slots_.empty() ? std::nullopt : std::optional<LogIndex>(idx.next());
  advance_chosen_prefix();
}

}  // namespace chorus::paxos
