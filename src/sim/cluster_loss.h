// Cluster<E> (cluster.h): loss accounting — what each node applied, what
// each node reported dropped (Ready::dropped, through HostProbes::dropped),
// and the checks that hold the reports to the truth (DESIGN.md, "Loss is
// counted, never silent"):
//
//  - nothing reported dropped (lost or rolled back; not in doubt, which
//    may be the primary's entry too) is in the final state — under settings
//    that promise no loss; a lossy promotion may appoint, after a node
//    dropped an entry, a primary that still holds it (each node reports
//    only its own drops), so there such resurrections are counted;
//  - every acknowledged write is in the final state, or reported lost
//    (kLostAcknowledged, kInDoubt — a consumer that must never under-report
//    counts those — or inside a range record);
//  - every write in the final state was issued by a client;
//  - a safe engine (not lossy()) reports no kLostAcknowledged entry;
//  - a lossy engine's history is linearizable once the writes reported
//    dropped and absent from the final state are removed, together with the
//    reads served from a state off the final timeline (by a primary whose
//    epoch was lost later: the cost of the strategy, which the reports make
//    visible).
//
// The final state is a chain: every applied entry is recorded under its
// (index, term), which names one entry and its whole prefix (Log Matching),
// with the term of the entry before it. A node's state is the chain down
// from its last applied entry; a snapshot installed from the primary moves
// that to the snapshot's (index, term). So a range record (positions inside
// the reporting node's own snapshot) resolves to the commands the node
// applied there.
#pragma once

#include "sim/cluster.h"

namespace chorus::sim {

template <core::Engine E>
void Cluster<E>::note_applied(size_t i, const core::Entry& e) {
  auto& last = last_applied_[i];
  Link l;
  l.prev_term = last.first + 1 == e.index.value() ? last.second : 0;
  if (e.type == core::EntryType::kNormal && !e.data.empty()) {
    kvpb::Command c;
    if (c.ParseFromString(e.data) && c.client_id() != 0) {
      l.client = c.client_id();
      l.seq = c.seq();
    }
  }
  const std::pair<uint64_t, uint64_t> key{e.index.value(), e.term.value()};
  auto [it, fresh] = links_.emplace(key, l);
  if (fresh && lossy()) ++report_.entries_committed;
  if (!fresh &&
      (it->second.client != l.client || it->second.seq != l.seq ||
       (it->second.prev_term != 0 && l.prev_term != 0 && it->second.prev_term != l.prev_term))) {
    violation(fmt::format("log matching: n{} applied another entry at {}/{} than a node before it",
                          i + 1, key.first, key.second));
  }
  if (it->second.prev_term == 0) it->second.prev_term = l.prev_term;
  last = key;
}

template <core::Engine E>
void Cluster<E>::note_restored(size_t i, LogIndex index, Term term) {
  last_applied_[i] = {index.value(), term.value()};
}

template <core::Engine E>
void Cluster<E>::note_dropped(size_t i, const core::DroppedEntry& d) {
  if (opts_.trace)
    trace(fmt::format(
        "n{} reports dropped {}/{} ({}{})", i + 1, d.entry.index.value(), d.entry.term.value(),
        core::drop_kind_name(d.kind),
        d.range_positions > 0 ? fmt::format(", {} positions", d.range_positions) : std::string()));
  if (d.range_positions == 0) {
    Drop r{i, d.entry.index.value(), d.entry.term.value(), d.kind, false, 0, 0};
    kvpb::Command c;
    if (!d.entry.data.empty() && c.ParseFromString(d.entry.data)) {
      r.client = c.client_id();
      r.seq = c.seq();
    }
    drops_.push_back(r);
    return;
  }
  // Positions inside this node's snapshot: what it applied there.
  const uint64_t first = d.entry.index.value();
  for (uint64_t p = first; p < first + d.range_positions; ++p) {
    Drop r{i, p, 0, d.kind, true, 0, 0};
    auto cur = last_applied_[i];
    while (cur.first > p) {
      auto it = links_.find(cur);
      if (it == links_.end() || it->second.prev_term == 0) break;
      cur = {cur.first - 1, it->second.prev_term};
    }
    if (cur.first == p) {
      if (auto it = links_.find(cur); it != links_.end()) {
        r.term = cur.second;
        r.client = it->second.client;
        r.seq = it->second.seq;
      }
    }
    drops_.push_back(r);
  }
}

template <core::Engine E>
void Cluster<E>::check_loss() {
  // The final state: node 1's chain (the replicas converged).
  std::set<std::pair<uint64_t, uint64_t>> final_entries;
  std::set<std::pair<uint64_t, uint64_t>> final_commands;
  for (auto cur = last_applied_[0]; cur.first > 0;) {
    auto it = links_.find(cur);
    if (it == links_.end() || (it->second.prev_term == 0 && cur.first > 1)) {
      violation(fmt::format("loss accounting: the final state's chain breaks at {}/{}", cur.first,
                            cur.second));
      return;
    }
    final_entries.insert(cur);
    if (it->second.client != 0) final_commands.insert({it->second.client, it->second.seq});
    cur = {cur.first - 1, it->second.prev_term};
  }
  std::set<std::pair<uint64_t, uint64_t>> reported_lost;  // commands reported lost or in doubt
  std::set<std::pair<uint64_t, uint64_t>> dropped;        // commands reported dropped at all
  for (const Drop& d : drops_) {
    // In doubt means the node cannot tell (the primary forgot its terms
    // there): such an entry may well be the primary's too.
    if (d.term != 0 && d.kind != core::DropKind::kInDoubt &&
        final_entries.contains({d.index, d.term})) {
      if (lossy()) {
        // Each node reports what it drops from its own log; under a lossy
        // promotion a later primary may still hold the entry and bring it
        // back (core/primary/README.md). Counted, not a violation.
        ++report_.drops_resurrected;
        continue;
      }
      violation(fmt::format("n{} reported {}/{} dropped ({}) but it is in the final state",
                            d.node + 1, d.index, d.term, core::drop_kind_name(d.kind)));
      return;
    }
    if (!lossy() && d.kind == core::DropKind::kLostAcknowledged) {
      violation(fmt::format(
          "n{} reported {}/{} lost after it was acknowledged, under settings that promise no loss",
          d.node + 1, d.index, d.term));
      return;
    }
    if (d.client == 0) continue;
    dropped.insert({d.client, d.seq});
    if (d.kind != core::DropKind::kRolledBack) reported_lost.insert({d.client, d.seq});
  }
  std::map<size_t, std::pair<uint64_t, uint64_t>> command_of;  // history index -> command
  for (const auto& [cmd, op] : op_by_command_) command_of[op] = cmd;
  for (const auto& cmd : final_commands) {
    if (!op_by_command_.contains(cmd)) {
      violation(fmt::format("the final state holds a write no client issued (client {} seq {})",
                            cmd.first, cmd.second));
      return;
    }
  }
  std::set<size_t> removed;
  for (const auto& [op, cmd] : command_of) {
    if (final_commands.contains(cmd)) continue;
    const check::Operation& o = report_.history[op];
    if (o.status == check::OpStatus::kOk && !reported_lost.contains(cmd)) {
      violation(fmt::format(
          "acknowledged write lost without a report: {} is not in the final state and no node "
          "reported it lost",
          check::describe(o)));
      return;
    }
    if (dropped.contains(cmd)) removed.insert(op);
  }
  if (!lossy()) return;
  check::CheckOptions copts;
  copts.max_steps = 5'000'000;
  check::CheckResult r = check::check_linearizable(without_lost_timelines(removed, final_entries), copts);
  if (r.verdict == check::Verdict::kViolation || r.verdict == check::Verdict::kMalformed) {
    violation("linearizability (reported-lost writes removed): " + r.report);
  } else if (r.verdict == check::Verdict::kUnknown) {
    ++report_.checks_inconclusive;
    trace("linearizability check gave up (budget): " + r.report);
  }
}

// The history on the final timeline: the writes in `removed` (reported
// dropped, absent from the final state) turned into failed operations, and
// likewise every read served from a state that is not a prefix of the final
// one — its last applied entry is not on the final chain: it was served by
// a primary whose epoch was lost later (it may have missed writes that a
// later primary still held, or seen some that were lost).
template <core::Engine E>
check::History Cluster<E>::without_lost_timelines(
    const std::set<size_t>& removed,
    const std::set<std::pair<uint64_t, uint64_t>>& final_entries) const {
  check::History h = report_.history;
  for (size_t op : removed) h[op].status = check::OpStatus::kFail;
  for (const auto& [op, at] : read_at_) {
    if (at.first != 0 && !final_entries.contains(at)) h[op].status = check::OpStatus::kFail;
  }
  return h;
}

}  // namespace chorus::sim
