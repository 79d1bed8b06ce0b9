// Raft's durable state besides the log (Raft Figure 2): current_term and
// voted_for, plus the commit index as an optimisation. The host persists it
// from Ready::durable_state; core::Engine asks for its encoding and for the
// rule that says when a change must be fsynced.
#pragma once

#include <string>
#include <string_view>

#include "base/ids.h"
#include "base/status.h"

namespace chorus::raft {

struct HardState {
  Term term;         // current_term
  NodeId voted_for;  // kNoNode when no vote was cast in `term`
  LogIndex commit;   // highest index known committed (may lag: an optimisation)

  bool operator==(const HardState&) const = default;
};

// Raft §5.1/§5.2: a term and a vote must be durable before any message that
// depends on them (a vote, an append acknowledgement in the new term) leaves.
// The commit index may lag after a crash — the leader sends it again — so a
// change of the commit index alone is not worth an fsync.
inline bool hard_state_needs_sync(const HardState& before, const HardState& after) {
  return before.term != after.term || before.voted_for != after.voted_for;
}

// raftpb.HardState bytes (proto/chorus/raft.proto).
std::string encode_hard_state(const HardState& hs);
// Fails with kCorruption on bytes that do not parse.
Result<HardState> decode_hard_state(std::string_view bytes);

}  // namespace chorus::raft
