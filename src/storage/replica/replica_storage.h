// ReplicaStorage: everything one replica of a log-based engine keeps on disk
// — the write-ahead log of entries, the double-buffered metadata file (the
// engine's durable state, as bytes the engine encodes: Raft's term, vote and
// commit) and the state-machine snapshots — behind the two operations the
// Ready contract needs: "persist this Ready" and "recover after a crash".
//
// Layout under `dir`: wal/ (wal.md), meta (metadata.md), snapshots/ (snapshot.md).
//
// persist() order, so that a crash at any point leaves a state the core can
// restart from without losing anything it promised:
//   1. a snapshot received from the leader is written (temp file, fsync,
//      rename, directory fsync) and the log it covers is dropped;
//   2. entries are appended (a conflicting suffix is truncated first) and the
//      log is fdatasynced once for the whole batch (group commit);
//   3. the engine's durable state is saved (alternate metadata copy,
//      fdatasync) when given; the host gives it only when the engine says the
//      change needs an fsync (E::durable_needs_sync), so a change that may
//      lag after a restart (Raft's commit index alone) costs nothing.
// Only when persist() returns OK may the host send messages_after_persist.
//
// Recovery (open): the newest snapshot that verifies is loaded (a corrupt
// one is reported and skipped); the log is opened and verified (a
// never-synced tail of the last segment is cut and reported; other damage
// stops with the file and offset); the log must reach the snapshot, else
// open fails — a gap would silently lose entries. Because save_snapshot()
// keeps the log back to the previous snapshot, a corrupt newest snapshot
// still leaves a complete state: the previous snapshot plus the log after it.
//
// The log past the snapshot (i, t) (docs/formats/snapshot.md): a crash in
// persist() step 1, after the leader's snapshot is durable and before the
// log is dropped, leaves the old log next to the snapshot, and that log may
// be from a divergent history. Recovery keeps the entries after i only if
// they provably continue the snapshot's history:
//   * the log holds entry i with term t: kept (Raft §5.3, Log Matching);
//   * the log holds entry i with another term: every entry is dropped,
//     durably, the log continues at i+1 — persist() finished — and a
//     recovery note names the indexes and terms dropped;
//   * the log ends before i: it is covered by the snapshot and dropped; the
//     log continues at i+1;
//   * the log starts at i+1: kept — it was cut there for a snapshot through
//     i, and every snapshot through i covers the same committed entry;
//   * the log starts after i+1: open fails (entries are missing).
// An engine without Log Matching (options.log_matching false) keeps every
// entry after i in the first two cases: its entries are independent records
// that stay true whatever the snapshot says.
//
// Fail-stop: after any failed write or sync, every later persist fails
// (healthy() is false). The node must stop and recover; it never retries.
//
// Many groups, one disk: each group has its own ReplicaStorage directory; the
// node's storage executor may run several groups' persist() calls inside one
// shared sync (env.h, SharedSync), each group its own owner. Then persist()
// returning OK means "written, syncs recorded": the Ready is durable only
// when the shared sync's commit returns OK (the job's DiskDone says so), and
// durable_index() runs ahead of the disk until then. The order above holds
// under a shared sync — writing the metadata is a barrier that performs the log's
// recorded fdatasync first — so a Ready with entries and the engine's state
// costs one real fdatasync plus its share of the commit. A failed commit
// does not mark this object unhealthy; the host fail-stops on its DiskDone.
//
// Thread-safety: none; one thread (the node's driver) owns it.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "core/common/types.h"
#include "storage/env/env.h"
#include "storage/snapshot/snapshot_store.h"
#include "storage/wal/metadata.h"
#include "storage/wal/wal.h"

namespace chorus::storage {

struct ReplicaStorageOptions {
  WalOptions wal;
  SnapshotStoreOptions snapshots;
  // The engine's entries obey Log Matching (core::Capabilities::log_matching):
  // recovery may judge the log past a snapshot by the term at its index (see
  // the class comment). When false — Multi-Paxos, whose entries are an
  // acceptor's independent slots and whose terms are accepted ballots, not
  // the snapshot's — every entry past the snapshot is kept: dropping one
  // would make an acceptor forget a value it accepted.
  bool log_matching = true;
};

// What recovery found.
struct Recovered {
  std::string durable_state;                  // the engine's bytes; empty for a new node
  std::optional<core::SnapshotRef> snapshot;  // with its data, verified
  std::vector<core::Entry> entries;           // contiguous, after the snapshot
  std::vector<std::string> notes;             // torn tails cut, snapshots rejected: log these
};

class ReplicaStorage {
 public:
  static Result<std::unique_ptr<ReplicaStorage>> open(Env* env, std::string dir,
                                                      ReplicaStorageOptions options = {});

  // Valid after open(); consumed by the first call.
  Recovered take_recovered() { return std::move(recovered_); }

  // Makes a Ready's snapshot, entries and the engine's durable state (its
  // encoded bytes, when it must be synced) durable, in that order.
  Status persist(const std::optional<core::SnapshotRef>& snapshot,
                 std::span<const core::Entry> entries,
                 const std::optional<std::string>& durable_state);
  // The engine's durable state as last saved (or recovered).
  const std::string& durable_state() const;

  // The local state machine's snapshot through meta.index: written durably,
  // then the log segments it covers are deleted.
  Status save_snapshot(core::SnapshotMeta meta, std::string_view data);

  bool healthy() const { return failure_.is_ok(); }
  const Status& failure() const { return failure_; }
  LogIndex durable_index() const { return wal_->durable_index(); }
  const std::string& dir() const { return dir_; }

 private:
  ReplicaStorage(Env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}
  Status recover(const ReplicaStorageOptions& options);
  Status fail(Status cause);

  Env* env_;
  std::string dir_;
  std::unique_ptr<MetadataFile> meta_;
  std::unique_ptr<SnapshotStore> snapshots_;
  std::unique_ptr<Wal> wal_;
  Recovered recovered_;
  LogIndex compactable_through_;  // the snapshot before the newest: the log is kept after it
  Status failure_;
};

}  // namespace chorus::storage
