#include "bench/runner.h"

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace chorus::bench {
namespace {

using namespace std::chrono_literals;

// An in-process store shared by every fake client, with knobs for failures.
struct FakeStore {
  std::mutex mu;
  std::map<std::string, std::string, std::less<>> data;  // guarded by mu
  std::atomic<uint64_t> calls{0};                        // operations received
  uint64_t fail_every = 0;                               // > 0: every fail_every-th operation fails
  int refuse_client = -1;                                // this client's connect() fails
  std::chrono::microseconds delay{0};
};

// A Driver over FakeStore that pipelines (send queues, receive executes).
class FakeDriver final : public Driver {
 public:
  FakeDriver(FakeStore& store, int client) : store_(store), client_(client) {}

  Status connect() override {
    if (client_ == store_.refuse_client) return Status::unavailable("connection refused");
    return Status::ok();
  }
  Status set(std::string_view key, std::string_view value) override {
    return execute(Op{OpType::kSet, key, value}).status;
  }
  Result<bool> get(std::string_view key) override {
    Reply r = execute(Op{OpType::kGet, key, {}});
    if (!r.status.is_ok()) return r.status;
    return r.found;
  }
  int pipeline_depth_max() const override { return 64; }
  Status send(const Op& op) override {
    queued_.push_back({op.type, std::string(op.key), std::string(op.value)});
    return Status::ok();
  }
  Reply receive() override {
    Queued q = std::move(queued_.front());
    queued_.pop_front();
    return execute(Op{q.type, q.key, q.value});
  }

 private:
  struct Queued {
    OpType type;
    std::string key, value;
  };

  Reply execute(const Op& op) {
    const uint64_t n = store_.calls.fetch_add(1) + 1;
    if (store_.delay.count() > 0) std::this_thread::sleep_for(store_.delay);
    if (store_.fail_every > 0 && n % store_.fail_every == 0) {
      return {Status::unavailable("TRYAGAIN no leader"), false};
    }
    std::lock_guard lock(store_.mu);
    if (op.type == OpType::kSet) {
      store_.data[std::string(op.key)] = std::string(op.value);
      return {Status::ok(), false};
    }
    return {Status::ok(), store_.data.contains(op.key)};
  }

  FakeStore& store_;
  int client_;
  std::deque<Queued> queued_;
};

DriverFactory fake_factory(FakeStore& store) {
  return [&store](const DriverOptions&, int client) -> Result<std::unique_ptr<Driver>> {
    return std::unique_ptr<Driver>(new FakeDriver(store, client));
  };
}

DriverOptions fake_endpoints() {
  DriverOptions o;
  o.endpoints = {Endpoint{"fake", 1}};
  return o;
}

Result<RunReport> run(FakeStore& store, const WorkloadSpec& spec, const RunOptions& opts) {
  EXPECT_TRUE(validate(opts, 64).is_ok());
  const Workload w(spec);
  return run_closed_loop(fake_factory(store), fake_endpoints(), w, opts);
}

TEST(RunnerTest, OpsModeCountsExactlyTheRequestedOperations) {
  for (int pipeline : {1, 7}) {
    FakeStore store;
    RunOptions o;
    o.clients = 4;
    o.pipeline = pipeline;
    o.ops = 10'001;
    auto r = run(store, WorkloadSpec{}, o);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    EXPECT_EQ(r->ops, 10'001u) << "pipeline " << pipeline;
    EXPECT_EQ(r->errors, 0u);
    EXPECT_EQ(r->latency.count(), 10'001u);
    EXPECT_EQ(store.calls.load(), 10'001u);
    EXPECT_GT(r->duration_s, 0);
    EXPECT_GT(r->ops_per_s(), 0);
  }
}

TEST(RunnerTest, WarmupOperationsAreIssuedButNotCounted) {
  FakeStore store;
  RunOptions o;
  o.clients = 3;
  o.pipeline = 4;
  o.ops = 2'000;
  o.warmup_ops = 500;
  auto r = run(store, WorkloadSpec{}, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->ops, 2'000u);
  EXPECT_EQ(r->latency.count(), 2'000u);
  EXPECT_EQ(store.calls.load(), 2'500u);
}

TEST(RunnerTest, TimedWarmupIsNotCounted) {
  FakeStore store;
  store.delay = 100us;
  RunOptions o;
  o.clients = 2;
  o.ops = 100;
  o.warmup = 200ms;  // ~2 clients x 200 ms / 100 us = up to 4000 uncounted operations
  auto r = run(store, WorkloadSpec{}, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->ops, 100u);
  EXPECT_GT(store.calls.load(), 150u);
  EXPECT_LT(r->duration_s, 0.2);  // the warm-up is not part of the measured time
}

TEST(RunnerTest, ErrorsAreCountedNotRecordedAndTheRunGoesOn) {
  FakeStore store;
  store.fail_every = 10;
  RunOptions o;
  o.clients = 1;  // one client: the failing operations are exactly every 10th
  o.pipeline = 5;
  o.ops = 1'000;
  auto r = run(store, WorkloadSpec{}, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->errors, 100u);
  EXPECT_EQ(r->ops, 900u);
  EXPECT_EQ(r->latency.count(), 900u);
  EXPECT_NE(r->first_error.find("TRYAGAIN"), std::string::npos) << r->first_error;
}

TEST(RunnerTest, DurationModeStopsOnTime) {
  FakeStore store;
  store.delay = 200us;
  RunOptions o;
  o.clients = 4;
  o.duration = 300ms;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = run(store, WorkloadSpec{}, o);
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(r.is_ok());
  EXPECT_GE(r->duration_s, 0.3);
  EXPECT_LT(r->duration_s, 0.5);
  EXPECT_LT(took, 2s);
  EXPECT_GT(r->ops, 100u);
  EXPECT_EQ(r->latency.count(), r->ops);
  EXPECT_GE(r->latency.min_ns(), 200'000u);  // every operation slept 200 us
  EXPECT_EQ(r->stuck_clients, 0u) << "every client got replies during the window";
}

TEST(RunnerTest, AStallThroughTheWholeWindowIsReportedNotSilent) {
  // Every call takes 2 s: each client's first call begins in the warm-up and
  // is still waiting when the 300 ms window closes.
  FakeStore store;
  store.delay = 2s;
  RunOptions o;
  o.clients = 3;
  o.warmup = 300ms;
  o.duration = 300ms;
  auto r = run(store, WorkloadSpec{}, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->ops, 0u);
  EXPECT_EQ(r->errors, 0u);
  EXPECT_EQ(r->stuck_clients, 3u);
}

TEST(RunnerTest, AClientThatCannotConnectAbandonsTheRun) {
  FakeStore store;
  store.refuse_client = 2;
  RunOptions o;
  o.clients = 4;
  o.ops = 1000;
  auto r = run(store, WorkloadSpec{}, o);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(r.status().message(), "client 2: connection refused");
  EXPECT_EQ(store.calls.load(), 0u);
}

TEST(RunnerTest, PreloadWritesEveryKeyThenGetsFindThem) {
  FakeStore store;
  WorkloadSpec spec;
  spec.kind = WorkloadKind::kGet;
  spec.keys = 5'000;
  const Workload w(spec);
  PreloadOptions p;
  p.clients = 3;
  p.pipeline = 8;
  ASSERT_TRUE(preload(fake_factory(store), fake_endpoints(), w, p).is_ok());
  EXPECT_EQ(store.data.size(), 5'000u);
  EXPECT_EQ(store.calls.load(), 5'000u);
  EXPECT_TRUE(store.data.contains("key:000000004999"));
  EXPECT_EQ(store.data.at("key:000000000000").size(), 256u);
  RunOptions o;
  o.clients = 2;
  o.ops = 3'000;
  auto r = run_closed_loop(fake_factory(store), fake_endpoints(), w, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->reads, 3'000u);
  EXPECT_EQ(r->not_found, 0u);
}

TEST(RunnerTest, PreloadRetriesFailedWrites) {
  FakeStore store;
  store.fail_every = 7;
  WorkloadSpec spec;
  spec.keys = 1'000;
  PreloadOptions p;
  p.clients = 2;
  p.retry_delay = 0ms;
  ASSERT_TRUE(preload(fake_factory(store), fake_endpoints(), Workload(spec), p).is_ok());
  EXPECT_EQ(store.data.size(), 1'000u);
}

TEST(RunnerTest, GetsOfMissingKeysAreCountedAsNotFound) {
  FakeStore store;
  WorkloadSpec spec;
  spec.kind = WorkloadKind::kGet;
  RunOptions o;
  o.clients = 2;
  o.ops = 100;
  auto r = run(store, spec, o);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->ops, 100u);
  EXPECT_EQ(r->not_found, 100u);
  EXPECT_EQ(r->errors, 0u);
}

TEST(RunnerTest, ValidateRejectsPipelinesTheDriverCannotDo) {
  RunOptions o;
  o.ops = 1;
  o.pipeline = 2;
  EXPECT_FALSE(validate(o, 1).is_ok());
  EXPECT_TRUE(validate(o, 2).is_ok());
  o.duration = 1s;
  EXPECT_FALSE(validate(o, 2).is_ok());  // both ops and duration
}

}  // namespace
}  // namespace chorus::bench
