// chorus: the command-line tool. Subcommands are registered by the files
// beside this one; each prints a clear error and exits 2 on bad arguments.
#include <CLI/CLI.hpp>

#include "sim_command.h"

namespace chorus::tools {
void add_wal_dump_command(CLI::App& app);
void add_cluster_commands(CLI::App& app);
void add_failover_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_nemesis_command(CLI::App& app);
}  // namespace chorus::tools

int main(int argc, char** argv) {
  CLI::App app{"chorus: a replicated key-value store - operator and developer tools"};
  app.require_subcommand(1);
  chorus::tools::add_sim_command(app);
  chorus::tools::add_wal_dump_command(app);
  chorus::tools::add_cluster_commands(app);
  chorus::tools::add_failover_command(app);
  chorus::tools::add_bench_command(app);
  chorus::tools::add_nemesis_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return 0;
}
