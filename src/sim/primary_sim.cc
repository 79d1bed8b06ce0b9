#include "sim/primary_sim.h"

namespace chorus::sim {

// The three primary-backup engines' clusters, compiled once here (run.h
// reaches them through the registry).
template class Cluster<primary::SyncAll>;
template class Cluster<primary::SemiSync>;
template class Cluster<primary::Async>;

}  // namespace chorus::sim
