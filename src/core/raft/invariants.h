// Raft's own safety properties, checked by the simulator on every node after
// every event (the generic ones — one value per index, log matching,
// acknowledged writes present, convergence — are in check/replica_checks.h).
// Pure: it only looks at Raft objects and what the caller says was applied.
//
//  - Election Safety (§5.2): at most one leader per term.
//  - Leader Completeness (§5.4): a leader of term T holds every entry
//    committed in a term before T. (Not every entry committed before its
//    election: votes granted in term T can reach a candidate after a leader
//    of T+1 committed more — a stalled or slow candidate — and the stale
//    leader it becomes holds none of it, harmlessly.) Which entries were
//    committed in which term is learned from leaders' commit indexes.
//  - The commit rule (§5.4.2): a leader advances its commit index only onto
//    an entry of its own term (earlier ones are committed indirectly,
//    Figure 8). A broken rule here is invisible to a history checker (the
//    term's no-op hides it); this check sees it directly.
//  - Durable acknowledgement (§5.3, Figure 2): an append acknowledgement
//    promises its match index is durable at the sender.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/raft/raft.h"

namespace chorus::raft {

class Invariants {
 public:
  // What was applied anywhere at an index: its term, and a hash of its
  // content (the caller's hash of core::Entry).
  struct Applied {
    Term term;
    uint64_t hash = 0;
  };
  using AppliedAt = std::function<std::optional<Applied>(LogIndex)>;
  using EntryHash = std::function<uint64_t(const core::Entry&)>;

  explicit Invariants(size_t nodes) : watched_(nodes) {}

  // After any event on node `i` (0-based) whose engine is `r`. Returns a
  // violation, if any.
  std::optional<std::string> observe(size_t i, const Raft& r, const AppliedAt& applied_at,
                                     const EntryHash& hash);
  // The node restarted: forget what was watched on it.
  void reset(size_t i) { watched_[i] = {}; }

  // The log index a message promises is durable at its sender, if it
  // promises one (a successful append acknowledgement).
  static std::optional<LogIndex> promised_durable(const Message& m);

 private:
  struct Watched {
    core::SoftState soft;
    LogIndex commit;
  };
  std::optional<std::string> check_completeness(const Raft& r, const AppliedAt& applied_at,
                                                const EntryHash& hash) const;

  std::vector<Watched> watched_;
  std::map<uint64_t, NodeId> leaders_;  // term -> its leader
  // term -> the highest commit index its leader reached: entries up to it
  // were committed in that term or before.
  std::map<uint64_t, LogIndex> committed_by_term_;
};

}  // namespace chorus::raft
