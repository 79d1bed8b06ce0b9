#include "core/raft/log.h"

#include <algorithm>

namespace chorus::raft {

RaftLog::RaftLog(SnapshotMeta snapshot, std::vector<Entry> entries, LogIndex committed,
                 LogIndex applied)
    : snapshot_(snapshot), entries_(entries.begin(), entries.end()) {
  for (size_t k = 0; k < entries_.size(); ++k) {
    CHORUS_ASSERT(entries_[k].index == snapshot_.index + (k + 1));
  }
  // HardState.commit may lag what the host's state machine applied; applied
  // entries are committed by definition, so they are never handed out again.
  committed_ = std::clamp(std::max(committed, applied), snapshot_.index, last_index());
  applied_ = std::clamp(applied, snapshot_.index, committed_);
  stable_ = last_index();
  handed_ = last_index();
}

std::optional<Term> RaftLog::term(LogIndex i) const {
  if (i == snapshot_.index) return snapshot_.term;
  if (i < snapshot_.index || i > last_index()) return std::nullopt;
  return entries_[i - first_index()].term;
}

const Entry& RaftLog::at(LogIndex i) const {
  CHORUS_ASSERT(i >= first_index() && i <= last_index());
  return entries_[i - first_index()];
}

void RaftLog::append(Entry e) {
  CHORUS_ASSERT(e.index == last_index().next());
  CHORUS_ASSERT(e.term >= last_term());
  entries_.push_back(std::move(e));
}

LogIndex RaftLog::append_after(LogIndex prev, std::span<const Entry> entries) {
  size_t k = 0;
  // Skip what we already have (a duplicate or reordered append), and entries
  // at or below the snapshot, which are committed and cannot conflict.
  for (; k < entries.size(); ++k) {
    const Entry& e = entries[k];
    CHORUS_ASSERT(e.index == prev + (k + 1));
    if (e.index <= snapshot_.index) continue;
    auto t = term(e.index);
    if (!t) break;  // past our end: append from here
    if (*t != e.term) {
      // Raft §5.3 rule 3: delete the conflicting entry and all that follow.
      // Committed entries never conflict (Log Matching + Leader Completeness).
      CHORUS_ASSERT_MSG(e.index > committed_, "a leader tried to overwrite a committed entry");
      truncate_after(e.index.prev());
      break;
    }
  }
  for (; k < entries.size(); ++k) {
    if (entries[k].index <= snapshot_.index) continue;
    entries_.push_back(entries[k]);
  }
  return prev + entries.size();
}

std::vector<Entry> RaftLog::slice(LogIndex lo, LogIndex hi, size_t max_entries,
                                  size_t max_bytes) const {
  std::vector<Entry> out;
  if (lo > hi) return out;
  CHORUS_ASSERT(lo >= first_index() && hi <= last_index());
  size_t bytes = 0;
  for (LogIndex i = lo; i <= hi && out.size() < max_entries; i = i.next()) {
    const Entry& e = at(i);
    bytes += core::entry_bytes(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

LogIndex RaftLog::first_index_of_term_at(LogIndex at_index) const {
  auto t = term(at_index);
  CHORUS_ASSERT(t.has_value());
  LogIndex i = at_index;
  while (i > first_index() && *term(i.prev()) == *t) i = i.prev();
  return i;
}

LogIndex RaftLog::last_index_with_term_at_most(Term t, LogIndex from) const {
  LogIndex i = std::min(from, last_index());
  while (i > snapshot_.index) {
    if (*term(i) <= t) return i;
    i = i.prev();
  }
  return snapshot_.index;
}

void RaftLog::commit_to(LogIndex i) {
  if (i <= committed_) return;
  CHORUS_ASSERT_MSG(i <= last_index(), "commit index beyond the end of the log");
  committed_ = i;
}

std::vector<Entry> RaftLog::take_committed(size_t max_bytes) {
  std::vector<Entry> out;
  size_t bytes = 0;
  while (applied_ < committed_) {
    const Entry& e = at(applied_.next());
    bytes += core::entry_bytes(e);
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
    applied_ = applied_.next();
  }
  return out;
}

std::vector<Entry> RaftLog::unstable_entries() const {
  std::vector<Entry> out;
  for (LogIndex i = std::max(handed_.next(), first_index()); i <= last_index(); i = i.next()) {
    out.push_back(at(i));
  }
  return out;
}

void RaftLog::compact(LogIndex compact_to) {
  if (compact_to <= snapshot_.index) return;
  CHORUS_ASSERT(compact_to <= applied_ && compact_to <= stable_);
  const Term t = *term(compact_to);
  entries_.erase(entries_.begin(),
                 entries_.begin() + static_cast<std::ptrdiff_t>(compact_to - snapshot_.index));
  snapshot_ = SnapshotMeta{compact_to, t};
}

void RaftLog::restore(SnapshotMeta meta) {
  CHORUS_ASSERT(meta.index > committed_);
  entries_.clear();
  snapshot_ = meta;
  committed_ = meta.index;
  applied_ = meta.index;
  stable_ = meta.index;
  handed_ = meta.index;
}

void RaftLog::truncate_after(LogIndex i) {
  CHORUS_ASSERT(i >= snapshot_.index && i >= committed_);
  entries_.resize(i - snapshot_.index);
  stable_ = std::min(stable_, i);
  handed_ = std::min(handed_, i);
}

}  // namespace chorus::raft
