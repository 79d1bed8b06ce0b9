#include "core/primary/primary.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <span>
#include <utility>

#include "base/assert.h"
#include "base/planted.h"

namespace chorus::primary {

using core::DropKind;
using core::Entry;
using core::EntryType;

template <AckRule R>
PrimaryBackup<R>::PrimaryBackup(Options opts, PersistentState state)
    : opts_(std::move(opts)),
      epoch_(state.durable.epoch),
      durable_epoch_(state.durable.epoch),
      log_(state.snapshot ? state.snapshot->meta : core::SnapshotMeta{}, std::move(state.entries),
           state.durable.commit, state.applied),
      snapshot_(std::move(state.snapshot)) {
  CHORUS_ASSERT_MSG(opts_.validate().is_ok(), "invalid primary-backup options");
  // The newest append taken is at least as new as our last entry's term, a
  // bound that survives a restart because the log does (see handle_append).
  append_term_ = log_.last_term();
  config_.epoch = epoch_;
  prev_soft_ = soft_state();
  prev_durable_ = state.durable;
}

// ---------------------------------------------------------------------------
// Configuration, roles

template <AckRule R>
Status PrimaryBackup<R>::configure(const Configuration& c) {
  return apply_configuration(c, /*from_message=*/false);
}

template <AckRule R>
Status PrimaryBackup<R>::apply_configuration(Configuration c, bool from_message) {
  if (c.epoch > kMaxEpoch) {
    return Status::invalid_argument(fmt::format("epoch {} is beyond the largest, {} (options.h)",
                                                c.epoch.value(), kMaxEpoch.value()));
  }
  if (c.epoch < epoch_) {
    return Status::invalid_argument(fmt::format("epoch {} is older than epoch {} already seen",
                                                c.epoch.value(), epoch_.value()));
  }
  if (c.primary == kNoNode ||
      std::find(c.members.begin(), c.members.end(), c.primary) == c.members.end()) {
    return Status::invalid_argument("the primary must be one of the members");
  }
  for (NodeId l : c.learners) {
    if (l == kNoNode || std::count(c.members.begin(), c.members.end(), l) > 0 ||
        std::count(c.learners.begin(), c.learners.end(), l) > 1) {
      return Status::invalid_argument(
          fmt::format("learner n{} is a member, named twice, or no node", l.value()));
    }
  }
  if (from_message) c.lease_ticks = 0;  // a message never grants a lease
  if (c.lease_ticks > 0 && c.lease_anchor_tick > now_ticks_) {
    return Status::invalid_argument(fmt::format("lease anchor tick {} is after this node's tick {}",
                                                c.lease_anchor_tick, now_ticks_));
  }
  const bool me = c.primary == opts_.id;
  if (me && R == AckRule::kSemiSync && opts_.acks + 1 > c.members.size()) {
    return Status::invalid_argument(
        fmt::format("acks: {} exceeds the {} backups", opts_.acks, c.members.size() - 1));
  }
  if (c.epoch == epoch_) {
    if (Status st = check_same_epoch(c, from_message); !st.is_ok()) return st;
    if (config_.primary != kNoNode && config_.primary != c.primary) {
      return Status::invalid_argument(fmt::format("epoch {} already has primary n{}",
                                                  c.epoch.value(), config_.primary.value()));
    }
    if (me && !is_primary()) {
      return Status::invalid_argument(fmt::format(
          "this node already saw epoch {}; appoint it with a newer one", c.epoch.value()));
    }
    if (auto* p = std::get_if<Primary>(&role_)) {
      // A renewal: a lease from its anchor (a late grant extends nothing
      // past anchor + lease), and perhaps other members.
      p->lease_until_tick = std::max(p->lease_until_tick, lease_end(c));
      set_peers(*p, c);
      maybe_commit(*p);
    }
    config_ = std::move(c);
    return Status::ok();
  }
  if (me) {
    config_ = c;
    become_primary(c);
  } else {
    become_backup(
        c.epoch, c.primary,
        fmt::format("configured: n{} is primary of epoch {}", c.primary.value(), c.epoch.value()));
    config_ = std::move(c);
  }
  return Status::ok();
}

// A configuration of our own epoch must be at least as new as ours; members
// change only with a newer version. (config_.members is empty on a backup
// that learned the epoch from an append: any version fills it in.)
template <AckRule R>
Status PrimaryBackup<R>::check_same_epoch(const Configuration& c, bool from_message) const {
  if (config_.members.empty()) return Status::ok();
  if (c.version < config_.version) {
    return Status::invalid_argument(
        fmt::format("configuration version {} is older than {}", c.version, config_.version));
  }
  if (c.version == config_.version && c.members != config_.members) {
    return Status::invalid_argument(
        fmt::format("configuration version {} already names other members", c.version));
  }
  if (from_message && c.version == config_.version) {
    return Status::invalid_argument("configuration already known");  // changes nothing
  }
  return Status::ok();
}

template <AckRule R>
void PrimaryBackup<R>::become_primary(const Configuration& c) {
  CHORUS_ASSERT(c.epoch > epoch_ && c.primary == opts_.id);
  if (auto* old = std::get_if<Primary>(&role_)) abandon(*old);
  epoch_ = c.epoch;
  led_epoch_ = c.epoch;
  needs_snapshot_ = false;
  degraded_ = false;  // a state of one epoch's primary (the count stays)
  Primary p;
  p.lease_until_tick = lease_end(c);
  // Raft §8: the epoch begins with a no-op of its own; once it is committed
  // so is everything the new primary inherited, and backups have dropped
  // whatever they held beyond it.
  const LogIndex start = log_.last_index().next();
  log_.append(Entry{entry_term(epoch_, 0), start, EntryType::kNoop, {}});
  p.epoch_start = start;
  set_peers(p, c);
  p.broadcast_pending = true;
  role_ = std::move(p);
  role_reason_ =
      fmt::format("appointed primary of epoch {} (lease {} ticks)", epoch_.value(), c.lease_ticks);
}

template <AckRule R>
void PrimaryBackup<R>::become_backup(Epoch e, NodeId primary, std::string why) {
  CHORUS_ASSERT(e >= epoch_);
  if (auto* p = std::get_if<Primary>(&role_)) abandon(*p);
  role_ = Backup{};
  degraded_ = false;  // only a primary is degraded
  // Told to install by an older epoch's primary: the new one's log may hold
  // ours (its first append finds out, and tells us again if not). Kept, the
  // flag made us install the new primary's snapshot below entries of its
  // epoch we had acknowledged — a restart forgets it the same way.
  if (e > epoch_) needs_snapshot_ = false;
  epoch_ = e;
  if (e > config_.epoch) config_.members.clear();  // unknown until configured
  config_.epoch = e;
  config_.primary = primary;
  config_.lease_ticks = 0;
  role_reason_ = std::move(why);
}

// Every write this primary still owes an answer is lost sight of: it may
// commit under the next primary or be dropped. Outcome kDropped (the host's
// "indeterminate").
template <AckRule R>
void PrimaryBackup<R>::abandon(Primary& p) {
  // No leader hint: config_.primary still names this node here.
  // Read barriers confirmed under the lease but not yet handed out: the
  // index they name is of the epoch just lost, and this node may drop what
  // it committed there (a lossy failover) or install its successor's older
  // snapshot before the host sees them — the host would then serve a read
  // the old primary confirmed from the successor's state, missing writes
  // acknowledged before the read began (found chasing semi-sync seed 52,
  // whose read was handed out just before the deposition; the host side is
  // ReplicaHost::complete_read()). Dropped (kDropped, no index): the host
  // asks again, and a backup refuses.
  for (const core::ReadState& r : reads_)
    outcomes_.push_back({r.ctx, ProposeStatus::kDropped, kNoNode, {}, {}});
  reads_.clear();
  for (const auto& w : p.pending) {
    if (!w.answered) outcomes_.push_back({0, ProposeStatus::kDropped, kNoNode, w.index, w.term});
  }
  for (const auto& rb : p.rollbacks) {
    for (const auto& w : rb.aborted)
      outcomes_.push_back({0, ProposeStatus::kDropped, kNoNode, w.index, w.term});
    for (const auto& d : rb.dropped) note_drop(d.entry, d.kind, rb.marker, rb.replaced_term);
  }
  p.pending.clear();
  p.rollbacks.clear();
  p.uncommitted_bytes = 0;
}

template <AckRule R>
void PrimaryBackup<R>::set_peers(Primary& p, const Configuration& c) {
  std::map<NodeId, PeerProgress> peers;
  auto add = [&](NodeId m, bool learner) {
    if (m == opts_.id) return;
    auto it = p.peers.find(m);
    PeerProgress& pr = peers[m] =
        it != p.peers.end() ? it->second
                            : PeerProgress{LogIndex(0), log_.last_index(), 0, 0, false, {}};
    pr.learner = learner;
  };
  for (NodeId m : c.members) add(m, false);
  for (NodeId l : c.learners) add(l, true);
  p.peers = std::move(peers);
  p.broadcast_pending = true;
}

template <AckRule R>
bool PrimaryBackup<R>::lease_valid() const {
  const auto* p = std::get_if<Primary>(&role_);
  return p && now_ticks_ < p->lease_until_tick;
}

// ---------------------------------------------------------------------------
// Inputs

template <AckRule R>
void PrimaryBackup<R>::step(const Message& m) {
  if (m.to != opts_.id) return;
  if (m.epoch > kMaxEpoch) return;  // cannot be ours: no entry term can name it
  if (const auto* nc = std::get_if<NewConfiguration>(&m.body)) {
    apply_configuration(nc->config, /*from_message=*/true).ignore();  // stale ones change nothing
    return;
  }
  if (std::holds_alternative<Forward>(m.body)) {
    // A client's write is unsolicited: it must never decide who may lead
    // (review: a backup that heard of a newer epoch first forwarded to the
    // newly appointed primary, which then refused its own appointment). Only
    // the primary of exactly the sender's epoch takes it.
    auto* p = std::get_if<Primary>(&role_);
    if (p == nullptr || m.epoch != epoch_) return;
    // Refusals (no lease, limits) are not answered: the backup's host offers
    // the write again, and its client times out if it never applies.
    for (const auto& d : std::get<Forward>(m.body).data) (void)propose(d);
    return;
  }
  if (m.epoch < epoch_ && planted::kPbNoEpochCheck && !is_primary() &&
      !std::holds_alternative<AppendResponse>(m.body)) {
    config_.primary = m.from;  // planted bug: whoever sends appends is our primary
  } else if (m.epoch < epoch_) {
    // Fencing: an older epoch's primary learns ours from the refusal.
    if (!std::holds_alternative<AppendResponse>(m.body)) refuse(m, Refusal::kStaleEpoch);
    return;
  }
  if (m.epoch > epoch_) {
    // Only a primary sends appends and snapshots; responses come from backups.
    const bool from_primary = !std::holds_alternative<AppendResponse>(m.body);
    become_backup(
        m.epoch, from_primary ? m.from : kNoNode,
        fmt::format("n{} speaks for the newer epoch {}", m.from.value(), m.epoch.value()));
  }
  if (auto* p = std::get_if<Primary>(&role_)) {
    // Two primaries of one epoch cannot exist (the manager appoints one per
    // epoch, and a node leads only an epoch it had not seen): only responses
    // are for us.
    if (const auto* r = std::get_if<AppendResponse>(&m.body)) handle_response(*p, m, *r);
    return;
  }
  if (std::holds_alternative<AppendResponse>(m.body)) return;  // a deposed primary's late mail
  if (config_.primary == kNoNode) config_.primary = m.from;
  if (m.from != config_.primary) return;
  if (const auto* a = std::get_if<Append>(&m.body)) {
    handle_append(m, *a);
  } else if (const auto* s = std::get_if<InstallSnapshot>(&m.body)) {
    handle_snapshot(m, *s);
  }
}

template <AckRule R>
void PrimaryBackup<R>::tick() {
  ++now_ticks_;
  auto* p = std::get_if<Primary>(&role_);
  if (!p) return;
  if (now_ticks_ == p->lease_until_tick) {
    // The lease lapsed: no more acknowledgements until a renewal. Waiting
    // writes stay pending and unanswered: they are still in this primary's
    // log, and a renewal of this epoch commits them (their clients are then
    // answered on apply). Only losing the epoch loses sight of them
    // (abandon() answers kDropped); a primary neither renewed nor deposed
    // leaves them to the host's request timeout.
    // A rollback not yet released is abandoned, though: the manager may now
    // promote a backup that still holds those writes prepared, and it would
    // commit them. Their clients can only be told "unknown"; the drops are
    // reported if the marker's position commits after all (note_drop()).
    for (const auto& rb : p->rollbacks) {
      for (const auto& w : rb.aborted)
        outcomes_.push_back({0, ProposeStatus::kDropped, kNoNode, w.index, w.term});
      for (const auto& d : rb.dropped) note_drop(d.entry, d.kind, rb.marker, rb.replaced_term);
    }
    p->rollbacks.clear();
    role_reason_ = "the primary's lease lapsed";
  }
  if (++p->heartbeat_elapsed_ticks >= opts_.heartbeat_interval_ticks) {
    p->heartbeat_elapsed_ticks = 0;
    for (auto& [id, pr] : p->peers) {
      // Resend what a silent backup did not acknowledge: appends may have
      // been lost. A backup that answers keeps its pipeline.
      const bool silent = now_ticks_ - pr.last_ack_tick >= 2ull * opts_.heartbeat_interval_ticks;
      if (silent && pr.next > pr.match.next()) pr.next = pr.match.next();
    }
    p->broadcast_pending = true;
  }
  if (lease_valid()) check_timeouts(*p);
}

template <AckRule R>
ProposeResult PrimaryBackup<R>::propose(std::string data) {
  auto* p = std::get_if<Primary>(&role_);
  if (!p) {
    const NodeId to = config_.primary;
    if (!opts_.forward_proposals || to == kNoNode || to == opts_.id) {
      return {ProposeStatus::kNotLeader, to, {}, {}};
    }
    // A node restarted in this epoch may still name itself primary above;
    // otherwise the primary of the newest epoch we know takes it.
    msgs_.push_back(Message{opts_.id, to, epoch_, Forward{{std::move(data)}}});
    return {ProposeStatus::kForwarded, to, {}, {}};
  }
  if (!lease_valid()) return {ProposeStatus::kNotLeader, kNoNode, {}, {}};
  const size_t bytes = data.size() + 24;
  if (p->uncommitted_bytes + bytes > opts_.max_uncommitted_bytes) {
    return {ProposeStatus::kTooMuchUncommitted, opts_.id, {}, {}};
  }
  const Term t = entry_term(epoch_, p->generation);
  const LogIndex i = log_.last_index().next();
  log_.append(Entry{t, i, EntryType::kNormal, std::move(data)});
  p->pending.push_back(Pending{i, t, now_ticks_, bytes, false});
  p->uncommitted_bytes += bytes;
  p->broadcast_pending = true;
  return {ProposeStatus::kAccepted, opts_.id, i, t};
}

template <AckRule R>
std::optional<LogIndex> PrimaryBackup<R>::lease_read_index() const {
  const auto* p = std::get_if<Primary>(&role_);
  if (!p || !lease_valid() || log_.committed() < p->epoch_start) return std::nullopt;
  return log_.committed();
}

template <AckRule R>
ProposeResult PrimaryBackup<R>::read_index(uint64_t ctx, core::ReadMode) {
  const auto idx = lease_read_index();
  if (!idx) {
    return {is_primary() ? ProposeStatus::kNoLeader : ProposeStatus::kNotLeader,
            is_primary() ? kNoNode : config_.primary,
            {},
            {}};
  }
  if (reads_.size() >= opts_.max_pending_reads) {
    return {ProposeStatus::kTooMuchUncommitted, opts_.id, {}, {}};
  }
  reads_.push_back({ctx, *idx});
  return {ProposeStatus::kAccepted, opts_.id, *idx, entry_term(epoch_, 0)};
}

// ---------------------------------------------------------------------------
// Primary side

template <AckRule R>
void PrimaryBackup<R>::handle_response(Primary& p, const Message& m, const AppendResponse& r) {
  auto it = p.peers.find(m.from);
  if (it == p.peers.end()) return;
  PeerProgress& pr = it->second;
  pr.last_ack_tick = now_ticks_;
  switch (r.refusal) {
    case Refusal::kNone:
      // An acknowledgement of an entry a rollback replaced is worthless.
      if (known_term(r.match_index) != r.match_term) return;
      pr.match = std::max(pr.match, r.match_index);
      pr.next = std::max(pr.next, pr.match.next());
      pr.wants_snapshot = false;
      pr.refuted = {};
      maybe_commit(p);
      release_rollbacks(p);
      if (pr.next <= log_.last_index()) send_append(p, m.from, pr, false);
      return;
    case Refusal::kLogEnds:
      handle_log_ends(p, m.from, pr, r);
      return;
    case Refusal::kLogMismatch:
      handle_log_mismatch(p, m.from, pr, r);
      return;
    case Refusal::kNeedSnapshot:
      // The backup holds our log through pr.match, so it diverges after it:
      // a refusal naming a point at or below the match is from before the
      // backup caught up (delayed or duplicated).
      if (r.hint <= pr.match) return;
      send_snapshot(m.from, pr);
      return;
    case Refusal::kPrepareLimit:
      // Without a lease, no rollback: its clients were told kDropped already.
      // A learner's refusal aborts nothing: no write waits for it.
      if (R == AckRule::kSyncAll && !pr.learner && lease_valid() &&
          r.refused_index > log_.committed() && log_.match_term(r.refused_index, r.match_term)) {
        rollback_from(p, r.refused_index);
      }
      return;
    case Refusal::kStaleEpoch:  // same epoch here: a duplicate from before
      return;
  }
}

// The backup's log ends at r.hint, before the append's prev.
template <AckRule R>
void PrimaryBackup<R>::handle_log_ends(const Primary& p, NodeId from, PeerProgress& pr,
                                       const AppendResponse& r) {
  // Below the match: a refusal sent before the backup caught up (delayed),
  // or it has since installed our snapshot, which replaced its whole log —
  // and an acknowledgement it sent before the install raised the match past
  // what it holds. Resending from match + 1 then draws the same refusal
  // forever (simulator, semi-sync seed 4344). Start from what it says it
  // holds: a stale refusal costs a resend, which it acknowledges, and a
  // lower match only counts fewer acknowledgements.
  if (r.hint < pr.match) pr.match = r.hint;
  pr.next = std::max(pr.match.next(), std::min(pr.next, r.hint.next()));
  send_append(p, from, pr, true);
}

template <AckRule R>
void PrimaryBackup<R>::handle_log_mismatch(const Primary& p, NodeId from, PeerProgress& pr,
                                           const AppendResponse& r) {
  if (r.hint_term == Term(0)) {
    // Its entry at prev has another term; its run of that term starts after
    // hint. The match never moves down here: that run may begin inside the
    // prefix it shares with us (the term's primary wrote more of it than we
    // hold), and a stale one (sent before it caught up) may be below it too.
    // Either way it holds our log through the match, so resending
    // from there finds where it diverges (Raft §5.3: next never at or below
    // match). Lowering the match would count fewer acknowledgements than it
    // gave and resend what it holds.
    pr.next = std::max(pr.match.next(), std::min(pr.next, r.hint.next()));
    send_append(p, from, pr, true);
    return;
  }
  // We sent from inside the backup's snapshot. If our log has its snapshot
  // point, it holds our prefix through there (Log Matching): go on after it.
  // next may move up here, never to or below the match.
  const std::optional<Term> ours = known_term(r.hint);
  if (ours == r.hint_term) {
    pr.next = std::max(pr.match.next(), r.hint.next());
    send_append(p, from, pr, true);
    return;
  }
  // Not in our log (or beyond it): the backup diverges inside what it
  // applied; only our snapshot can replace its. Where we forgot our term,
  // our snapshot is past its point and it installs it without being told.
  if (ours || r.hint > log_.last_index()) pr.refuted = {r.hint, r.hint_term};
  send_snapshot(from, pr);
}

template <AckRule R>
std::optional<Term> PrimaryBackup<R>::known_term(LogIndex i) const {
  if (auto t = log_.term(i)) return t;
  if (i > log_.snapshot().index) return std::nullopt;
  return term_in_history(compacted_terms_, log_.snapshot().index, i);
}

template <AckRule R>
void PrimaryBackup<R>::send_snapshot(NodeId to, PeerProgress& pr) {
  // Installing it, the backup drops what it holds past the snapshot, and
  // we may have counted those up to its match toward commitment. So a
  // snapshot below the match must at least reach our commit index (then
  // none of those entries is committed), else we wait for a
  // newer one. Waiting for one that reaches the match deadlocks when
  // commitment needs this backup: no snapshot passes the commit index, and
  // the backup acknowledges nothing until it installs one (semi-sync seeds
  // 355 and 4652: three backups of an acks-3 group asked for a snapshot at
  // their divergence, one past their match, above the commit index).
  if (!snapshot_ || snapshot_->meta.index < std::min(pr.match, log_.committed())) {
    pr.wants_snapshot = true;  // sent once the host compacts (compact())
    snapshot_wanted_ = true;   // which it is asked to do now (Ready::snapshot_wanted)
    return;
  }
  // One snapshot per few heartbeats at most: it may be large.
  const uint64_t gap = 10ull * opts_.heartbeat_interval_ticks;
  if (pr.snapshot_sent_tick != 0 && now_ticks_ < pr.snapshot_sent_tick + gap) return;
  pr.snapshot_sent_tick = now_ticks_;
  pr.wants_snapshot = false;
  const LogIndex snap = snapshot_->meta.index;
  CHORUS_ASSERT(snap >= pr.match || snap >= log_.committed());  // drops nothing committed
  // It holds our log through the snapshot, and perhaps no further.
  pr.match = std::min(pr.match, snap);
  pr.next = snap.next();
  CHORUS_ASSERT(pr.match < pr.next);
  send(to, InstallSnapshot{*snapshot_, term_history(), log_.last_index(), pr.refuted});
}

// Where each term begins in our log, the compacted prefix included.
template <AckRule R>
std::vector<TermStart> PrimaryBackup<R>::term_history() const {
  std::vector<TermStart> out = compacted_terms_;
  const core::SnapshotMeta snap = log_.snapshot();
  if (snap.index != LogIndex(0) && (out.empty() || out.back().term != snap.term)) {
    // Restored from a snapshot whose terms we forgot: its term is known to
    // hold at its last index only.
    out.push_back({snap.term, snap.index});
  }
  for (LogIndex i = log_.first_index(); i <= log_.last_index(); i = i.next()) {
    const Term t = log_.at(i).term;
    if (out.empty() || out.back().term != t) out.push_back({t, i});
  }
  return out;
}

template <AckRule R>
void PrimaryBackup<R>::send_append(const Primary& p, NodeId to, PeerProgress& pr, bool heartbeat) {
  CHORUS_ASSERT(pr.match < pr.next);
  if (pr.next <= log_.snapshot().index) {
    send_snapshot(to, pr);
    return;
  }
  Append a;
  a.prev_index = pr.next.prev();
  a.prev_term = *log_.term(a.prev_index);
  a.entries = log_.slice(pr.next, log_.last_index(), opts_.max_entries_per_append,
                         opts_.max_bytes_per_append);
  if (a.entries.empty() && !heartbeat) return;
  a.commit = log_.committed();
  a.term = entry_term(epoch_, p.generation);
  pr.next = pr.next + a.entries.size();
  send(to, std::move(a));
}

// Appends leave only once this epoch is durable here: a restarted node must
// never lead an epoch whose entries it may have sent and then forgotten.
template <AckRule R>
void PrimaryBackup<R>::flush_outbox() {
  auto* p = std::get_if<Primary>(&role_);
  if (!p || !p->broadcast_pending || durable_epoch_ != epoch_) return;
  p->broadcast_pending = false;
  for (auto& [id, pr] : p->peers) send_append(*p, id, pr, true);
}

// The highest index the acknowledgement rule lets the primary commit.
template <AckRule R>
LogIndex PrimaryBackup<R>::ack_index(const Primary& p) const {
  const LogIndex self = log_.stable();  // the primary counts itself once durable
  if (R == AckRule::kAsync) return self;
  if constexpr (planted::kPbCommitBeforePrepared) {
    if (R == AckRule::kSyncAll) return self;  // planted bug: no backup need prepare
  }
  std::vector<LogIndex> matches;
  for (const auto& [id, pr] : p.peers) {
    if (!pr.learner) matches.push_back(pr.match);
  }
  std::sort(matches.begin(), matches.end(), std::greater<>());
  if (R == AckRule::kSyncAll) return matches.empty() ? self : std::min(self, matches.back());
  CHORUS_ASSERT(opts_.acks <= matches.size());
  return std::min(self, matches[opts_.acks - 1]);
}

template <AckRule R>
void PrimaryBackup<R>::maybe_commit(Primary& p) {
  if (!lease_valid()) return;  // a primary without a lease acknowledges nothing
  const LogIndex acked = ack_index(p);
  LogIndex target = acked;
  if (R == AckRule::kSemiSync && degraded_) {
    target = log_.stable();
    if (acked >= log_.committed() && acked >= target) {
      degraded_ = false;
      role_reason_ = "semi-sync: backups caught up; no longer degraded";
    }
  }
  if (target < p.epoch_start || target <= log_.committed()) return;
  CHORUS_ASSERT_MSG(target <= log_.stable(), "a primary commits only what it holds durably");
  log_.commit_to(target);
  // Backups learn the decision at once (the commit phase of sync-all's
  // two-phase commit; for the others, it lets backups apply promptly).
  p.broadcast_pending = true;
  while (!p.pending.empty() && p.pending.front().index <= target) {
    const Pending& w = p.pending.front();
    if (w.index > acked) ++degraded_writes_;
    p.uncommitted_bytes -= w.bytes;
    p.pending.pop_front();
  }
}

template <AckRule R>
void PrimaryBackup<R>::check_timeouts(Primary& p) {
  if (R == AckRule::kAsync || p.pending.empty()) return;
  if (R == AckRule::kSyncAll) {
    const Pending& oldest = p.pending.front();
    if (now_ticks_ - oldest.proposed_tick >= opts_.prepare_timeout_ticks)
      rollback_from(p, oldest.index);
    return;
  }
  for (auto& w : p.pending) {
    if (w.answered || now_ticks_ - w.proposed_tick < opts_.ack_timeout_ticks) continue;
    if (opts_.on_timeout == OnTimeout::kDegrade) {
      if (!degraded_) role_reason_ = "semi-sync: too few backups acknowledge; degraded";
      degraded_ = true;
      maybe_commit(p);
      return;
    }
    w.answered = true;
    outcomes_.push_back({0, ProposeStatus::kAckTimedOut, opts_.id, w.index, w.term});
  }
}

// Sync-all two-phase commit, abort: every uncommitted write from `from` on
// is rolled back. The log is ordered, so a write prepared after an aborted
// one is aborted too. The aborted entries are replaced by one no-op marker
// of the next generation at `from`, which backups take like any entry (and
// so drop their prepared copies); their clients are answered kRolledBack
// once the marker is durable here and on a backup (release_rollbacks).
template <AckRule R>
void PrimaryBackup<R>::rollback_from(Primary& p, LogIndex from) {
  CHORUS_ASSERT(R == AckRule::kSyncAll && from > log_.committed());
  auto first = std::find_if(p.pending.begin(), p.pending.end(),
                            [&](const Pending& w) { return w.index >= from; });
  if (first == p.pending.end() || p.generation == kMaxGeneration) return;
  from = first->index;  // markers and no-ops before it stay
  Rollback rb{from, log_.at(from).term, {first, p.pending.end()}, {}};
  for (const auto& w : rb.aborted) p.uncommitted_bytes -= w.bytes;
  p.pending.erase(first, p.pending.end());
  for (LogIndex i = from; i <= log_.last_index(); i = i.next()) {
    const Entry& e = log_.at(i);
    if (e.type == EntryType::kNormal) rb.dropped.push_back({e, DropKind::kRolledBack});
  }
  ++p.generation;
  const Entry marker{entry_term(epoch_, p.generation), from, EntryType::kNoop, {}};
  log_.append_after(from.prev(), std::span<const Entry>(&marker, 1));
  CHORUS_ASSERT(log_.last_index() == from && log_.committed() < from);
  for (auto& [id, pr] : p.peers) {
    pr.match = std::min(pr.match, from.prev());
    pr.next = std::min(pr.next, from);
  }
  p.rollbacks.push_back(std::move(rb));
  p.broadcast_pending = true;
}

// A rollback is irrevocable (and its clients get kRolledBack) once the
// marker is durable here and on a backup, and only while the lease holds:
// after it lapses the manager may promote any backup, one still holding the
// aborted writes prepared included (tick() abandons the rest as kDropped).
template <AckRule R>
void PrimaryBackup<R>::release_rollbacks(Primary& p) {
  if (!lease_valid()) return;
  std::erase_if(p.rollbacks, [&](const Rollback& rb) {
    if (log_.stable() < rb.marker) return false;
    const bool on_backup = std::none_of(p.peers.begin(), p.peers.end(),
                                        [](const auto& kv) { return !kv.second.learner; }) ||
                           std::any_of(p.peers.begin(), p.peers.end(), [&](const auto& kv) {
                             return !kv.second.learner && kv.second.match >= rb.marker;
                           });
    if (!on_backup) return false;
    for (const auto& w : rb.aborted)
      outcomes_.push_back({0, ProposeStatus::kRolledBack, opts_.id, w.index, w.term});
    dropped_.insert(dropped_.end(), rb.dropped.begin(), rb.dropped.end());
    return true;
  });
}

template <AckRule R>
void PrimaryBackup<R>::send(NodeId to, Body body, bool after_persist) {
  Message m{opts_.id, to, epoch_, std::move(body)};
  (after_persist ? msgs_after_persist_ : msgs_).push_back(std::move(m));
}

// ---------------------------------------------------------------------------
// Ready

template <AckRule R>
bool PrimaryBackup<R>::has_ready() const {
  if (ready_outstanding_) return false;
  const auto* p = std::get_if<Primary>(&role_);
  return soft_state() != prev_soft_ || DurableState{epoch_, log_.committed()} != prev_durable_ ||
         pending_install_ || log_.has_unstable() || !msgs_.empty() ||
         !msgs_after_persist_.empty() || log_.has_committed_to_apply() || !reads_.empty() ||
         !outcomes_.empty() || !dropped_.empty() || snapshot_wanted_ ||
         std::any_of(unsettled_.begin(), unsettled_.end(),
                     [&](const auto& kv) {
                       return kv.second.conflict <= log_.committed() &&
                              settled(kv.second).has_value();
                     }) ||
         (p && p->broadcast_pending && durable_epoch_ == epoch_);
}

template <AckRule R>
Ready PrimaryBackup<R>::ready() {
  CHORUS_ASSERT_MSG(!ready_outstanding_, "ready() before advance() of the previous Ready");
  flush_outbox();
  Ready rd;
  const core::SoftState soft = soft_state();
  if (soft != prev_soft_) {
    rd.soft_state = soft;
    rd.soft_state_reason = std::move(role_reason_);
    prev_soft_ = soft;
  }
  role_reason_.clear();
  const DurableState ds{epoch_, log_.committed()};
  if (ds != prev_durable_) {
    rd.durable_state = ds;
    prev_durable_ = ds;
  }
  rd.snapshot = std::move(pending_install_);
  pending_install_.reset();
  rd.entries = log_.unstable_entries();
  log_.mark_handed(log_.last_index());
  rd.messages = std::move(msgs_);
  // An acknowledgement queued for entries that a later input of this same
  // Ready replaced (a rollback marker, a new primary's suffix) promises
  // entries that will not be durable: it must not leave. (Found by the
  // simulator: a backup resuming from a stall took an append and then the
  // marker that truncated it in one loop turn, and acknowledged both.)
  std::erase_if(msgs_after_persist_, [&](const Message& m) {
    const auto* r = std::get_if<AppendResponse>(&m.body);
    if (!r || r->refusal != Refusal::kNone) return false;
    if (r->match_index > log_.last_index()) return true;
    const auto t = log_.term(r->match_index);
    return t && *t != r->match_term;
  });
  rd.messages_after_persist = std::move(msgs_after_persist_);
  rd.committed = log_.take_committed(opts_.max_apply_bytes_per_ready);
  rd.reads = std::move(reads_);
  rd.outcomes = std::move(outcomes_);
  settle_drops();
  rd.dropped = std::move(dropped_);
  rd.snapshot_wanted = std::exchange(snapshot_wanted_, false);
  msgs_.clear();
  msgs_after_persist_.clear();
  reads_.clear();
  outcomes_.clear();
  dropped_.clear();
  ready_outstanding_ = true;
  return rd;
}

template <AckRule R>
void PrimaryBackup<R>::advance(const Ready& rd) {
  CHORUS_ASSERT(ready_outstanding_);
  ready_outstanding_ = false;
  log_.stable_to_handed();
  if (rd.durable_state) durable_epoch_ = std::max(durable_epoch_, rd.durable_state->epoch);
  if (auto* p = std::get_if<Primary>(&role_)) {
    maybe_commit(*p);
    release_rollbacks(*p);
  }
}

template <AckRule R>
bool PrimaryBackup<R>::has_messages() const {
  const auto* p = std::get_if<Primary>(&role_);
  return !msgs_.empty() || (p && p->broadcast_pending && durable_epoch_ == epoch_);
}

template <AckRule R>
std::vector<Message> PrimaryBackup<R>::take_messages() {
  flush_outbox();
  std::vector<Message> out = std::move(msgs_);
  msgs_.clear();
  return out;
}

template <AckRule R>
void PrimaryBackup<R>::compact(core::SnapshotRef snap) {
  // The host images its state machine off the loop, and may finish an image
  // it began before this backup installed a primary's snapshot
  // (handle_snapshot; the install's Ready may not even have reached the
  // host). Such an image is ignored when it is
  // - of a replaced history: past our applied index after an install moved
  //   it back (simulator, semi-sync seed 2915: n2 imaged 770, installed the
  //   new primary's 733, and asserted here), or with another term than our
  //   log's at its index (a legitimate image always has our term there:
  //   applied entries are replaced only by an install);
  // - or older than the snapshot our log now starts from: taking it would
  //   move snapshot_ back below the log, and a backup sent it would need
  //   entries we no longer hold (and it may be of a replaced history whose
  //   term we no longer know).
  // Taking either would make the engine offer backups a state its log does
  // not hold. The host then restores the installed snapshot.
  if (snap.meta.index < log_.snapshot().index) return;
  if (snap.meta.index > log_.applied() && snap.meta.index <= rewound_from_) return;
  if (auto t = known_term(snap.meta.index); t && *t != snap.meta.term) return;
  CHORUS_ASSERT_MSG(snap.meta.index <= log_.applied(), "a snapshot past the applied index");
  const LogIndex keep_from = snap.meta.index.value() > opts_.snapshot_trailing_entries
                                 ? snap.meta.index - opts_.snapshot_trailing_entries
                                 : LogIndex(0);
  LogIndex to = std::min(keep_from, log_.stable());
  if (const auto* p = std::get_if<Primary>(&role_); p && opts_.retain_unreplicated_entries > 0) {
    // Keep what a member lacks (bounded), so that a failover that drops it
    // can name every entry it drops. Learners do not pin it: a dead one
    // would hold the whole bound for good.
    LogIndex every_backup_has = log_.last_index();
    for (const auto& [id, pr] : p->peers) {
      if (!pr.learner) every_backup_has = std::min(every_backup_has, pr.match);
    }
    const LogIndex bound = snap.meta.index.value() > opts_.retain_unreplicated_entries
                               ? snap.meta.index - opts_.retain_unreplicated_entries
                               : LogIndex(0);
    LogIndex floor = std::max(every_backup_has, bound);
    if (opts_.retain_unreplicated_bytes > 0) {
      // Entries above `to` stay anyway; of (floor, to], keep the newest that fit.
      size_t bytes = 0;
      // (Positions below first_index() were compacted already: no bytes.)
      for (LogIndex i = to; i > floor && i >= log_.first_index(); i = i.prev()) {
        bytes += core::entry_bytes(log_.at(i));
        if (bytes > opts_.retain_unreplicated_bytes) {
          floor = i;
          break;
        }
      }
    }
    to = std::min(to, floor);
  }
  for (LogIndex i = log_.first_index(); i <= to; i = i.next()) {
    const Term t = log_.at(i).term;
    if (compacted_terms_.empty() || compacted_terms_.back().term != t)
      compacted_terms_.push_back({t, i});
  }
  if (compacted_terms_.size() > kMaxTermHistory)
    compacted_terms_.erase(compacted_terms_.begin(),
                           compacted_terms_.end() - static_cast<std::ptrdiff_t>(kMaxTermHistory));
  log_.compact(to);
  snapshot_ = std::move(snap);
  if (auto* p = std::get_if<Primary>(&role_)) {
    for (auto& [id, pr] : p->peers) {
      if (pr.wants_snapshot) send_snapshot(id, pr);
    }
  }
}

// ---------------------------------------------------------------------------
// Introspection

template <AckRule R>
core::SoftState PrimaryBackup<R>::soft_state() const {
  core::SoftState s;
  s.role = is_primary() ? core::Role::kLeader : core::Role::kFollower;
  s.term = Term(epoch_.value());
  s.leader = config_.primary;
  return s;
}

template <AckRule R>
core::EngineStatus PrimaryBackup<R>::status() const {
  core::EngineStatus st;
  st.soft = soft_state();
  st.role_name = !is_primary() ? "backup" : lease_valid() ? "primary" : "primary-lease-lapsed";
  st.commit_index = log_.committed();
  st.first_index = log_.first_index();
  st.last_index = log_.last_index();
  st.snapshot_index = log_.snapshot().index;
  st.degraded = degraded_;
  st.degraded_writes = degraded_writes_;
  st.acknowledging = is_primary() && lease_valid();
  if (const auto* p = std::get_if<Primary>(&role_)) {
    for (const auto& [id, pr] : p->peers) {
      st.peers.push_back({id, pr.match, pr.next, log_.last_index() - pr.match});
    }
  }
  return st;
}

template <AckRule R>
std::optional<PeerProgress> PrimaryBackup<R>::progress(NodeId peer) const {
  const auto* p = std::get_if<Primary>(&role_);
  if (!p) return std::nullopt;
  auto it = p->peers.find(peer);
  if (it == p->peers.end()) return std::nullopt;
  return it->second;
}

template class PrimaryBackup<AckRule::kSyncAll>;
template class PrimaryBackup<AckRule::kSemiSync>;
template class PrimaryBackup<AckRule::kAsync>;

}  // namespace chorus::primary
