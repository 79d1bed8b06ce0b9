// `chorus sim`: run the deterministic simulator for one seed or a sweep.
#pragma once

#include <CLI/CLI.hpp>

namespace chorus::tools {

void add_sim_command(CLI::App& app);

}  // namespace chorus::tools
