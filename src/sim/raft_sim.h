// Hosting the Raft core in the simulator, and the entry points the CLI and
// tests use to run one seed or sweep many.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/raft/raft.h"
#include "sim/cluster.h"

namespace chorus::sim {

template <>
struct EngineTraits<raft::Raft> {
  static std::unique_ptr<raft::Raft> make(NodeId id, std::vector<NodeId> voters, Prng prng,
                                          core::PersistentState state, const RunOptions& opts) {
    raft::Config cfg;
    cfg.id = id;
    cfg.voters = std::move(voters);
    cfg.election_timeout_ticks = 10;
    cfg.heartbeat_interval_ticks = 1;
    cfg.pre_vote = opts.pre_vote != 0;
    cfg.check_quorum = opts.check_quorum != 0;
    cfg.lease_reads = opts.lease_reads > 0 && cfg.check_quorum;
    // Clock rates differ by up to max_clock_skew^2 (<= 2.25) between nodes; a
    // lease is safe while lease_ticks < election_timeout / that ratio.
    cfg.lease_ticks = 4;
    // Small and varied, so pipelining, windows and partial replication are exercised.
    cfg.max_entries_per_append = static_cast<size_t>(std::max(1, opts.max_entries_per_append));
    cfg.max_inflight_appends = static_cast<size_t>(std::max(1, opts.max_inflight_appends));
    cfg.snapshot_trailing_entries = opts.snapshot_every_entries / 4;
    return std::make_unique<raft::Raft>(std::move(cfg), prng, std::move(state));
  }
  static std::string describe(const raft::Message& m) { return raft::describe(m); }
  static NodeId from(const raft::Message& m) { return m.from; }
  static NodeId to(const raft::Message& m) { return m.to; }
  static void compact(raft::Raft& r, core::SnapshotRef snap) { r.compact(std::move(snap)); }
  static std::vector<core::Entry> log_entries(const raft::Raft& r) {
    std::vector<core::Entry> out;
    const auto& log = r.log();
    for (LogIndex i = log.first_index(); i <= log.last_index(); i = i.next())
      out.push_back(log.at(i));
    return out;
  }
  static LogIndex commit_index(const raft::Raft& r) { return r.log().committed(); }
  static std::optional<Term> term_at(const raft::Raft& r, LogIndex i) { return r.log().term(i); }
  // A successful append acknowledgement promises the follower holds its log
  // through match_index durably: the leader may count it toward commitment.
  static std::optional<LogIndex> promised_durable(const raft::Message& m) {
    if (const auto* r = std::get_if<raft::AppendEntriesResponse>(&m.body); r && r->success)
      return r->match_index;
    return std::nullopt;
  }
};

// Runs one seed. `trace` receives the trace lines when opts.trace is set.
RunReport run_raft(const RunOptions& opts, const TraceSink& trace = {});

}  // namespace chorus::sim
