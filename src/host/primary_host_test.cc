// ReplicaHost driving the primary-backup engine (core/primary): proof that
// the one host instantiates with it, and that the engine's write outcomes
// reach clients with the right meaning — a sync-all rollback as a definite
// failure, a semi-sync ack timeout as indeterminate. The peer is played by
// hand: the test reads what the host sent and answers for it.
#include <gtest/gtest.h>

#include <deque>
#include <optional>
#include <vector>

#include "core/primary/primary.h"
#include "host/replica_host.h"
#include "storage/env/sim_env.h"
#include "storage/kv/state_machine.h"
#include "storage/replica/replica_storage.h"

namespace chorus::host {
namespace {

using namespace std::chrono_literals;
using primary::AckRule;

struct Effects {
  std::deque<Task> posted;
  std::deque<std::pair<DiskJob, DiskDone>> storage;
  std::vector<primary::Message> sent;
  Task timer;
  Instant t{std::chrono::seconds(1000)};

  Instant now() const { return t; }
  int64_t wall_ms() const { return 1'700'000'000'000; }
  void post(Task task) { posted.push_back(std::move(task)); }
  void arm_timer(Duration, Task task) { timer = std::move(task); }
  void send(primary::Message m) { sent.push_back(std::move(m)); }
  void run_on_storage(DiskJob job, DiskDone done) {
    storage.emplace_back(std::move(job), std::move(done));
  }
  void run_blocking(DiskJob job, DiskDone done) { done(job()); }
  void stop() {}

  // Runs everything queued, storage included, until nothing is left.
  void settle() {
    while (!posted.empty() || !storage.empty()) {
      while (!posted.empty()) {
        auto f = std::move(posted.front());
        posted.pop_front();
        f();
      }
      while (!storage.empty()) {
        auto [job, done] = std::move(storage.front());
        storage.pop_front();
        Status st = job();
        posted.push_back([done = std::move(done), st] { done(st); });
      }
    }
  }
  // Lets `d` of monotonic time pass and fires the tick timer.
  void pass(Duration d) {
    t += d;
    auto tick = std::move(timer);
    tick();
    settle();
  }
};

template <AckRule R>
class PrimaryHost {
 public:
  using E = primary::PrimaryBackup<R>;
  using Host = ReplicaHost<E, Effects>;

  // Node 1, primary of epoch 1 over {1, 2} (or over 1 and `backups`); n2
  // takes the epoch's no-op.
  explicit PrimaryHost(const std::function<void(primary::Options&)>& tweak = {},
                       std::vector<NodeId> backups = {NodeId(2)}, uint64_t lease_ticks = 100000) {
    auto store = storage::ReplicaStorage::open(&env_, "/d");
    EXPECT_TRUE(store.is_ok());
    HostOptions o;
    o.publish_leader_clock = false;
    host_ = std::make_unique<Host>(fx_, o, std::move(store).value(),
                                   std::make_unique<kv::MemoryStateMachine>(), Prng(1));
    const Status st = host_->init([&](core::PersistentState<primary::DurableState> ps) {
      primary::Options po;
      po.id = NodeId(1);
      po.prepare_timeout_ticks = 5;
      po.ack_timeout_ticks = 5;
      if (tweak) tweak(po);
      auto e = std::make_unique<E>(po, std::move(ps));
      // The configuration manager's appointment (the host has no call for
      // it yet; the integrator adds one).
      std::vector<NodeId> members{NodeId(1)};
      members.insert(members.end(), backups.begin(), backups.end());
      EXPECT_TRUE(e->configure({primary::Epoch(1), NodeId(1), members, lease_ticks}).is_ok());
      return e;
    });
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    host_->start();
    fx_.pass(10ms);     // the first tick pumps: the epoch is synced, then its no-op sent
    ack_last_append();  // n2 takes the epoch's no-op: writes may commit
  }

  Host& host() { return *host_; }
  Effects& fx() { return fx_; }

  // A backup (n2 by default) acknowledges the last entry of the last append.
  void ack_last_append(NodeId from = NodeId(2)) {
    for (auto it = fx_.sent.rbegin(); it != fx_.sent.rend(); ++it) {
      const auto* a = std::get_if<primary::Append>(&it->body);
      if (!a || a->entries.empty()) continue;
      primary::AppendResponse r;
      r.match_index = a->entries.back().index;
      r.match_term = a->entries.back().term;
      host_->receive(primary::Message{from, NodeId(1), primary::Epoch(1), r});
      fx_.settle();
      return;
    }
    ADD_FAILURE() << "no append was sent";
  }

  std::optional<Status> write(const std::string& value) {
    kvpb::Command cmd = kv::make_put("k", value);
    cmd.set_client_id(7);
    cmd.set_seq(++seq_);
    auto out = std::make_shared<std::optional<Status>>();
    host_->write(cmd, [out](Result<kvpb::Result> r) { *out = r.status(); });
    fx_.settle();
    outcomes_.push_back(out);
    return *out;
  }
  std::optional<Status> last_outcome() const { return *outcomes_.back(); }
  // The last entry of the last append sent.
  core::Entry last_entry_sent() const {
    for (auto it = fx_.sent.rbegin(); it != fx_.sent.rend(); ++it) {
      const auto* a = std::get_if<primary::Append>(&it->body);
      if (a && !a->entries.empty()) return a->entries.back();
    }
    ADD_FAILURE() << "no append was sent";
    return {};
  }

 private:
  storage::SimEnv env_{Prng(7)};
  Effects fx_;
  std::unique_ptr<Host> host_;
  uint64_t seq_ = 0;
  std::vector<std::shared_ptr<std::optional<Status>>> outcomes_;
};

TEST(PrimaryHost, SyncAllCommitsOnceTheBackupPrepared) {
  PrimaryHost<AckRule::kSyncAll> p;
  EXPECT_FALSE(p.write("v1").has_value());  // waits for n2
  p.ack_last_append();
  ASSERT_TRUE(p.last_outcome().has_value());
  EXPECT_TRUE(p.last_outcome()->is_ok()) << p.last_outcome()->to_string();
  EXPECT_EQ(p.host().state().read("k").value(), std::optional<std::string>("v1"));
}

TEST(PrimaryHost, SyncAllRollbackIsADefiniteFailure) {
  PrimaryHost<AckRule::kSyncAll> p;
  EXPECT_FALSE(p.write("v1").has_value());
  p.fx().pass(60ms);  // prepare_timeout (5 ticks of 10 ms): rolled back behind a marker
  EXPECT_FALSE(p.last_outcome().has_value()) << "answered before a backup holds the rollback";
  p.ack_last_append();  // n2 takes the marker
  ASSERT_TRUE(p.last_outcome().has_value());
  EXPECT_EQ(p.last_outcome()->code(), StatusCode::kUnavailable) << p.last_outcome()->to_string();
  EXPECT_EQ(p.host().state().read("k").value(), std::nullopt);
}

TEST(PrimaryHost, SemiSyncAckTimeoutIsIndeterminate) {
  PrimaryHost<AckRule::kSemiSync> p;
  EXPECT_FALSE(p.write("v1").has_value());
  p.fx().pass(60ms);  // ack_timeout
  ASSERT_TRUE(p.last_outcome().has_value());
  EXPECT_EQ(p.last_outcome()->code(), StatusCode::kIndeterminate) << p.last_outcome()->to_string();
}

TEST(PrimaryHost, AsyncAcknowledgesWithoutTheBackup) {
  PrimaryHost<AckRule::kAsync> p;
  const auto st = p.write("v1");
  ASSERT_TRUE(st.has_value());
  EXPECT_TRUE(st->is_ok()) << st->to_string();
}

// A retried write has two copies in the primary's log. Rolling back the
// later one (n3 refuses it) while the first can still commit is no
// definite failure: the first copy commits and the write succeeds.
TEST(PrimaryHost, RollbackOfARetriedCopyDoesNotFailAWriteWhoseFirstCopyCommits) {
  PrimaryHost<AckRule::kSyncAll> p([](primary::Options& o) { o.prepare_timeout_ticks = 100000; },
                                   {NodeId(2), NodeId(3)});
  p.ack_last_append(NodeId(3));  // the no-op is on every member
  EXPECT_FALSE(p.write("v1").has_value());
  const core::Entry first = p.last_entry_sent();
  p.fx().pass(410ms);  // retry_interval: the host offers the write again
  const core::Entry second = p.last_entry_sent();
  ASSERT_GT(second.index, first.index);
  ASSERT_EQ(second.data, first.data);
  primary::AppendResponse refusal;  // n3 refuses to prepare the second copy
  refusal.refusal = primary::Refusal::kPrepareLimit;
  refusal.refused_index = second.index;
  refusal.match_term = second.term;
  p.host().receive(primary::Message{NodeId(3), NodeId(1), primary::Epoch(1), refusal});
  p.fx().settle();
  p.ack_last_append(NodeId(2));  // n2 holds the marker: the rollback is released
  EXPECT_FALSE(p.last_outcome().has_value()) << p.last_outcome()->to_string();
  p.ack_last_append(NodeId(3));  // n3 too: the first copy commits
  ASSERT_TRUE(p.last_outcome().has_value());
  EXPECT_TRUE(p.last_outcome()->is_ok()) << p.last_outcome()->to_string();
  EXPECT_EQ(p.host().state().read("k").value(), std::optional<std::string>("v1"));
}

// A primary whose lease lapses keeps its waiting writes: it acknowledges
// nothing until a renewal, which lets it commit them, and their clients get
// the applied result (not "indeterminate": the semi-sync simulator, seed
// 593, had every writer answered so while its write committed).
TEST(PrimaryHost, AWriteWaitingAcrossALeaseLapseSucceedsAfterARenewal) {
  PrimaryHost<AckRule::kSemiSync> p([](primary::Options& o) { o.ack_timeout_ticks = 100000; },
                                    {NodeId(2)}, /*lease_ticks=*/30);
  EXPECT_FALSE(p.write("v1").has_value());  // n2 does not acknowledge yet
  p.fx().pass(400ms);                       // the lease (30 ticks) lapses
  EXPECT_FALSE(p.last_outcome().has_value()) << p.last_outcome()->to_string();
  // The manager renews the lease, anchored now.
  const Status renewed = p.host().configure_engine([](auto& e) {
    return e.configure({primary::Epoch(1), NodeId(1), {NodeId(1), NodeId(2)}, 30, e.ticks()});
  });
  ASSERT_TRUE(renewed.is_ok()) << renewed.to_string();
  p.fx().pass(10ms);
  p.ack_last_append();  // n2 holds v1: it commits, and its client hears so
  ASSERT_TRUE(p.last_outcome().has_value());
  EXPECT_TRUE(p.last_outcome()->is_ok()) << p.last_outcome()->to_string();
  EXPECT_EQ(p.host().state().read("k").value(), std::optional<std::string>("v1"));
  EXPECT_FALSE(p.write("v2").has_value());
  p.ack_last_append();
  ASSERT_TRUE(p.last_outcome().has_value());
  EXPECT_TRUE(p.last_outcome()->is_ok()) << p.last_outcome()->to_string();
}

// A write retried after its first copy was rolled back behind a marker —
// while the rollback waited for a backup to hold the marker — has a copy
// after the marker, free to commit. The first copy's kRolledBack is then no
// definite failure (found by the simulator, sync-all seed 25).
TEST(PrimaryHost, RollbackOfTheFirstCopyIsIndeterminateWhenARetryFollowsTheMarker) {
  PrimaryHost<AckRule::kSyncAll> p;
  EXPECT_FALSE(p.write("v1").has_value());
  const core::Entry first = p.last_entry_sent();
  p.fx().pass(60ms);  // prepare_timeout: rolled back behind a marker at first.index
  const core::Entry marker = p.last_entry_sent();
  ASSERT_EQ(marker.index, first.index);
  ASSERT_NE(marker.term, first.term);
  p.fx().pass(410ms);  // retry_interval: the host offers the write again, after the marker
  const core::Entry retry = p.last_entry_sent();
  ASSERT_GT(retry.index, marker.index);
  ASSERT_EQ(retry.data, first.data);
  primary::AppendResponse r;  // n2 holds the marker only: the rollback is released
  r.match_index = marker.index;
  r.match_term = marker.term;
  p.host().receive(primary::Message{NodeId(2), NodeId(1), primary::Epoch(1), r});
  p.fx().settle();
  ASSERT_TRUE(p.last_outcome().has_value());
  EXPECT_EQ(p.last_outcome()->code(), StatusCode::kIndeterminate) << p.last_outcome()->to_string();
  p.ack_last_append();  // n2 prepares the retry: it commits
  EXPECT_EQ(p.host().state().read("k").value(), std::optional<std::string>("v1"));
}

// Ready::snapshot_wanted (types.h, step 6): a backup that needs a snapshot
// gets one without waiting for snapshot_every_entries.
TEST(PrimaryHost, TakesASnapshotWhenTheEngineWantsOne) {
  PrimaryHost<AckRule::kAsync> p;
  ASSERT_TRUE(p.write("v1").has_value());
  p.fx().sent.clear();
  // n2 reports a log that diverges from ours inside what it applied.
  primary::AppendResponse r;
  r.refusal = primary::Refusal::kNeedSnapshot;
  r.hint = LogIndex(2);
  p.host().receive(primary::Message{NodeId(2), NodeId(1), primary::Epoch(1), r});
  p.fx().settle();
  const primary::InstallSnapshot* sent = nullptr;
  for (const auto& m : p.fx().sent) {
    if (const auto* s = std::get_if<primary::InstallSnapshot>(&m.body)) sent = s;
  }
  ASSERT_NE(sent, nullptr) << "no snapshot was taken for the backup";
  EXPECT_EQ(sent->snapshot.meta.index, p.host().state().applied_index());
}

// A backup whose state machine is ahead of the new primary's snapshot (a
// lossy promotion dropped entries it applied) installs that older snapshot.
// A local snapshot image it began before the install finishes after the
// engine took it: that image is of the replaced state, past the engine's
// applied index (simulator, semi-sync seed 2915: n2 imaged 770, installed
// the new primary's 733, and compact(770) asserted).
// Epoch 2's primary, whose log holds only epoch 1's no-op at 1 and its own
// no-op at 2: its append after 1, and its snapshot at 1 (a state machine
// that applied the no-op only).
const Term kT1 = primary::entry_term(primary::Epoch(1), 0);
const Term kT2 = primary::entry_term(primary::Epoch(2), 0);

primary::Append epoch2_append(LogIndex commit) {
  primary::Append a;
  a.term = kT2;
  a.prev_index = LogIndex(1);
  a.prev_term = kT1;
  a.entries = {core::Entry{kT2, LogIndex(2), core::EntryType::kNoop, {}}};
  a.commit = commit;
  return a;
}

primary::InstallSnapshot epoch2_snapshot() {
  kv::MemoryStateMachine theirs;
  const kv::StateMachine::Entry noop{LogIndex(1), {}, true};
  EXPECT_TRUE(theirs.apply_batch({&noop, 1}).is_ok());
  auto image = theirs.snapshot();
  EXPECT_TRUE(image.is_ok());
  std::string bytes = image.is_ok() ? std::move(image).value() : std::string();
  primary::InstallSnapshot s;
  s.snapshot = {{LogIndex(1), kT1}, std::make_shared<const std::string>(std::move(bytes))};
  s.terms = {{kT1, LogIndex(1)}, {kT2, LogIndex(2)}};
  s.last_index = LogIndex(2);
  return s;
}

TEST(PrimaryHost, AnImageBegunBeforeAnOlderInstalledSnapshotIsIgnored) {
  PrimaryHost<AckRule::kAsync> p;
  ASSERT_TRUE(p.write("v1").has_value());
  ASSERT_TRUE(p.write("v2").has_value());
  ASSERT_EQ(p.host().state().applied_index(), LogIndex(3));
  // n2 asks for a snapshot: the host starts imaging its state at 3 on the
  // storage executor, which has not run yet.
  primary::AppendResponse need;
  need.refusal = primary::Refusal::kNeedSnapshot;
  need.hint = LogIndex(2);
  p.host().receive(primary::Message{NodeId(2), NodeId(1), primary::Epoch(1), need});
  Effects& fx = p.fx();
  while (!fx.posted.empty()) {
    auto f = std::move(fx.posted.front());
    fx.posted.pop_front();
    f();
  }
  ASSERT_EQ(fx.storage.size(), 1u) << "the snapshot image is not being built";
  // n3 is promoted (epoch 2) with a log that ends at 1: our entries 2 and 3,
  // applied, are not in it, so we must install its snapshot at 1.
  primary::Append a = epoch2_append(LogIndex(1));
  p.host().receive(primary::Message{NodeId(3), NodeId(1), primary::Epoch(2), a});
  p.host().receive(primary::Message{NodeId(3), NodeId(1), primary::Epoch(2), epoch2_snapshot()});
  ASSERT_EQ(p.host().engine().log().applied(), LogIndex(1));
  // Now the image of 3 is written, then the install is persisted.
  fx.settle();
  ASSERT_TRUE(p.host().healthy()) << p.host().failure().to_string();
  EXPECT_EQ(p.host().state().applied_index(), LogIndex(1));
  EXPECT_EQ(p.host().state().read("k").value(), std::nullopt);
  EXPECT_EQ(p.host().engine().log().snapshot().index, LogIndex(1));
  // The engine offers the installed snapshot, not the replaced image.
  ASSERT_TRUE(p.host().engine().log().term(LogIndex(1)).has_value());
  // n3's log goes on after it.
  a.commit = LogIndex(2);
  p.host().receive(primary::Message{NodeId(3), NodeId(1), primary::Epoch(2), a});
  fx.settle();
  ASSERT_TRUE(p.host().healthy()) << p.host().failure().to_string();
  EXPECT_EQ(p.host().state().applied_index(), LogIndex(2));
}

// A read's answer is posted, and its caller reads the state machine when
// the answer runs. If a leader's snapshot replaced the state in between —
// a deposed primary catching up with a successor that lost what it had
// committed — the caller would read a state older than the read's index,
// missing writes acknowledged before the read began. (The simulator,
// semi-sync seed 52: n3 answered get(k2) at 964 from its own state, and the
// next Ready, persisted inline before the answer ran, installed its
// successor's snapshot at 870.) The read fails instead: the client retries.
TEST(PrimaryHost, AReadAnswerOvertakenByALeadersSnapshotFails) {
  PrimaryHost<AckRule::kAsync> p;
  ASSERT_TRUE(p.write("v1").has_value());
  ASSERT_EQ(p.host().state().applied_index(), LogIndex(2));  // the no-op, then v1
  std::optional<Result<LogIndex>> got;
  std::optional<std::string> value;
  p.host().read(Consistency::kLinearizable, [&](Result<LogIndex> r) {
    got = r;
    if (r.is_ok()) value = p.host().state().read("k").value().value_or("<none>");
  });
  // The loop turn that confirms the barrier and posts the answer (caught
  // before it runs) ...
  ASSERT_EQ(p.fx().posted.size(), 1u);  // the pump
  auto pump = std::move(p.fx().posted.front());
  p.fx().posted.pop_front();
  pump();
  std::deque<Task> answer;
  answer.swap(p.fx().posted);
  ASSERT_FALSE(answer.empty());
  ASSERT_FALSE(got.has_value());
  // ... is followed by epoch 2's primary n2, whose log never held v1: n1
  // refuses its append (v1 is committed here) and installs its snapshot at
  // the no-op.
  p.host().receive(
      primary::Message{NodeId(2), NodeId(1), primary::Epoch(2), epoch2_append(LogIndex(2))});
  p.fx().settle();
  p.host().receive(primary::Message{NodeId(2), NodeId(1), primary::Epoch(2), epoch2_snapshot()});
  p.fx().settle();
  ASSERT_EQ(p.host().state().applied_index(), LogIndex(1)) << "n1 took n2's snapshot";
  for (auto& f : answer) f();
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->is_ok()) << "answered at index " << got->value().value()
                             << " with k = " << value.value_or("?") << " from the state of index "
                             << p.host().state().applied_index().value()
                             << ", though v1 completed before the read began";
}

}  // namespace
}  // namespace chorus::host
