// Types shared by every protocol core: log entries, persistent state, the
// Ready batch a core hands to its host, and proposal outcomes.
//
// Why the cores look like this: a core is a pure, deterministic state machine.
// Inputs arrive through step(message), tick() and propose(); everything the
// core wants done — write to disk, send, apply, answer — comes back as data in
// a Ready. The host (the simulator or the real server) does the I/O and says
// so with advance(). A pure core can be driven message by message in a unit
// test, replayed from a seed in the simulator, and run unchanged in
// production; callbacks spread through the code could do none of that
// (ScyllaDB raft/fsm.hh makes the same argument).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"

namespace chorus::core {

// What a log entry carries. Every log-based engine has entries that carry no
// client command: a Raft leader's first entry of its term (Raft §8), a Paxos
// proposer's no-op that fills a hole in the slots it adopted. The host
// applies them by advancing the applied index only.
enum class EntryType : uint8_t {
  kNormal = 0,  // a client command; data is opaque to the core
  kNoop = 1,    // engine-internal: no command, data empty
};

// One position of a replicated log. `term` is the leadership epoch that
// wrote it — a Raft term, a Paxos ballot round, a ZAB epoch — so that two
// entries at one index can be told apart.
struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

// Approximate in-memory/wire size of an entry, used for byte limits.
inline size_t entry_bytes(const Entry& e) {
  return e.data.size() + 24;
}

// The last log position a snapshot covers.
struct SnapshotMeta {
  LogIndex index;
  Term term;
  bool operator==(const SnapshotMeta&) const = default;
};

// A state-machine snapshot as the host produced it. The bytes are immutable
// and shared, so a message carrying a snapshot is cheap to copy. In the real
// server `data` may be null: the transport then streams the snapshot file that
// `meta` names in chunks instead of sending the bytes in one message.
struct SnapshotRef {
  SnapshotMeta meta;
  std::shared_ptr<const std::string> data;
};

// A replica's part in its group, in terms every engine maps onto: a Raft
// (pre-)candidate, a ZAB node LOOKING, a Paxos proposer still in phase 1 are
// all kCandidate; a primary is kLeader and its backups kFollower; a
// leaderless replica is always kFollower with no leader. The engine's own
// name for its state is in EngineStatus::role_name.
enum class Role : uint8_t { kFollower, kCandidate, kLeader };
std::string_view role_name(Role r);

// Volatile state the host may want to log or export; changes are reported in
// Ready::soft_state.
struct SoftState {
  Role role = Role::kFollower;
  Term term;
  NodeId leader;
  bool operator==(const SoftState&) const = default;
};

// A linearizable read barrier is satisfied: once the local state machine has
// applied `index`, the read identified by `ctx` may be served locally.
struct ReadState {
  uint64_t ctx = 0;
  LogIndex index;
};

// The immediate outcome of propose() / read_index(), and the later outcome of
// a request the core had accepted but then had to drop (Ready::outcomes).
enum class ProposeStatus : uint8_t {
  kAccepted,            // appended to the leader's log (index/term set) or queued as a read
  kForwarded,           // sent to the leader (leader set); completion is seen on apply
  kNotLeader,           // forwarding is off or impossible; leader holds a hint (may be kNoNode)
  kNoLeader,            // no leader is known right now; try again later
  kTooMuchUncommitted,  // a limit (uncommitted bytes, forward buffer, pending reads) is reached;
                        // back off
  kDropped,             // accepted earlier, now abandoned (e.g. leadership lost)
  // Outcomes of a write that only an engine with an acknowledgement rule
  // stronger than "in the leader's log" gives (core/primary):
  //  - certainly not applied, anywhere, ever: a sync-all primary rolled the
  //    entry back (a replica refused it or did not prepare it in time) and the
  //    rollback is durable beyond the primary. A client may retry.
  kRolledBack,
  //  - the entry is in the primary's log but was not acknowledged by enough
  //    replicas within the engine's timeout (semi-sync, on_timeout = error).
  //    It may still commit later, or be lost in a failover: the outcome is
  //    unknown to the client (the host's kIndeterminate), never "not applied".
  kAckTimedOut,
};
std::string_view propose_status_name(ProposeStatus s);

struct ProposeResult {
  ProposeStatus status = ProposeStatus::kAccepted;
  NodeId leader;   // the leader, when known
  LogIndex index;  // for kAccepted proposals: where the entry sits
  Term term;       // for kAccepted proposals: the leader's term
};

// A later outcome for a request: a read identified by the host's id (ctx),
// or a write identified by the (index, term) its propose() returned (then
// index is non-zero and id is 0).
struct Outcome {
  uint64_t id = 0;
  ProposeStatus status = ProposeStatus::kDropped;
  NodeId leader;
  LogIndex index;  // writes only
  Term term;       // writes only
};

// Why an entry left a node's log without being applied there, for the loss
// accounting of engines that may drop log suffixes in a failover (DESIGN.md,
// "Loss is counted, never silent"). Each node reports what it drops from its
// own log, so one write may be reported by several nodes: a cluster-wide
// count deduplicates by (term, index).
enum class DropKind : uint8_t {
  // The entry was committed as far as this node knows (it was its primary and
  // committed it, or its primary's commit index covered it): its client was,
  // or may have been, told it succeeded. A lost acknowledged write.
  kLostAcknowledged,
  // The entry was certainly never acknowledged: this node was the primary
  // that wrote it and never committed it, or the acknowledgement rule makes
  // an acknowledgement impossible without this node's newer primary holding
  // it (sync-all). A rolled-back write.
  kRolledBack,
  // This node cannot tell: it held the entry past the commit index it last
  // heard, under a rule where its primary may have acknowledged it since
  // (async, semi-sync), or it restarted and forgot what it knew. A consumer
  // that must never under-report counts these as lost.
  kInDoubt,
};
std::string_view drop_kind_name(DropKind k);

// One dropped entry, or (range_positions > 0) a run of positions that a
// node dropped without being able to enumerate them: they lay inside its
// own snapshot, compacted away. Then entry.index is the first position,
// entry.term this node's term there (0 if it forgot), entry.data is empty,
// and range_positions counts positions, not writes: it is an upper bound on
// the client writes lost (no-ops and markers take positions too). A
// consumer that must never under-report counts it as that many writes.
struct DroppedEntry {
  Entry entry;
  DropKind kind = DropKind::kInDoubt;
  uint64_t range_positions = 0;  // 0: `entry` itself was dropped
};

// What a core asks its host to do. The host handles one Ready at a time, in
// this order, then calls advance(ready):
//
//  1. send `messages` at once — they do not depend on this Ready's persistence
//     (the leader's appends may go out in parallel with its own fsync, Raft
//     thesis §10.2.1; the leader counts itself toward commitment only after
//     advance() reports its entries durable);
//  2. persist, then fsync: `snapshot` first (restore the state machine from it
//     and record it), then truncate the log from entries.front().index if that
//     is not past the last persisted index and append `entries`, then write
//     `durable_state`. From the moment this Ready is taken, entries from
//     entries.front().index on (everything, with a snapshot) are no longer
//     durable for the purpose of step 4: they are being replaced;
//  3. only after the fsync: send `messages_after_persist` (votes, append
//     acknowledgements — anything that promises durability);
//  4. apply `committed` in order to the state machine. Entries whose index
//     the host had already persisted before this Ready (always the case on a
//     leader, which counts itself only once durable) may be applied at once,
//     in parallel with step 2; the rest only after it;
//  5. serve `reads` whose index is applied; answer `outcomes`;
//  6. if `snapshot_wanted`, take a snapshot of the state machine at its
//     applied index soon (after this Ready, like a periodic one) and hand
//     it to the engine's compact(), even if the periodic threshold is not
//     reached. The engine sets it again while it still waits.
//
// Invariant: committed entries are contiguous and follow the last applied one.
template <class Msg, class DurableState>
struct Ready {
  std::optional<SoftState> soft_state;
  // Why soft_state changed, one line for the log ("no message from leader n2
  // for 12 ticks"); empty when it did not change or the engine did not say.
  std::string soft_state_reason;
  // The engine's durable state (Raft: term, vote, commit) when it changed.
  // Whether the change needs an fsync is the engine's call
  // (E::durable_needs_sync); one that does not may be written lazily.
  std::optional<DurableState> durable_state;
  std::optional<SnapshotRef> snapshot;
  std::vector<Entry> entries;
  std::vector<Msg> messages;
  std::vector<Msg> messages_after_persist;
  std::vector<Entry> committed;
  std::vector<ReadState> reads;
  std::vector<Outcome> outcomes;
  // Entries this node dropped from its log (a suffix its new primary does not have, or a
  // sync-all rollback), for the host to count and record. Reported when the drop is decided
  // (the truncation is in `entries` or `snapshot` of this Ready), except kRolledBack ones:
  // reported once final — a sync-all primary's rollback once irrevocable (with the clients'
  // kRolledBack), any other once the node committed another entry where the replacing log
  // diverges (core/primary/primary.h); a node that restarts first never reports them. Empty
  // for engines that never drop an entry that a client may have seen acknowledged (Raft).
  std::vector<DroppedEntry> dropped;
  // The engine needs a snapshot now (step 6): a peer can only be brought up
  // to date by one (core/primary: a backup whose log diverges from the
  // primary's inside what it applied, or whose next entry is not in the log).
  bool snapshot_wanted = false;

  // True when step 2 has something to write and fsync.
  bool must_persist() const { return durable_state || snapshot || !entries.empty(); }
  bool empty() const {
    return !soft_state && !must_persist() && messages.empty() && messages_after_persist.empty() &&
           committed.empty() && reads.empty() && outcomes.empty() && dropped.empty() &&
           !snapshot_wanted;
  }
};

// What a host restores a core from after a restart: the durable state as it
// was last persisted. `applied` is how far the host's state machine already
// is (the snapshot index for an in-memory state machine restored from the
// snapshot, possibly more for a durable one).
template <class DurableState>
struct PersistentState {
  DurableState durable;
  std::optional<SnapshotRef> snapshot;
  std::vector<Entry> entries;  // contiguous, starting after the snapshot
  LogIndex applied;
};

}  // namespace chorus::core
