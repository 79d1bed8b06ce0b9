// chorus: the command-line tool. Subcommands are registered by the files
// beside this one; each prints a clear error and exits 2 on bad arguments.
#include <CLI/CLI.hpp>

#include "sim_command.h"

int main(int argc, char** argv) {
  CLI::App app{"chorus: a replicated key-value store - operator and developer tools"};
  app.require_subcommand(1);
  chorus::tools::add_sim_command(app);
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
