#include "sim/raft_sim.h"

namespace chorus::sim {

RunReport run_raft(const RunOptions& opts, const TraceSink& trace) {
  Cluster<raft::Raft> cluster(opts, trace);
  return cluster.run();
}

}  // namespace chorus::sim
