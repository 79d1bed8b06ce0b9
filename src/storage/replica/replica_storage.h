// ReplicaStorage: everything one replica of a log-based engine keeps on disk
// — the write-ahead log of entries, the double-buffered metadata file (term,
// vote, commit) and the state-machine snapshots — behind the two operations
// the Ready contract needs: "persist this Ready" and "recover after a crash".
//
// Layout under `dir`: wal/ (wal.md), meta (metadata.md), snapshots/ (snapshot.md).
//
// persist() order, so that a crash at any point leaves a state the core can
// restart from without losing anything it promised:
//   1. a snapshot received from the leader is written (temp file, fsync,
//      rename, directory fsync) and the log it covers is dropped;
//   2. entries are appended (a conflicting suffix is truncated first) and the
//      log is fdatasynced once for the whole batch (group commit);
//   3. the hard state is saved (alternate metadata copy, fdatasync) when its
//      term or vote changed; a change of the commit index alone is not
//      worth an fdatasync (it may lag after a restart: the leader re-sends it).
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
//
// Fail-stop: after any failed write or sync, every later persist fails
// (healthy() is false). The node must stop and recover; it never retries.
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
};

// What recovery found.
struct Recovered {
  core::HardState hard_state;
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

  // Makes a Ready's snapshot, entries and hard state durable, in that order.
  Status persist(const std::optional<core::SnapshotRef>& snapshot,
                 std::span<const core::Entry> entries,
                 const std::optional<core::HardState>& hard_state);
  // True when persist() of these would write nothing: no snapshot, no
  // entries, and term and vote as already durable (a change of the commit
  // index alone is not written). Reads only what persist() writes, so it may
  // be called from another thread while no persist() runs.
  bool persist_writes_nothing(const std::optional<core::SnapshotRef>& snapshot,
                              std::span<const core::Entry> entries,
                              const std::optional<core::HardState>& hard_state) const {
    return !snapshot && entries.empty() && !term_or_vote_changes(hard_state);
  }

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
  bool term_or_vote_changes(const std::optional<core::HardState>& hard_state) const;
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
