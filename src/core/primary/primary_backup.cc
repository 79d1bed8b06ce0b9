// PrimaryBackup<R>, the backup side: taking appends and snapshots from the
// primary, and reporting what a backup drops from its log (primary.h). The
// primary side, configuration and the Ready live in primary.cc.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <span>
#include <utility>

#include "base/assert.h"
#include "base/planted.h"
#include "core/primary/primary.h"

namespace chorus::primary {

using core::DropKind;
using core::Entry;
using core::EntryType;

template <AckRule R>
void PrimaryBackup<R>::refuse(const Message& m, Refusal r, LogIndex hint, LogIndex refused,
                              Term refused_term, Term hint_term) {
  AppendResponse resp;
  resp.refusal = r;
  resp.hint = hint;
  resp.hint_term = hint_term;
  resp.refused_index = refused;
  resp.match_term = refused_term;
  send(m.from, resp);
}

// The first index at which the append would replace a different entry here;
// 0 when it replaces nothing.
template <AckRule R>
LogIndex PrimaryBackup<R>::first_conflict(const Append& a) const {
  for (const Entry& e : a.entries) {
    if (e.index <= log_.snapshot().index) continue;
    const auto t = log_.term(e.index);
    if (!t) return LogIndex(0);
    if (*t != e.term) return e.index;
  }
  return LogIndex(0);
}

// Sync-all participants bound what they hold prepared (logged, undecided).
// Returns the first entry refused, or nullptr.
//
// Only the sending primary's own entries (of its epoch) count and can be
// refused. Entries it adopted from an older epoch are in doubt, not new
// prepares (bounded by the old primary's max_uncommitted_bytes): refusing
// them would stall the new primary for good, since it rolls back only its
// own writes — rolling back adopted ones could drop a write the old
// primary acknowledged under other members.
template <AckRule R>
const Entry* PrimaryBackup<R>::exceeds_prepare_limit(const Append& a, LogIndex conflict) const {
  if (R != AckRule::kSyncAll) return nullptr;
  const LogIndex keep_to = conflict != LogIndex(0) ? conflict.prev() : log_.last_index();
  const Epoch sender = epoch_of(a.term);
  auto first_new = std::find_if(a.entries.begin(), a.entries.end(), [&](const Entry& e) {
    return e.index > keep_to && epoch_of(e.term) == sender;
  });
  if (first_new == a.entries.end()) return nullptr;
  // Prepared = past what the primary says is committed (our own commit index
  // lags by a round trip); what we keep matches its log, so a.commit holds.
  const LogIndex committed = std::max(log_.committed(), std::min(a.commit, keep_to));
  size_t bytes = 0;
  for (LogIndex i = std::max(committed.next(), log_.first_index()); i <= keep_to; i = i.next()) {
    if (epoch_of(log_.at(i).term) == sender) bytes += core::entry_bytes(log_.at(i));
  }
  for (auto it = first_new; it != a.entries.end(); ++it) {
    if (it->index > a.commit) bytes += core::entry_bytes(*it);
  }
  return bytes > opts_.max_prepared_bytes ? &*first_new : nullptr;
}

template <AckRule R>
void PrimaryBackup<R>::handle_append(const Message& m, const Append& a) {
  // From before a rollback: stale. A primary's current term is at least
  // every term in its log, so an append whose term is below our last
  // entry's (append_term_ starts there after a restart) is stale too — the
  // durable bound Raft gets from its persisted currentTerm.
  if ((a.term < append_term_ || a.term < log_.last_term()) && !planted::kPbNoEpochCheck) return;
  append_term_ = a.term;
  if (!log_.match_term(a.prev_index, a.prev_term)) {
    const LogIndex snap = log_.snapshot().index;
    if (a.prev_index > log_.last_index()) {
      refuse(m, Refusal::kLogEnds, log_.last_index());
    } else if (a.prev_index < snap) {
      // Inside our snapshot: the primary checks our snapshot point against
      // its log and goes on after it, or refutes it with its snapshot.
      refuse(m, Refusal::kLogMismatch, snap, {}, {}, log_.snapshot().term);
    } else if (a.prev_index == snap) {
      // We diverge inside our own snapshot: only the primary's can replace it.
      needs_snapshot_ = true;
      refuse(m, Refusal::kNeedSnapshot, snap);
    } else {
      // Back up over our whole run of the conflicting term (Raft thesis
      // §5.3); the exact divergence point is found when a prev matches.
      refuse(m, Refusal::kLogMismatch, log_.first_index_of_term_at(a.prev_index).prev());
    }
    return;
  }
  const LogIndex conflict = first_conflict(a);
  if (conflict != LogIndex(0) && conflict <= log_.committed()) {
    needs_snapshot_ = true;
    refuse(m, Refusal::kNeedSnapshot, conflict);
    return;
  }
  if (const Entry* refused = exceeds_prepare_limit(a, conflict)) {
    refuse(m, Refusal::kPrepareLimit, {}, refused->index, refused->term);
    return;
  }
  if (conflict != LogIndex(0)) report_dropped_from(conflict);
  const LogIndex last_new = log_.append_after(a.prev_index, a.entries);
  // Only what this append proved to match may be committed here.
  const LogIndex commit = std::min(a.commit, last_new);
  if (commit > log_.committed()) log_.commit_to(commit);
  CHORUS_ASSERT(log_.match_term(a.prev_index, a.prev_term) && last_new <= log_.last_index());
  AppendResponse ok;
  ok.match_index = last_new;
  ok.match_term = *log_.term(last_new);
  send(m.from, ok, /*after_persist=*/true);
}

template <AckRule R>
void PrimaryBackup<R>::handle_snapshot(const Message& m, const InstallSnapshot& s) {
  const core::SnapshotMeta meta = s.snapshot.meta;
  AppendResponse ok;
  ok.match_index = meta.index;
  ok.match_term = meta.term;
  // Told to install: we found we diverge inside what we applied, or the
  // primary found our snapshot point is not in its log.
  const bool told =
      needs_snapshot_ || (s.refuted.index != LogIndex(0) && s.refuted == log_.snapshot());
  if (!told && log_.match_term(meta.index, meta.term)) {
    send(m.from, ok, /*after_persist=*/true);  // we hold that prefix already
    return;
  }
  if (!told && meta.index < log_.snapshot().index && !refutes_our_snapshot(s)) {
    // Inside our own snapshot, which nothing shows to diverge from the
    // primary's log: a delayed or duplicated message. Installing it would
    // move our state machine backwards. The primary checks the term we
    // answer with; a divergence found later sets needs_snapshot_.
    ok.match_index = log_.committed();
    ok.match_term = *log_.term(ok.match_index);
    send(m.from, ok, /*after_persist=*/true);
    return;
  }
  report_snapshot_loss(s);
  report_dropped_against(s);
  needs_snapshot_ = false;
  // A snapshot below what we applied moves the state machine back (a lossy
  // promotion dropped entries we applied): an image the host began before
  // now is of the replaced state (compact()).
  if (log_.applied() > meta.index) rewound_from_ = std::max(rewound_from_, log_.applied());
  log_ = raft::RaftLog(meta, {}, meta.index, meta.index);
  compacted_terms_.clear();
  for (const TermStart& t : s.terms) {
    if (t.first <= meta.index) compacted_terms_.push_back(t);
  }
  snapshot_ = s.snapshot;
  pending_install_ = s.snapshot;
  send(m.from, ok, /*after_persist=*/true);
}

// True when the primary's term history proves our snapshot point is not in
// its log (Log Matching: same term at one index, same prefix).
template <AckRule R>
bool PrimaryBackup<R>::refutes_our_snapshot(const InstallSnapshot& s) const {
  const core::SnapshotMeta ours = log_.snapshot();
  if (ours.index == LogIndex(0)) return false;
  const auto t = term_in_history(s.terms, s.last_index, ours.index);
  return t && *t != ours.term;
}

// Installing the primary's snapshot also replaces our own snapshot, whose
// entries we can no longer enumerate. Positions our term history and the
// primary's (s.terms) prove equal are kept; from the first position proven
// different on, every position differs (Log Matching) and was applied here,
// so it is reported lost-acknowledged; positions in between, which neither
// history covers, are in doubt. Each run is one range record (types.h).
template <AckRule R>
void PrimaryBackup<R>::report_snapshot_loss(const InstallSnapshot& s) {
  if constexpr (planted::kPbUnreportedLoss) return;  // planted bug: the loss goes unreported
  const core::SnapshotMeta ours = log_.snapshot();
  if (ours.index == LogIndex(0)) return;
  std::vector<TermStart> mine;
  for (const TermStart& t : compacted_terms_) {
    if (t.first <= ours.index) mine.push_back(t);
  }
  if (mine.empty() || mine.back().term != ours.term) mine.push_back({ours.term, ours.index});
  auto own = [&](LogIndex i) { return term_in_history(mine, ours.index, i); };
  auto theirs = [&](LogIndex i) -> std::optional<Term> {
    return i > s.last_index ? Term(0) : term_in_history(s.terms, s.last_index, i);
  };
  // Both histories are constant between these cuts.
  std::vector<LogIndex> cuts{LogIndex(1), s.last_index.next()};
  for (const std::vector<TermStart>* h : {&std::as_const(mine), &s.terms}) {
    for (const TermStart& t : *h) cuts.push_back(t.first);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  std::erase_if(cuts, [&](LogIndex c) { return c > ours.index; });
  LogIndex doubt_from(1);
  LogIndex lost_from = ours.index.next();
  for (size_t k = 0; k < cuts.size(); ++k) {
    const auto a = own(cuts[k]);
    const auto b = theirs(cuts[k]);
    if (!a || !b) continue;
    if (*a != *b) {
      lost_from = cuts[k];
      break;
    }
    doubt_from = k + 1 < cuts.size() ? cuts[k + 1] : ours.index.next();
  }
  auto range = [&](LogIndex from, LogIndex to, DropKind kind) {
    if (from > to) return;
    const Entry first{own(from).value_or(Term(0)), from, EntryType::kNormal, {}};
    dropped_.push_back({first, kind, to.value() - from.value() + 1});
  };
  range(doubt_from, lost_from.prev(), DropKind::kInDoubt);
  range(lost_from, ours.index, DropKind::kLostAcknowledged);
}

template <AckRule R>
void PrimaryBackup<R>::report_dropped_from(LogIndex from) {
  from = std::max(from, log_.first_index());
  if (from > log_.last_index()) return;
  const Term replaced = log_.at(from).term;
  for (LogIndex i = from; i <= log_.last_index(); i = i.next()) {
    const Entry& e = log_.at(i);
    if (e.type == EntryType::kNormal) note_drop(e, classify(e), from, replaced);
  }
}

// Installing a snapshot replaces our whole log: every entry of ours that the
// primary's log (described by s.terms) does not hold is dropped. Log
// Matching makes the comparison exact: the primary holds our entry iff its
// term at that index is ours. Where the primary forgot its terms (before
// s.terms.front()), we cannot tell: such entries count as in doubt.
template <AckRule R>
void PrimaryBackup<R>::report_dropped_against(const InstallSnapshot& s) {
  if constexpr (planted::kPbUnreportedLoss) return;  // planted bug: the loss goes unreported
  auto primary_term = [&](LogIndex i) -> std::optional<Term> {
    if (i > s.last_index) return Term(0);
    auto it = std::upper_bound(s.terms.begin(), s.terms.end(), i,
                               [](LogIndex x, const TermStart& t) { return x < t.first; });
    if (it == s.terms.begin()) return std::nullopt;
    return std::prev(it)->term;
  };
  std::optional<Entry> first_differing;  // where the primary's log first differs from ours
  for (LogIndex i = log_.first_index(); i <= log_.last_index(); i = i.next()) {
    const Entry& e = log_.at(i);
    const auto t = primary_term(i);
    if (t && *t != e.term && !first_differing) first_differing = e;
    if (e.type != EntryType::kNormal) continue;
    if (!t) {
      dropped_.push_back({e, DropKind::kInDoubt});
    } else if (*t != e.term) {
      note_drop(e, classify(e), first_differing->index, first_differing->term);
    }
  }
}

// A rolled-back drop is final once this node has committed, at the position
// where the log that replaced the entry first differs from the entry's, a
// term other than the entry's log had there — or at the entry's own
// position another entry: the entry can then never come back (unless a
// lossy promotion loses the committed position itself, which the loss
// reports then count). Before that, the log that replaced it may be
// replaced in turn by one that still holds the entry, which then commits
// (the simulator, sync-all seeds 261, 412 and 1837: a backup took a marker
// that no replica the manager consulted held — sent by a primary deposed
// after the manager's probe, or held only by a backup that was appointed
// and failed before its epoch was established — and had reported the
// entries rolled back). The acknowledgement kinds (kLostAcknowledged,
// kInDoubt) go out at once: they may over-count, which their consumers
// allow, but must not be forgotten in a crash.
template <AckRule R>
void PrimaryBackup<R>::note_drop(const Entry& e, DropKind kind, LogIndex conflict,
                                 Term conflict_term) {
  if (kind != DropKind::kRolledBack) {
    dropped_.push_back({e, kind});
    return;
  }
  CHORUS_ASSERT(conflict <= e.index);
  auto [it, fresh] =
      unsettled_.try_emplace({e.index, e.term}, Unsettled{{e, kind}, conflict, conflict_term});
  if (!fresh) {
    // Dropped, taken back and dropped again: one drop, settled by either
    // conflict (both positions hold e's log); the newer is kept.
    it->second.conflict = conflict;
    it->second.conflict_term = conflict_term;
    return;
  }
  unsettled_bytes_ += core::entry_bytes(e);
  while (unsettled_.size() > kMaxUnsettledDrops || unsettled_bytes_ > opts_.max_prepared_bytes) {
    // Too many to follow: the lowest is reported now, as what it then is.
    core::DroppedEntry d = std::move(unsettled_.begin()->second.drop);
    unsettled_.erase(unsettled_.begin());
    unsettled_bytes_ -= core::entry_bytes(d.entry);
    d.kind = DropKind::kInDoubt;
    dropped_.push_back(std::move(d));
  }
}

// Whether a held drop is final (dead) or its entry committed after all
// (back); nullopt while neither is known.
template <AckRule R>
std::optional<bool> PrimaryBackup<R>::settled(const Unsettled& u) const {
  const LogIndex committed = log_.committed();
  if (u.conflict <= committed) {
    const std::optional<Term> t = known_term(u.conflict);
    if (t && *t != u.conflict_term) return true;
  }
  if (u.drop.entry.index > committed) return std::nullopt;
  return known_term(u.drop.entry.index) != u.drop.entry.term;
}

template <AckRule R>
void PrimaryBackup<R>::settle_drops() {
  for (auto it = unsettled_.begin(); it != unsettled_.end();) {
    Unsettled& u = it->second;
    const std::optional<bool> dead = settled(u);
    if (!dead) {
      ++it;
      continue;
    }
    unsettled_bytes_ -= core::entry_bytes(u.drop.entry);
    if (*dead) {  // else it came back and committed: not dropped
      // What committed at its position is forgotten: it cannot tell.
      if (u.drop.entry.index <= log_.committed() && !known_term(u.drop.entry.index))
        u.drop.kind = DropKind::kInDoubt;
      dropped_.push_back(std::move(u.drop));
    }
    it = unsettled_.erase(it);
  }
}

// What this node knows of a dropped entry's acknowledgement (types.h).
template <AckRule R>
DropKind PrimaryBackup<R>::classify(const Entry& e) const {
  if (e.index <= log_.committed()) return DropKind::kLostAcknowledged;
  // It wrote the entry as primary and never committed it: never acknowledged.
  if (led_epoch_ != Epoch(0) && epoch_of(e.term) == led_epoch_) return DropKind::kRolledBack;
  // Sync-all acknowledges only what every member prepared, so a successor
  // (a member) that lacks the entry proves it was never acknowledged.
  if (R == AckRule::kSyncAll) return DropKind::kRolledBack;
  return DropKind::kInDoubt;
}

// The members defined in this file, for each rule (primary.cc instantiates
// the class itself).
#define CHORUS_PRIMARY_BACKUP_SIDE(R)                                                              \
  template void PrimaryBackup<R>::refuse(const Message&, Refusal, LogIndex, LogIndex, Term, Term); \
  template LogIndex PrimaryBackup<R>::first_conflict(const Append&) const;                         \
  template const Entry* PrimaryBackup<R>::exceeds_prepare_limit(const Append&, LogIndex) const;    \
  template void PrimaryBackup<R>::handle_append(const Message&, const Append&);                    \
  template void PrimaryBackup<R>::handle_snapshot(const Message&, const InstallSnapshot&);         \
  template bool PrimaryBackup<R>::refutes_our_snapshot(const InstallSnapshot&) const;              \
  template void PrimaryBackup<R>::report_snapshot_loss(const InstallSnapshot&);                    \
  template void PrimaryBackup<R>::report_dropped_from(LogIndex);                                   \
  template void PrimaryBackup<R>::report_dropped_against(const InstallSnapshot&);                  \
  template DropKind PrimaryBackup<R>::classify(const Entry&) const;                                \
  template void PrimaryBackup<R>::note_drop(const Entry&, DropKind, LogIndex, Term);               \
  template std::optional<bool> PrimaryBackup<R>::settled(const Unsettled&) const;                  \
  template void PrimaryBackup<R>::settle_drops();
CHORUS_PRIMARY_BACKUP_SIDE(AckRule::kSyncAll)
CHORUS_PRIMARY_BACKUP_SIDE(AckRule::kSemiSync)
CHORUS_PRIMARY_BACKUP_SIDE(AckRule::kAsync)
#undef CHORUS_PRIMARY_BACKUP_SIDE

}  // namespace chorus::primary
