#include "server/replica_group.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/paxos/paxos.h"

namespace chorus::server {

std::string status_json(const ReplicaGroup& g, uint64_t node_id) {
  const host::HostStatus s = g.status();
  const core::EngineStatus& e = s.engine;
  nlohmann::json peers = nlohmann::json::array();
  for (const auto& p : e.peers) {
    peers.push_back({{"id", p.id.value()},
                     {"match_index", p.match_index.value()},
                     {"next_index", p.next_index.value()},
                     {"lag", p.lag}});
  }
  nlohmann::json j{
      {"node_id", node_id},
      {"group", g.group_id().value()},
      {"strategy", std::string(g.strategy())},
      {"role", std::string(core::role_name(e.soft.role))},
      {"engine_role", std::string(e.role_name)},
      {"term", e.soft.term.value()},
      {"leader", e.soft.leader.value()},
      {"commit_index", e.commit_index.value()},
      {"applied_index", s.applied_index.value()},
      {"first_index", e.first_index.value()},
      {"last_index", e.last_index.value()},
      {"snapshot_index", e.snapshot_index.value()},
      {"pending_writes", s.pending_writes},
      {"pending_reads", s.pending_reads},
      {"healthy", s.healthy},
      {"error", s.error},
      {"peers", std::move(peers)},
  };
  if (g.strategy() == paxos::Paxos::kName) {
    // `term` is the promised ballot packed (core/paxos/ballot.h); say it
    // the way the papers write a ballot: round.node.
    const paxos::Ballot b = paxos::Ballot::from_term(e.soft.term);
    j["ballot"] = fmt::format("{}.{}", b.round, b.node.value());
  }
  return j.dump();
}

}  // namespace chorus::server
