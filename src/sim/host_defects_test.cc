// The host's defects found in review, each as a deterministic story in the
// simulator — which runs the production host (host/replica_host.h). Each of
// these tests failed before its fix (the commit that fixed it says how that
// was checked); each names the consequence it guards against.

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "sim/scenario.h"

namespace chorus::sim {
namespace {

using check::OpKind;
using check::OpStatus;

using testing::quiet;
using HostDefects = testing::RaftScenarioTest;

// Defect 1: the lease was counted in loop turns. A leader whose event loop
// stalled longer than an election timeout came back believing its lease
// held, and served a lease read of a value another leader had overwritten
// meanwhile (a stale read). Ticks now follow the monotonic clock: the
// stalled leader catches up on every tick it missed before it reads.
TEST_F(HostDefects, StalledLeaderDoesNotServeAStaleLeaseReadWhenItResumes) {
  RunOptions o = quiet(11);
  o.knobs["lease_reads"] = 1;
  make(o);
  const size_t old = wait_for_leader();
  ASSERT_EQ(put(old, "k1", "old").status, OpStatus::kOk);
  c().run_for(50 * kMillisecond);  // heartbeat rounds confirmed: the lease holds
  ASSERT_TRUE(c().host(old).read_ready_now(host::Consistency::kLease));

  // The leader's process stops and the others cannot hear it: they elect a
  // new leader, which overwrites the value.
  c().isolate(old);
  c().stall(old, 1 * kSecond);  // ten election timeouts; shorter than a client waits
  const size_t next = wait_for_new_leader(old);
  ASSERT_NE(next, old);
  ASSERT_EQ(put(next, "k1", "new").status, OpStatus::kOk);

  // While still stalled, the old leader receives a lease read: it runs first
  // thing when the loop resumes (after its tick timer, before any message).
  const size_t r = c().submit_async(old, OpKind::kGet, "k1", "", host::Consistency::kLease);
  c().run_until([&] { return c().op(r).complete_us != 0; }, 3 * kSecond);
  const check::Operation& read = c().op(r);
  EXPECT_TRUE(read.status != OpStatus::kOk || read.output == "new")
      << "the stalled leader served \"" << read.output << "\" from an expired lease";
  c().heal();
  expect_clean(c().finish());
}

// Defect 2: when a Ready truncated a follower's log (a new leader
// overwriting an uncommitted suffix) and committed the new entries in the
// same Ready, the host applied them early — before they, or the truncation,
// were durable — because its durable index still covered the old suffix.
// A kill -9 then left a state machine that survives crashes (RocksDB) ahead
// of its log, with different entries at the same indexes.
TEST_F(HostDefects, FollowerNeverAppliesEntriesTheSameReadyIsReplacing) {
  RunOptions o = quiet(12, 5);
  o.durable_state_machine = 1;
  o.faults.min_fsync_us = o.faults.max_fsync_us = 10 * kMillisecond;
  make(o);
  const size_t a = wait_for_leader();
  const size_t b = (a + 1) % 5;
  ASSERT_EQ(put(a, "k1", "base").status, OpStatus::kOk);
  // b hears a, and nothing else hears anything of a or b.
  auto& net = c().network();
  for (int i = 0; i < 5; ++i) {
    for (int j = 0; j < 5; ++j) {
      const bool ab = (i == int(a) || i == int(b) || j == int(a) || j == int(b));
      if (i != j && ab && !(i == int(a) && j == int(b))) net.block(i, j);
    }
  }
  for (int k = 0; k < 3; ++k) c().submit_async(a, OpKind::kPut, "k1", "x" + std::to_string(k));
  c().run_for(100 * kMillisecond);  // b has a's suffix durably; a cannot commit it
  const size_t l2 = wait_for_new_leader(a);
  ASSERT_NE(l2, b);
  for (int k = 0; k < 5; ++k)
    ASSERT_EQ(put(l2, "k1", "y" + std::to_string(k)).status, OpStatus::kOk);

  // b reconnects to the new leader (a stays cut off). The first append that
  // reaches b replaces a's suffix and commits its replacement at once; b is
  // killed while that Ready's fsync is still running.
  bool replacing = false;
  c().on_deliver([&](const raft::Message& m) {
    if (auto* ae = std::get_if<raft::AppendEntries>(&m.body);
        ae && m.to == c().engine(b).id() && !ae->entries.empty() &&
        ae->leader_commit >= ae->entries.front().index) {
      replacing = true;
    }
  });
  net.split({static_cast<int>(a)});
  ASSERT_TRUE(c().run_until([&] { return replacing; }, 3 * kSecond));
  c().run_for(2 * kMillisecond);
  c().crash(b);
  c().restart(b);
  expect_clean(c().finish());
}

// Defect 3: after a restart with a state machine that survives crashes and
// is past the snapshot, the host took the applied term from the snapshot.
// The next snapshot was then written as snap-<applied>-<stale term> and the
// core aborted on its assertion (a crash loop).
TEST_F(HostDefects, RestartedHostRecoversTheAppliedTermFromTheLog) {
  RunOptions o = quiet(13, 1);
  o.durable_state_machine = 1;
  o.snapshot_every_entries = 10;
  make(o);
  ASSERT_TRUE(c().run_until([&] { return c().leader().has_value(); }, 3 * kSecond));
  for (int k = 0; k < 12; ++k) ASSERT_EQ(put(0, "k1", std::to_string(k)).status, OpStatus::kOk);
  // A new term: the next entries carry it.
  c().crash(0);
  c().restart(0);
  ASSERT_TRUE(c().run_until([&] { return c().leader().has_value(); }, 3 * kSecond));
  const Term t2 = c().host(0).soft_state().term;
  for (int k = 0; k < 12; ++k)
    ASSERT_EQ(put(0, "k1", "b" + std::to_string(k)).status, OpStatus::kOk);
  c().run_for(100 * kMillisecond);
  const LogIndex applied = c().state(0).applied_index();
  // The newest snapshot is damaged: recovery falls back to the older one, and
  // the state machine is far past it, at an entry of the new term.
  c().crash(0);
  c().corrupt_snapshot(0);
  c().restart(0);
  ASSERT_TRUE(c().up(0));
  const host::HostStatus st = c().host(0).status();
  EXPECT_EQ(st.applied_index, applied);
  EXPECT_EQ(st.applied_term, t2) << "the applied term must come from the log, not the snapshot";
  ASSERT_TRUE(c().run_until([&] { return c().leader().has_value(); }, 3 * kSecond));
  EXPECT_EQ(put(0, "k1", "after").status, OpStatus::kOk);
  expect_clean(c().finish());
}

// Defect 4a: a write that timed out after it was proposed was reported as
// TRYAGAIN ("certainly not executed"), so Redis Cluster clients retried it
// with a new sequence number and an INCR or APPEND could apply twice.
TEST_F(HostDefects, AProposedWriteThatTimesOutIsIndeterminateNotTryAgain) {
  make(quiet(14));
  const size_t l = wait_for_leader();
  c().isolate(l);
  std::optional<Status> outcome;
  kvpb::Command cmd = kv::make_append("k1", "x");
  cmd.set_client_id(1000);
  cmd.set_seq(1);
  c().host(l).write(cmd, [&](Result<kvpb::Result> r) { outcome = r.status(); });
  ASSERT_TRUE(c().run_until([&] { return outcome.has_value(); }, 5 * kSecond));
  EXPECT_EQ(outcome->code(), StatusCode::kIndeterminate) << outcome->to_string();
  c().heal();
  expect_clean(c().finish());
}

// Defect 4b: a write re-offered after its retry interval that met "too many
// uncommitted bytes" was reported as TRYAGAIN, though its first offer may
// still commit.
TEST_F(HostDefects, ARetryRefusedForUncommittedBytesIsIndeterminate) {
  RunOptions o = quiet(15);
  o.knobs["max_uncommitted_bytes"] = 100;
  o.knobs["check_quorum"] = 0;  // the cut-off leader stays leader: its retries meet the limit
  make(o);
  const size_t l = wait_for_leader();
  c().isolate(l);  // nothing commits: the first offer's bytes stay uncommitted
  std::optional<Status> first;
  std::optional<Status> second;
  Time first_at = 0;
  kvpb::Command cmd = kv::make_put("k1", std::string(60, 'v'));
  cmd.set_client_id(1001);
  cmd.set_seq(1);
  const Time t0 = c().now();
  c().host(l).write(cmd, [&](Result<kvpb::Result> r) {
    first = r.status();
    first_at = c().now();
  });
  // A write refused at its first offer certainly never entered the log.
  kvpb::Command cmd2 = kv::make_put("k2", std::string(200, 'v'));
  cmd2.set_client_id(1002);
  cmd2.set_seq(1);
  c().host(l).write(cmd2, [&](Result<kvpb::Result> r) { second = r.status(); });
  ASSERT_TRUE(c().run_until([&] { return first && second; }, 5 * kSecond));
  EXPECT_EQ(second->code(), StatusCode::kBusy) << second->to_string();
  // The first was offered, then refused when offered again after the retry
  // interval (200 ms here), long before its request timeout.
  EXPECT_EQ(first->code(), StatusCode::kIndeterminate) << first->to_string();
  EXPECT_LT(first_at - t0, c().options().client_timeout_us / 2) << first->to_string();
  c().heal();
  expect_clean(c().finish());
}

// Defect 5: a read a follower forwarded to its leader was never asked again
// when that leader died with the request; the client hung for the whole
// request timeout. Forwarded reads are now re-asked when a new leader
// appears (and after the retry interval).
TEST_F(HostDefects, ForwardedReadsSurviveTheLeadersDeathQuickly) {
  RunOptions o = quiet(16);
  o.client_timeout_us = 5 * kSecond;  // long: a hung read would show as slow, not failed
  make(o);
  const size_t l = wait_for_leader();
  ASSERT_EQ(put(l, "k1", "v").status, OpStatus::kOk);
  const size_t f = (l + 1) % 3;
  std::vector<size_t> reads;
  for (int k = 0; k < 5; ++k) reads.push_back(c().submit_async(f, OpKind::kGet, "k1", ""));
  c().crash(l);  // the forwarded ReadIndex requests die with it
  ASSERT_TRUE(c().run_until(
      [&] {
        for (size_t r : reads) {
          if (c().op(r).complete_us == 0) return false;
        }
        return true;
      },
      6 * kSecond));
  for (size_t r : reads) {
    const auto& op = c().op(r);
    EXPECT_EQ(op.status, OpStatus::kOk);
    EXPECT_EQ(op.output, "v");
    // An election (<= 2 election timeouts of 100 ms) plus a round trip, far
    // below the 5 s a read that is never re-asked waits.
    EXPECT_LT(op.complete_us - op.invoke_us, 1 * kSecond) << "read " << op.id;
  }
  c().restart(l);
  expect_clean(c().finish());
}

}  // namespace
}  // namespace chorus::sim
