// One simulated run of any registered strategy (host/registry.h).
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "sim/cluster.h"

namespace chorus::sim {

// The registered strategies the simulator can run (those with an
// EngineTraits specialization, kSimulated<E>).
std::vector<std::string_view> simulated_strategies();

// Runs one seed of the strategy named `strategy`; nullopt when no such
// strategy is registered or the simulator cannot run it. `trace` receives the trace lines when
// opts.trace is set.
std::optional<RunReport> run_strategy(std::string_view strategy, const RunOptions& opts,
                                      const TraceSink& trace = {});

}  // namespace chorus::sim
