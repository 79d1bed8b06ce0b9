#include "server/storage_executor.h"

#include <algorithm>
#include <set>
#include <string>

#include "base/assert.h"

namespace chorus::server {

struct StorageExecutor::LaneState {
  uint64_t id = 0;
  size_t worker = 0;  // index into workers_: the thread that runs its jobs
  Post post;
  // Jobs submitted and not yet finished (run and their DiskDone posted).
  // Guarded by the executor's mu_.
  size_t outstanding = 0;
  bool closed = false;  // guarded by mu_
};

StorageExecutor::Lane::Lane(StorageExecutor* ex, std::shared_ptr<LaneState> state)
    : ex_(ex), state_(std::move(state)) {}

StorageExecutor::Lane::~Lane() {
  ex_->close_lane(*state_);
}

void StorageExecutor::Lane::submit(host::DiskJob job, host::DiskDone done) {
  ex_->submit(state_, std::move(job), std::move(done));
}

uint64_t StorageExecutor::Lane::id() const {
  return state_->id;
}

StorageExecutor::StorageExecutor(storage::Env* env, StorageExecutorOptions options)
    : env_(env), options_(options) {
  CHORUS_ASSERT(env_ != nullptr);
  CHORUS_ASSERT(options_.threads >= 1 && options_.threads <= StorageExecutorOptions::kMaxThreads);
  CHORUS_ASSERT(options_.batch_jobs_max >= 1 && options_.queue_jobs_max >= 1);
  for (size_t i = 0; i < options_.threads; ++i) workers_.push_back(std::make_unique<Worker>());
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->thread = std::thread([this, wp] { main(*wp); });
  }
}

StorageExecutor::~StorageExecutor() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    CHORUS_ASSERT_MSG(lanes_open_ == 0, "every Lane must be destroyed before its executor");
    stop_ = true;
  }
  for (auto& w : workers_) {
    w->work_cv.notify_all();
    w->thread.join();
  }
}

std::unique_ptr<StorageExecutor::Lane> StorageExecutor::open_lane(Post post) {
  CHORUS_ASSERT(post != nullptr);
  auto state = std::make_shared<LaneState>();
  state->post = std::move(post);
  {
    std::lock_guard<std::mutex> lk(mu_);
    CHORUS_ASSERT(!stop_);
    state->id = next_lane_id_++;
    state->worker = (state->id - 1) % workers_.size();
    ++lanes_open_;
  }
  return std::unique_ptr<Lane>(new Lane(this, std::move(state)));
}

void StorageExecutor::close_lane(LaneState& lane) {
  std::unique_lock<std::mutex> lk(mu_);
  idle_cv_.wait(lk, [&] { return lane.outstanding == 0; });
  lane.closed = true;
  CHORUS_ASSERT(lanes_open_ > 0);
  --lanes_open_;
}

void StorageExecutor::submit(const std::shared_ptr<LaneState>& lane, host::DiskJob job,
                             host::DiskDone done) {
  Worker& w = *workers_[lane->worker];
  {
    std::lock_guard<std::mutex> lk(mu_);
    CHORUS_ASSERT(!lane->closed && !stop_);
    CHORUS_ASSERT_MSG(w.queue.size() < options_.queue_jobs_max,
                      "storage queue full: hosts keep at most two jobs in flight each");
    ++lane->outstanding;
    w.queue.push_back(Item{lane, std::move(job), std::move(done)});
  }
  w.work_cv.notify_one();
}

StorageExecutor::Stats StorageExecutor::stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

// One storage thread: takes every job queued for it (up to
// batch_jobs_max) each time it wakes.
void StorageExecutor::main(Worker& w) {
  std::vector<Item> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      w.work_cv.wait(lk, [&] { return stop_ || !w.queue.empty(); });
      if (w.queue.empty()) return;  // stopping, nothing left
      const size_t n = std::min(w.queue.size(), options_.batch_jobs_max);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(w.queue.front()));
        w.queue.pop_front();
      }
      ++stats_.batches;
      stats_.jobs += n;
      stats_.batch_jobs_max_seen = std::max<uint64_t>(stats_.batch_jobs_max_seen, n);
    }
    run_batch(batch);
    batch.clear();
  }
}

void StorageExecutor::run_batch(std::vector<Item>& batch) {
  CHORUS_ASSERT(!batch.empty() && batch.size() <= options_.batch_jobs_max);
  std::set<uint64_t> lanes;
  for (const Item& it : batch) lanes.insert(it.lane->id);
  if (options_.share_syncs && lanes.size() >= 2) {
    run_shared(batch, lanes.size());
    return;
  }
  // One group (or sharing off): each job alone with its own syncs, its
  // outcome posted at once — exactly a per-group storage thread.
  for (Item& it : batch) {
    Status st = it.job();
    finish(it, std::move(st));
  }
}

// Every job inside one shared sync, each under its lane's owner id, then one
// commit whose failure fails every job (the class comment).
void StorageExecutor::run_shared(std::vector<Item>& batch, size_t lanes) {
  std::vector<Status> results;
  results.reserve(batch.size());
  Status commit;
  {
    std::unique_ptr<storage::SharedSync> sync = env_->begin_shared_sync();
    for (Item& it : batch) {
      sync->set_owner(it.lane->id);
      results.push_back(it.job());
    }
    commit = sync->commit();
  }
  CHORUS_ASSERT(results.size() == batch.size());
  uint64_t failed_by_commit = 0;
  if (!commit.is_ok()) {
    commit = Status(commit.code(), "shared sync of " + std::to_string(batch.size()) +
                                       " storage jobs of " + std::to_string(lanes) +
                                       " groups failed: " + commit.to_string());
    for (const Status& r : results) failed_by_commit += r.is_ok() ? 1 : 0;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    ++stats_.shared_batches;
    ++stats_.commits;
    if (!commit.is_ok()) ++stats_.commit_failures;
    stats_.jobs_failed_by_commit += failed_by_commit;
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    finish(batch[i], !results[i].is_ok() ? std::move(results[i]) : commit);
  }
}

// Posts the job's DiskDone, then lets its lane's destructor go on.
void StorageExecutor::finish(Item& item, Status st) {
  item.lane->post([done = std::move(item.done), st = std::move(st)] { done(st); });
  item.job = nullptr;  // what it captured dies here, not on the loop
  {
    std::lock_guard<std::mutex> lk(mu_);
    CHORUS_ASSERT(item.lane->outstanding > 0);
    --item.lane->outstanding;
  }
  idle_cv_.notify_all();
}

}  // namespace chorus::server
