#include "net/codec/progress_codec.h"

#include <fmt/format.h>

namespace chorus::net {
namespace {

Status bad(std::string what) {
  return Status::corruption("progress message: " + std::move(what));
}

bool query_valid(uint64_t request_id, LogIndex index, Term term) {
  return request_id != 0 && index.value() > 0 && term.value() > 0;
}

bool answer_valid(const ProgressAnswer& a) {
  if (!query_valid(a.request_id, a.index, a.term)) return false;
  if (a.error != ProgressError::kAnswered) {
    return a.leader_term.value() == 0 && a.state == ProgressState::kPending && a.replicas == 0;
  }
  return a.leader_term.value() > 0 && a.replicas <= kMaxProgressReplicas;
}

OutgoingMessage envelope(GroupId group, NodeId to, wirepb::ProgressMessage m) {
  OutgoingMessage out;
  out.to = to;
  out.message.set_group_id(group.value());
  *out.message.mutable_progress() = std::move(m);
  return out;
}

// The enums are the wire's, value for value.
static_assert(static_cast<int>(ProgressState::kPending) == wirepb::PROGRESS_PENDING);
static_assert(static_cast<int>(ProgressState::kCommitted) == wirepb::PROGRESS_COMMITTED);
static_assert(static_cast<int>(ProgressState::kLost) == wirepb::PROGRESS_LOST);
static_assert(static_cast<int>(ProgressState::kRolledBack) == wirepb::PROGRESS_ROLLED_BACK);
static_assert(static_cast<int>(ProgressError::kAnswered) == wirepb::PROGRESS_ANSWERED);
static_assert(static_cast<int>(ProgressError::kUnknownGroup) == wirepb::PROGRESS_UNKNOWN_GROUP);
static_assert(static_cast<int>(ProgressError::kNotLeader) == wirepb::PROGRESS_NOT_LEADER);

}  // namespace

OutgoingMessage encode_progress_query(GroupId group, NodeId to, const ProgressQuery& q) {
  CHORUS_ASSERT(query_valid(q.request_id, q.index, q.term));
  wirepb::ProgressMessage m;
  auto* p = m.mutable_query();
  p->set_request_id(q.request_id);
  p->set_index(q.index.value());
  p->set_term(q.term.value());
  return envelope(group, to, std::move(m));
}

OutgoingMessage encode_progress_answer(GroupId group, NodeId to, const ProgressAnswer& a) {
  CHORUS_ASSERT(answer_valid(a));
  wirepb::ProgressMessage m;
  auto* p = m.mutable_answer();
  p->set_request_id(a.request_id);
  p->set_index(a.index.value());
  p->set_term(a.term.value());
  p->set_error(static_cast<wirepb::ProgressError>(a.error));
  p->set_leader_term(a.leader_term.value());
  p->set_state(static_cast<wirepb::ProgressState>(a.state));
  p->set_replicas(a.replicas);
  return envelope(group, to, std::move(m));
}

Result<ProgressMessage> decode_progress_message(const IncomingMessage& in) {
  const auto& env = in.message;
  if (env.body_case() != wirepb::PeerMessage::kProgress) return bad("not a progress message");
  if (env.from() == 0 || env.to() == 0 || env.from() == env.to()) {
    return bad(fmt::format("from {} to {}", env.from(), env.to()));
  }
  if (in.snapshot_data) return bad("snapshot bytes attached");
  const wirepb::ProgressMessage& m = env.progress();
  switch (m.body_case()) {
    case wirepb::ProgressMessage::kQuery: {
      const auto& p = m.query();
      ProgressQuery q{p.request_id(), LogIndex(p.index()), Term(p.term())};
      if (!query_valid(q.request_id, q.index, q.term)) {
        return bad(fmt::format("query {} for index {} term {}: none may be 0", p.request_id(),
                               p.index(), p.term()));
      }
      return ProgressMessage{q};
    }
    case wirepb::ProgressMessage::kAnswer: {
      const auto& p = m.answer();
      ProgressAnswer a;
      a.request_id = p.request_id();
      a.index = LogIndex(p.index());
      a.term = Term(p.term());
      // Proto3 enums are open: a parsed field may hold any int32.
      if (!wirepb::ProgressError_IsValid(p.error())) {
        return bad(fmt::format("unknown error {}", static_cast<int>(p.error())));
      }
      if (!wirepb::ProgressState_IsValid(p.state())) {
        return bad(fmt::format("unknown state {}", static_cast<int>(p.state())));
      }
      a.error = static_cast<ProgressError>(p.error());
      a.leader_term = Term(p.leader_term());
      a.state = static_cast<ProgressState>(p.state());
      a.replicas = p.replicas();
      if (!answer_valid(a)) {
        return bad(fmt::format(
            "answer {} for index {} term {} (error {}, leader term {}, state {}, {} replicas) "
            "breaks its invariants",
            p.request_id(), p.index(), p.term(), static_cast<int>(p.error()), p.leader_term(),
            static_cast<int>(p.state()), p.replicas()));
      }
      return ProgressMessage{a};
    }
    case wirepb::ProgressMessage::BODY_NOT_SET:
      break;
  }
  return bad("no known body");
}

}  // namespace chorus::net
