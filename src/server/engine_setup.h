// EngineSetup<E>: what the server needs to know about engine E beyond the
// core::Engine concept — how the node's config file configures it, and how
// its messages cross the wire (its codec, src/net/codec). One
// specialization per registered engine (host/registry.h).
#pragma once

#include <map>
#include <memory>
#include <string>

#include "base/prng.h"
#include "base/status.h"
#include "core/paxos/paxos.h"
#include "core/primary/primary.h"
#include "core/raft/raft.h"
#include "host/replica_host.h"
#include "net/transport/transport.h"
#include "server/config.h"

namespace chorus::server {

template <class E>
struct EngineSetup;

// A keyspace's strategy options (metapb.KeyspaceDef.options).
using KeyspaceOptions = std::map<std::string, std::string>;

// Host settings every engine shares, from the config file.
host::HostOptions host_options_from(const NodeConfig& c);

template <>
struct EngineSetup<raft::Raft> {
  using Config = raft::Config;
  // raft.* keys; fails with the reason when the combination is invalid. A
  // raft keyspace has no options of its own.
  static Result<raft::Config> engine_config(const NodeConfig& c, const KeyspaceOptions& = {});
  static std::unique_ptr<raft::Raft> make(const raft::Config& c, Prng prng,
                                          core::PersistentState<raft::Raft::DurableState> ps) {
    return std::make_unique<raft::Raft>(c, prng, std::move(ps));
  }
  static host::HostOptions host_options(const NodeConfig& c) { return host_options_from(c); }
  static net::OutgoingMessage encode(GroupId group, const raft::Message& m);
  static Result<raft::Message> decode(const net::IncomingMessage& in);
};

// Multi-Paxos: the node's [raft] timings (election timeout, heartbeat
// interval) drive its proposer timeouts; the cluster's voters are its
// acceptors. A paxos keyspace has no options of its own.
template <>
struct EngineSetup<paxos::Paxos> {
  using Config = paxos::Config;
  static Result<paxos::Config> engine_config(const NodeConfig& c, const KeyspaceOptions& = {});
  static std::unique_ptr<paxos::Paxos> make(const paxos::Config& c, Prng prng,
                                            paxos::PersistentState ps) {
    return std::make_unique<paxos::Paxos>(c, prng, std::move(ps));
  }
  static host::HostOptions host_options(const NodeConfig& c) { return host_options_from(c); }
  static net::OutgoingMessage encode(GroupId group, const paxos::Message& m);
  static Result<paxos::Message> decode(const net::IncomingMessage& in);
};

// Sync-all, semi-sync and async: the keyspace's options (primary_setup.h)
// and the primary-backup codec. The configuration manager's side lives in
// the node (primary_manager.h).
template <primary::AckRule R>
struct EngineSetup<primary::PrimaryBackup<R>> {
  using E = primary::PrimaryBackup<R>;
  using Config = primary::Options;
  static Result<primary::Options> engine_config(const NodeConfig& c, const KeyspaceOptions& o);
  static std::unique_ptr<E> make(const primary::Options& c, Prng,
                                 core::PersistentState<primary::DurableState> ps) {
    return std::make_unique<E>(c, std::move(ps));
  }
  static host::HostOptions host_options(const NodeConfig& c) { return host_options_from(c); }
  static net::OutgoingMessage encode(GroupId group, const primary::Message& m);
  static Result<primary::Message> decode(const net::IncomingMessage& in);
};

}  // namespace chorus::server
