// Phase 0: Fast Leader Election (ZooKeeper's FastLeaderElection; Medeiros
// 2012, §"Leader election"). Votes are (proposed leader, its last zxid, its
// currentEpoch), ranked by vote_beats(); each node proposes itself first and
// adopts any better vote it hears in its round.
#include <fmt/format.h>

#include <utility>

#include "base/assert.h"
#include "core/zab/zab.h"

namespace chorus::zab {

Vote Zab::initial_vote() const {
  return Vote{cfg_.id, last_zxid(), current_epoch_};
}

void Zab::start_election(std::string why) {
  drop_reads();
  role_ = Looking{};
  auto& l = std::get<Looking>(role_);
  l.resend_interval_ticks = cfg_.notification_interval_ticks;
  // A new round: logicalclock++, vote for ourselves, tell everyone.
  ++logical_clock_;
  vote_ = initial_vote();
  role_reason_ = std::move(why);
  send_notifications();
  check_termination(l);  // a one-member ensemble settles at once
}

void Zab::send_notifications() {
  const ServerState s = server_state();
  for (NodeId peer : cfg_.members) {
    if (peer != cfg_.id) send(peer, Notification{vote_, logical_clock_, s});
  }
}

void Zab::on_notification(NodeId from, const Notification& n) {
  if (auto* l = std::get_if<Looking>(&role_)) {
    on_notification_looking(*l, from, n);
    return;
  }
  // Our leader is LOOKING again: its leadership ended (ZooKeeper's
  // follower sees the connection close), so we look too. Only in a round
  // after the one we settled in (or adopted from its NewEpoch): a leader
  // that looks again starts a later round, so an earlier one is a delayed
  // or duplicated notification from before it settled, and acting on it
  // would evict us from a healthy leader. A leader that restarted (its
  // round starts over) is noticed by sync_limit_ticks instead.
  if (const auto* f = std::get_if<Following>(&role_); f && from == f->leader &&
                                                      n.state == ServerState::kLooking &&
                                                      n.election_epoch > logical_clock_) {
    start_election(fmt::format("leader n{} is LOOKING again", from.value()));
    on_notification(from, n);
    return;
  }
  // Settled (FOLLOWING or LEADING): a LOOKING peer gets our settled vote
  // back, with our state, so it can join the established leader.
  if (n.state == ServerState::kLooking) {
    send(from, Notification{vote_, logical_clock_, server_state()});
  }
}

void Zab::on_notification_looking(Looking& l, NodeId from, const Notification& n) {
  l.resend_elapsed_ticks = 0;
  if (n.state == ServerState::kLooking) {
    if (n.election_epoch > logical_clock_) {
      // A later round: join it, forget this round's votes, and vote for the
      // better of the sender's vote and our own initial vote.
      logical_clock_ = n.election_epoch;
      l.recv.clear();
      vote_ = vote_beats(n.vote, initial_vote()) ? n.vote : initial_vote();
      send_notifications();
    } else if (n.election_epoch < logical_clock_) {
      // A stale round: tell the sender about ours (WorkerReceiver).
      send(from, Notification{vote_, logical_clock_, ServerState::kLooking});
      return;
    } else if (vote_beats(n.vote, vote_)) {
      vote_ = n.vote;
      send_notifications();
    }
    l.recv[from] = Received{n.vote, n.election_epoch, n.state};
    check_termination(l);
    return;
  }
  // The sender is FOLLOWING or LEADING: an established ensemble.
  const Received r{n.vote, n.election_epoch, n.state};
  if (n.election_epoch == logical_clock_) {
    l.recv[from] = r;
    if (quorum_agrees(l.recv, n.vote, /*full=*/false) &&
        check_leader(l.recv, n.vote.leader, n.election_epoch)) {
      settle(n.vote, fmt::format("a quorum of round {} follows n{}", logical_clock_,
                                 n.vote.leader.value()));
      return;
    }
  }
  l.outofelection[from] = r;
  if (quorum_agrees(l.outofelection, n.vote, /*full=*/false) &&
      check_leader(l.outofelection, n.vote.leader, std::nullopt)) {
    logical_clock_ = n.election_epoch;
    settle(n.vote, fmt::format("a quorum outside the election follows n{}", n.vote.leader.value()));
  }
}

// Agreement with `v`: within one round every field of the vote (FLE's
// termPredicate); among settled peers the leader and its epoch (their zxids
// moved on since they settled).
bool Zab::quorum_agrees(const std::map<NodeId, Received>& votes, const Vote& v, bool full) const {
  size_t n = 0;
  for (NodeId m : cfg_.members) {
    const Vote* mine = nullptr;
    if (m == cfg_.id) {
      mine = &vote_;
    } else if (auto it = votes.find(m); it != votes.end()) {
      mine = &it->second.vote;
    }
    if (mine == nullptr) continue;
    const bool same =
        full ? *mine == v : mine->leader == v.leader && mine->peer_epoch == v.peer_epoch;
    if (same) ++n;
  }
  return n >= quorum();
}

// FLE's checkLeader: follow another node only after hearing it claim
// LEADING itself; lead only if the quorum's round is ours.
bool Zab::check_leader(const std::map<NodeId, Received>& votes, NodeId leader,
                       std::optional<uint64_t> election_epoch) const {
  // Outside a round (election_epoch unset) a node never settles as leader:
  // its settled peers may follow a leadership of ours that already ended.
  if (leader == cfg_.id) return election_epoch && *election_epoch == logical_clock_;
  auto it = votes.find(leader);
  return it != votes.end() && it->second.state == ServerState::kLeading;
}

void Zab::check_termination(Looking& l) {
  if (quorum_agrees(l.recv, vote_, /*full=*/true)) {
    // finalizeWait: a better vote may still be on its way.
    if (!l.finalize_left_ticks) l.finalize_left_ticks = cfg_.finalize_wait_ticks;
    if (cfg_.members.size() == 1) settle(vote_, "the only member");
  } else {
    l.finalize_left_ticks.reset();
  }
}

void Zab::settle(const Vote& v, std::string why) {
  CHORUS_ASSERT(std::holds_alternative<Looking>(role_));
  vote_ = v;
  if (v.leader == cfg_.id) {
    become_leading(std::move(why));
  } else {
    become_following(v.leader, std::move(why));
  }
}

void Zab::tick_looking(Looking& l) {
  if (l.finalize_left_ticks) {
    if (*l.finalize_left_ticks > 0) --*l.finalize_left_ticks;
    if (*l.finalize_left_ticks == 0) {
      settle(vote_, fmt::format("round {}: a quorum votes for n{} ({}, epoch {})", logical_clock_,
                                vote_.leader.value(), to_string(vote_.zxid), vote_.peer_epoch));
      return;
    }
  }
  if (++l.resend_elapsed_ticks >= l.resend_interval_ticks) {
    // No news: send our vote again, backing off (notification timeout).
    l.resend_elapsed_ticks = 0;
    l.resend_interval_ticks =
        std::min(2 * l.resend_interval_ticks, cfg_.max_notification_interval_ticks);
    send_notifications();
  }
}

}  // namespace chorus::zab
