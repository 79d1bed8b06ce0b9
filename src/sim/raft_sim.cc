#include "sim/raft_sim.h"

#include "host/registry.h"
#include "sim/run.h"

namespace chorus::sim {

RunReport run_raft(const RunOptions& opts, const TraceSink& trace) {
  Cluster<raft::Raft> cluster(opts, trace);
  return cluster.run();
}

std::optional<RunReport> run_strategy(std::string_view strategy, const RunOptions& opts,
                                      const TraceSink& trace) {
  std::optional<RunReport> report;
  host::with_engine(strategy, [&]<class E>() {
    Cluster<E> cluster(opts, trace);
    report = cluster.run();
  });
  return report;
}

}  // namespace chorus::sim
