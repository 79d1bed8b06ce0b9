// Engine-independent safety checks over what replicas applied and hold,
// used by the simulator for every engine (an engine's own invariants, such
// as Raft's Election Safety, live with the engine: core/raft/invariants.h).
//
// Entries are seen as (index, term, hash of the content): the checks need no
// engine type, and a history of any log-based engine can be fed to them.
// Each check returns the violations it found, one line each, empty when clean.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace chorus::check {

struct EntryId {
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t hash = 0;  // of the entry's content and type
  bool operator==(const EntryId&) const = default;
};

// State Machine Safety: every replica applies the same entry at each index.
class AppliedLog {
 public:
  // Records that `node` applied `e`. A violation when another entry was
  // applied at the same index anywhere before.
  std::optional<std::string> record(uint64_t node, const EntryId& e);
  // What was applied at `index`, if anything.
  std::optional<EntryId> at(uint64_t index) const;
  uint64_t max_index() const { return max_index_; }
  uint64_t distinct() const { return by_index_.size(); }

 private:
  std::unordered_map<uint64_t, EntryId> by_index_;
  uint64_t max_index_ = 0;
};

// One replica's log as it stands, for the checks below.
struct LogView {
  uint64_t node = 0;
  bool up = false;
  uint64_t commit = 0;
  std::vector<EntryId> entries;  // contiguous, ascending (after the snapshot)
};

// Log Matching (Raft §5.3, and every log-based engine): two logs holding an
// entry with the same index and term are identical up to it.
std::vector<std::string> check_log_matching(const std::vector<LogView>& logs);

// Every write acknowledged to a client (index -> hash) is still in every
// log that reaches its index (a snapshot covers the ones before a log's
// first entry; convergence checks those).
std::vector<std::string> check_acknowledged_present(const std::vector<LogView>& logs,
                                                    const std::map<uint64_t, uint64_t>& acked);

// Committed entries in every live log equal what was applied anywhere.
std::vector<std::string> check_committed_match_applied(const std::vector<LogView>& logs,
                                                       const AppliedLog& applied);

// Convergence: replicas at the same applied index hold the same state.
struct ReplicaState {
  uint64_t node = 0;
  uint64_t applied = 0;
  uint64_t digest = 0;
};
std::vector<std::string> check_converged(const std::vector<ReplicaState>& replicas);

}  // namespace chorus::check
