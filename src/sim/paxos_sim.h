// Multi-Paxos in the simulator: how a seed configures the core
// (core/paxos/), how a node builds it, how its log reads, and Paxos's own
// invariants (core/paxos/invariants.h: at most one value chosen per slot,
// acceptors forget nothing, ballots only grow). Everything else about a run
// is the engine-independent Cluster<E>.
// run_paxos() lives in its own file so that Cluster<paxos::Paxos> is compiled
// once; run_strategy() (raft_sim.cc) calls it by name.
#pragma once

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/paxos/invariants.h"
#include "core/paxos/paxos.h"
#include "sim/cluster.h"

namespace chorus::sim {

template <>
inline constexpr bool kSimulated<paxos::Paxos> = true;

template <>
struct EngineTraits<paxos::Paxos> {
  // The Paxos settings a seed draws; RunOptions::knobs fixes any of them by
  // name ("max_slots_per_accept", "max_inflight_slots", "accept_retry_ticks",
  // "max_slots_per_decide", "max_apply_slots_per_ready", "max_bytes_per_accept",
  // "max_bytes_per_decide").
  struct Knobs {
    size_t max_slots_per_accept = 64;
    size_t max_inflight_slots = 256;
    uint32_t accept_retry_ticks = 3;
    size_t max_slots_per_decide = 256;
    size_t max_apply_slots_per_ready = 1024;
    size_t max_bytes_per_accept = 1 << 20;
    size_t max_bytes_per_decide = 1 << 20;
  };
  using Invariants = paxos::Invariants;
  template <class C>
  using Controller = NoController<C>;  // any replica may become proposer by itself
  static bool lossy(const Knobs&) { return false; }
  static bool lease_reads(const Knobs&) { return false; }  // no leases yet
  // A follower answers kNotLeader with its leader hint: clients follow it.
  static constexpr bool kForwards = false;

  static Knobs draw(const RunOptions& o, Prng& setup) {
    auto given = [&](const char* name) -> std::optional<int> {
      auto it = o.knobs.find(name);
      if (it == o.knobs.end() || it->second <= 0) return std::nullopt;
      return it->second;
    };
    auto pick = [&](const char* name, int drawn) {
      return static_cast<size_t>(given(name).value_or(drawn));
    };
    // Small and varied, so batching, windows, retries and catch-up paging
    // are all exercised.
    Knobs k;
    k.max_slots_per_accept =
        pick("max_slots_per_accept", o.faults.leader_churn ? 1 : 1 << setup.uniform(0, 6));
    k.max_inflight_slots = pick("max_inflight_slots", 1 << setup.uniform(2, 8));
    k.accept_retry_ticks =
        static_cast<uint32_t>(pick("accept_retry_ticks", static_cast<int>(setup.uniform(1, 5))));
    k.max_slots_per_decide = pick("max_slots_per_decide", 1 << setup.uniform(0, 8));
    k.max_apply_slots_per_ready = pick("max_apply_slots_per_ready", 1 << setup.uniform(0, 10));
    // Often a few hundred bytes (a few workload values), so batches are cut
    // by bytes and single slots above the cap still travel.
    auto draw_bytes = [&] { return setup.uniform(0, 1) ? 64 << setup.uniform(0, 4) : 1 << 20; };
    k.max_bytes_per_accept = pick("max_bytes_per_accept", draw_bytes());
    k.max_bytes_per_decide = pick("max_bytes_per_decide", draw_bytes());
    return k;
  }

  static std::string describe(const Knobs& k) {
    return fmt::format(
        "paxos: accept <= {} slots / {} bytes, window {}, resend after {} ticks, decide <= {} "
        "slots / {} bytes, apply <= {} per ready",
        k.max_slots_per_accept, k.max_bytes_per_accept, k.max_inflight_slots, k.accept_retry_ticks,
        k.max_slots_per_decide, k.max_bytes_per_decide, k.max_apply_slots_per_ready);
  }

  static constexpr uint32_t kElectionTimeoutTicks = 10;

  static std::unique_ptr<paxos::Paxos> make(NodeId id, std::vector<NodeId> members, Prng prng,
                                            paxos::PersistentState state, const Knobs& k) {
    paxos::Config cfg;
    cfg.id = id;
    cfg.members = std::move(members);
    cfg.election_timeout_ticks = kElectionTimeoutTicks;
    cfg.heartbeat_interval_ticks = 1;
    cfg.max_slots_per_accept = k.max_slots_per_accept;
    cfg.max_inflight_slots = k.max_inflight_slots;
    cfg.accept_retry_ticks = k.accept_retry_ticks;
    cfg.max_slots_per_decide = k.max_slots_per_decide;
    cfg.max_apply_slots_per_ready = k.max_apply_slots_per_ready;
    cfg.max_bytes_per_accept = k.max_bytes_per_accept;
    cfg.max_bytes_per_decide = k.max_bytes_per_decide;
    return std::make_unique<paxos::Paxos>(std::move(cfg), prng, std::move(state));
  }

  // The chosen prefix after the snapshot, as the committed entries the host
  // applies (term = origin ballot, data = the command): slots past it are
  // independent proposals, not a log whose prefixes must match.
  static std::vector<core::Entry> log_entries(const paxos::Paxos& p) {
    std::vector<core::Entry> out;
    for (LogIndex s = p.snapshot_index().next(); s <= p.chosen_through(); s = s.next()) {
      const std::optional<paxos::PValue> pv = p.accepted(s);
      CHORUS_ASSERT_MSG(pv.has_value(), "a chosen slot is not held");
      out.push_back(core::Entry{pv->value.origin.to_term(), s, pv->value.type, pv->value.data});
    }
    return out;
  }
  static std::optional<LogIndex> promised_durable(const paxos::Message& m) {
    return paxos::Invariants::promised_durable(m);
  }
  static NodeId from(const paxos::Message& m) { return m.from; }
  static NodeId to(const paxos::Message& m) { return m.to; }
};

// Runs one seed of Multi-Paxos. `trace` receives the trace lines when opts.trace is set.
RunReport run_paxos(const RunOptions& opts, const TraceSink& trace = {});

}  // namespace chorus::sim
