// The nemesis's pure parts: reply classification, key rotation, the
// list-append check and the availability figures.
#include <gtest/gtest.h>

#include "nemesis_analysis.h"
#include "nemesis_workload.h"

namespace chorus::tools::nemesis {
namespace {

using check::Operation;
using check::OpKind;
using check::OpStatus;

Operation append(uint64_t id, const std::string& v, int64_t inv, int64_t cmp,
                 OpStatus st = OpStatus::kOk) {
  Operation op;
  op.id = id;
  op.client = id;
  op.kind = OpKind::kAppend;
  op.key = "a0.0";
  op.value = "," + v;
  op.invoke_us = inv;
  op.complete_us = cmp;
  op.status = st;
  return op;
}

Operation read(uint64_t id, const std::string& out, int64_t inv, int64_t cmp) {
  Operation op;
  op.id = id;
  op.client = id;
  op.kind = OpKind::kGet;
  op.key = "a0.0";
  op.found = !out.empty();
  op.output = out;
  op.invoke_us = inv;
  op.complete_us = cmp;
  return op;
}

AppendCheck run_check(const check::History& h, const std::string& final) {
  return check_appends(h, {{"a0.0", final}});
}

TEST(NemesisReplyTest, OnlyRefusalsBeforeProposingAreFailures) {
  Operation w;
  w.kind = OpKind::kPut;
  record_reply(w, {Reply::Type::kError, "TRYAGAIN no leader", 0});
  EXPECT_EQ(w.status, OpStatus::kFail);
  record_reply(w, {Reply::Type::kError, "TRYAGAIN too many pending writes", 0});
  EXPECT_EQ(w.status, OpStatus::kFail);
  record_reply(w, {Reply::Type::kError, "TRYAGAIN too many uncommitted writes; retry later", 0});
  EXPECT_EQ(w.status, OpStatus::kFail) << "refused at its first offer: never in a log";
  record_reply(w, {Reply::Type::kError,
                   "UNCERTAIN request timed out; the write may or may not have been applied", 0});
  EXPECT_EQ(w.status, OpStatus::kUnknown);
  record_reply(w, {Reply::Type::kError,
                   "UNCERTAIN too many uncommitted writes on a retry; the write may or may not "
                   "have been applied",
                   0});
  EXPECT_EQ(w.status, OpStatus::kUnknown);
  record_reply(w, {Reply::Type::kError, "ERR node failed: FailStopped: fsync", 0});
  EXPECT_EQ(w.status, OpStatus::kUnknown);
  record_reply(w, {});  // timeout or connection lost
  EXPECT_EQ(w.status, OpStatus::kUnknown);
  record_reply(w, {Reply::Type::kStatus, "OK", 0});
  EXPECT_EQ(w.status, OpStatus::kOk);
}

TEST(NemesisReplyTest, ARefusalNamingTheServingNodeRedirects) {
  EXPECT_EQ(redirect_to("TRYAGAIN this node is not the primary; node 3 is: send writes there"), 3);
  EXPECT_EQ(redirect_to("TRYAGAIN this node is not the leader; node 2 is: send writes there"), 2);
  EXPECT_EQ(redirect_to("TRYAGAIN this node is not the primary; node 12 is: send reads there, or "
                        "read here with CHORUS.CONSISTENCY follower"),
            12);
  EXPECT_EQ(redirect_to("TRYAGAIN no leader"), std::nullopt);
  EXPECT_EQ(redirect_to("UNCERTAIN this node is not the primary; node 3 is"), std::nullopt)
      << "only a refusal redirects";
  EXPECT_EQ(redirect_to("TRYAGAIN x; node 0 is"), std::nullopt);
  EXPECT_EQ(redirect_to("TRYAGAIN x; node 3x is"), std::nullopt);
  EXPECT_EQ(redirect_to("TRYAGAIN x; node "), std::nullopt);
}

TEST(NemesisReplyTest, ReadsAndCas) {
  Operation g;
  g.kind = OpKind::kGet;
  record_reply(g, {Reply::Type::kNil, "", 0});
  EXPECT_EQ(g.status, OpStatus::kOk);
  EXPECT_FALSE(g.found);
  record_reply(g, {Reply::Type::kString, "v", 0});
  EXPECT_TRUE(g.found);
  EXPECT_EQ(g.output, "v");
  record_reply(g, {Reply::Type::kError, "TRYAGAIN read timed out", 0});
  EXPECT_EQ(g.status, OpStatus::kFail);  // a read has no effect either way
  Operation c;
  c.kind = OpKind::kCas;
  record_reply(c, {Reply::Type::kInteger, "", 1});
  EXPECT_EQ(c.status, OpStatus::kOk);
  EXPECT_TRUE(c.cas_ok);
  record_reply(c, {Reply::Type::kInteger, "", 0});
  EXPECT_FALSE(c.cas_ok);
}

TEST(NemesisKeyRingTest, RotatesAfterOpsPerKey) {
  KeyRing ring("r", 2, 3);
  EXPECT_EQ(ring.key(0, true), "r0.0");
  EXPECT_EQ(ring.key(0, true), "r0.0");
  EXPECT_EQ(ring.key(0, false), "r0.0");
  EXPECT_EQ(ring.key(0, true), "r0.0");
  EXPECT_EQ(ring.key(0, true), "r0.1");
  EXPECT_EQ(ring.all_keys(), (std::vector<std::string>{"r0.0", "r0.1", "r1.0"}));
}

TEST(NemesisAppendCheckTest, CleanHistoryPasses) {
  check::History h = {append(1, "x", 0, 10),     read(2, ",x", 5, 20),
                      append(3, "y", 15, 30),    append(4, "z", 16, 40, OpStatus::kUnknown),
                      read(5, ",x,y,z", 50, 60), append(6, "w", 55, 70, OpStatus::kFail)};
  const AppendCheck c = run_check(h, ",x,y,z");
  EXPECT_FALSE(c.violation) << (c.problems.empty() ? "" : c.problems[0]);
  EXPECT_EQ(c.acked_appends, 2u);
  EXPECT_EQ(c.appends_in_final, 3u);
}

TEST(NemesisAppendCheckTest, LostAcknowledgedAppendIsReported) {
  check::History h = {append(1, "x", 0, 10), append(2, "y", 20, 30)};
  const AppendCheck c = run_check(h, ",x");
  ASSERT_TRUE(c.violation);
  EXPECT_NE(c.problems[0].find("acknowledged append lost"), std::string::npos) << c.problems[0];
}

TEST(NemesisAppendCheckTest, DuplicateAndRefusedValuesAreReported) {
  check::History h = {append(1, "x", 0, 10), append(2, "y", 0, 10, OpStatus::kFail)};
  EXPECT_TRUE(run_check(h, ",x,x").violation);
  const AppendCheck refused = run_check(h, ",x,y");
  ASSERT_TRUE(refused.violation);
  EXPECT_NE(refused.problems[0].find("refused"), std::string::npos);
  EXPECT_TRUE(run_check(h, ",x,q").violation);  // never appended
}

TEST(NemesisAppendCheckTest, ReadThatIsNotAPrefixIsReported) {
  check::History h = {append(1, "x", 0, 10), append(2, "y", 0, 10), read(3, ",y", 20, 30)};
  const AppendCheck c = run_check(h, ",x,y");
  ASSERT_TRUE(c.violation);
  EXPECT_NE(c.problems[0].find("not a prefix"), std::string::npos);
}

TEST(NemesisAppendCheckTest, StaleReadBreaksRealTimeOrder) {
  // x acknowledged at 10; a read invoked at 20 does not see it.
  check::History h = {append(1, "x", 0, 10), read(2, "", 20, 30)};
  const AppendCheck c = run_check(h, ",x");
  ASSERT_TRUE(c.violation);
  EXPECT_NE(c.problems[0].find("real-time order"), std::string::npos);
  EXPECT_EQ(c.window.size(), 2u);
}

TEST(NemesisAppendCheckTest, AppendsOrderedAgainstRealTimeAreReported) {
  // y was invoked after x completed, yet the final read has y first.
  check::History h = {append(1, "x", 0, 10), append(2, "y", 20, 30)};
  EXPECT_TRUE(run_check(h, ",y,x").violation);
  // Concurrent ones may go either way.
  check::History h2 = {append(1, "x", 0, 30), append(2, "y", 10, 20)};
  EXPECT_FALSE(run_check(h2, ",y,x").violation);
}

TEST(NemesisAppendCheckTest, ReadsGoingBackwardsAreReported) {
  check::History h = {append(1, "x", 0, 100), read(2, ",x", 10, 20), read(3, "", 30, 40)};
  EXPECT_TRUE(run_check(h, ",x").violation);
}

TEST(NemesisAppendCheckTest, KeyWithoutFinalReadIsCountedNotJudged) {
  check::History h = {append(1, "x", 0, 10)};
  const AppendCheck c = check_appends(h, {});
  EXPECT_FALSE(c.violation);
  EXPECT_EQ(c.keys_no_final, 1u);
}

TEST(NemesisFiguresTest, UnavailabilityIsTimeToTheNextAcknowledgedWrite) {
  FaultEvent f;
  f.kind = FaultKind::kKill;
  f.shape = "kill-leader";
  f.start_us = 1'000'000;
  f.end_us = 3'000'000;
  check::History h = {append(1, "a", 900'000, 1'100'000),  // invoked before the fault
                      append(2, "b", 1'200'000, 1'500'000, OpStatus::kUnknown),
                      read(3, ",a", 1'300'000, 1'310'000),  // a read does not count
                      append(4, "c", 1'400'000, 1'750'000),
                      append(5, "d", 1'800'000, 1'700'000 + 200'000)};
  const auto ms = unavailability_ms(h, {f});
  ASSERT_TRUE(ms[0].has_value());
  EXPECT_DOUBLE_EQ(*ms[0], 750.0);
  const auto spread = unavailability_spread({f, f}, {750.0, std::nullopt}, false);
  ASSERT_EQ(spread.size(), 1u);
  EXPECT_EQ(spread[0].label, "kill");
  EXPECT_EQ(spread[0].faults, 2u);
  EXPECT_EQ(spread[0].without_write, 1u);
  EXPECT_DOUBLE_EQ(spread[0].max_ms, 750.0);
  const Availability a = availability(h, {f}, 5'000'000);
  EXPECT_EQ(a.total, 5u);
  EXPECT_EQ(a.during_faults, 4u);
  EXPECT_EQ(a.ok_during_faults, 3u);
}

// ---------------------------------------------------------------------------
// Arguments and fault timing

TEST(NemesisArgsTest, FaultListKeepsOrderDropsRepeatsAndKnowsStall) {
  std::string bad;
  EXPECT_EQ(parse_fault_list("stall,kill,partition,stall", &bad),
            (std::vector<FaultKind>{FaultKind::kStall, FaultKind::kKill, FaultKind::kPartition}));
  EXPECT_EQ(parse_fault_list("all", &bad),
            (std::vector<FaultKind>{FaultKind::kKill, FaultKind::kPause, FaultKind::kStall,
                                    FaultKind::kPartition, FaultKind::kRestart}));
  EXPECT_EQ(parse_fault_list("none", &bad), std::vector<FaultKind>{});
  EXPECT_EQ(parse_fault_list("", &bad), std::vector<FaultKind>{});
  EXPECT_EQ(parse_fault_list("kill,,pause", &bad),
            (std::vector<FaultKind>{FaultKind::kKill, FaultKind::kPause}));
  EXPECT_FALSE(parse_fault_list("kill,sleep", &bad).has_value());
  EXPECT_EQ(bad, "sleep");
  EXPECT_EQ(fault_kind_names(), "kill, pause, stall, partition, restart");
}

TEST(NemesisArgsTest, ConsistencyModesAreTheServersNames) {
  EXPECT_EQ(parse_consistency("linearizable"), Consistency::kLinearizable);
  EXPECT_EQ(parse_consistency("lease"), Consistency::kLease);
  EXPECT_EQ(parse_consistency("follower"), Consistency::kFollower);
  EXPECT_FALSE(parse_consistency("strong").has_value());
  EXPECT_FALSE(parse_consistency("").has_value());
}

TEST(NemesisStallTest, StallOutlastsTheElectionTimeoutButNotByMuch) {
  using std::chrono::milliseconds;
  const StallRange defaults = stall_range(10, 10);  // the default config: 100 ms
  EXPECT_EQ(defaults.min, milliseconds(150));
  EXPECT_EQ(defaults.max, milliseconds(600));
  const StallRange slow = stall_range(20, 25);  // 500 ms
  EXPECT_EQ(slow.min, milliseconds(750));
  EXPECT_EQ(slow.max, milliseconds(3000));
}

// ---------------------------------------------------------------------------
// Follower reads

Operation reg_write(uint64_t id, OpKind kind, const std::string& v, int64_t inv, int64_t cmp,
                    OpStatus st = OpStatus::kOk, bool cas_ok = true) {
  Operation op;
  op.id = id;
  op.client = id;
  op.kind = kind;
  op.key = "r0.0";
  op.value = v;
  op.cas_ok = kind == OpKind::kCas && cas_ok;
  op.invoke_us = inv;
  op.complete_us = cmp;
  op.status = st;
  return op;
}

Operation reg_read(uint64_t id, const std::optional<std::string>& out, int64_t inv, int64_t cmp) {
  Operation op = read(id, out.value_or(""), inv, cmp);
  op.key = "r0.0";
  op.found = out.has_value();
  return op;
}

FollowerReadCheck follower_registers(const check::History& h) {
  return check_follower_reads(h, WorkloadKind::kRegister, {});
}

TEST(NemesisFollowerReadTest, RegisterReadOfAnOverwrittenValueIsStaleNotAViolation) {
  // x acknowledged at 10; y invoked after that, acknowledged at 30; a read
  // invoked at 40 still returns x.
  check::History h = {reg_write(1, OpKind::kPut, "x", 0, 10),
                      reg_write(2, OpKind::kPut, "y", 20, 30), reg_read(3, "x", 40, 50),
                      reg_read(4, "y", 41, 51)};
  const FollowerReadCheck c = follower_registers(h);
  EXPECT_FALSE(c.violation) << (c.problems.empty() ? "" : c.problems[0]);
  EXPECT_EQ(c.reads, 2u);
  EXPECT_EQ(c.stale, 1u);
}

TEST(NemesisFollowerReadTest, RegisterWritesOfUnknownOrderDoNotCountAsStale) {
  // y was invoked before x was acknowledged: either may be the later one.
  check::History h = {reg_write(1, OpKind::kPut, "x", 0, 10),
                      reg_write(2, OpKind::kPut, "y", 5, 30), reg_read(3, "x", 40, 50)};
  EXPECT_EQ(follower_registers(h).stale, 0u);
  // Nor does a value whose write has no known completion.
  check::History u = {reg_write(1, OpKind::kPut, "x", 0, 10, OpStatus::kUnknown),
                      reg_write(2, OpKind::kPut, "y", 20, 30), reg_read(3, "x", 40, 50)};
  const FollowerReadCheck c = follower_registers(u);
  EXPECT_FALSE(c.violation);
  EXPECT_EQ(c.stale, 0u);
}

TEST(NemesisFollowerReadTest, RegisterAbsentAfterAnAcknowledgedWriteIsStale) {
  check::History h = {reg_write(1, OpKind::kCas, "x", 0, 10), reg_read(2, std::nullopt, 5, 8),
                      reg_read(3, std::nullopt, 20, 30)};
  const FollowerReadCheck c = follower_registers(h);
  EXPECT_FALSE(c.violation);
  EXPECT_EQ(c.reads, 2u);
  EXPECT_EQ(c.stale, 1u);  // only the read invoked after the CAS was acknowledged
}

TEST(NemesisFollowerReadTest, RegisterValueNoClientWroteIsAViolation) {
  check::History h = {reg_write(1, OpKind::kPut, "x", 0, 10), reg_read(2, "zz", 20, 30)};
  const FollowerReadCheck c = follower_registers(h);
  ASSERT_TRUE(c.violation);
  EXPECT_NE(c.problems[0].find("no client wrote"), std::string::npos) << c.problems[0];
}

TEST(NemesisFollowerReadTest, RegisterValueOfAWriteThatDidNotTakeEffectIsAViolation) {
  check::History refused = {reg_write(1, OpKind::kPut, "x", 0, 10, OpStatus::kFail),
                            reg_read(2, "x", 20, 30)};
  EXPECT_TRUE(follower_registers(refused).violation);
  check::History not_swapped = {reg_write(1, OpKind::kCas, "x", 0, 10, OpStatus::kOk, false),
                                reg_read(2, "x", 20, 30)};
  EXPECT_TRUE(follower_registers(not_swapped).violation);
  // A CAS of unknown outcome may have swapped: reading its value proves it did.
  check::History maybe = {reg_write(1, OpKind::kCas, "x", 0, 10, OpStatus::kUnknown, false),
                          reg_read(2, "x", 20, 30)};
  EXPECT_FALSE(follower_registers(maybe).violation);
}

TEST(NemesisFollowerReadTest, RegisterValueFromTheFutureIsAViolation) {
  check::History h = {reg_read(1, "x", 10, 20), reg_write(2, OpKind::kPut, "x", 30, 40)};
  const FollowerReadCheck c = follower_registers(h);
  ASSERT_TRUE(c.violation);
  EXPECT_NE(c.problems[0].find("only after it completed"), std::string::npos) << c.problems[0];
  EXPECT_EQ(c.window.size(), 2u);
  // Overlapping is fine: the write may have been applied before the read.
  check::History overlap = {reg_read(1, "x", 10, 35), reg_write(2, OpKind::kPut, "x", 30, 40)};
  EXPECT_FALSE(follower_registers(overlap).violation);
}

FollowerReadCheck follower_appends(const check::History& h, const std::string& final) {
  return check_follower_reads(h, WorkloadKind::kAppend, {{"a0.0", final}});
}

TEST(NemesisFollowerReadTest, AppendReadMissingAnAcknowledgedAppendIsStale) {
  check::History h = {append(1, "x", 0, 10),   append(2, "y", 20, 30),
                      read(3, ",x", 40, 50),  // misses y, acknowledged at 30
                      read(4, ",x,y", 41, 51), read(5, "", 5, 8),
                      read(6, ",x", 25, 35)};  // y not yet acknowledged when it began
  const FollowerReadCheck c = follower_appends(h, ",x,y");
  EXPECT_FALSE(c.violation) << (c.problems.empty() ? "" : c.problems[0]);
  EXPECT_EQ(c.reads, 4u);
  EXPECT_EQ(c.stale, 1u);
}

TEST(NemesisFollowerReadTest, AppendReadThatIsNotACommittedPrefixIsAViolation) {
  check::History h = {append(1, "x", 0, 10), append(2, "y", 0, 10), read(3, ",y", 20, 30)};
  const FollowerReadCheck c = follower_appends(h, ",x,y");
  ASSERT_TRUE(c.violation);
  EXPECT_NE(c.problems[0].find("not a prefix"), std::string::npos) << c.problems[0];
}

TEST(NemesisFollowerReadTest, AppendReadHoldingALaterAppendIsAViolation) {
  check::History h = {read(1, ",x", 10, 20), append(2, "x", 30, 40)};
  const FollowerReadCheck c = follower_appends(h, ",x");
  ASSERT_TRUE(c.violation);
  EXPECT_NE(c.problems[0].find("appended only after"), std::string::npos) << c.problems[0];
}

TEST(NemesisFollowerReadTest, AppendKeyWithoutFinalReadIsCountedNotJudged) {
  check::History h = {append(1, "x", 0, 10), read(2, ",zz", 20, 30)};
  const FollowerReadCheck c = check_follower_reads(h, WorkloadKind::kAppend, {});
  EXPECT_FALSE(c.violation);
  EXPECT_EQ(c.reads, 0u);
  EXPECT_EQ(c.unchecked, 1u);
}

}  // namespace
}  // namespace chorus::tools::nemesis

namespace chorus::tools::nemesis {
namespace {

check::Operation put(uint64_t id, const std::string& v, int64_t inv, int64_t cmp,
                     check::OpStatus st = check::OpStatus::kOk) {
  check::Operation op;
  op.id = id;
  op.client = id;
  op.kind = check::OpKind::kPut;
  op.key = "r0.0";
  op.value = v;
  op.invoke_us = inv;
  op.complete_us = cmp;
  op.status = st;
  return op;
}

check::Operation get(uint64_t id, const std::string& out, int64_t inv, int64_t cmp) {
  check::Operation op;
  op.id = id;
  op.client = id;
  op.kind = check::OpKind::kGet;
  op.key = "r0.0";
  op.found = !out.empty();
  op.output = out;
  op.invoke_us = inv;
  op.complete_us = cmp;
  return op;
}

check::Operation cas(uint64_t id, const std::string& expected, const std::string& v, bool swapped,
                     int64_t inv, int64_t cmp) {
  check::Operation op = put(id, v, inv, cmp);
  op.kind = check::OpKind::kCas;
  op.expected = expected;
  op.cas_ok = swapped;
  return op;
}

bool linearizable(const check::History& h) {
  return check::check_partition<check::KvRegisterModel>(h, {}).verdict == check::Verdict::kOk;
}

// An async failover: "b" was acknowledged, read, then lost; the final read
// sees "a". Not linearizable as recorded; linearizable once the reported
// loss is removed with the read of it — and still a violation when the loss
// was not reported.
TEST(NemesisLostWritesTest, LinearizableOnlyOnceExactlyTheReportedLossIsRemoved) {
  const check::History h = {put(1, "a", 0, 10), put(2, "b", 20, 30), get(3, "b", 40, 50),
                            get(4, "a", 60, 70)};
  EXPECT_FALSE(linearizable(h));
  LostWritesRemoved removed;
  const check::History without = without_lost_writes(h, {{"r0.0", "b"}}, &removed);
  EXPECT_EQ(removed.acknowledged, 1u);
  EXPECT_EQ(removed.reads, 1u);
  EXPECT_EQ(without.size(), 2u);
  EXPECT_TRUE(linearizable(without));
  // An unreported loss stays a violation.
  LostWritesRemoved none;
  EXPECT_FALSE(linearizable(without_lost_writes(h, {}, &none)));
  // A write its client was told failed is not excused, nor a read of it.
  const check::History refused = {put(6, "d", 0, 5, check::OpStatus::kFail), get(7, "d", 10, 20)};
  LostWritesRemoved kept;
  EXPECT_EQ(without_lost_writes(refused, {{"r0.0", "d"}}, &kept).size(), 2u);
  EXPECT_FALSE(linearizable(without_lost_writes(refused, {{"r0.0", "d"}}, &kept)));
  // Failed or indeterminate writes are counted apart.
  LostWritesRemoved other;
  (void)without_lost_writes({put(5, "c", 0, 5, check::OpStatus::kUnknown)}, {{"r0.0", "c"}},
                            &other);
  EXPECT_EQ(other.other, 1u);
  EXPECT_EQ(other.acknowledged, 0u);
}

}  // namespace
// The nemesis, async seed 5: a node forwarded c8's put of "x" to the
// primary, which appended it but could not answer (a one-way partition);
// the node offered it again to the next primary, which applied it, and a
// compare-and-set built on it. The old primary reported its copy lost.
// Removing "x" makes the swap impossible; keeping that one report passes.
TEST(NemesisLostWritesTest, AReportedWriteTheHistoryShowsSurvivedIsKept) {
  const check::History h = {put(1, "a", 0, 10), put(2, "x", 20, 30), get(3, "x", 40, 50),
                            cas(4, "x", "y", true, 60, 70), get(5, "y", 80, 90)};
  const std::set<std::pair<std::string, std::string>> lost = {{"r0.0", "x"}};
  LostWritesRemoved removed;
  EXPECT_FALSE(linearizable(without_lost_writes(h, lost, &removed)));
  const LossyKeyCheck c = check_key_with_losses(h, lost);
  EXPECT_EQ(c.result.verdict, check::Verdict::kOk);
  EXPECT_EQ(c.kept, 1u);
  EXPECT_EQ(c.tries, 2u);
  EXPECT_EQ(c.removed.acknowledged, 0u);
  EXPECT_EQ(c.removed.reads, 0u);
}

// A real loss is still removed (nothing kept), and of two reports only the
// one the history refutes is kept.
TEST(NemesisLostWritesTest, OnlyTheReportsTheHistoryRefutesAreKept) {
  const check::History lost_for_real = {put(1, "a", 0, 10), put(2, "b", 20, 30),
                                        get(3, "b", 40, 50), get(4, "a", 60, 70)};
  const LossyKeyCheck real = check_key_with_losses(lost_for_real, {{"r0.0", "b"}});
  EXPECT_EQ(real.result.verdict, check::Verdict::kOk);
  EXPECT_EQ(real.kept, 0u);
  EXPECT_EQ(real.removed.acknowledged, 1u);
  EXPECT_EQ(real.removed.reads, 1u);
  // "b" lost (read, then the register went back to "a"); "x" survived.
  const check::History both = {put(1, "a", 0, 10),   put(2, "b", 20, 30),
                               get(3, "b", 40, 50),  get(4, "a", 60, 70),
                               put(5, "x", 80, 90),  cas(6, "x", "y", true, 100, 110),
                               get(7, "y", 120, 130)};
  const LossyKeyCheck c = check_key_with_losses(both, {{"r0.0", "b"}, {"r0.0", "x"}});
  EXPECT_EQ(c.result.verdict, check::Verdict::kOk);
  EXPECT_EQ(c.kept, 1u);
  EXPECT_EQ(c.removed.acknowledged, 1u);  // "b"
  EXPECT_EQ(c.removed.reads, 1u);         // the read of "b"
}

// No subset explains a history whose reported write was both read and then
// lost (so it must go) and swapped on afterwards (so it must stay): the
// violation stands, decided.
TEST(NemesisLostWritesTest, AViolationNoSubsetExplainsStands) {
  const check::History h = {put(1, "a", 0, 10), put(2, "x", 20, 30), get(3, "x", 40, 50),
                            get(4, "a", 60, 70), cas(5, "x", "y", true, 80, 90)};
  const LossyKeyCheck c = check_key_with_losses(h, {{"r0.0", "x"}});
  EXPECT_EQ(c.result.verdict, check::Verdict::kViolation);
  EXPECT_FALSE(c.undecided);
  EXPECT_EQ(c.kept, 0u);
  EXPECT_EQ(c.tries, 2u);
}

// Only a reported write a successful, unreported swap expected may be kept;
// ten of them, all needed, take 2^10 subsets: past the budget the key is
// undecided, not a violation; within it, all ten are kept.
TEST(NemesisLostWritesTest, OnlyWritesASwapNeededAreCandidatesAndTheBudgetLeavesAKeyUndecided) {
  check::History h = {put(1, "a", 0, 10)};
  std::set<std::pair<std::string, std::string>> lost;
  for (int i = 0; i < 10; ++i) {
    const std::string z = "z" + std::to_string(i);
    const int64_t t = 100 + 100 * i;
    h.push_back(put(10 + 2 * i, z, t, t + 10));
    h.push_back(cas(11 + 2 * i, z, "w" + std::to_string(i), true, t + 20, t + 30));
    lost.emplace("r0.0", z);
  }
  // Reported writes nothing expected: never candidates (no extra tries).
  h.push_back(put(40, "n0", 2000, 2010));
  h.push_back(put(41, "n1", 2020, 2030));
  lost.emplace("r0.0", "n0");
  lost.emplace("r0.0", "n1");
  const LossyKeyCheck capped = check_key_with_losses(h, lost, 20);
  EXPECT_EQ(capped.result.verdict, check::Verdict::kViolation);
  EXPECT_TRUE(capped.undecided);
  EXPECT_EQ(capped.tries, 20u);
  const LossyKeyCheck full = check_key_with_losses(h, lost, 2000);
  EXPECT_EQ(full.result.verdict, check::Verdict::kOk);
  EXPECT_FALSE(full.undecided);
  EXPECT_EQ(full.kept, 10u);
  EXPECT_EQ(full.tries, 1024u);              // every smaller keep-set first, then all ten
  EXPECT_EQ(full.removed.acknowledged, 2u);  // n0 and n1
}

}  // namespace chorus::tools::nemesis
