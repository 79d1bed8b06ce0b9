// StorageExecutor: the one storage thread of a node, shared by every
// replication group the node hosts (one per keyspace, each with its own
// ReplicaStorage directory on the same disk).
//
// Why shared. Each group persists its Readies through host::Effects::
// run_on_storage (host/effects.h). With a thread per group, N busy groups
// cost N fdatasyncs per round, one per WAL, and a disk that serializes its
// cache flushes does about as many device syncs per second whatever they
// cover. Here a storage thread takes every job queued when it wakes and,
// when they come from two or more groups, runs them under one shared sync
// (storage/env/env.h, SharedSync): each group's syncs are recorded, then ONE
// commit (PosixEnv: a syncfs) makes the whole batch durable.
//
// Threads. `threads` storage threads (default 1: every group shares one
// commit per batch); each group is pinned to one of them (lane id modulo
// `threads`), so its jobs stay in order. More threads mean more commits in
// flight at once, for disks whose syncs run in parallel rather than in
// series (docs/benchmarks.md, "Many groups, one disk", has both kinds of
// evidence); `threads` >= the number of groups is a thread per group.
//
// Contract.
//   * A group talks to the executor through its Lane (open_lane()); jobs of
//     one lane run and complete in submission order. A batch keeps the
//     submission order of all its jobs.
//   * A batch (the jobs one thread takes at once) holds at most
//     batch_jobs_max jobs. Jobs are opaque closures, so
//     their bytes cannot be bounded here; the hosts bound them (a Ready's
//     entries are limited by raft::Config's append limits).
//   * Single-group batches run as a per-group thread would: each job alone,
//     with its own fdatasyncs, its DiskDone posted as soon as it returns.
//   * Shared batches: every job runs (its owner in the shared sync is its
//     lane), then the commit; each job's DiskDone gets the job's own error,
//     or else the commit's outcome. A failed commit fails EVERY job of the
//     batch, even those whose calls returned OK: their writes are in an
//     unknown state, and the host fail-stops (never "retry and pretend").
//     Until its DiskDone, nothing may act on what the job's storage reports
//     as durable (Wal::durable_index() is set before the commit).
//   * DiskDone callbacks are posted through the lane's Post (the group's
//     loop), in completion order.
//
// Limits: at most queue_jobs_max jobs queued per thread. The hosts keep far fewer (one
// persist and one snapshot in flight per group), so reaching it is a bug
// (asserted), not back-pressure.
//
// Threading: submit(), open_lane() and a Lane's destructor may be called from
// any thread (the node's loop). Jobs run on the executor's thread; a job of
// one lane never runs concurrently with another job of the same lane (one
// thread runs them all).
// Lifetime: a Lane's destructor waits until its queued jobs have run and
// their DiskDone has been posted; every Lane must be destroyed before the
// executor, whose destructor finishes the queue and joins.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "host/effects.h"
#include "storage/env/env.h"

namespace chorus::server {

struct StorageExecutorOptions {
  // Storage threads; each group is pinned to one. Range [1, kMaxThreads].
  size_t threads = 1;
  static constexpr size_t kMaxThreads = 64;
  // Most jobs one batch takes, and so shares one commit.
  size_t batch_jobs_max = 64;
  // Most jobs queued at once on one thread (a bug beyond: the class comment).
  size_t queue_jobs_max = 4096;
  // False: never share a sync, every job runs alone (a per-group thread).
  bool share_syncs = true;
};

class StorageExecutor {
 public:
  // How a lane's DiskDone reaches its loop (the server: asio::post).
  using Post = std::function<void(host::Task)>;

  // `env` must outlive the executor; its shared syncs are used from the
  // executor's thread only.
  explicit StorageExecutor(storage::Env* env, StorageExecutorOptions options = {});
  ~StorageExecutor();  // finishes the queued jobs, then joins
  StorageExecutor(const StorageExecutor&) = delete;
  StorageExecutor& operator=(const StorageExecutor&) = delete;

  struct LaneState;
  // One group's way in. Its id is the group's owner in a shared sync.
  class Lane {
   public:
    ~Lane();  // waits until this lane's queued jobs ran and their DiskDone was posted
    Lane(const Lane&) = delete;
    Lane& operator=(const Lane&) = delete;

    // Runs `job` on the executor, then posts `done` with its outcome.
    void submit(host::DiskJob job, host::DiskDone done);
    uint64_t id() const;

   private:
    friend class StorageExecutor;
    Lane(StorageExecutor* ex, std::shared_ptr<LaneState> state);
    StorageExecutor* ex_;
    std::shared_ptr<LaneState> state_;
  };
  std::unique_ptr<Lane> open_lane(Post post);

  struct Stats {
    uint64_t jobs = 0;
    uint64_t batches = 0;
    uint64_t shared_batches = 0;  // batches of >= 2 lanes, run in a shared sync
    uint64_t commits = 0;         // commits of shared batches (one per shared batch)
    uint64_t commit_failures = 0;
    uint64_t jobs_failed_by_commit = 0;  // jobs whose OK a failed commit replaced
    uint64_t batch_jobs_max_seen = 0;
  };
  Stats stats() const;

 private:
  struct Item {
    std::shared_ptr<LaneState> lane;
    host::DiskJob job;
    host::DiskDone done;
  };
  // One storage thread and its queue (guarded by mu_).
  struct Worker {
    std::condition_variable work_cv;  // the thread waits for jobs
    std::deque<Item> queue;           // Invariant: size() <= options_.queue_jobs_max
    std::thread thread;
  };

  void submit(const std::shared_ptr<LaneState>& lane, host::DiskJob job, host::DiskDone done);
  void close_lane(LaneState& lane);
  void main(Worker& w);
  void run_batch(std::vector<Item>& batch);
  void run_shared(std::vector<Item>& batch, size_t lanes);
  void finish(Item& item, Status st);

  storage::Env* env_;
  const StorageExecutorOptions options_;
  mutable std::mutex mu_;
  std::condition_variable idle_cv_;  // lanes wait for their jobs to finish
  uint64_t next_lane_id_ = 1;
  size_t lanes_open_ = 0;
  bool stop_ = false;
  Stats stats_;
  // Last: their threads start once everything above exists.
  std::vector<std::unique_ptr<Worker>> workers_;
};

}  // namespace chorus::server
