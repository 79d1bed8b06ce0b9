// Unit tests of the host alone: a ReplicaHost<raft::Raft> driven by hand
// with manual effects — every posted callback and storage job runs only when
// the test says so, so an interleaving the simulator reaches rarely is
// written down exactly. (The simulator's stories are in
// src/sim/host_defects_test.cc.)
#include "host/replica_host.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "base/assert.h"
#include "core/raft/raft.h"
#include "storage/env/sim_env.h"
#include "storage/kv/state_machine.h"
#include "storage/replica/replica_storage.h"

namespace chorus::host {
namespace {

using namespace std::chrono_literals;

struct AssertionThrown : std::runtime_error {
  using std::runtime_error::runtime_error;
};
[[noreturn]] void throw_assertion(const char* expr, const char* file, int line, const char*) {
  throw AssertionThrown(std::string(expr) + " at " + file + ":" + std::to_string(line));
}

struct ManualEffects {
  std::deque<Task> posted;
  std::deque<std::pair<DiskJob, DiskDone>> storage;
  std::vector<raft::Message> sent;
  std::vector<Duration> armed;
  Task timer;
  Instant t{std::chrono::seconds(1000)};

  Instant now() const { return t; }
  int64_t wall_ms() const { return 1'700'000'000'000; }
  void post(Task task) { posted.push_back(std::move(task)); }
  void arm_timer(Duration d, Task task) {
    armed.push_back(d);
    timer = std::move(task);
  }
  void send(raft::Message m) { sent.push_back(std::move(m)); }
  void run_on_storage(DiskJob job, DiskDone done) {
    storage.emplace_back(std::move(job), std::move(done));
  }
  void run_blocking(DiskJob job, DiskDone done) { done(job()); }
  void stop() {}

  void drain() {
    while (!posted.empty()) {
      auto f = std::move(posted.front());
      posted.pop_front();
      f();
    }
  }
  void run_storage() {
    while (!storage.empty()) {
      auto [job, done] = std::move(storage.front());
      storage.pop_front();
      Status st = job();
      posted.push_back([done = std::move(done), st] { done(st); });
    }
  }
};

using Host = ReplicaHost<raft::Raft, ManualEffects>;

core::Entry put_entry(uint64_t index, uint64_t term) {
  return core::Entry{Term(term), LogIndex(index), core::EntryType::kNormal,
                     kv::encode(kv::make_put("k", "v" + std::to_string(index)))};
}

// Node 2 of {1, 2, 3} on a simulated disk; node 1 leads term 1.
class HostTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { set_assertion_handler(&throw_assertion); }

  std::unique_ptr<Host> make(ManualEffects& fx, uint64_t seed, uint64_t snapshot_every = 1000) {
    auto store = storage::ReplicaStorage::open(&env_, "/d");
    EXPECT_TRUE(store.is_ok());
    HostOptions o;
    o.snapshot_every_entries = snapshot_every;
    o.publish_leader_clock = false;
    auto h = std::make_unique<Host>(fx, o, std::move(store).value(),
                                    std::make_unique<kv::MemoryStateMachine>(), Prng(seed));
    Status st = h->init([&](raft::PersistentState ps) {
      raft::Config cfg;
      cfg.id = NodeId(2);
      cfg.voters = {NodeId(1), NodeId(2), NodeId(3)};
      return std::make_unique<raft::Raft>(cfg, Prng(3), std::move(ps));
    });
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    h->start();
    return h;
  }
  static void from_leader(Host& h, ManualEffects& fx, raft::Body b) {
    h.receive(raft::Message{NodeId(1), NodeId(2), Term(1), std::move(b)});
    fx.drain();
  }

  storage::SimEnv env_{Prng(7)};
};

// A local snapshot image is being built on the storage executor, committed
// entries wait for it in the deferred list, and the leader's InstallSnapshot
// arrives: the deferred entries are covered by the leader's snapshot and
// must not be applied after it (found by review: the host aborted on its
// "applied before durable" assertion).
TEST_F(HostTest, InstallWhileALocalSnapshotIsBuiltDropsTheDeferredEntries) {
  ManualEffects fx;
  auto h = make(fx, 1, /*snapshot_every=*/5);
  std::vector<core::Entry> es;
  for (uint64_t i = 1; i <= 10; ++i) es.push_back(put_entry(i, 1));
  from_leader(*h, fx, raft::AppendEntries{LogIndex(0), Term(0), es, LogIndex(0)});
  ASSERT_EQ(h->status().durable_index, LogIndex(10));
  from_leader(*h, fx, raft::Heartbeat{LogIndex(5), 1});  // applies 1..5; image job queued
  ASSERT_EQ(h->state().applied_index(), LogIndex(5));
  ASSERT_EQ(fx.storage.size(), 1u);
  from_leader(*h, fx, raft::Heartbeat{LogIndex(8), 2});  // 6..8 committed: deferred
  ASSERT_EQ(h->state().applied_index(), LogIndex(5));

  kv::MemoryStateMachine leader;
  for (uint64_t i = 1; i <= 20; ++i) leader.apply(LogIndex(i), put_entry(i, 1).data);
  auto image = leader.snapshot();
  ASSERT_TRUE(image.is_ok());
  core::SnapshotRef snap{core::SnapshotMeta{LogIndex(20), Term(1)},
                         std::make_shared<const std::string>(*image)};
  from_leader(*h, fx, raft::InstallSnapshot{snap});
  ASSERT_EQ(fx.storage.size(), 2u) << "the install waits behind the image job";
  fx.run_storage();
  EXPECT_NO_THROW(fx.drain());
  EXPECT_EQ(h->state().applied_index(), LogIndex(20));
  EXPECT_EQ(h->state().read("k").value(), std::optional<std::string>("v20"));
  EXPECT_TRUE(h->healthy());
}

// Read barrier ids restarted at 1 in every incarnation, so the answer to a
// barrier the previous incarnation asked could confirm a new read with an
// index taken before that read began (a stale read, found by review).
TEST_F(HostTest, ABarrierAnswerMeantForAnEarlierIncarnationServesNoNewRead) {
  std::vector<core::Entry> es;
  for (uint64_t i = 1; i <= 5; ++i) es.push_back(put_entry(i, 1));
  uint64_t old_ctx = 0;
  {
    ManualEffects fx1;
    auto h1 = make(fx1, 1);
    from_leader(*h1, fx1, raft::AppendEntries{LogIndex(0), Term(0), es, LogIndex(5)});
    h1->read(Consistency::kLinearizable, [](Result<LogIndex>) {});
    fx1.drain();
    for (auto& m : fx1.sent) {
      if (auto* q = std::get_if<raft::ReadIndexRequest>(&m.body)) old_ctx = q->ctx;
    }
    ASSERT_NE(old_ctx, 0u);
  }  // the node crashes; the leader's answer (index 5) is still in flight

  // The leader commits index 6 meanwhile; the node restarts and a client reads.
  ManualEffects fx2;
  auto h2 = make(fx2, 2);
  from_leader(*h2, fx2, raft::Heartbeat{LogIndex(5), 7});
  std::optional<Result<LogIndex>> got;
  h2->read(Consistency::kLinearizable, [&](Result<LogIndex> r) { got = r; });
  fx2.drain();
  from_leader(*h2, fx2, raft::ReadIndexResponse{old_ctx, LogIndex(5)});
  EXPECT_FALSE(got.has_value()) << "an answer to the previous incarnation's barrier served it";
}

// After a fail-stop the tick timer kept re-arming with a zero delay: a
// fail-stopped chorusd spun a core (found by review).
TEST_F(HostTest, AFailStoppedHostStopsTicking) {
  ManualEffects fx;
  auto h = make(fx, 1);
  env_.fail_next_syncs(1);
  from_leader(*h, fx, raft::AppendEntries{LogIndex(0), Term(0), {put_entry(1, 1)}, LogIndex(0)});
  ASSERT_FALSE(h->healthy());
  fx.armed.clear();
  fx.t += 35ms;
  auto tick = std::move(fx.timer);
  tick();
  EXPECT_TRUE(fx.armed.empty()) << "re-armed after the fail-stop";
}

// A write handed to the engine before a fail-stop may still commit through
// the other replicas: its outcome is indeterminate, not a failure.
TEST_F(HostTest, AWriteProposedBeforeAFailStopIsIndeterminate) {
  ManualEffects fx;
  auto h = make(fx, 1);
  from_leader(*h, fx, raft::Heartbeat{LogIndex(0), 1});  // n1 is the leader
  std::optional<Status> outcome;
  kvpb::Command cmd = kv::make_put("k", "v");
  cmd.set_client_id(7);
  cmd.set_seq(1);
  h->write(cmd, [&](Result<kvpb::Result> r) { outcome = r.status(); });
  fx.drain();  // forwarded to n1
  env_.fail_next_syncs(1);
  from_leader(*h, fx, raft::AppendEntries{LogIndex(0), Term(0), {put_entry(1, 1)}, LogIndex(0)});
  ASSERT_FALSE(h->healthy());
  fx.drain();
  ASSERT_TRUE(outcome.has_value());
  EXPECT_EQ(outcome->code(), StatusCode::kIndeterminate) << outcome->to_string();
}

// A completed write names the entry this node applied for it, whichever
// node's log it entered through: WAIT and CHORUS.POLL look that position up.
TEST_F(HostTest, ACompletedWriteReportsTheAppliedEntrysIndexAndTerm) {
  ManualEffects fx;
  auto h = make(fx, 1);
  from_leader(*h, fx, raft::Heartbeat{LogIndex(0), 1});  // n1 is the leader
  kvpb::Command cmd = kv::make_put("k", "v");
  cmd.set_client_id(7);
  cmd.set_seq(1);
  std::optional<Result<WriteAck>> outcome;
  h->write_acked(cmd, [&](Result<WriteAck> r) { outcome = std::move(r); });
  fx.drain();  // forwarded to n1, which appends it after an entry of its own
  const core::Entry own = put_entry(1, 1);
  const core::Entry forwarded{Term(1), LogIndex(2), core::EntryType::kNormal, kv::encode(cmd)};
  from_leader(*h, fx, raft::AppendEntries{LogIndex(0), Term(0), {own, forwarded}, LogIndex(0)});
  EXPECT_FALSE(outcome.has_value()) << "completed before it was committed";
  from_leader(*h, fx, raft::Heartbeat{LogIndex(2), 1});
  fx.drain();
  ASSERT_TRUE(outcome.has_value());
  ASSERT_TRUE(outcome->is_ok()) << outcome->status().to_string();
  EXPECT_EQ((*outcome)->index, LogIndex(2));
  EXPECT_EQ((*outcome)->term, Term(1));
  EXPECT_EQ((*outcome)->result.code(), kvpb::Result::OK);
  EXPECT_EQ(h->term_at(LogIndex(2)), Term(1));
  EXPECT_EQ(h->term_at(LogIndex(3)), std::nullopt);
}

}  // namespace
}  // namespace chorus::host
