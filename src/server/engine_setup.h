// EngineSetup<E>: what the server needs to know about engine E beyond the
// core::Engine concept — how the node's config file configures it, and how
// its messages cross the wire (its codec, src/net/codec). One
// specialization per registered engine (host/registry.h).
#pragma once

#include "base/status.h"
#include "core/raft/raft.h"
#include "host/replica_host.h"
#include "net/transport/transport.h"
#include "server/config.h"

namespace chorus::server {

template <class E>
struct EngineSetup;

// Host settings every engine shares, from the config file.
host::HostOptions host_options_from(const NodeConfig& c);

template <>
struct EngineSetup<raft::Raft> {
  // raft.* keys; fails with the reason when the combination is invalid.
  static Result<raft::Config> engine_config(const NodeConfig& c);
  static host::HostOptions host_options(const NodeConfig& c) { return host_options_from(c); }
  static net::OutgoingMessage encode(GroupId group, const raft::Message& m);
  static Result<raft::Message> decode(const net::IncomingMessage& in);
};

}  // namespace chorus::server
