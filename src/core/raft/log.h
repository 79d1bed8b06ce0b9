// RaftLog: the in-memory view of one node's Raft log inside the pure core.
//
// The log holds every entry after the last compaction point (a snapshot). The
// durable copy lives in the host's write-ahead log; this class tracks how far
// that copy is known to be (stable_), how far entries are committed, and how
// far they were handed to the host for applying.
//
//   snapshot.index < stable <= last          (entries in (stable, last] are not yet durable)
//   applied <= committed <= last              (committed entries may still be unstable on a
//                                              follower; the host persists before applying)
//
// Crash: the whole object is rebuilt from PersistentState; nothing here survives.
#pragma once

#include <deque>
#include <optional>
#include <span>
#include <vector>

#include "base/assert.h"
#include "base/ids.h"
#include "core/common/types.h"

namespace chorus::raft {

using core::Entry;
using core::SnapshotMeta;

class RaftLog {
 public:
  RaftLog() = default;
  // Restores from durable state: everything given is already stable.
  RaftLog(SnapshotMeta snapshot, std::vector<Entry> entries, LogIndex committed, LogIndex applied);

  LogIndex first_index() const { return snapshot_.index.next(); }
  LogIndex last_index() const { return snapshot_.index + entries_.size(); }
  Term last_term() const { return *term(last_index()); }
  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }
  LogIndex stable() const { return stable_; }
  const SnapshotMeta& snapshot() const { return snapshot_; }

  // The term of entry i; nullopt when i was compacted away (i < snapshot index)
  // or is past the end. term(snapshot.index) is the snapshot's term; term(0) is 0.
  std::optional<Term> term(LogIndex i) const;
  bool match_term(LogIndex i, Term t) const {
    auto lt = term(i);
    return lt && *lt == t;
  }
  // Raft §5.4.1: is a log ending at (index, term) at least as up-to-date as ours?
  bool is_up_to_date(LogIndex index, Term t) const {
    return t > last_term() || (t == last_term() && index >= last_index());
  }

  const Entry& at(LogIndex i) const;

  // Leader append. Precondition: e.index == last_index()+1.
  void append(Entry e);
  // Follower append after a successful previous-entry check at `prev`:
  // skips entries already present with the same term, truncates the suffix at
  // the first conflicting index, and appends the rest (Raft §5.3 rules 3, 4).
  // Returns the index of the last new entry (prev + entries.size()).
  LogIndex append_after(LogIndex prev, std::span<const Entry> entries);

  // Entries [lo, hi] limited to max_entries and max_bytes (at least one entry
  // when lo <= hi). Precondition: lo >= first_index().
  std::vector<Entry> slice(LogIndex lo, LogIndex hi, size_t max_entries, size_t max_bytes) const;

  // The first index of the run of entries with term `t` that ends at or before `at`
  // (fast log backtracking, the follower's conflict hint).
  LogIndex first_index_of_term_at(LogIndex at) const;
  // The last index whose term is <= t, searching down from `from` (the leader's
  // side of fast backtracking). Returns snapshot index when none is found.
  LogIndex last_index_with_term_at_most(Term t, LogIndex from) const;

  void commit_to(LogIndex i);
  // Entries (applied, committed] not yet handed out; marks them handed out.
  std::vector<Entry> take_committed(size_t max_bytes);
  bool has_committed_to_apply() const { return committed_ > applied_; }

  // Entries not yet handed to the host for persisting.
  std::vector<Entry> unstable_entries() const;
  bool has_unstable() const { return last_index() > handed_; }
  // The Ready holding entries up to `last` was taken.
  void mark_handed(LogIndex last) { handed_ = last; }
  // The host persisted everything handed out (advance()).
  void stable_to_handed() { stable_ = handed_; }

  // The host's state machine snapshot covers [1, meta.index]; drop entries up
  // to compact_to (<= meta.index, which leaves a tail for lagging followers).
  void compact(LogIndex compact_to);
  // Replace the whole log with a snapshot received from the leader.
  void restore(SnapshotMeta meta);

 private:
  void truncate_after(LogIndex i);

  SnapshotMeta snapshot_;
  std::deque<Entry> entries_;  // Invariant: entries_[k].index == snapshot_.index + 1 + k.
  LogIndex committed_;
  LogIndex applied_;  // handed to the host for applying
  LogIndex stable_;   // durable on the host's disk
  LogIndex handed_;   // handed to the host for persisting (>= stable_)
};

}  // namespace chorus::raft
