// The registry of replication strategies: strategy name -> engine type.
// Everything that picks an engine by name dispatches through here — the
// server building a keyspace's replica group, `chorus sim --strategy NAME`,
// the config validator — so a strategy is added in one place and every
// user sees it at once.
//
//   host::with_engine("raft", [&]<class E>() { run<E>(); });
//
// with_engine calls f.template operator()<E>() for the engine registered
// under `name` and returns true, or returns false for an unknown name.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/paxos/paxos.h"
#include "core/primary/primary.h"
#include "core/raft/raft.h"

namespace chorus::host {

// Every registered strategy, in the order `chorus sim --help` lists them.
inline std::vector<std::string_view> strategy_names() {
  return {raft::Raft::kName, paxos::Paxos::kName, primary::SyncAll::kName, primary::SemiSync::kName,
          primary::Async::kName};
}

// "raft, paxos, sync-all, semi-sync, async": for error messages.
inline std::string strategy_list() {
  std::string out;
  for (auto n : strategy_names()) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

template <class F>
bool with_engine(std::string_view name, F&& f) {
  if (name == raft::Raft::kName) {
    f.template operator()<raft::Raft>();
    return true;
  }
  if (name == paxos::Paxos::kName) {
    f.template operator()<paxos::Paxos>();
    return true;
  }
  if (name == primary::SyncAll::kName) {
    f.template operator()<primary::SyncAll>();
    return true;
  }
  if (name == primary::SemiSync::kName) {
    f.template operator()<primary::SemiSync>();
    return true;
  }
  if (name == primary::Async::kName) {
    f.template operator()<primary::Async>();
    return true;
  }
  return false;
}

}  // namespace chorus::host
