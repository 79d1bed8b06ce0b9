// The options of a primary-backup keyspace (sync-all, semi-sync, async):
// what `[keyspace.NAME]` and `CHORUS.KEYSPACE CREATE ... option value` may
// say, checked when the keyspace is created, and turned into the engine's
// options (primary::Options) and its configuration manager's
// (primary::ManagerOptions) when a node builds the group. docs/strategies.md
// describes each option. Pure.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "core/primary/config_manager.h"
#include "core/primary/options.h"
#include "server/config.h"

namespace chorus::server {

// True for sync-all, semi-sync and async.
bool is_primary_strategy(std::string_view strategy);

// The options `strategy` accepts (empty for a strategy that is not primary-backup).
std::vector<std::string_view> primary_option_names(std::string_view strategy);

// Checks values on their own (the node count is checked where it is known):
// the error names the option and what it accepts.
Status validate_primary_options(std::string_view strategy,
                                const std::map<std::string, std::string>& options);

struct PrimarySettings {
  primary::Options engine;
  primary::ManagerOptions manager;
};

// Precondition: validate_primary_options(strategy, options) is OK. Fails
// when a duration is shorter than what the node's tick allows, or semi-sync's
// acks reach the number of nodes.
Result<PrimarySettings> primary_settings(std::string_view strategy,
                                         const std::map<std::string, std::string>& options,
                                         const NodeConfig& node);

}  // namespace chorus::server
