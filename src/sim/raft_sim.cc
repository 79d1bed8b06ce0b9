#include "sim/raft_sim.h"

#include <type_traits>

#include "host/registry.h"
#include "sim/paxos_sim.h"
#include "sim/primary_sim.h"
#include "sim/run.h"

namespace chorus::sim {

RunReport run_raft(const RunOptions& opts, const TraceSink& trace) {
  Cluster<raft::Raft> cluster(opts, trace);
  return cluster.run();
}

std::optional<RunReport> run_strategy(std::string_view strategy, const RunOptions& opts,
                                      const TraceSink& trace) {
  // Multi-Paxos's Cluster is instantiated in its own file (paxos_sim.cc).
  if (strategy == paxos::Paxos::kName) return run_paxos(opts, trace);
  std::optional<RunReport> report;
  host::with_engine(strategy, [&]<class E>() {
    if constexpr (kSimulated<E> && !std::is_same_v<E, paxos::Paxos>) {
      Cluster<E> cluster(opts, trace);
      report = cluster.run();
    }
  });
  return report;
}

std::vector<std::string_view> simulated_strategies() {
  std::vector<std::string_view> out;
  for (auto name : host::strategy_names()) {
    host::with_engine(name, [&]<class E>() {
      if constexpr (kSimulated<E>) out.push_back(name);
    });
  }
  return out;
}

}  // namespace chorus::sim
