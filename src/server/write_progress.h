// write_progress: how far one write has spread, as one group's local replica
// sees it from its engine-neutral status (host::HostStatus) and log terms.
// WAIT and CHORUS.POLL (client_server.h) answer from it; a node that does not
// lead the group asks the leader, which answers from it too
// (progress_queries.h).
//
// Pure over ReplicaGroup's status() and term_at(): it touches no disk.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/ids.h"
#include "server/replica_group.h"

namespace chorus::server {

// What one group's local replica knows about the write at (index, term).
//   kCommitted  its log holds (index, term) and its commit index covers it;
//   kPending    not committed yet as far as this node knows (or not here yet);
//   kLost       its log holds another term at `index`: the write was replaced
//               (Raft §5.3: a conflicting suffix was truncated);
//   kRolledBack a primary-backup group (ReplicaGroup::managed()) holds, at
//               `index`, an entry of the same epoch and a later generation:
//               the sync-all primary that wrote it rolled it back (a marker
//               or a later write replaced it), so it was certainly never
//               acknowledged; judged, like kLost, only once committed here.
// `replicas` counts the nodes other than the leader that durably hold the
// entry, and never more than this node knows: on the leader, the peers whose
// match_index reaches `index` (a match there means the same term, Raft §5.3
// Log Matching); elsewhere 1 when this node holds it durably, else 0 — a
// follower does not know the other followers' logs (progress_queries.h asks
// the leader for its count).
// An entry already compacted into the snapshot is judged by the snapshot's
// term: a later term is lost (terms never decrease along a log), an earlier
// or equal one is taken as committed (a token CHORUS.TOKEN handed out is; a
// made-up token may be misjudged). Engines without Log Matching (Paxos:
// terms may decrease along the log) take every compacted one as committed,
// and their leader counts, for a committed write, the followers a majority
// must include — a lower bound: it does not track who accepted a chosen
// slot.
struct WriteProgress {
  // Values as net::ProgressState's (progress_codec.h), which crosses the wire.
  enum class State : uint8_t { kPending, kCommitted, kLost, kRolledBack };
  State state = State::kPending;
  uint64_t replicas = 0;
};
WriteProgress write_progress(const ReplicaGroup& g, LogIndex index, Term term);
std::string_view write_state_name(WriteProgress::State s);
// Lost or rolled back: the write was replaced, for good.
inline bool replaced(WriteProgress::State s) {
  return s == WriteProgress::State::kLost || s == WriteProgress::State::kRolledBack;
}

}  // namespace chorus::server
