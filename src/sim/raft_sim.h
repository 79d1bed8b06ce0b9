// Raft in the simulator: how a seed configures it, how a node builds it, and
// which of Raft's own invariants the cluster checks (core/raft/invariants.h).
// Everything else about a run is the engine-independent Cluster<E>.
#pragma once

#include <fmt/format.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/raft/invariants.h"
#include "core/raft/raft.h"
#include "sim/cluster.h"

namespace chorus::sim {

template <>
inline constexpr bool kSimulated<raft::Raft> = true;

template <>
struct EngineTraits<raft::Raft> {
  // The Raft settings a seed draws; RunOptions::knobs fixes any of them by
  // name ("pre_vote", "check_quorum", "lease_reads", "max_entries_per_append",
  // "max_inflight_appends").
  struct Knobs {
    bool pre_vote = true;
    bool check_quorum = true;
    bool lease_reads = false;
    int max_entries_per_append = 64;
    int max_inflight_appends = 4;
    uint64_t snapshot_trailing_entries = 0;
    double clock_drift_bound = 1.0;
    size_t max_uncommitted_bytes = 64u << 20;  // a scenario may shrink it; seeds do not
  };
  using Invariants = raft::Invariants;
  template <class C>
  using Controller = NoController<C>;  // Raft elects its own leaders
  static bool lossy(const Knobs&) { return false; }
  static constexpr bool kForwards = true;  // followers forward writes to the leader

  static Knobs draw(const RunOptions& o, Prng& setup) {
    auto given = [&](const char* name) -> std::optional<int> {
      auto it = o.knobs.find(name);
      if (it == o.knobs.end() || it->second < 0) return std::nullopt;
      return it->second;
    };
    Knobs k;
    k.pre_vote = given("pre_vote").value_or(setup.chance(0.7) ? 1 : 0) != 0;
    k.check_quorum = given("check_quorum").value_or(setup.chance(0.6) ? 1 : 0) != 0;
    k.max_entries_per_append =
        given("max_entries_per_append")
            .value_or(o.faults.leader_churn ? 1 : static_cast<int>(1u << setup.uniform(0, 6)));
    k.max_inflight_appends =
        given("max_inflight_appends").value_or(static_cast<int>(setup.uniform(1, 8)));
    const bool lease = given("lease_reads").value_or(setup.chance(0.3) ? 1 : 0) != 0;
    k.lease_reads = lease && k.check_quorum;
    k.snapshot_trailing_entries = o.snapshot_every_entries / 4;
    if (auto b = given("max_uncommitted_bytes")) k.max_uncommitted_bytes = static_cast<size_t>(*b);
    // Leases are sized against the clock skew the seed may apply.
    k.clock_drift_bound = std::max(1.0, o.faults.max_clock_skew);
    return k;
  }

  static std::string describe(const Knobs& k) {
    return fmt::format(
        "raft: pre-vote {}  check-quorum {}  lease reads {} ({} ticks)  append <= {} entries, "
        "window {}",
        k.pre_vote ? "on" : "off", k.check_quorum ? "on" : "off", k.lease_reads ? "on" : "off",
        lease_ticks(k), k.max_entries_per_append, k.max_inflight_appends);
  }

  static constexpr uint32_t kElectionTimeoutTicks = 10;
  static uint32_t lease_ticks(const Knobs& k) {
    return raft::max_safe_lease_ticks(kElectionTimeoutTicks, k.clock_drift_bound);
  }

  static std::unique_ptr<raft::Raft> make(NodeId id, std::vector<NodeId> voters, Prng prng,
                                          raft::PersistentState state, const Knobs& k) {
    raft::Config cfg;
    cfg.id = id;
    cfg.voters = std::move(voters);
    cfg.election_timeout_ticks = kElectionTimeoutTicks;
    cfg.heartbeat_interval_ticks = 1;
    cfg.pre_vote = k.pre_vote;
    cfg.check_quorum = k.check_quorum;
    cfg.clock_drift_bound = k.clock_drift_bound;
    // The longest lease the drift allows: the simulator tests the bound
    // itself, not a comfortable margin below it.
    cfg.lease_ticks = std::max<uint32_t>(1, lease_ticks(k));
    cfg.lease_reads = k.lease_reads && lease_ticks(k) > 0;
    // Small and varied, so pipelining, windows and partial replication are exercised.
    cfg.max_entries_per_append = static_cast<size_t>(std::max(1, k.max_entries_per_append));
    cfg.max_inflight_appends = static_cast<size_t>(std::max(1, k.max_inflight_appends));
    cfg.snapshot_trailing_entries = k.snapshot_trailing_entries;
    cfg.max_uncommitted_bytes = k.max_uncommitted_bytes;
    return std::make_unique<raft::Raft>(std::move(cfg), prng, std::move(state));
  }

  static bool lease_reads(const Knobs& k) { return k.lease_reads && lease_ticks(k) > 0; }

  static std::vector<core::Entry> log_entries(const raft::Raft& r) {
    std::vector<core::Entry> out;
    const auto& log = r.log();
    for (LogIndex i = log.first_index(); i <= log.last_index(); i = i.next())
      out.push_back(log.at(i));
    return out;
  }
  static std::optional<LogIndex> promised_durable(const raft::Message& m) {
    return raft::Invariants::promised_durable(m);
  }
  static NodeId from(const raft::Message& m) { return m.from; }
  static NodeId to(const raft::Message& m) { return m.to; }
};

// Runs one seed of Raft. `trace` receives the trace lines when opts.trace is set.
RunReport run_raft(const RunOptions& opts, const TraceSink& trace = {});

}  // namespace chorus::sim
