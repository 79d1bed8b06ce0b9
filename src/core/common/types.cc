#include "core/common/types.h"

namespace chorus::core {

std::string_view role_name(Role r) {
  switch (r) {
    case Role::kFollower:
      return "follower";
    case Role::kCandidate:
      return "candidate";
    case Role::kLeader:
      return "leader";
  }
  return "?";
}

std::string_view propose_status_name(ProposeStatus s) {
  switch (s) {
    case ProposeStatus::kAccepted:
      return "accepted";
    case ProposeStatus::kForwarded:
      return "forwarded";
    case ProposeStatus::kNotLeader:
      return "not-leader";
    case ProposeStatus::kNoLeader:
      return "no-leader";
    case ProposeStatus::kTooMuchUncommitted:
      return "too-much-uncommitted";
    case ProposeStatus::kDropped:
      return "dropped";
    case ProposeStatus::kRolledBack:
      return "rolled-back";
    case ProposeStatus::kAckTimedOut:
      return "ack-timed-out";
  }
  return "?";
}

std::string_view drop_kind_name(DropKind k) {
  switch (k) {
    case DropKind::kLostAcknowledged:
      return "lost-acknowledged";
    case DropKind::kRolledBack:
      return "rolled-back";
    case DropKind::kInDoubt:
      return "in-doubt";
  }
  return "?";
}

}  // namespace chorus::core
