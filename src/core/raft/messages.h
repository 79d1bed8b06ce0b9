// Raft messages (Raft paper Figure 2, with PreVote, heartbeats carrying
// ReadIndex rounds, and proposal/read forwarding). Wire encoding lives in the
// transport layer; the core only sees these structs.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "core/common/types.h"

namespace chorus::raft {

struct RequestVote {
  LogIndex last_log_index;
  Term last_log_term;
  bool pre_vote = false;  // PreVote (thesis §9.6): asks "would you vote?" without raising terms
};

struct RequestVoteResponse {
  bool granted = false;
  bool pre_vote = false;
};

struct AppendEntries {
  LogIndex prev_log_index;
  Term prev_log_term;
  std::vector<core::Entry> entries;
  LogIndex leader_commit;
};

struct AppendEntriesResponse {
  bool success = false;
  // On success: the follower's log matches the leader's through match_index.
  LogIndex match_index;
  // On rejection: the prev_log_index that failed the check, and the hints for
  // fast backtracking (thesis §5.3 optimisation): the follower's term at that
  // index (0 if its log is shorter) and the first index it holds with that term
  // (or its last index + 1 when shorter).
  LogIndex rejected_index;
  Term conflict_term;
  LogIndex conflict_index;
};

struct Heartbeat {
  LogIndex commit;          // min(follower's match index, leader commit): never past what it holds
  uint64_t read_round = 0;  // ReadIndex / lease round this heartbeat confirms
};

struct HeartbeatResponse {
  uint64_t read_round = 0;
};

struct InstallSnapshot {
  core::SnapshotRef snapshot;
};

// A follower forwards client proposals to its leader.
struct ForwardProposals {
  std::vector<std::string> data;
};

// A follower asks the leader for a read index on behalf of its client.
struct ReadIndexRequest {
  uint64_t ctx = 0;
};

struct ReadIndexResponse {
  uint64_t ctx = 0;
  LogIndex index;
};

using Body = std::variant<RequestVote, RequestVoteResponse, AppendEntries, AppendEntriesResponse,
                          Heartbeat, HeartbeatResponse, InstallSnapshot, ForwardProposals,
                          ReadIndexRequest, ReadIndexResponse>;

struct Message {
  NodeId from;
  NodeId to;
  Term term;  // the sender's current_term (for PreVote requests: the term it would campaign in)
  Body body;
};

std::string_view message_name(const Body& b);
// One line for traces: "AppendEntries 1->2 t3 prev=5/2 n=3 commit=4".
std::string describe(const Message& m);

}  // namespace chorus::raft
