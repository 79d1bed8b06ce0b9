// GroupCommitWal: a Wal shared by many appending threads, with one syncer
// thread that turns everything pending into one write and one fdatasync.
//
// Appenders call append_and_wait() (caller-assigned indexes, e.g. a Raft
// driver) or append_next_and_wait() (the next index is assigned here, e.g. a
// benchmark or a leader-side log writer); the call returns once its entries
// are durable, or with the error that prevented it. The syncer takes every
// request queued so far, appends them to the Wal in arrival order, syncs
// once, and wakes the waiters: with N appenders in flight one fdatasync
// covers up to N requests.
//
// Sync batches: the syncer appends a round's requests and syncs under
// wal_mu_, and is the only thread that appends, so the records of round N+1
// are written only after round N's fdatasync returned. Wal recovery's
// sync-batch rule (docs/formats/wal.md) depends on this; an appender must
// never write to the Wal while a sync is in flight.
//
// Ordering: requests are applied in the order they were queued. An
// append_and_wait() batch that starts at or below the last queued index
// overwrites the suffix (Wal::append). Mixing the two append calls on one
// log is allowed but the caller then owns the index bookkeeping.
//
// Limits: at most pending_bytes_max bytes of entries wait in the queue;
// appenders beyond that block until the syncer drains it (back-pressure).
//
// Failure: when the Wal fails (fdatasync error), every request in that batch
// and every later one gets kFailStopped; healthy() turns false.
//
// Thread-safety: every public method may be called from any thread. The
// destructor drains the queue (requests still get their answer) and joins
// the syncer; no call may be in progress or start during destruction.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "storage/wal/wal.h"

namespace chorus::storage {

struct GroupCommitOptions {
  uint64_t pending_bytes_max = 64ull << 20;
};

class GroupCommitWal {
 public:
  explicit GroupCommitWal(std::unique_ptr<Wal> wal, GroupCommitOptions options = {});
  ~GroupCommitWal();
  GroupCommitWal(const GroupCommitWal&) = delete;
  GroupCommitWal& operator=(const GroupCommitWal&) = delete;

  // Appends `entries` (contiguous indexes, see Wal::append) and returns once
  // they are durable.
  Status append_and_wait(std::vector<core::Entry> entries);
  // Appends one entry at the next index after everything queued so far and
  // returns that index once it is durable.
  Result<LogIndex> append_next_and_wait(Term term, core::EntryType type, std::string data);

  // Wal::compact and Wal::entries, serialized with the syncer.
  Status compact(LogIndex through);
  Result<std::vector<core::Entry>> entries(LogIndex lo, LogIndex hi);

  LogIndex durable_index() const { return LogIndex(durable_index_.load()); }
  bool healthy() const { return healthy_.load(); }

  struct Stats {
    uint64_t batches = 0;   // syncer rounds (one fdatasync each)
    uint64_t requests = 0;  // append calls answered
  };
  Stats stats() const;

 private:
  struct Request {
    std::vector<core::Entry> entries;
    uint64_t bytes = 0;
    Status status;
    bool done = false;
  };

  Status submit_and_wait(Request* req);
  void run_syncer();
  void commit_batch(std::vector<Request*>& batch);

  GroupCommitOptions options_;
  std::mutex wal_mu_;  // guards wal_
  std::unique_ptr<Wal> wal_;

  mutable std::mutex mu_;             // guards everything below
  std::condition_variable work_cv_;   // syncer: requests queued or stopping
  std::condition_variable done_cv_;   // appenders: a batch finished
  std::condition_variable space_cv_;  // appenders: queue has room
  std::deque<Request*> pending_;
  uint64_t pending_bytes_ = 0;  // Invariant: sum of bytes of pending_ requests
  LogIndex queued_last_;        // last index of everything queued
  bool stopping_ = false;
  Stats stats_;

  std::atomic<uint64_t> durable_index_{0};
  std::atomic<bool> healthy_{true};
  std::thread syncer_;
};

}  // namespace chorus::storage
