#include "server/progress_queries.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <vector>

namespace chorus::server {
namespace {

// The codec's states are WriteProgress's, value for value.
static_assert(static_cast<int>(net::ProgressState::kPending) ==
              static_cast<int>(WriteProgress::State::kPending));
static_assert(static_cast<int>(net::ProgressState::kCommitted) ==
              static_cast<int>(WriteProgress::State::kCommitted));
static_assert(static_cast<int>(net::ProgressState::kLost) ==
              static_cast<int>(WriteProgress::State::kLost));
static_assert(static_cast<int>(net::ProgressState::kRolledBack) ==
              static_cast<int>(WriteProgress::State::kRolledBack));

}  // namespace

std::optional<NodeId> ProgressQueries::leader_to_ask(const ReplicaGroup& g) const {
  if (stopped_ || pending_.size() >= kOutstandingMax) return std::nullopt;
  const core::SoftState s = g.soft_state();
  if (s.role == core::Role::kLeader || s.leader == kNoNode || s.leader == d_.self ||
      s.term.value() == 0) {
    return std::nullopt;
  }
  return s.leader;
}

void ProgressQueries::ask(const ReplicaGroup& g, LogIndex index, Term term, Clock::time_point now,
                          Clock::time_point deadline, Done done) {
  const std::optional<NodeId> leader = leader_to_ask(g);
  CHORUS_ASSERT(leader.has_value());
  CHORUS_ASSERT(index.value() > 0 && term.value() > 0);
  const uint64_t id = ++last_request_id_;
  const Term leader_term = g.soft_state().term;
  pending_.emplace(id, Pending{g.group_id(), *leader, leader_term, index, term,
                               std::min(deadline, now + kTimeout), std::move(done)});
  d_.send(net::encode_progress_query(g.group_id(), *leader, {id, index, term}));
}

Status ProgressQueries::receive(const net::IncomingMessage& m) {
  CHORUS_ASSIGN_OR_RETURN(net::ProgressMessage msg, net::decode_progress_message(m));
  const GroupId group(m.message.group_id());
  if (const auto* q = std::get_if<net::ProgressQuery>(&msg)) {
    answer_query(group, m.from, *q);
    return Status::ok();
  }
  return take_answer(group, m.from, std::get<net::ProgressAnswer>(msg));
}

// The leader's side: from its status and in-memory log terms only.
void ProgressQueries::answer_query(GroupId group, NodeId from, const net::ProgressQuery& q) {
  if (stopped_) return;
  net::ProgressAnswer a;
  a.request_id = q.request_id;
  a.index = q.index;
  a.term = q.term;
  const ReplicaGroup* g = d_.group(group);
  if (g == nullptr) {
    a.error = net::ProgressError::kUnknownGroup;
  } else if (const core::SoftState s = g->soft_state(); s.role != core::Role::kLeader ||
                                                        s.term.value() == 0 || !g->healthy() ||
                                                        !g->status().engine.acknowledging) {
    // A failed node's status may be stale, and a primary whose lease lapsed
    // may have been deposed (a successor may have replaced what its
    // backups' match positions count): it speaks for no one.
    a.error = net::ProgressError::kNotLeader;
  } else {
    const WriteProgress p = write_progress(*g, q.index, q.term);
    a.leader_term = s.term;
    a.state = static_cast<net::ProgressState>(p.state);
    // Fewer is safe, more would be refused by the asker's decoder.
    a.replicas = std::min<uint64_t>(p.replicas, net::kMaxProgressReplicas);
  }
  d_.send(net::encode_progress_answer(group, from, a));
}

Status ProgressQueries::take_answer(GroupId group, NodeId from, const net::ProgressAnswer& a) {
  auto it = pending_.find(a.request_id);
  // Completed already (its deadline passed, or stop()): a late answer is dropped.
  if (it == pending_.end()) return Status::ok();
  Pending& p = it->second;
  if (from != p.leader || group != p.group || a.index != p.index || a.term != p.term) {
    return Status::corruption(fmt::format(
        "progress message: answer {} from node {} about group {} ({}, {}); the query went to node "
        "{} about group {} ({}, {})",
        a.request_id, from.value(), group.value(), a.index.value(), a.term.value(),
        p.leader.value(), p.group.value(), p.index.value(), p.term.value()));
  }
  std::optional<WriteProgress> view;
  if (a.error == net::ProgressError::kAnswered && a.leader_term == p.leader_term) {
    // Still the leader this node asked, in the same term: one leader per
    // term (Raft §5.2; a primary per epoch), so its count is that leader's.
    const ReplicaGroup* g = d_.group(group);
    if (g != nullptr) {
      const core::SoftState s = g->soft_state();
      if (s.role != core::Role::kLeader && s.leader == p.leader && s.term == p.leader_term) {
        view = WriteProgress{static_cast<WriteProgress::State>(a.state), a.replicas};
      }
    }
  }
  Done done = std::move(p.done);
  pending_.erase(it);  // before done: it may ask again
  complete(std::move(done), view);
  return Status::ok();
}

void ProgressQueries::expire(Clock::time_point now) {
  std::vector<Done> due;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline <= now) {
      due.push_back(std::move(it->second.done));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  for (Done& d : due) complete(std::move(d), std::nullopt);
}

void ProgressQueries::stop() {
  stopped_ = true;
  std::vector<Done> all;
  for (auto& [id, p] : pending_) all.push_back(std::move(p.done));
  pending_.clear();
  for (Done& d : all) complete(std::move(d), std::nullopt);
}

// Through Deps::post when set: a client's coroutine resumes on its own turn
// of the loop, not inside the transport's receive path, the node's timer or
// stop().
void ProgressQueries::complete(Done done, std::optional<WriteProgress> view) {
  if (!d_.post) {
    done(view);
    return;
  }
  d_.post([done = std::move(done), view] { done(view); });
}

WriteProgress with_leader_view(const WriteProgress& local,
                               const std::optional<WriteProgress>& leader) {
  if (!leader || replaced(local.state)) return local;
  if (replaced(leader->state)) return WriteProgress{leader->state, 0};
  // The leader's count, not max(local, leader): its 0 may mean it holds
  // another term at the index, and then this node's copy is doomed too.
  return WriteProgress{local.state, leader->replicas};
}

}  // namespace chorus::server
