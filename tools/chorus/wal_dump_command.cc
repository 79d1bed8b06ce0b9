// `chorus wal-dump DIR`: list a write-ahead log's segments and records and
// flag the first bad record (file and offset). Read-only.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "storage/env/posix_env.h"
#include "storage/wal/wal_dump.h"

namespace chorus::tools {

void add_wal_dump_command(CLI::App& app) {
  struct Args {
    std::string dir;
    bool segments_only = false;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd =
      app.add_subcommand("wal-dump", "List a write-ahead log's segments and records; flag damage");
  cmd->add_option("DIR", args->dir, "The WAL directory (a node's data dir/wal)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_flag("--segments-only", args->segments_only,
                "Only segments and problems, no per-record lines");
  cmd->callback([args] {
    storage::WalDumpOptions opts;
    opts.records = !args->segments_only;
    Status st = storage::wal_dump(
        storage::PosixEnv::get(), args->dir,
        [](std::string_view line) {
          std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
        },
        opts);
    if (!st.is_ok()) {
      std::fprintf(stderr, "chorus wal-dump: %s\n", st.to_string().c_str());
      throw CLI::RuntimeError(1);
    }
  });
}

}  // namespace chorus::tools
