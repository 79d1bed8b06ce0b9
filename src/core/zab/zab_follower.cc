// The follower's side of phases 1-3 (DSN 2011, Algorithms 1-3, "follower";
// ZooKeeper's Learner.registerWithLeader / syncWithLeader / Follower).
#include <fmt/format.h>

#include <utility>

#include "base/assert.h"
#include "core/zab/zab.h"

namespace chorus::zab {

void Zab::become_following(NodeId leader, std::string why) {
  CHORUS_ASSERT(leader != cfg_.id && leader != kNoNode);
  role_ = Following{};
  auto& f = std::get<Following>(role_);
  f.leader = leader;
  role_reason_ = std::move(why);
  connect(f);
}

// A new connection attempt: FollowerInfo (CEPOCH) with our acceptedEpoch.
void Zab::connect(Following& f) {
  f.phase = Phase::kDiscovery;
  // Unique across incarnations, and growing: (incarnation, attempt).
  CHORUS_ASSERT_MSG(session_ < kMaxCounter, "zab sessions exhausted");
  f.session = (incarnation_ << 32) | ++session_;
  f.epoch = 0;
  f.acked_leader = false;
  f.attempt_ticks = 0;
  f.behind_pings = 0;
  // The first session of an incarnation waits for the incarnation's fsync:
  // a crash before it would reuse the session.
  if (durable_.incarnation == incarnation_) {
    send(f.leader, FollowerInfo{accepted_epoch_, f.session});
  } else {
    send_after_persist(f.leader, FollowerInfo{accepted_epoch_, f.session});
  }
}

// Messages count only from the leader we follow, and (past discovery) only
// in its epoch: a follower never takes anything from an older epoch.
bool Zab::from_my_leader(NodeId from, uint64_t epoch, Following*& f) {
  f = std::get_if<Following>(&role_);
  if (f == nullptr || from != f->leader) return false;
  if (epoch != 0 && (f->epoch == 0 || epoch != f->epoch)) return false;
  f->idle_ticks = 0;
  return true;
}

void Zab::on_new_epoch(Following& f, const NewEpoch& e) {
  if (e.session != f.session || f.phase != Phase::kDiscovery) return;
  // DSN 2011 Alg. 1 / Learner.registerWithLeader: an epoch below the one we
  // accepted means this leader lost to a newer one; look again.
  if (e.epoch < accepted_epoch_) {
    start_election(fmt::format("leader n{} offers epoch {} below our acceptedEpoch {}",
                               f.leader.value(), e.epoch, accepted_epoch_));
    return;
  }
  // Learner.registerWithLeader: an epoch equal to the one we accepted may
  // be one we acknowledged to another leader that picked the same e' (two
  // leaders elected by overlapping quorums before either's NEWEPOCH
  // arrived). Acknowledging it again as a full ACK-E would let both
  // establish e' and commit different proposals at the same zxid, so the
  // ACK-E says it must not count. The exception is a leader we already
  // acknowledged e' to in this incarnation (our ACK-E may have been lost):
  // we never acknowledged e' to anyone else, since we refuse a second.
  const bool already_accepted =
      e.epoch == accepted_epoch_ && !(epoch_acked_to_ && *epoch_acked_to_ == f.leader);
  if (e.epoch > accepted_epoch_) epoch_acked_to_ = f.leader;
  // The acceptedEpoch is persisted before the ACK-E leaves: this Ready's
  // durable_state carries it, the AckEpoch waits for its fsync.
  accepted_epoch_ = e.epoch;
  if (e.leader_vote) {
    vote_ = *e.leader_vote;
    logical_clock_ = e.election_epoch;
  }
  f.epoch = e.epoch;
  f.phase = Phase::kSynchronization;
  f.attempt_ticks = 0;
  send_after_persist(f.leader, AckEpoch{e.epoch, f.session, current_epoch_, last_zxid(),
                                        last_index(), already_accepted});
}

bool Zab::apply_sync(const NewLeader& n) {
  if (n.mode == SyncMode::kSnap) {
    CHORUS_ASSERT(n.snapshot.has_value());
    const core::SnapshotRef& s = *n.snapshot;
    if (s.meta.index < commit_) return false;  // would undo what we applied
    log_.clear();
    snapshot_index_ = s.meta.index;
    snapshot_zxid_ = Zxid::from_term(s.meta.term);
    snapshot_ = s;
    pending_install_ = s;
    unstable_from_.reset();
    commit_ = applied_ = snapshot_index_;
  } else {
    // TRUNC (or DIFF, where trunc_index is our last index): keep our log
    // through trunc_index, which must hold the leader's proposal there.
    if (n.trunc_index < snapshot_index_ || n.trunc_index > last_index() ||
        zxid_at(n.trunc_index) != n.trunc_zxid) {
      return false;
    }
    truncate_after(n.trunc_index);
  }
  for (const core::Entry& e : n.entries) append(e);
  return true;
}

void Zab::on_new_leader(Following& f, const NewLeader& n) {
  if (n.session != f.session || f.phase != Phase::kSynchronization || f.acked_leader) return;
  if (!apply_sync(n)) {
    start_election(fmt::format("cannot apply {} from n{}: our log does not hold {} at {}",
                               sync_mode_name(n.mode), f.leader.value(), to_string(n.trunc_zxid),
                               n.trunc_index.value()));
    return;
  }
  set_commit(n.commit);
  if (!n.complete) {
    // Only part of the leader's history fitted: keep it, connect again for
    // the rest, and take no new epoch with an incomplete history.
    connect(f);
    return;
  }
  // DSN 2011 Alg. 2: NEWLEADER(e') counts only if e' is the epoch we
  // accepted; currentEpoch := e' before acknowledging it, in the same fsync
  // as the history it acknowledges.
  CHORUS_ASSERT(accepted_epoch_ == n.epoch && current_epoch_ <= n.epoch);
  current_epoch_ = n.epoch;
  f.acked_leader = true;
  f.attempt_ticks = 0;
  send_after_persist(f.leader, NewLeaderAck{n.epoch, f.session, last_index()});
}

void Zab::on_up_to_date(Following& f, const UpToDate& u) {
  if (u.session != f.session || !f.acked_leader || f.phase != Phase::kSynchronization) return;
  // COMMIT-LD: the leader's initial history is committed; deliver it.
  f.phase = Phase::kBroadcast;
  set_commit(u.commit);
  role_reason_ = fmt::format("synchronized with n{} in epoch {}", f.leader.value(), f.epoch);
}

void Zab::on_proposal(Following& f, const Proposal& p) {
  // Proposals count only once this follower holds the epoch's history (it
  // acknowledged NEWLEADER); earlier ones reach it through the sync.
  if (!f.acked_leader) return;
  CHORUS_ASSERT(p.epoch == current_epoch_);
  bool accepted = false;
  for (const core::Entry& e : p.entries) {
    if (e.index <= last_index()) {
      // A duplicate; anything else here means we missed a re-sync.
      if (e.index > snapshot_index_ && zxid_at(e.index) != Zxid::from_term(e.term)) {
        connect(f);
        return;
      }
      continue;
    }
    if (e.index != last_index().next()) {
      // A skipped proposal: never accept past a gap (primary order). Ask
      // the leader for a fresh sync, as a follower whose connection broke.
      connect(f);
      return;
    }
    CHORUS_ASSERT(Zxid::from_term(e.term).epoch == p.epoch);
    append(e);
    accepted = true;
  }
  if (accepted) send_ack(f);
}

void Zab::send_ack(Following& f) {
  send_after_persist(f.leader, Ack{f.epoch, last_zxid(), last_index()});
}

void Zab::on_commit(Following& f, LogIndex index) {
  if (!f.acked_leader) return;
  set_commit(index);
}

void Zab::on_ping(Following& f, const Ping& p) {
  if (!f.acked_leader) return;
  // A leader pings only once established (a quorum acknowledged NEWLEADER),
  // so a ping stands in for a lost UPTODATE.
  if (f.phase == Phase::kSynchronization) {
    f.phase = Phase::kBroadcast;
    role_reason_ = fmt::format("synchronized with n{} in epoch {}", f.leader.value(), f.epoch);
  }
  set_commit(p.commit);
  // Two pings in a row past our last proposal: the tail was lost.
  f.behind_pings = p.last_index > last_index() ? f.behind_pings + 1 : 0;
  if (f.behind_pings >= 2) {
    connect(f);
    return;
  }
  send_ack(f);
}

void Zab::tick_following(Following& f) {
  ++f.idle_ticks;
  ++f.attempt_ticks;
  const uint32_t limit =
      f.phase == Phase::kBroadcast ? cfg_.sync_limit_ticks : cfg_.init_limit_ticks;
  if (f.idle_ticks >= limit) {
    start_election(
        fmt::format("no message from leader n{} for {} ticks", f.leader.value(), f.idle_ticks));
    return;
  }
  if (f.phase != Phase::kBroadcast && !f.acked_leader &&
      f.attempt_ticks >= cfg_.handshake_retry_ticks) {
    // A FollowerInfo, NewEpoch, AckEpoch or NewLeader was lost (or the
    // leader still waits for its quorum): connect again.
    const uint32_t idle = f.idle_ticks;
    connect(f);
    f.idle_ticks = idle;
  } else if (f.phase != Phase::kBroadcast && f.acked_leader &&
             f.attempt_ticks >= cfg_.handshake_retry_ticks) {
    // Our NewLeaderAck was lost (a lost UpToDate is made up for by pings):
    // acknowledge again; the leader ignores a duplicate. The Proposals it
    // forwards meanwhile keep us from timing out, so waiting would never end.
    f.attempt_ticks = 0;
    send_after_persist(f.leader, NewLeaderAck{f.epoch, f.session, last_index()});
  }
}

}  // namespace chorus::zab
