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

wirepb::ProgressState state_to_wire(ProgressState s) {
  switch (s) {
    case ProgressState::kPending:
      return wirepb::PROGRESS_PENDING;
    case ProgressState::kCommitted:
      return wirepb::PROGRESS_COMMITTED;
    case ProgressState::kLost:
      return wirepb::PROGRESS_LOST;
    case ProgressState::kRolledBack:
      return wirepb::PROGRESS_ROLLED_BACK;
  }
  CHORUS_UNREACHABLE();
}

wirepb::ProgressError error_to_wire(ProgressError e) {
  switch (e) {
    case ProgressError::kAnswered:
      return wirepb::PROGRESS_ANSWERED;
    case ProgressError::kUnknownGroup:
      return wirepb::PROGRESS_UNKNOWN_GROUP;
    case ProgressError::kNotLeader:
      return wirepb::PROGRESS_NOT_LEADER;
  }
  CHORUS_UNREACHABLE();
}

// Proto3 enums are open: a parsed field may hold any int32.
Result<ProgressState> state_from_wire(int v) {
  switch (v) {
    case wirepb::PROGRESS_PENDING:
      return ProgressState::kPending;
    case wirepb::PROGRESS_COMMITTED:
      return ProgressState::kCommitted;
    case wirepb::PROGRESS_LOST:
      return ProgressState::kLost;
    case wirepb::PROGRESS_ROLLED_BACK:
      return ProgressState::kRolledBack;
    default:
      return bad(fmt::format("unknown state {}", v));
  }
}

Result<ProgressError> error_from_wire(int v) {
  switch (v) {
    case wirepb::PROGRESS_ANSWERED:
      return ProgressError::kAnswered;
    case wirepb::PROGRESS_UNKNOWN_GROUP:
      return ProgressError::kUnknownGroup;
    case wirepb::PROGRESS_NOT_LEADER:
      return ProgressError::kNotLeader;
    default:
      return bad(fmt::format("unknown error {}", v));
  }
}

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
  p->set_error(error_to_wire(a.error));
  p->set_leader_term(a.leader_term.value());
  p->set_state(state_to_wire(a.state));
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
      CHORUS_ASSIGN_OR_RETURN(a.error, error_from_wire(p.error()));
      a.leader_term = Term(p.leader_term());
      CHORUS_ASSIGN_OR_RETURN(a.state, state_from_wire(p.state()));
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
