#include "storage/wal/group_commit_wal.h"

#include <algorithm>

namespace chorus::storage {

GroupCommitWal::GroupCommitWal(std::unique_ptr<Wal> wal, GroupCommitOptions options)
    : options_(options), wal_(std::move(wal)) {
  CHORUS_ASSERT(wal_ != nullptr);
  queued_last_ = wal_->last_index();
  durable_index_ = wal_->durable_index().value();
  healthy_ = wal_->healthy();
  syncer_ = std::thread([this] { run_syncer(); });
}

GroupCommitWal::~GroupCommitWal() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  syncer_.join();
}

Status GroupCommitWal::append_and_wait(std::vector<core::Entry> entries) {
  if (entries.empty()) return Status::ok();
  Request req;
  for (const auto& e : entries) req.bytes += core::entry_bytes(e);
  req.entries = std::move(entries);
  return submit_and_wait(&req);
}

Result<LogIndex> GroupCommitWal::append_next_and_wait(Term term, core::EntryType type,
                                                      std::string data) {
  Request req;
  req.bytes = data.size() + 24;
  req.entries.push_back(core::Entry{term, LogIndex(0), type, std::move(data)});
  CHORUS_RETURN_IF_ERROR(submit_and_wait(&req));
  return req.entries.front().index;
}

// Queues `req` (assigning its index when it is 0) and waits for the syncer.
Status GroupCommitWal::submit_and_wait(Request* req) {
  std::unique_lock lock(mu_);
  // A request larger than the whole budget is let through alone.
  space_cv_.wait(lock, [&] {
    return stopping_ || pending_.empty() ||
           pending_bytes_ + req->bytes <= options_.pending_bytes_max;
  });
  if (stopping_) return Status::aborted("wal " + wal_->dir() + ": group commit is shutting down");
  if (req->entries.front().index == LogIndex(0)) req->entries.front().index = queued_last_.next();
  queued_last_ = req->entries.back().index;
  pending_.push_back(req);
  pending_bytes_ += req->bytes;
  work_cv_.notify_one();
  done_cv_.wait(lock, [&] { return req->done; });
  return req->status;
}

void GroupCommitWal::run_syncer() {
  std::vector<Request*> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty()) return;  // stopping, and everything answered
      batch.assign(pending_.begin(), pending_.end());
      pending_.clear();
      pending_bytes_ = 0;
    }
    space_cv_.notify_all();
    commit_batch(batch);
    {
      std::lock_guard lock(mu_);
      for (Request* r : batch) r->done = true;
      ++stats_.batches;
      stats_.requests += batch.size();
    }
    done_cv_.notify_all();
    batch.clear();
  }
}

// One write and one fdatasync for the whole batch (Wal::append buffers).
void GroupCommitWal::commit_batch(std::vector<Request*>& batch) {
  std::lock_guard wal_lock(wal_mu_);
  bool any_ok = false;
  for (Request* r : batch) {
    r->status = wal_->append(r->entries);
    any_ok = any_ok || r->status.is_ok();
  }
  const Status synced = any_ok ? wal_->sync() : Status::ok();
  for (Request* r : batch) {
    if (r->status.is_ok()) r->status = synced;
  }
  durable_index_ = wal_->durable_index().value();
  healthy_ = wal_->healthy();
}

Status GroupCommitWal::compact(LogIndex through) {
  std::lock_guard wal_lock(wal_mu_);
  const Status s = wal_->compact(through);
  durable_index_ = wal_->durable_index().value();
  healthy_ = wal_->healthy();
  std::lock_guard lock(mu_);
  // A compaction past the end moves the log's end forward (Wal::reset).
  queued_last_ = std::max(queued_last_, wal_->last_index());
  return s;
}

Result<std::vector<core::Entry>> GroupCommitWal::entries(LogIndex lo, LogIndex hi) {
  std::lock_guard wal_lock(wal_mu_);
  return wal_->entries(lo, hi);
}

GroupCommitWal::Stats GroupCommitWal::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace chorus::storage
