#include "server/storage_executor.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "storage/env/sim_env.h"

namespace chorus::server {
namespace {

using storage::OpenMode;
using storage::SimEnv;

// The loop the DiskDone callbacks are posted to: a queue the test runs.
class FakeLoop {
 public:
  StorageExecutor::Post poster() {
    return [this](host::Task t) {
      {
        std::lock_guard<std::mutex> lk(mu_);
        tasks_.push_back(std::move(t));
      }
      cv_.notify_all();
    };
  }
  // Waits until `n` callbacks have been posted in all, then runs the queued ones.
  void run_until(size_t n) {
    std::deque<host::Task> now;
    {
      std::unique_lock<std::mutex> lk(mu_);
      ASSERT_TRUE(
          cv_.wait_for(lk, std::chrono::seconds(10), [&] { return ran_ + tasks_.size() >= n; }))
          << "only " << ran_ + tasks_.size() << " of " << n << " DiskDone posted";
      now.swap(tasks_);
      ran_ += now.size();
    }
    for (auto& t : now) t();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<host::Task> tasks_;
  size_t ran_ = 0;
};

// A job that holds the executor until released, so that the jobs submitted
// meanwhile are all queued when it wakes again: they form one batch.
class Gate {
 public:
  host::DiskJob job() {
    return [this] {
      std::unique_lock<std::mutex> lk(mu_);
      started_ = true;
      cv_.notify_all();
      cv_.wait(lk, [&] { return open_; });
      return Status::ok();
    };
  }
  void wait_started() {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return started_; });
  }
  void open() {
    std::lock_guard<std::mutex> lk(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool open_ = false;
};

class StorageExecutorTest : public ::testing::Test {
 protected:
  StorageExecutorTest() {
    EXPECT_TRUE(env_.create_dir("/g1").is_ok());
    EXPECT_TRUE(env_.create_dir("/g2").is_ok());
    EXPECT_TRUE(env_.create_dir("/g3").is_ok());
  }
  // Appends `data` to `path` and syncs it (what a group's persist does).
  host::DiskJob write_job(std::string path, std::string data) {
    return [this, path, data] {
      auto f = env_.open_writable(path, OpenMode::kAppend);
      if (!f.is_ok()) return f.status();
      CHORUS_RETURN_IF_ERROR((*f)->append(data));
      CHORUS_RETURN_IF_ERROR((*f)->sync());
      return env_.sync_dir(storage::parent_dir(path));
    };
  }
  host::DiskDone record(std::string name) {
    return [this, name](Status st) { done_.emplace_back(name, std::move(st)); };
  }
  std::string read(const std::string& path) {
    auto r = env_.read_file(path, 1 << 20);
    return r.is_ok() ? *r : "<" + r.status().to_string() + ">";
  }

  SimEnv env_{Prng(3)};
  FakeLoop loop_;
  std::vector<std::pair<std::string, Status>> done_;  // in the order the loop ran them
};

class StorageExecutorThreadsTest : public StorageExecutorTest,
                                   public ::testing::WithParamInterface<size_t> {};

TEST_P(StorageExecutorThreadsTest, JobsOfEachGroupCompleteInSubmissionOrder) {
  // Jobs that touch no disk: SimEnv is single-threaded, and with several
  // threads only the order is under test here.
  StorageExecutor ex(&env_, StorageExecutorOptions{.threads = GetParam()});
  auto a = ex.open_lane(loop_.poster());
  auto b = ex.open_lane(loop_.poster());
  // lane -> jobs in the order they ran; each thread touches its own lane's vector
  std::map<uint64_t, std::vector<int>> ran{{a->id(), {}}, {b->id(), {}}};
  constexpr int kJobs = 200;
  for (int i = 0; i < kJobs; ++i) {
    auto& lane = (i % 3 == 0) ? a : b;
    const uint64_t id = lane->id();
    lane->submit(
        [&ran, id, i] {
          ran.at(id).push_back(i);
          return Status::ok();
        },
        record(std::to_string(id) + ":" + std::to_string(i)));
  }
  loop_.run_until(kJobs);
  ASSERT_EQ(done_.size(), size_t{kJobs});
  std::map<std::string, int> last;  // lane -> last job index seen done
  for (const auto& [name, st] : done_) {
    EXPECT_TRUE(st.is_ok());
    const std::string lane = name.substr(0, name.find(':'));
    const int i = std::stoi(name.substr(name.find(':') + 1));
    EXPECT_TRUE(!last.count(lane) || last[lane] < i) << name << " after " << last[lane];
    last[lane] = i;
  }
  for (const auto& [lane, order] : ran) EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  EXPECT_EQ(ex.stats().jobs, uint64_t{kJobs});
}

INSTANTIATE_TEST_SUITE_P(Threads, StorageExecutorThreadsTest, ::testing::Values(1, 2, 3));

TEST_F(StorageExecutorTest, GroupsOnDifferentThreadsDoNotShareACommit) {
  StorageExecutor ex(&env_, StorageExecutorOptions{.threads = 2});
  auto a = ex.open_lane(loop_.poster());  // thread 0
  auto b = ex.open_lane(loop_.poster());  // thread 1
  auto c = ex.open_lane(loop_.poster());  // thread 0, with a
  Gate gate;
  a->submit(gate.job(), record("gate"));
  gate.wait_started();
  // b runs at once on the other thread; c waits behind the gate with a.
  b->submit([] { return Status::ok(); }, record("b"));
  loop_.run_until(1);
  ASSERT_EQ(done_.size(), 1u);
  EXPECT_EQ(done_[0].first, "b");
  a->submit([] { return Status::ok(); }, record("a"));
  c->submit([] { return Status::ok(); }, record("c"));
  gate.open();
  loop_.run_until(4);
  ASSERT_EQ(done_.size(), 4u);
  EXPECT_EQ(done_[1].first, "gate");
  EXPECT_EQ(done_[2].first, "a");
  EXPECT_EQ(done_[3].first, "c");
  EXPECT_EQ(ex.stats().shared_batches, 1u) << "a and c shared a batch on thread 0";
}

TEST_F(StorageExecutorTest, JobsOfTwoGroupsInOneBatchShareOneCommit) {
  StorageExecutor ex(&env_);
  auto gate_lane = ex.open_lane(loop_.poster());
  auto a = ex.open_lane(loop_.poster());
  auto b = ex.open_lane(loop_.poster());
  Gate gate;
  gate_lane->submit(gate.job(), record("gate"));
  gate.wait_started();
  a->submit(write_job("/g1/wal", "a1"), record("a1"));
  b->submit(write_job("/g2/wal", "b1"), record("b1"));
  a->submit(write_job("/g1/wal", "a2"), record("a2"));  // a barrier: a1 is synced first
  const uint64_t syncs = env_.stats().syncs;
  gate.open();
  loop_.run_until(4);
  ASSERT_EQ(done_.size(), 4u);
  for (const auto& [name, st] : done_) EXPECT_TRUE(st.is_ok()) << name << ": " << st.to_string();
  EXPECT_EQ(done_[1].first, "a1");
  EXPECT_EQ(done_[2].first, "b1");
  EXPECT_EQ(done_[3].first, "a2");
  const StorageExecutor::Stats s = ex.stats();
  EXPECT_EQ(s.batches, 2u);
  EXPECT_EQ(s.shared_batches, 1u);
  EXPECT_EQ(s.commits, 1u);
  EXPECT_EQ(env_.stats().shared_sync_commits, 1u);
  // Group 1's second write was a barrier for its first sync (file and
  // directory); the rest waited for the one commit.
  EXPECT_EQ(env_.stats().syncs - syncs, 3u);
  env_.crash();
  EXPECT_EQ(read("/g1/wal"), "a1a2");
  EXPECT_EQ(read("/g2/wal"), "b1");
}

TEST_F(StorageExecutorTest, FailedCommitFailsEveryJobOfTheBatch) {
  StorageExecutor ex(&env_);
  auto gate_lane = ex.open_lane(loop_.poster());
  auto a = ex.open_lane(loop_.poster());
  auto b = ex.open_lane(loop_.poster());
  auto c = ex.open_lane(loop_.poster());
  Gate gate;
  gate_lane->submit(gate.job(), record("gate"));
  gate.wait_started();
  a->submit(write_job("/g1/wal", "a"), record("a"));
  b->submit([] { return Status::ok(); }, record("b: wrote nothing"));
  c->submit([] { return Status::invalid_argument("c's own error"); }, record("c"));
  env_.fail_next_syncs(1);  // the commit
  gate.open();
  loop_.run_until(4);
  ASSERT_EQ(done_.size(), 4u);
  EXPECT_TRUE(done_[0].second.is_ok());  // the gate, alone in its batch
  for (size_t i = 1; i <= 2; ++i) {
    EXPECT_EQ(done_[i].second.code(), StatusCode::kIoError) << done_[i].first;
    EXPECT_NE(done_[i].second.message().find("shared sync of 3 storage jobs of 3 groups failed"),
              std::string::npos)
        << done_[i].second.to_string();
  }
  EXPECT_EQ(done_[3].second.code(), StatusCode::kInvalidArgument) << "a job keeps its own error";
  EXPECT_EQ(ex.stats().commit_failures, 1u);
  EXPECT_EQ(ex.stats().jobs_failed_by_commit, 2u);
  env_.crash();
  EXPECT_FALSE(*env_.exists("/g1/wal")) << "nothing of the batch was durable";
}

TEST_F(StorageExecutorTest, SingleGroupBatchSyncsEachJobAsBefore) {
  ASSERT_TRUE(write_job("/g1/wal", "")().is_ok());  // a durable, empty file
  StorageExecutor ex(&env_);
  auto a = ex.open_lane(loop_.poster());
  Gate gate;
  a->submit(gate.job(), record("gate"));
  gate.wait_started();
  std::vector<uint64_t> durable_after_job;  // seen inside each job, right after its sync
  for (int i = 0; i < 3; ++i) {
    a->submit(
        [this, &durable_after_job] {
          auto f = env_.open_writable("/g1/wal", OpenMode::kAppend);
          CHORUS_RETURN_IF_ERROR((*f)->append("xx"));
          CHORUS_RETURN_IF_ERROR((*f)->sync());
          durable_after_job.push_back(env_.durable_size("/g1/wal"));
          return Status::ok();
        },
        record("job"));
  }
  const uint64_t syncs = env_.stats().syncs;
  gate.open();
  loop_.run_until(4);
  EXPECT_EQ(durable_after_job, (std::vector<uint64_t>{2, 4, 6})) << "each sync() was real";
  EXPECT_EQ(env_.stats().syncs - syncs, 3u);
  EXPECT_EQ(env_.stats().shared_sync_commits, 0u);
  EXPECT_EQ(ex.stats().batches, 2u);
  EXPECT_EQ(ex.stats().shared_batches, 0u);
  for (const auto& [name, st] : done_) EXPECT_TRUE(st.is_ok());
}

TEST_F(StorageExecutorTest, SharingOffRunsEveryJobAlone) {
  StorageExecutor ex(&env_, StorageExecutorOptions{.share_syncs = false});
  auto gate_lane = ex.open_lane(loop_.poster());
  auto a = ex.open_lane(loop_.poster());
  auto b = ex.open_lane(loop_.poster());
  Gate gate;
  gate_lane->submit(gate.job(), record("gate"));
  gate.wait_started();
  a->submit(write_job("/g1/wal", "a"), record("a"));
  b->submit(write_job("/g2/wal", "b"), record("b"));
  gate.open();
  loop_.run_until(3);
  EXPECT_EQ(ex.stats().shared_batches, 0u);
  EXPECT_EQ(env_.stats().shared_sync_commits, 0u);
}

TEST_F(StorageExecutorTest, BatchTakesAtMostBatchJobsMax) {
  StorageExecutor ex(&env_, StorageExecutorOptions{.batch_jobs_max = 2});
  auto a = ex.open_lane(loop_.poster());
  auto b = ex.open_lane(loop_.poster());
  Gate gate;
  a->submit(gate.job(), record("gate"));
  gate.wait_started();
  for (int i = 0; i < 5; ++i) {
    (i % 2 ? a : b)->submit(write_job(i % 2 ? "/g1/wal" : "/g2/wal", "x"), record("x"));
  }
  gate.open();
  loop_.run_until(6);
  const StorageExecutor::Stats s = ex.stats();
  EXPECT_EQ(s.batch_jobs_max_seen, 2u);
  EXPECT_EQ(s.batches, 4u);  // the gate, then 2 + 2 + 1
  EXPECT_EQ(s.shared_batches, 2u);
}

TEST_F(StorageExecutorTest, LaneDestructorWaitsForItsQueuedJobs) {
  StorageExecutor ex(&env_);
  auto a = ex.open_lane(loop_.poster());
  bool ran = false;
  a->submit(
      [&ran] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        ran = true;
        return Status::ok();
      },
      record("slow"));
  a.reset();
  EXPECT_TRUE(ran);
  loop_.run_until(1);
  EXPECT_EQ(done_.size(), 1u);
}

}  // namespace
}  // namespace chorus::server
