// The one interface every replication engine satisfies (Raft, Multi-Paxos,
// ZAB, the primary-backup strategies, leaderless), so that the simulator and
// the server host any of them with the same driver code.
//
// Threading: a core is single-threaded and owned by one host; it performs no
// I/O and reads no clock. Crash semantics: a core has no durable state of its
// own — after a crash the host constructs a new one from PersistentState.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "core/common/types.h"

namespace chorus::core {

template <class E>
concept Engine = requires(E e, const E ce, typename E::Message m, std::string data, uint64_t ctx,
                          const Ready<typename E::Message>& rd) {
  typename E::Message;
  // A message from a peer. Its sender and term are inside the message.
  { e.step(m) } -> std::same_as<void>;
  // One logical clock tick. Every timer in a core is counted in ticks.
  { e.tick() } -> std::same_as<void>;
  // A client write. Completion is seen when the entry is applied.
  { e.propose(std::move(data)) } -> std::same_as<ProposeResult>;
  // A linearizable read barrier, identified by the host's ctx.
  { e.read_index(ctx) } -> std::same_as<ProposeResult>;
  { ce.has_ready() } -> std::same_as<bool>;
  // Collect what to do. At most one Ready is outstanding: the next call to
  // ready() must come after advance() for the previous one.
  { e.ready() } -> std::same_as<Ready<typename E::Message>>;
  // The host finished handling `rd` (persisted, sent, applied).
  { e.advance(rd) } -> std::same_as<void>;
  // Messages that may be sent before the outstanding Ready is persisted
  // (heartbeats, a leader's appends); the host may take them any time, in
  // particular while a Ready is outstanding, and sends them at once.
  { ce.has_messages() } -> std::same_as<bool>;
  { e.take_messages() } -> std::same_as<std::vector<typename E::Message>>;
  { ce.soft_state() } -> std::same_as<SoftState>;
  { ce.id() } -> std::same_as<NodeId>;
};

}  // namespace chorus::core
