// ReplicaGroup: one replication group as the rest of the server sees it —
// a type-erased ReplicaHost (host/replica_host.h) over whichever engine the
// group's strategy names (host/registry.h). The client front end, the admin
// status and chorusd's wiring talk to this interface only; none of them
// knows which engine runs underneath.
//
// EngineGroup<E> is the one implementation: the host driving engine E with
// Asio effects (asio_effects.h), plus E's wire codec (server/engine_wire.h)
// to turn its messages into peer envelopes and back.
//
// Threading: every method runs on the node's event loop thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "chorus/kv.pb.h"
#include "core/common/engine.h"
#include "core/primary/config_manager.h"
#include "host/replica_host.h"
#include "net/transport/peer_message.h"
#include "storage/kv/state_machine.h"

namespace chorus::server {

class ReplicaGroup {
 public:
  using WriteDone = std::function<void(Result<kvpb::Result>)>;
  using WriteAckDone = std::function<void(Result<host::WriteAck>)>;
  using ReadDone = std::function<void(Result<LogIndex>)>;

  virtual ~ReplicaGroup() = default;

  virtual std::string_view strategy() const = 0;
  virtual core::Capabilities capabilities() const = 0;
  virtual GroupId group_id() const = 0;

  // Recovers from the storage it was given; call once, before start().
  virtual Status init() = 0;
  virtual void start() = 0;
  virtual void stop() = 0;

  // A message from a peer for this group. An error (the engine's codec
  // refuses the body) makes the transport close that connection.
  virtual Status receive(net::IncomingMessage m) = 0;
  // A client write (cmd.client_id and cmd.seq identify it: exactly once).
  virtual void write(kvpb::Command cmd, WriteDone done) = 0;
  // The same, completed with the applied entry's (index, term) (WAIT, CHORUS.TOKEN).
  virtual void write_acked(kvpb::Command cmd, WriteAckDone done) = 0;
  // A read barrier; done(OK) once the state machine may serve the read.
  virtual void read(host::Consistency c, ReadDone done) = 0;
  // True when a read of consistency c may be served right now without read().
  virtual bool read_ready_now(host::Consistency c) = 0;

  virtual const kv::StateMachine& state() const = 0;
  virtual int64_t time_base_ms() const = 0;
  virtual bool healthy() const = 0;
  virtual Status failure() const = 0;
  virtual core::SoftState soft_state() const = 0;
  virtual host::HostStatus status() const = 0;
  // The term of the local log's entry at i; nullopt when compacted or past the end.
  virtual std::optional<Term> term_at(LogIndex i) const = 0;

  // Primary-backup groups (managed() true) take their configuration from
  // the configuration manager (primary_manager.h); the others ignore these.
  virtual bool managed() const { return false; }
  // This replica's report (primary::ReplicaReport, `round` echoed; node
  // left 0); nullopt when there is nothing to report yet. `last_grant` is
  // the newest configuration the manager sent this node, if any.
  virtual std::optional<primary::ReplicaReport> manager_report(
      uint64_t round, const std::optional<primary::Configuration>& last_grant) {
    (void)round;
    (void)last_grant;
    return std::nullopt;
  }
  // A decision of the manager. For a node other than c.primary the lease
  // fields are ignored. Refused (stale, or a restarted primary named again)
  // with the engine's reason.
  virtual Status configure(const primary::Configuration& c) {
    (void)c;
    return Status::invalid_argument("not a primary-backup group");
  }
};

// The /status and CHORUS.STATUS document of a group (admin_http.h describes
// the fields).
std::string status_json(const ReplicaGroup& g, uint64_t node_id);

}  // namespace chorus::server
