// The one interface every replication engine satisfies (Raft today;
// Multi-Paxos, ZAB, the primary-backup strategies and leaderless later), so
// that one host (src/host/replica_host.h) drives any of them — in the
// simulator and in the server alike.
//
// An engine is a pure state machine (see types.h for why): inputs are
// step(), tick(), propose() and read_index(); everything it wants done comes
// back in a Ready. What differs between engines is stated here as types and
// flags, never as "if raft" in a host:
//
//  - E::Message: its peer messages, each with `from` and `to`;
//  - E::DurableState: what must survive a crash besides the log and the
//    snapshot (Raft: term, vote, commit; Paxos: the promised ballot; ZAB:
//    the accepted and current epochs), with its byte encoding for the
//    metadata file and the rule for when a change needs an fsync before the
//    messages that depend on it leave;
//  - E::kCapabilities: what a host, a checker or a user may rely on;
//  - status(): the engine's view for operators (role, log positions, each
//    peer's progress), in one shape for every engine.
//
// Threading: an engine is single-threaded and owned by one host; it performs
// no I/O and reads no clock. Crash semantics: an engine has no durable state
// of its own — after a crash the host constructs a new one from the
// PersistentState it persisted following each Ready.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "core/common/types.h"

namespace chorus::core {

// What an engine promises; the host, the checkers and the docs read these
// instead of the engine's name.
struct Capabilities {
  // One node orders writes and the others forward to it; false for
  // leaderless engines, where any node coordinates.
  bool has_leader = true;
  // Reads may be served under a leader lease (a quorum confirmed leadership
  // within the lease): read_index(ctx, ReadMode::kLease) and
  // lease_read_index() mean something.
  bool lease_reads = false;
  // Acknowledged writes and default reads are linearizable.
  bool linearizable = true;
  // A failover may drop writes that were acknowledged to clients; such an
  // engine reports each one (DESIGN.md, "Loss is counted, never silent").
  bool may_lose_acknowledged_writes = false;
  // Log Matching (Raft §5.3): two entries with the same index and term name
  // the same history up to them, so storage recovery may drop a log that
  // disagrees with a snapshot at its index. False for engines whose entries
  // are independent records (Multi-Paxos slots), which recovery must keep
  // (storage::ReplicaStorageOptions::log_matching).
  bool log_matching = true;
};

// How a read barrier is confirmed.
enum class ReadMode : uint8_t {
  kLinearizable,  // the engine's quorum-confirmed read (Raft: ReadIndex)
  kLease,         // under the leader lease when one holds, else as kLinearizable
};

// A peer as the leader sees it. Zero positions when unknown.
struct PeerStatus {
  NodeId id;
  LogIndex match_index;  // the peer's log is known to match through here
  LogIndex next_index;   // the next entry the leader will send it
  // How far behind the leader's last index the peer's known match is.
  uint64_t lag = 0;
};

// One shape of status for every engine: what /status, CHORUS.STATUS, the
// metrics and the dashboard show.
struct EngineStatus {
  SoftState soft;
  std::string_view role_name;  // the engine's own word ("pre-candidate", "LOOKING", ...)
  LogIndex commit_index;
  LogIndex first_index;  // first entry still in the log (after the snapshot)
  LogIndex last_index;
  LogIndex snapshot_index;
  std::vector<PeerStatus> peers;  // filled on the leader only
  // The leader acknowledges writes below its promised durability (semi-sync
  // with on_timeout = degrade, while too few replicas keep up); false for
  // engines that never degrade.
  bool degraded = false;
  uint64_t degraded_writes = 0;  // writes acknowledged while degraded, since start
  // The leader may acknowledge writes now: false for a primary-backup
  // primary whose lease lapsed (it may have been deposed without knowing);
  // a Raft leader always may (its acknowledged entries are never replaced).
  bool acknowledging = true;
};

template <class E>
concept Engine = requires(E e, const E ce, typename E::Message m, std::string data, uint64_t ctx,
                          ReadMode mode, SnapshotRef snap,
                          const Ready<typename E::Message, typename E::DurableState>& rd,
                          const typename E::DurableState& ds, std::string_view bytes) {
  typename E::Message;
  typename E::DurableState;
  { m.from } -> std::convertible_to<NodeId>;
  { m.to } -> std::convertible_to<NodeId>;
  { E::kCapabilities } -> std::convertible_to<Capabilities>;
  { E::kName } -> std::convertible_to<std::string_view>;
  // The durable state's bytes in the metadata file, and back (hostile input:
  // decode checks what it needs and fails with kCorruption).
  { E::encode_durable(ds) } -> std::same_as<std::string>;
  { E::decode_durable(bytes) } -> std::same_as<Result<typename E::DurableState>>;
  // True when going from the first state to the second must be fsynced
  // before the Ready's messages_after_persist leave (Raft: the term or the
  // vote changed; a commit index alone may lag and is not worth an fsync).
  { E::durable_needs_sync(ds, ds) } -> std::same_as<bool>;
  // One line describing a message, for traces and logs.
  { E::describe(m) } -> std::convertible_to<std::string>;

  // A message from a peer.
  { e.step(m) } -> std::same_as<void>;
  // One logical clock tick. Every timer in a core is counted in ticks; the
  // host delivers one tick per tick period of its monotonic clock.
  { e.tick() } -> std::same_as<void>;
  // A client write. Completion is seen when the entry is applied.
  { e.propose(std::move(data)) } -> std::same_as<ProposeResult>;
  // A read barrier identified by the host's ctx; the answer comes back in
  // Ready::reads (or Ready::outcomes when dropped).
  { e.read_index(ctx, mode) } -> std::same_as<ProposeResult>;
  // The index a lease read may be served at right now without a barrier:
  // set only while this node leads, its lease holds and the commit index is
  // known current. nullopt for engines without lease reads.
  { ce.lease_read_index() } -> std::same_as<std::optional<LogIndex>>;
  { ce.has_ready() } -> std::same_as<bool>;
  // Collect what to do. At most one Ready is outstanding: the next call to
  // ready() must come after advance() for the previous one.
  { e.ready() } -> std::same_as<Ready<typename E::Message, typename E::DurableState>>;
  // The host finished handling `rd` (persisted, sent, applied).
  { e.advance(rd) } -> std::same_as<void>;
  // Messages that may be sent before the outstanding Ready is persisted
  // (heartbeats, a leader's appends); the host may take them any time, in
  // particular while a Ready is outstanding, and sends them at once.
  { ce.has_messages() } -> std::same_as<bool>;
  { e.take_messages() } -> std::same_as<std::vector<typename E::Message>>;
  // The host's state machine snapshot covers everything through
  // snap.meta.index (which must be applied): the log before it may go. The
  // host builds the image off the loop, so an engine may have installed a
  // leader's snapshot meanwhile — for primary-backup one below that image,
  // after a lossy promotion — whose Ready the host has not seen yet: such
  // an image is of a replaced state, and the engine ignores it.
  { e.compact(snap) } -> std::same_as<void>;
  { ce.soft_state() } -> std::same_as<SoftState>;
  { ce.status() } -> std::same_as<EngineStatus>;
  // The term (epoch) of the entry at `i` in this node's log; nullopt when i
  // was compacted into the snapshot or is past the end. WAIT and
  // CHORUS.POLL compare it with a write's token: another term at that
  // index means the write was replaced.
  { ce.term_at(LogIndex{}) } -> std::same_as<std::optional<Term>>;
  { ce.id() } -> std::same_as<NodeId>;
};

}  // namespace chorus::core
