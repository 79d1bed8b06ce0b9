// The write-progress messages (proto/chorus/wire.proto, ProgressMessage) <->
// ProgressQuery and ProgressAnswer. Pure: no I/O.
//
// A node that does not lead a group asks the group's leader (Raft) or
// primary how many replicas hold the write at (index, term); the leader
// answers from its status (src/server/progress_queries.h). Both travel in
// the peer envelope with the group's id.
//
// Decoding treats its input as hostile and refuses with kCorruption what a
// correct sender never produces: a message without exactly one known body;
// from/to zero or equal; snapshot bytes attached; a request id, index or
// term of 0; an answer with an unknown error or state, with a leader term of
// 0 or more replicas than a group can have, or a refusal (error set) that
// carries a leader term, a state or replicas.
#pragma once

#include <cstdint>
#include <variant>

#include "base/ids.h"
#include "base/status.h"
#include "net/transport/peer_message.h"

namespace chorus::net {

// More replicas than a group can have: an answer claiming them is refused.
inline constexpr uint64_t kMaxProgressReplicas = 64;

// What the leader judged the write to be (server::WriteProgress::State).
enum class ProgressState : uint8_t { kPending, kCommitted, kLost, kRolledBack };

// Why an answer carries no count.
enum class ProgressError : uint8_t {
  kAnswered,      // it does carry one
  kUnknownGroup,  // the asked node hosts no such group
  kNotLeader,     // it does not lead the group (or the group failed there)
};

// Invariant: request_id, index and term >= 1.
struct ProgressQuery {
  uint64_t request_id = 0;
  LogIndex index;
  Term term;
  bool operator==(const ProgressQuery&) const = default;
};

// Invariant: request_id, index and term >= 1 and those of its query. With
// error == kAnswered, leader_term >= 1 and replicas <= kMaxProgressReplicas;
// otherwise leader_term, state and replicas are zero values.
struct ProgressAnswer {
  uint64_t request_id = 0;
  LogIndex index;
  Term term;
  ProgressError error = ProgressError::kAnswered;
  Term leader_term;  // the answering leader's current term (a primary's: its epoch)
  ProgressState state = ProgressState::kPending;
  uint64_t replicas = 0;  // other than the leader, durably holding (index, term)
  bool operator==(const ProgressAnswer&) const = default;
};

using ProgressMessage = std::variant<ProgressQuery, ProgressAnswer>;

// Preconditions (asserted): the invariants above.
OutgoingMessage encode_progress_query(GroupId group, NodeId to, const ProgressQuery& q);
OutgoingMessage encode_progress_answer(GroupId group, NodeId to, const ProgressAnswer& a);
Result<ProgressMessage> decode_progress_message(const IncomingMessage& in);

}  // namespace chorus::net
