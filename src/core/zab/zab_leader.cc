// The leader's side of phases 1-3 (DSN 2011, Algorithms 1-3, "leader";
// ZooKeeper's Leader.lead and LearnerHandler).
#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "base/assert.h"
#include "core/common/quorum.h"
#include "core/zab/zab.h"

namespace chorus::zab {

void Zab::become_leading(std::string why) {
  role_ = Leading{};
  role_reason_ = std::move(why);
  // A one-member ensemble is its own quorum in every phase.
  if (cfg_.members.size() == 1) {
    auto& l = std::get<Leading>(role_);
    on_follower_info(l, cfg_.id, FollowerInfo{accepted_epoch_, 0});
  }
}

// Phase 1: collect a quorum of acceptedEpochs, propose e' = max + 1.
void Zab::on_follower_info(Leading& l, NodeId from, const FollowerInfo& fi) {
  if (from != cfg_.id) {
    // Only a newer connection attempt replaces the learner's: a duplicated
    // or delayed FollowerInfo would take a synced follower out of the
    // quorum (sessions grow, also across the follower's restarts).
    if (auto it = l.learners.find(from);
        it != l.learners.end() && fi.session <= it->second.session) {
      return;
    }
    Learner& lr = l.learners[from];
    const uint64_t after_persist_until = lr.after_persist_until;
    lr = Learner{};
    lr.after_persist_until = after_persist_until;
    lr.session = fi.session;
    lr.accepted_epoch = fi.accepted_epoch;
  }
  if (l.epoch == 0) {
    if (l.learners.size() + 1 < quorum()) return;
    uint64_t max_accepted = accepted_epoch_;
    for (const auto& [id, lr] : l.learners)
      max_accepted = std::max(max_accepted, lr.accepted_epoch);
    CHORUS_ASSERT_MSG(max_accepted < kMaxEpoch, "zab epochs exhausted");
    l.epoch = max_accepted + 1;
    // The leader's own acceptedEpoch, persisted before any NewEpoch leaves.
    accepted_epoch_ = l.epoch;
    l.epoch_acks.insert(cfg_.id);
    for (auto& [id, lr] : l.learners) {
      send_learner(lr, id, NewEpoch{l.epoch, lr.session, vote_, logical_clock_}, true);
      lr.stage = Learner::Stage::kEpochSent;
    }
    if (l.epoch_acks.size() >= quorum()) start_synchronization(l);
    return;
  }
  if (from == cfg_.id) return;
  Learner& lr = l.learners.at(from);
  send_learner(lr, from, NewEpoch{l.epoch, lr.session, vote_, logical_clock_}, true);
  lr.stage = Learner::Stage::kEpochSent;
}

void Zab::on_ack_epoch(Leading& l, NodeId from, const AckEpoch& a) {
  auto it = l.learners.find(from);
  if (it == l.learners.end()) return;
  Learner& lr = it->second;
  lr.idle_ticks = 0;
  if (a.session != lr.session || a.epoch != l.epoch || lr.stage != Learner::Stage::kEpochSent) {
    return;
  }
  const Zxid mine = last_zxid();
  // Leader.waitForEpochAck skips an ACKEPOCH with epoch -1 for the checks
  // and the count: that follower may have acknowledged e' to another leader.
  if (l.phase == Phase::kDiscovery && !a.already_accepted &&
      std::tie(a.current_epoch, a.last_zxid) > std::tie(current_epoch_, mine)) {
    // Leader.waitForEpochAck: a follower ahead of the leader means the
    // election was decided on stale information; elect again.
    start_election(fmt::format("follower n{} is ahead (epoch {}, {}) of this leader (epoch {}, {})",
                               from.value(), a.current_epoch, to_string(a.last_zxid),
                               current_epoch_, to_string(last_zxid())));
    return;
  }
  lr.stage = Learner::Stage::kEpochAcked;
  lr.peer_last_zxid = a.last_zxid;
  lr.peer_last_index = a.last_index;
  if (!a.already_accepted) l.epoch_acks.insert(from);
  if (l.phase == Phase::kDiscovery) {
    if (l.epoch_acks.size() >= quorum()) start_synchronization(l);
  } else {
    send_new_leader(l, from, lr);
  }
}

// Phase 2 starts: the epoch is established with a quorum; our history is
// the initial history I_e' of the new epoch.
void Zab::start_synchronization(Leading& l) {
  CHORUS_ASSERT(l.phase == Phase::kDiscovery && l.epoch_acks.size() >= quorum());
  CHORUS_ASSERT(accepted_epoch_ == l.epoch && current_epoch_ < l.epoch);
  l.phase = Phase::kSynchronization;
  l.phase_ticks = 0;
  current_epoch_ = l.epoch;  // Leader.lead: setCurrentEpoch after the epoch acks
  l.initial_last = last_index();
  l.next_counter = 1;
  for (auto& [id, lr] : l.learners) {
    if (lr.stage == Learner::Stage::kEpochAcked) send_new_leader(l, id, lr);
  }
  check_established(l);
}

// DIFF, TRUNC or SNAP (LearnerHandler.syncFollower), in one NewLeader.
void Zab::send_new_leader(Leading& l, NodeId to, Learner& lr) {
  NewLeader n{l.epoch, lr.session, SyncMode::kDiff, {}, {}, std::nullopt, {}, commit_, true};
  LogIndex start;  // the follower keeps its log through here
  const LogIndex peer = lr.peer_last_index;
  if (peer >= snapshot_index_ && peer <= last_index() && zxid_at(peer) == lr.peer_last_zxid) {
    start = peer;  // its log is a prefix of ours
  } else {
    // It holds proposals we lack: keep its log through our last proposal
    // below its last zxid, cut the rest.
    LogIndex k = std::min(peer, last_index());
    while (k > snapshot_index_ && zxid_at(k) >= lr.peer_last_zxid) k = k.prev();
    if (k < snapshot_index_ || zxid_at(k) >= lr.peer_last_zxid) {
      start = LogIndex(0);  // no common point in what we still hold: SNAP below
    } else {
      n.mode = k.value() > 0 ? SyncMode::kTrunc : SyncMode::kDiff;
      start = k;
    }
  }
  if (start < snapshot_index_ ||
      (snapshot_ && snapshot_index_ > start && last_index() - start > cfg_.max_sync_entries)) {
    CHORUS_ASSERT(snapshot_.has_value());
    n.mode = SyncMode::kSnap;
    n.snapshot = snapshot_;
    start = snapshot_index_;
  } else {
    n.trunc_index = start;
    n.trunc_zxid = zxid_at(start);
  }
  const LogIndex end = std::min(last_index(), start + cfg_.max_sync_entries);
  for (LogIndex i = start.next(); i <= end; i = i.next()) n.entries.push_back(entry(i));
  n.complete = end == last_index();
  lr.stage = Learner::Stage::kSyncSent;
  // Proposals made from now on reach it too (LearnerHandler.startForwarding),
  // queued behind the NewLeader: one that overtook it would be dropped (not
  // yet acknowledged NEWLEADER) and the next seen as a gap, and under steady
  // writes the follower would reconnect forever.
  lr.forwarding = n.complete;
  send_learner(lr, to, std::move(n), true);
}

void Zab::on_new_leader_ack(Leading& l, NodeId from, const NewLeaderAck& a) {
  auto it = l.learners.find(from);
  if (it == l.learners.end()) return;
  Learner& lr = it->second;
  lr.idle_ticks = 0;
  if (a.session != lr.session || a.epoch != l.epoch || lr.stage != Learner::Stage::kSyncSent) {
    return;
  }
  CHORUS_ASSERT(a.last_index <= last_index());
  lr.stage = Learner::Stage::kSynced;
  lr.forwarding = true;
  lr.acked = std::max(lr.acked, a.last_index);
  l.newleader_acks.insert(from);
  if (l.phase == Phase::kBroadcast) {
    send_learner(lr, from, UpToDate{l.epoch, lr.session, commit_});
    update_commit(l);
  } else {
    check_established(l);
  }
}

// A quorum acknowledged NEWLEADER (the leader counts once its currentEpoch
// and its history are durable): I_e' is committed, broadcast may begin.
void Zab::check_established(Leading& l) {
  if (l.phase != Phase::kSynchronization) return;
  if (durable_.current_epoch == l.epoch && durable_last_ >= l.initial_last) {
    l.newleader_acks.insert(cfg_.id);
  }
  if (l.newleader_acks.size() < quorum()) return;
  CHORUS_ASSERT(current_epoch_ == l.epoch && accepted_epoch_ == l.epoch);
  CHORUS_ASSERT(l.initial_last <= last_index() && l.next_counter == 1);
  l.phase = Phase::kBroadcast;
  set_commit(l.initial_last);
  role_reason_ = fmt::format("epoch {} established by a quorum", l.epoch);
  for (auto& [id, lr] : l.learners) {
    if (lr.stage == Learner::Stage::kSynced) {
      send_learner(lr, id, UpToDate{l.epoch, lr.session, commit_});
    }
  }
}

void Zab::on_ack(Leading& l, NodeId from, const Ack& a) {
  auto it = l.learners.find(from);
  if (it == l.learners.end() || a.epoch != l.epoch) return;
  Learner& lr = it->second;
  lr.idle_ticks = 0;
  if (lr.stage != Learner::Stage::kSynced) return;
  if (a.index > last_index() || a.index < snapshot_index_ || zxid_at(a.index) != a.zxid) return;
  lr.acked = std::max(lr.acked, a.index);
  update_commit(l);
}

// Commit the longest prefix a quorum (this leader counted once durable)
// acknowledged: proposals commit in zxid order (DSN 2011 Alg. 3).
void Zab::update_commit(Leading& l) {
  if (l.phase != Phase::kBroadcast) return;
  // Invariant: everything of I_e' was committed when the epoch was established.
  CHORUS_ASSERT(commit_ >= l.initial_last);
  std::vector<LogIndex> acked;
  for (NodeId m : cfg_.members) {
    if (m == cfg_.id) {
      acked.push_back(durable_last_);
      continue;
    }
    auto it = l.learners.find(m);
    const bool synced = it != l.learners.end() && it->second.stage == Learner::Stage::kSynced;
    acked.push_back(synced ? it->second.acked : LogIndex(0));
  }
  set_commit(core::quorum_value(std::move(acked)));
}

void Zab::append_proposal(Leading& l, core::EntryType type, std::string data) {
  CHORUS_ASSERT(l.phase == Phase::kBroadcast);
  CHORUS_ASSERT_MSG(l.next_counter <= cfg_.max_zxid_counter, "zxid counter exhausted");
  const Zxid z{l.epoch, l.next_counter++};
  append(core::Entry{z.to_term(), last_index().next(), type, std::move(data)});
  if (!l.unsent_from) l.unsent_from = last_index();
}

bool Zab::counters_exhausted(Leading& l) {
  if (l.next_counter <= cfg_.max_zxid_counter) return false;
  // ZOOKEEPER-1277: the zxid's lower 32 bits would roll over into the
  // epoch; elect again, so the next leader starts a new epoch at counter 1.
  // What this epoch proposed is in the next one's initial history.
  start_election(fmt::format("zxid counters of epoch {} exhausted", l.epoch));
  return true;
}

void Zab::broadcast_proposals(Leading& l) {
  if (l.unsent_from) {
    const LogIndex first = *l.unsent_from;
    l.unsent_from.reset();
    for (auto& [id, lr] : l.learners) {
      if (!lr.forwarding) continue;
      for (LogIndex i = first; i <= last_index();) {
        Proposal p{l.epoch, {}};
        for (; i <= last_index() && p.entries.size() < cfg_.max_entries_per_proposal;
             i = i.next()) {
          p.entries.push_back(entry(i));
        }
        send_learner(lr, id, std::move(p));
      }
    }
  }
  if (l.commit_pending) {
    l.commit_pending = false;
    for (auto& [id, lr] : l.learners) {
      if (lr.stage == Learner::Stage::kSynced) {
        send_learner(lr, id, Commit{l.epoch, zxid_at(commit_), commit_});
      }
    }
  }
}

void Zab::tick_leading(Leading& l) {
  ++l.phase_ticks;
  for (auto& [id, lr] : l.learners) ++lr.idle_ticks;
  if (l.phase != Phase::kBroadcast) {
    if (l.phase_ticks >= cfg_.init_limit_ticks) {
      start_election(
          fmt::format("{} did not reach a quorum in {} ticks", phase_name(l.phase), l.phase_ticks));
    }
    return;
  }
  // Leader.lead's loop: keep leading only while a quorum stays synced.
  size_t synced = 1;
  for (const auto& [id, lr] : l.learners) {
    if (lr.stage == Learner::Stage::kSynced && lr.idle_ticks < cfg_.sync_limit_ticks) ++synced;
  }
  if (synced < quorum()) {
    start_election(fmt::format("only {} of {} members synced within {} ticks", synced,
                               cfg_.members.size(), cfg_.sync_limit_ticks));
    return;
  }
  if (++l.ping_elapsed_ticks >= cfg_.ping_interval_ticks) {
    l.ping_elapsed_ticks = 0;
    for (auto& [id, lr] : l.learners) {
      if (lr.stage == Learner::Stage::kSynced) {
        send_learner(lr, id, Ping{l.epoch, commit_, last_index()});
      }
    }
  }
}

}  // namespace chorus::zab
