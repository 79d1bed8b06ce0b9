// The Raft core: role transitions (become_*, campaign) and votes (Raft §5.2, PreVote).
#include <string>
#include <utility>

#include "base/assert.h"
#include "base/planted.h"
#include "core/common/quorum.h"
#include "core/raft/raft.h"
#include "fmt/format.h"

namespace chorus::raft {

using core::EntryType;

// ---------------------------------------------------------------------------
// Transitions

void Raft::reset_election_timer() {
  election_elapsed_ticks_ = 0;
  randomized_election_timeout_ticks_ = static_cast<uint32_t>(
      prng_.uniform(cfg_.election_timeout_ticks, 2 * cfg_.election_timeout_ticks - 1));
}

void Raft::become_follower(Term term, NodeId leader, std::string why, bool reset_timer) {
  if (!std::holds_alternative<Follower>(role_) || term > term_) role_reason_ = std::move(why);
  if (auto* l = std::get_if<Leader>(&role_)) {
    // Reads waiting for confirmation can no longer be confirmed by us.
    for (const auto& r : l->reads_before_commit) {
      if (r.from == cfg_.id) outcomes_.push_back({r.ctx, ProposeStatus::kDropped, leader, {}, {}});
    }
    for (const auto& r : l->reads) {
      if (r.from == cfg_.id) outcomes_.push_back({r.ctx, ProposeStatus::kDropped, leader, {}, {}});
    }
  }
  // Raft §5.1: a higher term resets the vote.
  if (term > term_) {
    term_ = term;
    voted_for_ = kNoNode;
  }
  role_ = Follower{};
  leader_ = leader;
  if (reset_timer) reset_election_timer();
}

void Raft::become_pre_candidate() {
  CHORUS_ASSERT(!std::holds_alternative<Leader>(role_));
  // PreVote: term and vote stay unchanged; nothing is persisted.
  role_ = PreCandidate{};
  leader_ = kNoNode;
  reset_election_timer();
}

void Raft::become_candidate() {
  CHORUS_ASSERT(!std::holds_alternative<Leader>(role_));
  // Raft §5.2: increment current_term, vote for self, reset the election timer.
  term_ = term_.next();
  voted_for_ = cfg_.id;
  role_ = Candidate{};
  leader_ = kNoNode;
  reset_election_timer();
}

void Raft::become_leader() {
  CHORUS_ASSERT(std::holds_alternative<Candidate>(role_));
  role_reason_ = fmt::format("won the election for term {}", term_.value());
  Leader l;
  for (NodeId v : cfg_.voters) {
    if (v == cfg_.id) continue;
    Progress pr(log_.last_index().next(), cfg_.max_inflight_appends);
    pr.last_heard_tick = now_ticks_;  // the election counts: one election timeout of grace
    l.progress.emplace(v, std::move(pr));
  }
  role_ = std::move(l);
  leader_ = cfg_.id;
  election_elapsed_ticks_ = 0;
  Leader& leader = std::get<Leader>(role_);
  // Raft §8 / §5.4.2: a no-op in the new term lets the leader commit the
  // entries of earlier terms, and is what ReadIndex waits for.
  leader.term_start_index = log_.last_index().next();
  append_entry(leader, EntryType::kNoop, {});
}

void Raft::campaign(bool pre_vote, std::string why) {
  role_reason_ = std::move(why);
  Term vote_term;
  std::map<NodeId, bool>* votes = nullptr;
  if (pre_vote) {
    become_pre_candidate();
    vote_term = term_.next();
    votes = &std::get<PreCandidate>(role_).votes;
  } else {
    become_candidate();
    vote_term = term_;
    votes = &std::get<Candidate>(role_).votes;
  }
  (*votes)[cfg_.id] = true;
  if (core::tally(cfg_.voters.size(), 1, 0) == core::VoteResult::kWon) {
    if (pre_vote) {
      campaign(false, "a single-node cluster wins its own pre-vote");
    } else {
      become_leader();
    }
    return;
  }
  for (NodeId v : cfg_.voters) {
    if (v == cfg_.id) continue;
    msgs_after_persist_.push_back(
        Message{cfg_.id, v, vote_term, RequestVote{log_.last_index(), log_.last_term(), pre_vote}});
  }
}

// ---------------------------------------------------------------------------
// Elections

void Raft::handle_vote_request(const Message& m, const RequestVote& rv) {
  // Raft §5.2 / §5.4.1: one vote per term, first come first served, and only
  // for a candidate whose log is at least as up-to-date as ours.
  bool can_vote = voted_for_ == m.from || (voted_for_ == kNoNode && leader_ == kNoNode) ||
                  (rv.pre_vote && m.term > term_);
  if constexpr (planted::kDoubleVote) can_vote = can_vote || !rv.pre_vote;
  if (can_vote && log_.is_up_to_date(rv.last_log_index, rv.last_log_term)) {
    // A granted pre-vote answers in the term asked about, so the
    // pre-candidate can tell it from a stale answer.
    msgs_after_persist_.push_back(Message{cfg_.id, m.from, rv.pre_vote ? m.term : term_,
                                          RequestVoteResponse{true, rv.pre_vote}});
    if (!rv.pre_vote) {
      voted_for_ = m.from;
      election_elapsed_ticks_ = 0;  // §5.2: granting a vote resets the election timer
    }
  } else {
    send(m.from, RequestVoteResponse{false, rv.pre_vote});
  }
}

void Raft::handle_vote_response(const Message& m, const RequestVoteResponse& r) {
  std::map<NodeId, bool>* votes = nullptr;
  if (auto* pc = std::get_if<PreCandidate>(&role_)) {
    if (!r.pre_vote) return;
    // Grants come in term_+1; rejections in the voter's own term.
    if (r.granted && m.term != term_.next()) return;
    votes = &pc->votes;
  } else if (auto* c = std::get_if<Candidate>(&role_)) {
    if (r.pre_vote || m.term != term_) return;
    votes = &c->votes;
  } else {
    return;
  }
  votes->emplace(m.from, r.granted);
  size_t granted = 0;
  size_t rejected = 0;
  for (const auto& [id, g] : *votes) (g ? granted : rejected)++;
  switch (core::tally(cfg_.voters.size(), granted, rejected)) {
    case core::VoteResult::kWon:
      if (std::holds_alternative<PreCandidate>(role_)) {
        campaign(false,
                 fmt::format("a majority granted the pre-vote for term {}", term_.next().value()));
      } else {
        become_leader();
      }
      break;
    case core::VoteResult::kLost:
      become_follower(
          term_, kNoNode,
          fmt::format("a majority rejected the {} for term {}", r.pre_vote ? "pre-vote" : "vote",
                      (r.pre_vote ? term_.next() : term_).value()));
      break;
    case core::VoteResult::kPending:
      break;
  }
}

}  // namespace chorus::raft
