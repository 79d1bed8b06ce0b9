#include "sim/paxos_sim.h"

namespace chorus::sim {

// Multi-Paxos's cluster, compiled once here (run.h reaches it by name).
template class Cluster<paxos::Paxos>;

RunReport run_paxos(const RunOptions& opts, const TraceSink& trace) {
  Cluster<paxos::Paxos> cluster(opts, trace);
  return cluster.run();
}

}  // namespace chorus::sim
