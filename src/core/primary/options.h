// The inputs of a primary-backup engine (primary.h): its options, the
// configuration a configuration manager appoints it with, and the state it
// keeps across a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/assert.h"
#include "base/ids.h"
#include "base/status.h"

namespace chorus::primary {

// A configuration's number, chosen by the configuration manager; a new
// primary always gets a higher one. Backups refuse anything from an older
// epoch (fencing).
using Epoch = Tagged<struct EpochTag>;

// What a write waits for before its client is answered.
enum class AckRule : uint8_t {
  kSyncAll,   // every member prepared it (leader-run two-phase commit)
  kSemiSync,  // `acks` backups have it durably
  kAsync,     // the primary has it durably
};
constexpr std::string_view ack_rule_name(AckRule r) {
  switch (r) {
    case AckRule::kSyncAll:
      return "sync-all";
    case AckRule::kSemiSync:
      return "semi-sync";
    case AckRule::kAsync:
      return "async";
  }
  return "?";
}

// Semi-sync: what a write does when too few backups acknowledge it in time.
enum class OnTimeout : uint8_t {
  kError,    // its client gets an indeterminate error; the entry stays in the log
  kDegrade,  // acknowledged anyway, counted, and the engine reports "degraded"
};

// Entry terms: an entry's term is (epoch, generation). The generation counts
// the sync-all rollbacks of the epoch: a rollback replaces the entries it
// aborts with a marker of the next generation, so that one (term, index)
// never names two different entries and Raft's Log Matching argument holds
// unchanged (the same term at one index means the same log up to there).
// An epoch takes the high 32 bits, so epochs above kMaxEpoch cannot be
// represented: configure() refuses them, and a durable state or message
// naming one is rejected where it enters.
inline constexpr uint64_t kGenerationBits = 32;
inline constexpr uint64_t kMaxGeneration = (uint64_t{1} << kGenerationBits) - 1;
inline constexpr Epoch kMaxEpoch{(uint64_t{1} << (64 - kGenerationBits)) - 1};
inline Term entry_term(Epoch e, uint64_t generation) {
  CHORUS_ASSERT_MSG(e <= kMaxEpoch && generation <= kMaxGeneration,
                    "epoch or generation out of the entry term's range");
  return Term((e.value() << kGenerationBits) | generation);
}
inline Epoch epoch_of(Term t) {
  return Epoch(t.value() >> kGenerationBits);
}
inline uint64_t generation_of(Term t) {
  return t.value() & kMaxGeneration;
}

struct Options {
  NodeId id;
  // Semi-sync: how many backups must hold a write durably (k of n - 1).
  uint32_t acks = 1;
  // Sync-all: ticks a write may wait for every member to prepare it before
  // it is rolled back.
  uint32_t prepare_timeout_ticks = 50;
  // Semi-sync: ticks a write may wait for `acks` backups.
  uint32_t ack_timeout_ticks = 50;
  OnTimeout on_timeout = OnTimeout::kError;
  // Semi-sync: the configuration manager may promote a replica that lacks
  // acknowledged writes (promotion = available). Only reported (capabilities()).
  bool promotion_available = false;

  // A backup forwards client writes to its primary (Forward) instead of
  // refusing them with kNotLeader.
  bool forward_proposals = true;

  uint32_t heartbeat_interval_ticks = 1;
  size_t max_entries_per_append = 256;
  size_t max_bytes_per_append = 1 << 20;
  // The primary refuses writes (kTooMuchUncommitted) beyond this many bytes
  // of entries not yet committed.
  size_t max_uncommitted_bytes = 64u << 20;
  // Sync-all: a backup refuses to prepare beyond this many bytes of entries
  // past its commit index; the primary then rolls the write back.
  size_t max_prepared_bytes = 64u << 20;
  size_t max_apply_bytes_per_ready = 16u << 20;
  // Read barriers answered per Ready at most; beyond it kTooMuchUncommitted.
  size_t max_pending_reads = 65536;
  // Entries kept behind a snapshot for slightly lagging backups.
  uint64_t snapshot_trailing_entries = 0;
  // The primary keeps behind a snapshot, beyond the trailing entries, every
  // entry some backup of its configuration still lacks — at most this many
  // entries before the snapshot point. Those are the entries a failover can
  // lose, and only entries still in the log can be named one by one when
  // they are dropped (Ready::dropped); past the bound a loss is reported as a
  // range of positions. 0: keep none (compaction ignores the backups).
  uint64_t retain_unreplicated_entries = 0;
  // The same retention bounded by bytes (core::entry_bytes): the newest
  // retained entries that fit are kept. 0: bounded by entries only.
  size_t retain_unreplicated_bytes = 0;

  // OK, or an error naming the first bad option.
  Status validate() const;
};

// Who is primary of which epoch, as appointed by the configuration manager.
struct Configuration {
  Epoch epoch;
  NodeId primary;
  std::vector<NodeId> members;  // every replica, the primary included
  // The primary's lease: it may acknowledge writes and serve reads until
  // tick lease_anchor_tick + lease_ticks of its own clock (exclusive).
  // Ignored on backups, and in NewConfiguration messages (a delayed or
  // duplicated message must never extend a lease).
  uint64_t lease_ticks = 0;
  // Where the lease starts, in the primary's tick clock (PrimaryBackup::ticks()):
  // the tick at which the primary sent the request (appointment or renewal)
  // this grant answers. The manager echoes it and must count its own view of
  // the lease from no earlier than it received that request; then the
  // primary's lease ends before the manager's (clock drift aside), however
  // late the grant arrives. configure() refuses an anchor in the future and
  // never shortens a lease it holds.
  uint64_t lease_anchor_tick = 0;
  // Orders the manager's decisions within an epoch: it raises the version
  // with every change of members. A node ignores a configuration of its
  // epoch whose version is older than the one it holds (a delayed message),
  // and members change only with a newer version (configure() refuses an
  // equal version naming other members; an equal one only renews the lease).
  uint64_t version = 0;
  // Replicas that are not members (dropped by on_replica_failure =
  // reconfigure): the primary streams its log to them so that they catch up,
  // but they count for nothing — not for acknowledgements, prepares or
  // rollbacks. The manager re-admits one as a member once it has caught up.
  // Distinct from members; they change with members (a newer version).
  std::vector<NodeId> learners = {};

  bool operator==(const Configuration&) const = default;
};

// What survives a crash besides the log and the snapshot.
struct DurableState {
  // The highest epoch this node has seen; it never accepts an older one, and
  // never becomes primary of this one again (a restarted primary needs a new
  // epoch: its previous incarnation may have sent entries it forgot).
  // A change must be synced before the messages that depend on it.
  Epoch epoch;
  // The commit index as last known; written lazily (never synced for itself),
  // so after a restart it may lag.
  LogIndex commit;

  bool operator==(const DurableState&) const = default;
};

std::string encode_durable_state(const DurableState& ds);
Result<DurableState> decode_durable_state(std::string_view bytes);
inline bool durable_state_needs_sync(const DurableState& before, const DurableState& after) {
  return after.epoch != before.epoch;
}

}  // namespace chorus::primary
