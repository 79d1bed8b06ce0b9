#include "server/engine_group.h"

#include "net/codec/paxos_codec.h"
#include "net/codec/primary_codec.h"
#include "net/codec/raft_codec.h"
#include "server/primary_setup.h"

namespace chorus::server {

host::HostOptions host_options_from(const NodeConfig& c) {
  host::HostOptions o;
  o.tick = std::chrono::milliseconds(c.raft.tick_ms);
  o.request_timeout = std::chrono::milliseconds(c.limits.request_timeout_ms);
  o.no_leader_wait = std::chrono::milliseconds(c.limits.no_leader_wait_ms);
  o.snapshot_every_entries =
      c.raft.snapshot_every_entries == 0 ? UINT64_MAX : c.raft.snapshot_every_entries;
  return o;
}

Result<raft::Config> EngineSetup<raft::Raft>::engine_config(const NodeConfig& c,
                                                            const KeyspaceOptions&) {
  raft::Config r;
  r.id = NodeId(c.node_id);
  for (uint64_t v : c.voter_ids()) r.voters.push_back(NodeId(v));
  r.election_timeout_ticks = c.raft.election_timeout_ticks;
  r.heartbeat_interval_ticks = c.raft.heartbeat_interval_ticks;
  r.pre_vote = c.raft.pre_vote;
  r.check_quorum = c.raft.check_quorum;
  r.lease_reads = c.raft.lease_reads;
  r.lease_ticks = c.raft.lease_ticks;
  r.max_entries_per_append = c.raft.max_entries_per_append;
  r.max_bytes_per_append = c.raft.max_bytes_per_append;
  r.max_inflight_appends = c.raft.max_inflight_appends;
  r.max_uncommitted_bytes = c.raft.max_uncommitted_bytes;
  r.snapshot_trailing_entries = c.raft.snapshot_trailing_entries;
  CHORUS_RETURN_IF_ERROR(r.validate());
  return r;
}

net::OutgoingMessage EngineSetup<raft::Raft>::encode(GroupId group, const raft::Message& m) {
  return net::encode_raft_message(m, group);
}

Result<raft::Message> EngineSetup<raft::Raft>::decode(const net::IncomingMessage& in) {
  return net::decode_raft_message(in);
}

Result<paxos::Config> EngineSetup<paxos::Paxos>::engine_config(const NodeConfig& c,
                                                               const KeyspaceOptions&) {
  paxos::Config p;
  p.id = NodeId(c.node_id);
  for (uint64_t v : c.voter_ids()) p.members.push_back(NodeId(v));
  p.election_timeout_ticks = c.raft.election_timeout_ticks;
  p.heartbeat_interval_ticks = c.raft.heartbeat_interval_ticks;
  // Raft's AppendEntries byte cap bounds Paxos's Accept and Decide batches
  // alike: the same frames, the same transport limit.
  p.max_bytes_per_accept = c.raft.max_bytes_per_append;
  p.max_bytes_per_decide = c.raft.max_bytes_per_append;
  CHORUS_RETURN_IF_ERROR(p.validate());
  return p;
}

net::OutgoingMessage EngineSetup<paxos::Paxos>::encode(GroupId group, const paxos::Message& m) {
  return net::encode_paxos_message(m, group);
}

Result<paxos::Message> EngineSetup<paxos::Paxos>::decode(const net::IncomingMessage& in) {
  return net::decode_paxos_message(in);
}

template <primary::AckRule R>
Result<primary::Options> EngineSetup<primary::PrimaryBackup<R>>::engine_config(
    const NodeConfig& c, const KeyspaceOptions& o) {
  CHORUS_ASSIGN_OR_RETURN(PrimarySettings s, primary_settings(E::kName, o, c));
  return s.engine;
}

template <primary::AckRule R>
net::OutgoingMessage EngineSetup<primary::PrimaryBackup<R>>::encode(GroupId group,
                                                                    const primary::Message& m) {
  return net::encode_primary_message(m, group);
}

template <primary::AckRule R>
Result<primary::Message> EngineSetup<primary::PrimaryBackup<R>>::decode(
    const net::IncomingMessage& in) {
  return net::decode_primary_message(in);
}

template struct EngineSetup<primary::SyncAll>;
template struct EngineSetup<primary::SemiSync>;
template struct EngineSetup<primary::Async>;

Result<std::unique_ptr<ReplicaGroup>> make_replica_group(std::string_view strategy,
                                                         GroupContext ctx) {
  std::unique_ptr<ReplicaGroup> g;
  const bool known = host::with_engine(
      strategy, [&]<class E>() { g = std::make_unique<EngineGroup<E>>(std::move(ctx)); });
  if (!known) {
    return Status::invalid_argument("unknown strategy '" + std::string(strategy) +
                                    "' (built: " + host::strategy_list() + ")");
  }
  return g;
}

Status PeerRouter::deliver(net::IncomingMessage m) {
  const GroupId group(m.message.group_id());
  for (ReplicaGroup* g : groups_) {
    if (g->group_id() == group) return g->receive(std::move(m));
  }
  ++unknown_group_drops_;
  return Status::ok();
}

}  // namespace chorus::server
