// The Raft core: replication on both sides, commit, and ReadIndex heartbeat rounds.
#include <algorithm>
#include <utility>

#include "base/assert.h"
#include "base/planted.h"
#include "core/common/quorum.h"
#include "core/raft/raft.h"
#include "core/raft/raft_internal.h"
#include "fmt/format.h"

namespace chorus::raft {

using core::Entry;
using core::EntryType;
using internal::Overloaded;

// ---------------------------------------------------------------------------
// Follower side of replication

void Raft::handle_append(const Message& m, const AppendEntries& a) {
  if (a.prev_log_index < log_.committed()) {
    // Everything up to our commit index matches the leader (Log Matching);
    // this append is old or reordered.
    send(m.from, AppendEntriesResponse{true, log_.committed(), {}, {}, {}});
    return;
  }
  bool prev_matches = log_.match_term(a.prev_log_index, a.prev_log_term);
  if constexpr (planted::kNoPrevCheck) prev_matches = a.prev_log_index <= log_.last_index();
  if (!prev_matches) {
    // Raft §5.3 rule 2: reject. The hint names the last index at or before
    // the leader's prev whose term is <= the leader's prev term, so the leader
    // can skip a whole divergent term per round trip.
    LogIndex hint_index = log_.last_index_with_term_at_most(
        a.prev_log_term, std::min(a.prev_log_index, log_.last_index()));
    Term hint_term = *log_.term(hint_index);
    send(m.from, AppendEntriesResponse{false, {}, a.prev_log_index, hint_term, hint_index});
    return;
  }
  // Raft §5.3 / Figure 2: an acknowledgement promises its entries are
  // durable. Several appends can be stepped before one Ready is persisted; an
  // earlier one (say from a stale leader) may have been acknowledged, and
  // this one replaces what it acknowledged: that promise must not leave.
  if (const LogIndex c = first_conflict(a.entries); c != LogIndex(0)) void_acks_from(c);
  const LogIndex last_new = log_.append_after(a.prev_log_index, a.entries);
  // Raft §5.3 rule 5: commit up to min(leader_commit, index of last new entry).
  log_.commit_to(std::min(a.leader_commit, last_new));
  send(m.from, AppendEntriesResponse{true, last_new, {}, {}, {}});
}

void Raft::handle_heartbeat(const Message& m, const Heartbeat& h) {
  log_.commit_to(std::min(h.commit, log_.last_index()));
  send(m.from, HeartbeatResponse{h.read_round});
}

void Raft::handle_snapshot(const Message& m, const InstallSnapshot& s) {
  const core::SnapshotMeta meta = s.snapshot.meta;
  if (meta.index <= log_.committed()) {
    send(m.from, AppendEntriesResponse{true, log_.committed(), {}, {}, {}});
    return;
  }
  if (log_.match_term(meta.index, meta.term)) {
    // We hold the snapshot's last entry: our log matches through it.
    log_.commit_to(meta.index);
    send(m.from, AppendEntriesResponse{true, meta.index, {}, {}, {}});
    return;
  }
  void_acks_from(log_.committed().next());  // everything past the commit index is replaced
  log_.restore(meta);
  snapshot_ = s.snapshot;
  pending_install_ = s.snapshot;
  send(m.from, AppendEntriesResponse{true, meta.index, {}, {}, {}});
}

LogIndex Raft::first_conflict(const std::vector<core::Entry>& entries) const {
  for (const core::Entry& e : entries) {
    if (e.index <= log_.snapshot().index) continue;
    const auto t = log_.term(e.index);
    if (!t) return LogIndex(0);  // past our end: nothing is replaced
    if (*t != e.term) return e.index;
  }
  return LogIndex(0);
}

void Raft::void_acks_from(LogIndex from) {
  std::erase_if(msgs_after_persist_, [&](const Message& m) {
    const auto* r = std::get_if<AppendEntriesResponse>(&m.body);
    return r != nullptr && r->success && r->match_index >= from;
  });
}

// ---------------------------------------------------------------------------
// Leader

void Raft::step_leader(Leader& l, const Message& m) {
  std::visit(Overloaded{
                 [&](const AppendEntriesResponse& r) { handle_append_response(l, m, r); },
                 [&](const HeartbeatResponse& r) { handle_heartbeat_response(l, m, r); },
                 [&](const ForwardProposals& p) {
                   for (const auto& d : p.data) {
                     // A refused forwarded proposal is dropped; its client times out.
                     if (!append_entry(l, EntryType::kNormal, d)) break;
                   }
                 },
                 [&](const ReadIndexRequest& r) {
                   if (reads_full(l)) return;  // dropped: the asker asks again later
                   if (!committed_in_current_term()) {
                     l.reads_before_commit.push_back(PendingRead{m.from, r.ctx, {}, 0});
                   } else {
                     add_read(l, m.from, r.ctx);
                   }
                 },
                 // Another leader in our own term would break Election Safety;
                 // the simulator's checks report it. Nothing to do here.
                 [](const auto&) {},
             },
             m.body);
}

bool Raft::append_entry(Leader& l, EntryType type, std::string data) {
  const size_t bytes = data.size();
  if (type == EntryType::kNormal && l.uncommitted_bytes > 0 &&
      l.uncommitted_bytes + bytes > cfg_.max_uncommitted_bytes) {
    return false;
  }
  log_.append(Entry{term_, log_.last_index().next(), type, std::move(data)});
  l.uncommitted_bytes += bytes;
  l.broadcast_pending = true;
  return true;
}

bool Raft::maybe_send_append(NodeId to, Progress& pr, bool send_if_empty) {
  if (pr.paused()) return false;
  const LogIndex prev = pr.next_index.prev();
  const auto prev_term = log_.term(prev);
  if (!prev_term) {
    // The entries this follower needs are compacted: send the snapshot.
    CHORUS_ASSERT_MSG(snapshot_.has_value(), "log compacted without a snapshot");
    pr.become_snapshot(snapshot_->meta.index);
    send(to, InstallSnapshot{*snapshot_});
    return true;
  }
  std::vector<Entry> entries = log_.slice(pr.next_index, log_.last_index(),
                                          cfg_.max_entries_per_append, cfg_.max_bytes_per_append);
  if (entries.empty() && !send_if_empty) return false;
  const LogIndex last = entries.empty() ? prev : entries.back().index;
  send(to, AppendEntries{prev, *prev_term, std::move(entries), log_.committed()});
  if (last > prev) {
    if (pr.mode == Progress::Mode::kReplicate) {
      pr.next_index = last.next();  // optimistic: pipeline the next batch
      pr.inflights.add(last);
    } else {
      pr.probe_sent = true;
    }
  } else if (pr.mode == Progress::Mode::kProbe) {
    pr.probe_sent = true;
  }
  return true;
}

void Raft::send_empty_append(NodeId to, Progress& pr) {
  const LogIndex prev = pr.next_index.prev();
  if (const auto prev_term = log_.term(prev)) {
    // Carries no entries, so it takes no slot in the in-flight window.
    send(to, AppendEntries{prev, *prev_term, {}, log_.committed()});
    return;
  }
  // What was in flight has been compacted away: start over (likely a snapshot).
  pr.become_probe();
  maybe_send_append(to, pr, /*send_if_empty=*/true);
}

void Raft::broadcast_append(Leader& l) {
  for (auto& [id, pr] : l.progress) {
    bool sent = maybe_send_append(id, pr, /*send_if_empty=*/true);
    while (sent && pr.mode == Progress::Mode::kReplicate && pr.next_index <= log_.last_index()) {
      sent = maybe_send_append(id, pr, false);
    }
  }
}

void Raft::broadcast_heartbeat(Leader& l) {
  ++l.read_round;
  l.round_sent_tick[l.read_round] = now_ticks_;
  // Keep the round map bounded: rounds older than a lease can no longer matter.
  while (l.round_sent_tick.size() > 4ull * cfg_.election_timeout_ticks + 16) {
    l.round_sent_tick.erase(l.round_sent_tick.begin());
  }
  for (auto& [id, pr] : l.progress) {
    send(id, Heartbeat{std::min(pr.match_index, log_.committed()), l.read_round});
  }
  release_confirmed_reads(l);  // a single-node cluster confirms at once
}

void Raft::handle_append_response(Leader& l, const Message& m, const AppendEntriesResponse& r) {
  auto it = l.progress.find(m.from);
  if (it == l.progress.end()) return;
  Progress& pr = it->second;
  pr.last_heard_tick = now_ticks_;
  if (!r.success) {
    if (r.rejected_index == LogIndex(0) && r.conflict_index == LogIndex(0))
      return;  // stale-term reply
    // The leader's side of fast backtracking: the last index at or before the
    // follower's hint whose term is <= the follower's term there.
    LogIndex probe = r.conflict_index;
    if (r.conflict_term > Term(0))
      probe = log_.last_index_with_term_at_most(r.conflict_term, r.conflict_index);
    if (pr.maybe_decrease(r.rejected_index, probe)) {
      if (pr.mode == Progress::Mode::kReplicate) pr.become_probe();
      maybe_send_append(m.from, pr, true);
    }
    return;
  }
  const bool updated = pr.maybe_update(r.match_index);
  // Any success answering our probe unblocks the probe, even without progress.
  if (pr.mode == Progress::Mode::kProbe && r.match_index >= pr.next_index.prev())
    pr.probe_sent = false;
  if (updated) {
    switch (pr.mode) {
      case Progress::Mode::kProbe:
        pr.become_replicate();
        break;
      case Progress::Mode::kSnapshot:
        if (pr.match_index >= pr.pending_snapshot) pr.become_replicate();
        break;
      case Progress::Mode::kReplicate:
        pr.inflights.free_to(pr.match_index);
        break;
    }
    if (maybe_commit(l)) l.broadcast_pending = true;
  }
  while (maybe_send_append(m.from, pr, false) && pr.mode == Progress::Mode::kReplicate) {
  }
}

void Raft::handle_heartbeat_response(Leader& l, const Message& m, const HeartbeatResponse& r) {
  auto it = l.progress.find(m.from);
  if (it == l.progress.end()) return;
  Progress& pr = it->second;
  pr.last_heard_tick = now_ticks_;
  pr.acked_read_round = std::max(pr.acked_read_round, r.read_round);
  if (pr.mode == Progress::Mode::kProbe) pr.probe_sent = false;  // resume a stuck probe
  if (pr.match_index < log_.last_index()) {
    // Raft §5.3: the leader retries AppendEntries indefinitely. Pipelined
    // appends may have been lost, and then neither their acknowledgements nor
    // a later append (no new proposal, or a full window) would ever come:
    // probe with an append at next_index, empty when everything was sent. The
    // follower accepts it, or rejects it and replication restarts from match.
    if (pr.mode == Progress::Mode::kReplicate && pr.paused()) {
      send_empty_append(m.from, pr);
    } else {
      maybe_send_append(m.from, pr, /*send_if_empty=*/true);
    }
  }
  release_confirmed_reads(l);
}

bool Raft::maybe_commit(Leader& l) {
  std::vector<LogIndex> matches;
  matches.reserve(l.progress.size() + 1);
  matches.push_back(log_.stable());  // the leader counts itself once its entries are durable
  for (const auto& [id, pr] : l.progress) matches.push_back(pr.match_index);
  const LogIndex n = core::quorum_value(std::move(matches));
  if (n <= log_.committed()) return false;
  bool may_commit = log_.term(n) == std::optional<Term>(term_);
  if constexpr (planted::kCommitOldTerm) may_commit = true;
  // Raft §5.4.2: only entries from the current term are committed by counting
  // replicas; earlier ones are committed indirectly (Figure 8).
  if (!may_commit) return false;
  const LogIndex old = log_.committed();
  log_.commit_to(n);
  on_commit_advanced(l, old);
  return true;
}

void Raft::on_commit_advanced(Leader& l, LogIndex old_commit) {
  for (LogIndex i = std::max(old_commit.next(), log_.first_index()); i <= log_.committed();
       i = i.next()) {
    const size_t b = log_.at(i).data.size();
    l.uncommitted_bytes = l.uncommitted_bytes > b ? l.uncommitted_bytes - b : 0;
  }
  if (old_commit < l.term_start_index && log_.committed() >= l.term_start_index) {
    // The first commit of this term: reads that waited for it get an index now.
    for (const auto& r : l.reads_before_commit) add_read(l, r.from, r.ctx);
    l.reads_before_commit.clear();
  }
}

void Raft::add_read(Leader& l, NodeId from, uint64_t ctx) {
  if constexpr (planted::kReadIndexNoConfirm) {
    release_read(PendingRead{from, ctx, log_.committed(), 0});
    return;
  }
  // Thesis §6.4: remember the commit index, then confirm leadership with a
  // heartbeat round. Reads that arrive before the next round is sent share it.
  l.reads.push_back(PendingRead{from, ctx, log_.committed(), l.read_round + 1});
  l.heartbeat_pending = true;
}

void Raft::release_read(const PendingRead& r) {
  if (r.from == cfg_.id) {
    reads_.push_back({r.ctx, r.index});
  } else {
    send(r.from, ReadIndexResponse{r.ctx, r.index});
  }
}

void Raft::release_confirmed_reads(Leader& l) {
  std::vector<uint64_t> acked;
  acked.push_back(l.read_round);  // the leader confirms its own rounds
  for (const auto& [id, pr] : l.progress) acked.push_back(pr.acked_read_round);
  const uint64_t confirmed = core::quorum_value(std::move(acked));
  while (!l.reads.empty() && l.reads.front().round <= confirmed) {
    release_read(l.reads.front());
    l.reads.pop_front();
  }
  // A confirmed round proves no other leader could be elected before
  // (sent tick + lease_ticks): followers refuse votes for an election timeout.
  auto it = l.round_sent_tick.find(confirmed);
  if (it != l.round_sent_tick.end()) {
    l.lease_until_tick = std::max(l.lease_until_tick, it->second + cfg_.lease_ticks);
    l.round_sent_tick.erase(l.round_sent_tick.begin(), std::next(it));
  }
}

bool Raft::quorum_active(const Leader& l) const {
  size_t active = 1;  // self
  for (const auto& [id, pr] : l.progress) {
    active += now_ticks_ - pr.last_heard_tick < cfg_.election_timeout_ticks ? 1 : 0;
  }
  return active >= core::majority(cfg_.voters.size());
}

std::string Raft::silent_peers(const Leader& l) const {
  std::string out;
  for (const auto& [id, pr] : l.progress) {
    if (now_ticks_ - pr.last_heard_tick < cfg_.election_timeout_ticks) continue;
    out += fmt::format("{}n{} for {} ticks", out.empty() ? "" : ", ", id.value(),
                       now_ticks_ - pr.last_heard_tick);
  }
  return out;
}

}  // namespace chorus::raft
