#include "storage/replica/replica_storage.h"

#include <fmt/format.h>

namespace chorus::storage {

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
