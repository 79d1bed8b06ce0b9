// The Zab core: construction, the log, Ready, dispatch and client requests.
// Election is in zab_election.cc, the follower's phases in zab_follower.cc,
// the leader's in zab_leader.cc.
#include "core/zab/zab.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <utility>

#include "base/assert.h"
#include "base/overloaded.h"
#include "core/common/soft_state_report.h"

namespace chorus::zab {

std::string_view phase_name(Phase p) {
  switch (p) {
    case Phase::kDiscovery:
      return "discovery";
    case Phase::kSynchronization:
      return "synchronization";
    case Phase::kBroadcast:
      return "broadcast";
  }
  CHORUS_UNREACHABLE();
}

Status Config::validate() const {
  if (id == kNoNode) return Status::invalid_argument("zab: node id 0 is reserved");
  if (std::find(members.begin(), members.end(), id) == members.end()) {
    return Status::invalid_argument("zab: members must include this node");
  }
  std::vector<NodeId> sorted = members;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end() ||
      sorted.front() == kNoNode) {
    return Status::invalid_argument("zab: members must be distinct non-zero ids");
  }
  if (notification_interval_ticks == 0 ||
      max_notification_interval_ticks < notification_interval_ticks || ping_interval_ticks == 0 ||
      ping_interval_ticks >= sync_limit_ticks || handshake_retry_ticks == 0 ||
      handshake_retry_ticks >= init_limit_ticks) {
    return Status::invalid_argument(
        "zab: need 0 < ping_interval < sync_limit and 0 < handshake_retry < init_limit");
  }
  if (max_entries_per_proposal == 0 || max_uncommitted_proposals == 0 || max_sync_entries == 0 ||
      max_apply_entries_per_ready == 0 || max_pending_reads == 0 || max_zxid_counter == 0 ||
      max_zxid_counter > kMaxCounter) {
    return Status::invalid_argument("zab: every limit must be positive");
  }
  return Status::ok();
}

// totalOrderPredicate (FastLeaderElection): epoch, then zxid, then id.
bool vote_beats(const Vote& a, const Vote& b) {
  return std::tie(a.peer_epoch, a.zxid, a.leader) > std::tie(b.peer_epoch, b.zxid, b.leader);
}

// ---- Construction -----------------------------------------------------------

Zab::Zab(Config cfg, PersistentState st) : cfg_(std::move(cfg)) {
  CHORUS_ASSERT_MSG(cfg_.validate().is_ok(), "invalid zab config");
  accepted_epoch_ = st.durable.accepted_epoch;
  current_epoch_ = st.durable.current_epoch;
  CHORUS_ASSERT(current_epoch_ <= accepted_epoch_);
  // A new incarnation, persisted by the first Ready (before any FollowerInfo).
  CHORUS_ASSERT_MSG(st.durable.incarnation < kMaxIncarnation, "zab incarnations exhausted");
  incarnation_ = st.durable.incarnation + 1;
  durable_ = st.durable;
  prev_durable_ = st.durable;
  if (st.snapshot) {
    snapshot_index_ = st.snapshot->meta.index;
    snapshot_zxid_ = Zxid::from_term(st.snapshot->meta.term);
    snapshot_ = std::move(st.snapshot);
  }
  for (core::Entry& e : st.entries) {
    if (e.index <= snapshot_index_) continue;
    CHORUS_ASSERT_MSG(e.index == last_index().next(), "persisted log is not contiguous");
    CHORUS_ASSERT_MSG(Zxid::from_term(e.term) > last_zxid(), "persisted zxids not increasing");
    log_.push_back(std::move(e));
  }
  handed_last_ = last_index();
  durable_last_ = last_index();
  // What the host applied was committed; more may be, but only a leader's
  // word (or a new epoch's synchronization) says so.
  applied_ = std::max(st.applied, snapshot_index_);
  CHORUS_ASSERT(applied_ <= last_index());
  commit_ = applied_;
  prev_soft_ = soft_state();
  start_election("started");
}

// ---- Log --------------------------------------------------------------------

Zxid Zab::zxid_at(LogIndex i) const {
  if (i == snapshot_index_) return snapshot_zxid_;
  return Zxid::from_term(entry(i).term);
}

const core::Entry& Zab::entry(LogIndex i) const {
  CHORUS_ASSERT(i > snapshot_index_ && i <= last_index());
  return log_[i - snapshot_index_ - 1];
}

void Zab::mark_unstable(LogIndex from) {
  CHORUS_ASSERT(from > snapshot_index_);
  if (!unstable_from_ || from < *unstable_from_) unstable_from_ = from;
}

void Zab::truncate_after(LogIndex i) {
  CHORUS_ASSERT(i >= snapshot_index_);
  if (i >= last_index()) return;
  // A committed proposal is never undone (DSN 2011, Integrity and Total
  // order): the new leader's history holds everything committed.
  CHORUS_ASSERT_MSG(i >= commit_, "truncating a committed proposal");
  log_.resize(i - snapshot_index_);
  mark_unstable(i.next());
}

void Zab::append(core::Entry e) {
  CHORUS_ASSERT(e.index == last_index().next());
  // Primary order within a history: zxids strictly increase along the log.
  CHORUS_ASSERT(Zxid::from_term(e.term) > last_zxid());
  mark_unstable(e.index);
  log_.push_back(std::move(e));
}

void Zab::set_commit(LogIndex i) {
  i = std::min(i, last_index());
  if (i <= commit_) return;
  commit_ = i;
  if (auto* l = std::get_if<Leading>(&role_)) {
    l->commit_pending = true;
    while (!l->read_slots.empty() && l->read_slots.begin()->first <= commit_) {
      auto it = l->read_slots.begin();
      for (uint64_t ctx : it->second) reads_.push_back(core::ReadState{ctx, it->first});
      l->pending_reads -= it->second.size();
      l->read_slots.erase(it);
    }
  }
}

void Zab::drop_reads() {
  auto* l = std::get_if<Leading>(&role_);
  if (l == nullptr) return;
  for (const auto& [idx, ctxs] : l->read_slots) {
    for (uint64_t ctx : ctxs) {
      outcomes_.push_back(core::Outcome{ctx, ProposeStatus::kDropped, kNoNode, {}, {}});
    }
  }
  l->read_slots.clear();
  l->pending_reads = 0;
}

core::SnapshotRef empty_snapshot() {
  static const auto kEmpty = std::make_shared<const std::string>();
  return core::SnapshotRef{core::SnapshotMeta{LogIndex(0), Term(0)}, kEmpty};
}

// ---- Introspection ----------------------------------------------------------

ServerState Zab::server_state() const {
  return std::visit(Overloaded{[](const Looking&) { return ServerState::kLooking; },
                               [](const Following&) { return ServerState::kFollowing; },
                               [](const Leading&) { return ServerState::kLeading; }},
                    role_);
}

std::optional<Phase> Zab::phase() const {
  if (const auto* f = std::get_if<Following>(&role_)) return f->phase;
  if (const auto* l = std::get_if<Leading>(&role_)) return l->phase;
  return std::nullopt;
}

core::Role Zab::role() const {
  switch (server_state()) {
    case ServerState::kLooking:
      return core::Role::kCandidate;
    case ServerState::kFollowing:
      return core::Role::kFollower;
    case ServerState::kLeading:
      return core::Role::kLeader;
  }
  CHORUS_UNREACHABLE();
}

NodeId Zab::leader() const {
  if (const auto* f = std::get_if<Following>(&role_)) return f->leader;
  if (std::holds_alternative<Leading>(role_)) return cfg_.id;
  return kNoNode;
}

core::SoftState Zab::soft_state() const {
  return core::SoftState{role(), Term(current_epoch_), leader()};
}

std::optional<Term> Zab::term_at(LogIndex i) const {
  if (i <= snapshot_index_ || i > last_index()) return std::nullopt;
  return entry(i).term;
}

core::EngineStatus Zab::status() const {
  core::EngineStatus st;
  st.soft = soft_state();
  st.role_name = server_state_name(server_state());
  st.commit_index = commit_;
  st.first_index = snapshot_index_.next();
  st.last_index = last_index();
  st.snapshot_index = snapshot_index_;
  if (const auto* l = std::get_if<Leading>(&role_)) {
    for (NodeId peer : cfg_.members) {
      if (peer == cfg_.id) continue;
      auto it = l->learners.find(peer);
      const LogIndex match = it == l->learners.end() ? LogIndex(0) : it->second.acked;
      st.peers.push_back(core::PeerStatus{peer, match, match.next(), last_index() - match});
    }
    st.acknowledging = l->phase == Phase::kBroadcast;
  }
  return st;
}

// ---- Ready ------------------------------------------------------------------

bool Zab::has_messages() const {
  const auto* l = std::get_if<Leading>(&role_);
  return !msgs_.empty() || (l != nullptr && (l->unsent_from || l->commit_pending));
}

std::vector<Message> Zab::take_messages() {
  if (auto* l = std::get_if<Leading>(&role_)) broadcast_proposals(*l);
  return std::exchange(msgs_, {});
}

bool Zab::has_ready() const {
  if (ready_outstanding_) return false;
  if (has_messages() || !msgs_after_persist_.empty() || !reads_.empty() || !outcomes_.empty() ||
      pending_install_ || unstable_from_ || applied_ < commit_) {
    return true;
  }
  return DurableState{accepted_epoch_, current_epoch_, incarnation_} != prev_durable_ ||
         soft_state() != prev_soft_;
}

Ready Zab::ready() {
  CHORUS_ASSERT_MSG(!ready_outstanding_, "ready() called before advance() of the previous Ready");
  if (auto* l = std::get_if<Leading>(&role_)) broadcast_proposals(*l);
  Ready rd;
  core::report_soft_state(rd, soft_state(), prev_soft_, role_reason_);
  const DurableState ds{accepted_epoch_, current_epoch_, incarnation_};
  CHORUS_ASSERT(ds.current_epoch <= ds.accepted_epoch);
  if (ds != prev_durable_) rd.durable_state = ds;
  prev_durable_ = ds;
  if (pending_install_) {
    rd.snapshot = std::move(*pending_install_);
    pending_install_.reset();
    durable_last_ = LogIndex(0);
    handed_last_ = snapshot_index_;
  }
  if (unstable_from_) {
    LogIndex from = *unstable_from_;
    if (from > last_index() && from <= handed_last_) {
      // A pure truncation: the host truncates only where new entries start,
      // so write the last kept entry again (or, when that one is in the
      // snapshot, the snapshot itself: nothing past it was applied; with no
      // snapshot, the empty one at index 0).
      if (last_index() > snapshot_index_) {
        from = last_index();
      } else if (!rd.snapshot) {
        CHORUS_ASSERT(applied_ == snapshot_index_);
        rd.snapshot = snapshot_ ? *snapshot_ : empty_snapshot();
      }
    }
    for (LogIndex i = std::max(from, snapshot_index_.next()); i <= last_index(); i = i.next()) {
      rd.entries.push_back(entry(i));
    }
    if (!rd.entries.empty()) {
      durable_last_ = std::min(durable_last_, rd.entries.front().index.prev());
    } else {
      durable_last_ = std::min(durable_last_, last_index());
    }
    unstable_from_.reset();
    handed_last_ = last_index();
  }
  rd.messages = std::exchange(msgs_, {});
  rd.messages_after_persist = std::exchange(msgs_after_persist_, {});
  CHORUS_ASSERT(applied_ >= snapshot_index_ && applied_ <= commit_);
  for (size_t n = 0; applied_ < commit_ && n < cfg_.max_apply_entries_per_ready; ++n) {
    applied_ = applied_.next();
    rd.committed.push_back(entry(applied_));
  }
  rd.reads = std::exchange(reads_, {});
  rd.outcomes = std::exchange(outcomes_, {});
  ready_outstanding_ = true;
  ++readies_taken_;
  return rd;
}

void Zab::advance(const Ready& rd) {
  CHORUS_ASSERT(ready_outstanding_);
  ready_outstanding_ = false;
  ++readies_advanced_;
  if (rd.durable_state) {
    // Invariant: the durable epochs only grow, and never pass the live ones.
    CHORUS_ASSERT(rd.durable_state->accepted_epoch >= durable_.accepted_epoch);
    CHORUS_ASSERT(rd.durable_state->current_epoch >= durable_.current_epoch);
    CHORUS_ASSERT(rd.durable_state->accepted_epoch <= accepted_epoch_);
    CHORUS_ASSERT(rd.durable_state->incarnation >= durable_.incarnation);
    durable_ = *rd.durable_state;
  }
  if (rd.snapshot) durable_last_ = std::max(durable_last_, rd.snapshot->meta.index);
  if (!rd.entries.empty()) durable_last_ = rd.entries.back().index;
  // Entries replaced after this Ready was taken are not durable.
  if (unstable_from_) durable_last_ = std::min(durable_last_, unstable_from_->prev());
  durable_last_ = std::min(durable_last_, last_index());
  if (auto* l = std::get_if<Leading>(&role_)) {
    check_established(*l);
    update_commit(*l);
  }
}

void Zab::compact(core::SnapshotRef snap) {
  CHORUS_ASSERT_MSG(snap.meta.index <= applied_, "snapshot beyond the applied index");
  if (snap.meta.index <= snapshot_index_) return;
  CHORUS_ASSERT_MSG(!unstable_from_ || *unstable_from_ > snap.meta.index,
                    "compacting an entry that is not durable yet");
  CHORUS_ASSERT_MSG(snap.meta.term == entry(snap.meta.index).term,
                    "snapshot zxid differs from the log's");
  log_.erase(log_.begin(),
             log_.begin() + static_cast<std::ptrdiff_t>(snap.meta.index - snapshot_index_));
  snapshot_index_ = snap.meta.index;
  snapshot_zxid_ = Zxid::from_term(snap.meta.term);
  snapshot_ = std::move(snap);
  handed_last_ = std::max(handed_last_, snapshot_index_);
}

// ---- Dispatch ---------------------------------------------------------------

void Zab::send(NodeId to, Body body) {
  CHORUS_ASSERT(to != cfg_.id);
  msgs_.push_back(Message{cfg_.id, to, std::move(body)});
}

void Zab::send_after_persist(NodeId to, Body body) {
  CHORUS_ASSERT(to != cfg_.id);
  msgs_after_persist_.push_back(Message{cfg_.id, to, std::move(body)});
}

// A message queued after persist leaves with the next Ready, after its
// fsync; one queued plainly may leave at once (take_messages), before the
// outstanding Ready's. So while a learner has a message waiting for a Ready
// not yet advanced (its NewLeader), the rest queue behind it.
void Zab::send_learner(Learner& lr, NodeId to, Body body, bool after_persist) {
  if (after_persist || readies_advanced_ < lr.after_persist_until) {
    lr.after_persist_until = readies_taken_ + 1;
    send_after_persist(to, std::move(body));
  } else {
    send(to, std::move(body));
  }
}

void Zab::step(const Message& m) {
  CHORUS_ASSERT(m.to == cfg_.id);
  if (std::find(cfg_.members.begin(), cfg_.members.end(), m.from) == cfg_.members.end()) return;
  auto* l = std::get_if<Leading>(&role_);
  Following* f = nullptr;
  std::visit(Overloaded{
                 [&](const Notification& n) { on_notification(m.from, n); },
                 [&](const FollowerInfo& fi) {
                   if (l) on_follower_info(*l, m.from, fi);
                 },
                 [&](const NewEpoch& e) {
                   if (from_my_leader(m.from, 0, f)) on_new_epoch(*f, e);
                 },
                 [&](const AckEpoch& a) {
                   if (l) on_ack_epoch(*l, m.from, a);
                 },
                 [&](const NewLeader& n) {
                   if (from_my_leader(m.from, n.epoch, f)) on_new_leader(*f, n);
                 },
                 [&](const NewLeaderAck& a) {
                   if (l) on_new_leader_ack(*l, m.from, a);
                 },
                 [&](const UpToDate& u) {
                   if (from_my_leader(m.from, u.epoch, f)) on_up_to_date(*f, u);
                 },
                 [&](const Proposal& p) {
                   if (from_my_leader(m.from, p.epoch, f)) on_proposal(*f, p);
                 },
                 [&](const Ack& a) {
                   if (l) on_ack(*l, m.from, a);
                 },
                 [&](const Commit& c) {
                   if (from_my_leader(m.from, c.epoch, f)) on_commit(*f, c.index);
                 },
                 [&](const Ping& p) {
                   if (from_my_leader(m.from, p.epoch, f)) on_ping(*f, p);
                 },
             },
             m.body);
}

void Zab::tick() {
  std::visit(
      Overloaded{[&](Looking& l) { tick_looking(l); }, [&](Following& f) { tick_following(f); },
                 [&](Leading& l) { tick_leading(l); }},
      role_);
}

// ---- Client requests --------------------------------------------------------

ProposeResult Zab::propose(std::string data) {
  auto* l = std::get_if<Leading>(&role_);
  if (l == nullptr) {
    const NodeId hint = leader();
    return ProposeResult{
        hint == kNoNode ? ProposeStatus::kNoLeader : ProposeStatus::kNotLeader, hint, {}, {}};
  }
  // DSN 2011, phase 3: a leader proposes in e' only once a quorum
  // acknowledged NEWLEADER (ZooKeeper starts its request pipeline then).
  if (l->phase != Phase::kBroadcast) return ProposeResult{ProposeStatus::kNoLeader, {}, {}, {}};
  if (last_index() - commit_ >= cfg_.max_uncommitted_proposals) {
    return ProposeResult{ProposeStatus::kTooMuchUncommitted, cfg_.id, {}, {}};
  }
  if (counters_exhausted(*l)) return ProposeResult{ProposeStatus::kNoLeader, {}, {}, {}};
  append_proposal(*l, core::EntryType::kNormal, std::move(data));
  return ProposeResult{ProposeStatus::kAccepted, cfg_.id, last_index(), entry(last_index()).term};
}

ProposeResult Zab::read_index(uint64_t ctx, core::ReadMode /*mode*/) {
  auto* l = std::get_if<Leading>(&role_);
  if (l == nullptr || l->phase != Phase::kBroadcast) {
    const NodeId hint = l ? kNoNode : leader();
    return ProposeResult{
        hint == kNoNode ? ProposeStatus::kNoLeader : ProposeStatus::kNotLeader, hint, {}, {}};
  }
  if (l->pending_reads >= cfg_.max_pending_reads ||
      last_index() - commit_ >= cfg_.max_uncommitted_proposals) {
    return ProposeResult{ProposeStatus::kTooMuchUncommitted, cfg_.id, {}, {}};
  }
  // Reads arriving before the next flush share one no-op proposal.
  const bool share = !l->read_slots.empty() && l->read_slots.rbegin()->first == last_index() &&
                     l->unsent_from && *l->unsent_from <= last_index();
  if (!share) {
    if (counters_exhausted(*l)) return ProposeResult{ProposeStatus::kNoLeader, {}, {}, {}};
    append_proposal(*l, core::EntryType::kNoop, {});
  }
  l->read_slots[last_index()].push_back(ctx);
  ++l->pending_reads;
  return ProposeResult{ProposeStatus::kAccepted, cfg_.id, last_index(), entry(last_index()).term};
}

}  // namespace chorus::zab
