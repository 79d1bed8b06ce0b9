#include "storage/replica/replica_storage.h"

#include <fmt/format.h>

namespace chorus::storage {
namespace {

// Recovery's rule for the log past a snapshot (i, t), see the class comment.
// Precondition: the log reaches i, and does not start after i + 1.
Status drop_log_diverging_from(Wal& wal, const core::SnapshotMeta& snap,
                               std::vector<std::string>* notes) {
  const LogIndex i = snap.index;
  CHORUS_ASSERT(wal.last_index() >= i && wal.first_index() <= i.next());
  // The log starts right after the snapshot: it was cut there for a snapshot
  // through i (an install, or a compaction past its end), every one of which
  // covers the committed entry (i, t), and what follows was appended after
  // the cut.
  if (wal.first_index() == i.next()) return Status::ok();
  CHORUS_ASSIGN_OR_RETURN(const auto at_i, wal.entries(i, i.next()));
  CHORUS_ASSERT(at_i.size() == 1 && at_i[0].index == i);
  // Raft §5.3 (Log Matching): the same term at the same index means the logs
  // agree up to it, so the entries after i continue the snapshot's history.
  if (at_i[0].term == snap.term) return Status::ok();
  // A crash interrupted the install of a leader's snapshot (persist() step 1)
  // between the durable snapshot and the dropped log: finish it. The entries
  // after i are not in the committed history either — had one been, Log
  // Matching would make our entry i the committed one.
  const LogIndex first = wal.first_index();
  const LogIndex last = wal.last_index();
  CHORUS_ASSIGN_OR_RETURN(const auto first_entry, wal.entries(first, first.next()));
  CHORUS_ASSIGN_OR_RETURN(const auto last_entry, wal.entries(last, last.next()));
  notes->push_back(fmt::format(
      "wal: entry {} has term {} but the snapshot through {} has term {} (a crash interrupted a "
      "snapshot install): dropped entries {}..{} (terms {}..{}); the log continues at {}",
      i.value(), at_i[0].term.value(), i.value(), snap.term.value(), first.value(), last.value(),
      first_entry.front().term.value(), last_entry.front().term.value(), i.next().value()));
  CHORUS_RETURN_IF_ERROR(wal.replace_with_snapshot(i));
  CHORUS_ASSERT(wal.first_index() == i.next() && wal.last_index() == i);
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<ReplicaStorage>> ReplicaStorage::open(Env* env, std::string dir,
                                                             ReplicaStorageOptions options) {
  std::unique_ptr<ReplicaStorage> s(new ReplicaStorage(env, std::move(dir)));
  CHORUS_RETURN_IF_ERROR(s->recover(options));
  return s;
}

Status ReplicaStorage::recover(const ReplicaStorageOptions& options) {
  CHORUS_RETURN_IF_ERROR(env_->create_dir(dir_));
  CHORUS_ASSIGN_OR_RETURN(meta_, MetadataFile::open(env_, join_path(dir_, "meta")));
  if (meta_->damaged_copy()) recovered_.notes.push_back("metadata: " + *meta_->damaged_copy());
  recovered_.durable_state = meta_->state();

  CHORUS_ASSIGN_OR_RETURN(
      snapshots_, SnapshotStore::open(env_, join_path(dir_, "snapshots"), options.snapshots));
  CHORUS_ASSIGN_OR_RETURN(SnapshotLoad load, snapshots_->load_latest());
  for (const auto& r : load.rejected)
    recovered_.notes.push_back("snapshot rejected: " + r.to_string());
  LogIndex snap_index;
  if (load.snapshot) {
    snap_index = load.snapshot->info.meta.index;
    recovered_.snapshot =
        core::SnapshotRef{load.snapshot->info.meta,
                          std::make_shared<const std::string>(std::move(load.snapshot->data))};
  }

  compactable_through_ = snap_index;

  CHORUS_ASSIGN_OR_RETURN(wal_, Wal::open(env_, join_path(dir_, "wal"), options.wal));
  if (wal_->recovery().torn_tail)
    recovered_.notes.push_back(wal_->recovery().to_string(wal_->dir()));
  // A crash in the middle of replacing the log by a snapshot can leave a
  // prefix of the old log that ends before the snapshot: drop it.
  if (wal_->last_index() < snap_index) CHORUS_RETURN_IF_ERROR(wal_->compact(snap_index));
  if (wal_->first_index() > snap_index.next()) {
    return Status::corruption(
        fmt::format("{}: the log starts at {} but the snapshot ends at {}: entries are missing",
                    dir_, wal_->first_index().value(), snap_index.value()));
  }
  if (recovered_.snapshot && options.log_matching) {
    CHORUS_RETURN_IF_ERROR(
        drop_log_diverging_from(*wal_, recovered_.snapshot->meta, &recovered_.notes));
  }
  const LogIndex from = std::max(wal_->first_index(), snap_index.next());
  CHORUS_ASSIGN_OR_RETURN(recovered_.entries, wal_->entries(from, wal_->last_index().next()));
  return Status::ok();
}

Status ReplicaStorage::persist(const std::optional<core::SnapshotRef>& snapshot,
                               std::span<const core::Entry> entries,
                               const std::optional<std::string>& durable_state) {
  if (!failure_.is_ok()) return failure_;
  if (snapshot) {
    CHORUS_ASSERT(snapshot->data != nullptr);
    auto w = snapshots_->write(snapshot->meta, *snapshot->data);
    if (!w.is_ok()) return fail(w.status());
    // The core discarded its whole log for this snapshot; so does the disk,
    // lest a stale suffix come back after a restart.
    Status st = wal_->replace_with_snapshot(snapshot->meta.index);
    if (!st.is_ok()) return fail(st);
    compactable_through_ = snapshot->meta.index;
  }
  if (!entries.empty()) {
    Status st = wal_->append(entries);
    if (st.is_ok()) st = wal_->sync();
    if (!st.is_ok()) return fail(st);
  }
  // Last: the durable state may promise the entries above (a vote for a
  // log this node must still hold).
  if (durable_state) {
    Status st = meta_->save(*durable_state);
    if (!st.is_ok()) return fail(st);
  }
  return Status::ok();
}

const std::string& ReplicaStorage::durable_state() const {
  return meta_->state();
}

Status ReplicaStorage::save_snapshot(core::SnapshotMeta meta, std::string_view data) {
  if (!failure_.is_ok()) return failure_;
  auto w = snapshots_->write(meta, data);
  if (!w.is_ok()) return fail(w.status());
  // Keep the log back to the previous snapshot: if the new one is ever found
  // corrupt, recovery falls back to the previous one and still has every
  // entry after it.
  Status st = wal_->compact(compactable_through_);
  if (!st.is_ok()) return fail(st);
  compactable_through_ = meta.index;
  return Status::ok();
}

Status ReplicaStorage::fail(Status cause) {
  if (failure_.is_ok()) {
    failure_ = Status(StatusCode::kFailStopped, fmt::format("{}: {}", dir_, cause.to_string()));
  }
  return failure_;
}

}  // namespace chorus::storage
