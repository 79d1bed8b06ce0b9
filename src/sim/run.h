// One simulated run of any registered strategy (host/registry.h).
#pragma once

#include <optional>
#include <string_view>

#include "sim/cluster.h"

namespace chorus::sim {

// Runs one seed of the strategy named `strategy`; nullopt when no such
// strategy is registered. `trace` receives the trace lines when opts.trace
// is set.
std::optional<RunReport> run_strategy(std::string_view strategy, const RunOptions& opts,
                                      const TraceSink& trace = {});

}  // namespace chorus::sim
