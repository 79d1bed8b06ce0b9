#include "check/linearizability.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>

#include "base/prng.h"
#include "check/register_workload.h"

namespace chorus::check {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// Builders: times are [invoke, complete] in microseconds; client 0 unless set.
Operation put(std::string key, std::string value, int64_t invoke, int64_t complete) {
  Operation op;
  op.kind = OpKind::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.invoke_us = invoke;
  op.complete_us = complete;
  return op;
}

Operation get(std::string key, std::optional<std::string> output, int64_t invoke,
              int64_t complete) {
  Operation op;
  op.kind = OpKind::kGet;
  op.key = std::move(key);
  op.found = output.has_value();
  op.output = output.value_or("");
  op.invoke_us = invoke;
  op.complete_us = complete;
  return op;
}

Operation cas(std::string key, std::string expected, std::string value, bool ok, int64_t invoke,
              int64_t complete) {
  Operation op;
  op.kind = OpKind::kCas;
  op.key = std::move(key);
  op.expected = std::move(expected);
  op.value = std::move(value);
  op.cas_ok = ok;
  op.invoke_us = invoke;
  op.complete_us = complete;
  return op;
}

Operation append(std::string key, std::string value, int64_t invoke, int64_t complete) {
  Operation op = put(std::move(key), std::move(value), invoke, complete);
  op.kind = OpKind::kAppend;
  return op;
}

Operation unknown(Operation op) {
  op.status = OpStatus::kUnknown;
  op.complete_us = 0;  // ignored for unknown ops
  return op;
}

Operation failed(Operation op) {
  op.status = OpStatus::kFail;
  return op;
}

// Ids are 1, 2, 3... in list order; client i+1 for the i-th op, so no two ops
// share a client unless a test says so.
History history(std::initializer_list<Operation> ops) {
  History h(ops);
  for (size_t i = 0; i < h.size(); ++i) {
    h[i].id = i + 1;
    h[i].client = i + 1;
  }
  return h;
}

std::vector<uint64_t> ids(const std::vector<Operation>& ops) {
  std::vector<uint64_t> out;
  for (const Operation& op : ops) out.push_back(op.id);
  return out;
}

Verdict verdict(const History& h) {
  return check_linearizable(h).verdict;
}

// --- describe ------------------------------------------------------------

TEST(DescribeTest, OneLinePerOperation) {
  Operation op = put("x", "17", 120, 340);
  op.client = 3;
  EXPECT_EQ(describe(op), "c3 put(x, 17) ok [120, 340]");
  EXPECT_EQ(describe(get("x", std::nullopt, 1, 2)), "c0 get(x) -> nil ok [1, 2]");
  EXPECT_EQ(describe(get("x", "a b", 1, 2)), "c0 get(x) -> \"a b\" ok [1, 2]");
  EXPECT_EQ(describe(cas("x", "1", "2", true, 1, 2)), "c0 cas(x, 1, 2) -> true ok [1, 2]");
  EXPECT_EQ(describe(unknown(append("x", "", 5, 9))), "c0 append(x, \"\") unknown [5, ?]");
  EXPECT_EQ(describe(failed(get("x", "1", 1, 2))), "c0 get(x) fail [1, 2]");
  EXPECT_EQ(describe_value(std::string(100, 'a')),
            "\"" + std::string(64, 'a') + "\"...(100 bytes)");
}

// --- linearizable histories ---------------------------------------------------

TEST(LinearizableTest, EmptyHistory) {
  EXPECT_EQ(verdict({}), Verdict::kOk);
}

TEST(LinearizableTest, SequentialOperations) {
  EXPECT_EQ(verdict(history({
                get("x", std::nullopt, 0, 1),
                put("x", "1", 2, 3),
                get("x", "1", 4, 5),
                cas("x", "1", "2", true, 6, 7),
                cas("x", "1", "3", false, 8, 9),
                get("x", "2", 10, 11),
                append("x", "a", 12, 13),
                get("x", "2a", 14, 15),
            })),
            Verdict::kOk);
}

TEST(LinearizableTest, ConcurrentGetMaySeeOldOrNewValue) {
  for (const char* seen : {"1", "2"}) {
    EXPECT_EQ(verdict(history({
                  put("x", "1", 0, 10),
                  put("x", "2", 20, 60),
                  get("x", seen, 30, 40),
              })),
              Verdict::kOk)
        << seen;
  }
}

TEST(LinearizableTest, ConcurrentReadsMayDisagreeWhileWriteIsRunning) {
  // Both reads overlap the put and each other: "old" can linearize first.
  EXPECT_EQ(verdict(history({
                put("x", "1", 0, 10),
                put("x", "2", 20, 100),
                get("x", "2", 30, 50),
                get("x", "1", 40, 60),
            })),
            Verdict::kOk);
}

TEST(LinearizableTest, TouchingIntervalsCountAsConcurrent) {
  EXPECT_EQ(verdict(history({put("x", "1", 0, 10), get("x", std::nullopt, 10, 20)})), Verdict::kOk);
}

TEST(LinearizableTest, UnknownPutObservedLater) {
  EXPECT_EQ(verdict(history({
                unknown(put("x", "1", 0, 0)),
                get("x", std::nullopt, 5, 8),
                get("x", "1", 1000, 1010),
            })),
            Verdict::kOk);
}

TEST(LinearizableTest, UnknownPutNeverObserved) {
  EXPECT_EQ(verdict(history({
                unknown(put("x", "9", 5, 0)),
                get("x", std::nullopt, 10, 20),
                put("x", "1", 30, 40),
                get("x", "1", 50, 60),
            })),
            Verdict::kOk);
}

TEST(LinearizableTest, UnknownPutMayTakeEffectLongAfterLaterWrites) {
  EXPECT_EQ(verdict(history({
                unknown(put("x", "2", 0, 0)),
                put("x", "1", 10, 20),
                get("x", "1", 30, 40),
                get("x", "2", 50, 60),
            })),
            Verdict::kOk);
}

TEST(LinearizableTest, UnknownGetAndUnknownCasOutputsAreIgnored) {
  Operation lying_get = unknown(get("x", "never-written", 0, 0));
  Operation lying_cas = unknown(cas("x", "nope", "3", true, 0, 0));
  EXPECT_EQ(verdict(history({put("x", "1", 0, 1), lying_get, lying_cas, get("x", "1", 5, 6)})),
            Verdict::kOk);
}

TEST(LinearizableTest, UnknownCasMaySwapWhenItMatches) {
  EXPECT_EQ(verdict(history({
                put("x", "1", 0, 10),
                unknown(cas("x", "1", "2", false, 20, 0)),
                get("x", "1", 30, 40),
                get("x", "2", 50, 60),
            })),
            Verdict::kOk);
}

TEST(LinearizableTest, CasSuccessAndFailure) {
  EXPECT_EQ(verdict(history({
                cas("x", "0", "1", false, 0, 1),  // missing key never matches
                put("x", "0", 2, 3),
                cas("x", "0", "1", true, 4, 10),
                cas("x", "0", "2", false, 5, 11),  // concurrent loser
                get("x", "1", 12, 13),
            })),
            Verdict::kOk);
}

TEST(LinearizableTest, ConcurrentAppendsInEitherOrder) {
  for (const char* seen : {"ab", "ba"}) {
    EXPECT_EQ(verdict(history({
                  append("x", "a", 0, 10),
                  append("x", "b", 5, 15),
                  get("x", seen, 20, 30),
              })),
              Verdict::kOk)
        << seen;
  }
}

// Regression: a put of the value the key already holds changes nothing where it
// is tried first, but it is no read: placed after put 2 it does change the
// state, and that order is the only linearization.
TEST(LinearizableTest, RewriteOfCurrentValueIsNotTreatedAsARead) {
  EXPECT_EQ(verdict(history({
                put("x", "0", 156, 201),
                put("x", "0", 215, 309),
                put("x", "2", 222, 249),
                get("x", "0", 251, 359),
            })),
            Verdict::kOk);
}

TEST(LinearizableTest, FailedOperationsAreIgnored) {
  EXPECT_EQ(verdict(history({
                failed(put("x", "1", 0, 10)),
                get("x", std::nullopt, 20, 30),
                failed(get("x", "garbage", 40, 50)),
            })),
            Verdict::kOk);
}

// --- violations -----------------------------------------------------------------

TEST(ViolationTest, StaleReadAfterWriteCompleted) {
  CheckResult r = check_linearizable(history({
      put("x", "1", 0, 10),
      put("x", "2", 20, 30),
      get("x", "1", 40, 50),
  }));
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.key, "x");
  EXPECT_EQ(r.failed_op_id, 3u);
  // put 1 is cut off: from any state, put 2 then get 1 is already impossible.
  EXPECT_THAT(ids(r.window), ElementsAre(2, 3));
}

TEST(ViolationTest, LostAcknowledgedWrite) {
  CheckResult r = check_linearizable(history({
      put("x", "1", 0, 10),
      get("x", "1", 20, 30),
      put("x", "2", 40, 50),  // acknowledged...
      get("x", "1", 60, 70),  // ...but later reads see the older value
      get("x", "1", 80, 90),
  }));
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 4u);
  EXPECT_THAT(ids(r.window), ElementsAre(3, 4));
}

TEST(ViolationTest, LostFirstWriteReadsNil) {
  CheckResult r = check_linearizable(history({
      put("x", "1", 0, 10),
      get("x", std::nullopt, 20, 30),
  }));
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_THAT(ids(r.window), ElementsAre(1, 2));
}

TEST(ViolationTest, NonMonotonicReads) {
  CheckResult r = check_linearizable(history({
      put("x", "1", 0, 10), put("x", "2", 20, 100),  // still running during both reads
      get("x", "2", 30, 40), get("x", "1", 50, 60),  // invoked after the read of 2 completed
  }));
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 4u);
  // Any state, then 2 is read, then 1 without a write of 1: put 1 is not needed.
  // The running put 2 is listed as optional.
  EXPECT_THAT(ids(r.window), ElementsAre(2, 3, 4));
}

TEST(ViolationTest, UnknownWriteCannotExplainValueNobodyWrote) {
  EXPECT_EQ(verdict(history({
                unknown(put("x", "1", 0, 0)),
                get("x", "2", 10, 20),
            })),
            Verdict::kViolation);
}

TEST(ViolationTest, UnknownWriteCannotTakeEffectBeforeItsInvocation) {
  CheckResult r = check_linearizable(history({
      get("x", "1", 0, 10),
      unknown(put("x", "1", 20, 0)),
  }));
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 1u);
}

TEST(ViolationTest, UnknownWriteTakesEffectAtMostOnce) {
  CheckResult r = check_linearizable(history({
      unknown(put("x", "1", 0, 0)),
      get("x", "1", 10, 20),
      put("x", "2", 30, 40),
      get("x", "1", 50, 60),
  }));
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 4u);
}

TEST(ViolationTest, CasReportsSuccessOnMismatch) {
  EXPECT_EQ(verdict(history({put("x", "1", 0, 10), cas("x", "2", "3", true, 20, 30)})),
            Verdict::kViolation);
  EXPECT_EQ(verdict(history({cas("x", "", "3", true, 20, 30)})), Verdict::kViolation);
}

TEST(ViolationTest, TwoConcurrentCasBothSucceed) {
  EXPECT_EQ(verdict(history({
                put("x", "0", 0, 10),
                cas("x", "0", "1", true, 20, 40),
                cas("x", "0", "2", true, 25, 45),
            })),
            Verdict::kViolation);
}

TEST(ViolationTest, CasReportsFailureOnMatch) {
  EXPECT_EQ(verdict(history({put("x", "1", 0, 10), cas("x", "1", "2", false, 20, 30)})),
            Verdict::kViolation);
}

TEST(ViolationTest, AppendOrderViolation) {
  CheckResult r = check_linearizable(history({
      append("x", "a", 0, 10),
      append("x", "b", 20, 30),
      get("x", "ba", 40, 50),
  }));
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 3u);
  // Whatever the value was, after appending b it ends with b: append a is not needed.
  EXPECT_THAT(ids(r.window), ElementsAre(2, 3));
}

TEST(ViolationTest, FailedOpCannotExplainARead) {
  EXPECT_EQ(verdict(history({failed(put("x", "1", 0, 10)), get("x", "1", 20, 30)})),
            Verdict::kViolation);
}

// --- partitioning, window, report --------------------------------------------------

TEST(PartitionTest, ViolationIsReportedWithItsKey) {
  CheckResult r = check_linearizable(history({
      put("a", "1", 0, 10),
      put("b", "1", 0, 10),
      put("c", "1", 0, 10),
      get("a", "1", 20, 30),
      put("b", "2", 20, 30),
      get("c", "1", 20, 30),
      get("b", "1", 40, 50),  // stale on b only
      get("a", "1", 40, 50),
  }));
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.key, "b");
  EXPECT_EQ(r.failed_op_id, 7u);
  for (const Operation& op : r.window) EXPECT_EQ(op.key, "b");
  ASSERT_EQ(r.keys.size(), 2u);  // stops at the violation: c is not checked
  EXPECT_EQ(r.keys[0].key, "a");
  EXPECT_EQ(r.keys[0].verdict, Verdict::kOk);
  EXPECT_EQ(r.keys[1].key, "b");
  EXPECT_EQ(r.keys[1].verdict, Verdict::kViolation);
}

TEST(PartitionTest, KeysAreIndependent) {
  // On one register this would be a stale read; on two keys it is fine.
  EXPECT_EQ(verdict(history({put("x", "1", 0, 10), put("y", "2", 20, 30), get("x", "1", 40, 50)})),
            Verdict::kOk);
  CheckResult r = check_linearizable(history({put("x", "1", 0, 1), put("y", "1", 0, 1)}));
  EXPECT_EQ(r.keys.size(), 2u);
}

TEST(WindowTest, ReportNamesKeyWindowAndFailingOp) {
  History h = history({
      put("x", "1", 0, 10),
      put("x", "2", 20, 30),
      get("x", "1", 40, 50),
  });
  CheckResult r = check_linearizable(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_THAT(r.report, HasSubstr("key x"));
  EXPECT_THAT(r.report, HasSubstr("    #2 " + describe(h[1]) + "\n"));
  EXPECT_THAT(r.report, HasSubstr("  * #3 " + describe(h[2]) + "\n"));
  EXPECT_THAT(r.report, Not(HasSubstr(describe(h[0]))));
  EXPECT_THAT(r.report, HasSubstr("held when it had to have taken effect: 2\n"));
}

TEST(WindowTest, LongLinearizableHistoryBeforeTheViolationIsTrimmed) {
  testing::RegisterWorkload w;
  w.seed = 7;
  w.ops = 2000;
  w.put_ratio = 0.5;
  w.cas_ratio = 0;
  History h = testing::generate_register_history(w);
  int64_t end_us = 0;
  for (const Operation& op : h) end_us = std::max(end_us, op.complete_us);
  // Then, after a quiet period: a write, and a read that misses it.
  h.push_back(put("k0", "new", end_us + 100, end_us + 110));
  h.push_back(get("k0", "old", end_us + 120, end_us + 130));
  h.end()[-2].id = 10'001;
  h.end()[-1].id = 10'002;
  CheckResult r = check_linearizable(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 10'002u);
  EXPECT_THAT(ids(r.window), ElementsAre(10'001, 10'002));
}

TEST(WindowTest, FieldsSayWhichOpsAreOptionalAndWhereTheWindowStarts) {
  CheckResult r = check_linearizable(history({
      put("x", "1", 0, 10),
      put("x", "2", 20, 30),
      put("x", "3", 35, 100),
      get("x", "1", 40, 50),
  }));
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_THAT(ids(r.window), ElementsAre(2, 3, 4));
  EXPECT_THAT(r.window_optional, ElementsAre(false, true, false));
  EXPECT_TRUE(r.window_from_any_state);
}

TEST(WindowTest, WithoutMinimizingTheWindowIsEveryOpUpToTheFailure) {
  CheckOptions opts;
  opts.minimize_window = false;
  CheckResult r =
      check_linearizable(history({
                             put("x", "1", 0, 10), put("x", "2", 20, 30), get("x", "1", 40, 50),
                             get("x", "2", 45, 70),  // still running: optional
                             put("x", "3", 60, 70),  // invoked after: not in the window
                         }),
                         opts);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_THAT(ids(r.window), ElementsAre(1, 2, 3));  // the running get has no effect: dropped
  EXPECT_EQ(r.window_steps, 0u);
}

TEST(WindowTest, RunningWritesAreOptionalInTheWindow) {
  CheckResult r = check_linearizable(history({
      put("x", "1", 0, 10),
      put("x", "2", 20, 30),
      put("x", "3", 35, 100),  // running when the read completes
      get("x", "1", 40, 50),
  }));
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 4u);
  EXPECT_THAT(ids(r.window), ElementsAre(2, 3, 4));
  EXPECT_THAT(r.report, HasSubstr("  ? #3 "));
}

TEST(MalformedTest, CompletionBeforeInvocation) {
  CheckResult r = check_linearizable(history({put("x", "1", 10, 5)}));
  EXPECT_EQ(r.verdict, Verdict::kMalformed);
  EXPECT_THAT(ids(r.window), ElementsAre(1));
  // Unknown ops have no meaningful completion: not malformed.
  EXPECT_EQ(verdict(history({unknown(put("x", "1", 10, 0))})), Verdict::kOk);
}

// --- reductions and local refutation -------------------------------------------------

// 40 unknown writes that nobody reads, all pending to the end, then a stale
// read. Each could take effect anywhere: 2^40 placements without the value
// abstraction and the symmetry between identical optional ops.
TEST(ReductionTest, ManyUnobservedUnknownWritesStayCheap) {
  History h;
  for (int i = 0; i < 40; ++i) h.push_back(unknown(put("x", "u" + std::to_string(i), i, 0)));
  h.push_back(put("x", "1", 100, 110));
  h.push_back(get("x", "1", 120, 130));
  h.push_back(put("x", "2", 140, 150));
  h.push_back(get("x", "1", 160, 170));
  for (size_t i = 0; i < h.size(); ++i) h[i].id = h[i].client = i + 1;
  CheckResult r = check_linearizable(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 44u);
  EXPECT_LT(r.steps, 10'000u);
}

// A long busy history with 3% unknown ops, and one read that returns the value
// of a put that completed long before: exhausting the configurations before it
// is hopeless, so the violation is proved by a window that fails from any
// state (local refutation).
TEST(ReductionTest, ViolationAmongUnknownWritesIsRefutedLocally) {
  testing::RegisterWorkload w;
  w.seed = 3;
  w.ops = 3000;
  w.clients = 10;
  w.unknown_ratio = 0.03;
  w.distinct_values = 1000;
  History h = testing::generate_register_history(w);
  Operation* victim = nullptr;
  std::string stale;
  for (size_t i = 2000; i < h.size() && !victim; ++i) {
    if (h[i].kind != OpKind::kGet || h[i].status != OpStatus::kOk) continue;
    for (size_t j = 0; j < i; ++j) {
      if (h[j].kind == OpKind::kPut && h[j].status == OpStatus::kOk &&
          h[j].complete_us + 1000 < h[i].invoke_us && h[j].value != h[i].output) {
        victim = &h[i];
        stale = h[j].value;
        break;
      }
    }
  }
  ASSERT_NE(victim, nullptr);
  victim->found = true;
  victim->output = stale;
  CheckResult r = check_linearizable(h);
  ASSERT_EQ(r.verdict, Verdict::kViolation) << r.report;
  EXPECT_EQ(r.failed_op_id, victim->id);
  EXPECT_TRUE(r.window_from_any_state);
  const auto required = std::count(r.window_optional.begin(), r.window_optional.end(), false);
  EXPECT_LT(required, 50);
}

// --- KvRegisterModel ---------------------------------------------------------------

using State = KvRegisterModel::State;
using Kind = State::Kind;

std::optional<State> step(const State& s, const Operation& op) {
  return KvRegisterModel::step(s, op);
}

TEST(KvRegisterModelTest, FromAnyStateReadsLearnAndAppendsKeepASuffix) {
  const State any = KvRegisterModel::any();
  EXPECT_EQ(step(any, get("x", "7", 0, 1)), (State{Kind::kPresent, "7"}));
  EXPECT_EQ(step(any, get("x", std::nullopt, 0, 1)), (State{Kind::kAbsent, ""}));
  const State ends_with_ab = *step(*step(any, append("x", "a", 0, 1)), append("x", "b", 0, 1));
  EXPECT_EQ(ends_with_ab, (State{Kind::kAnySuffix, "ab"}));
  EXPECT_EQ(step(ends_with_ab, get("x", "zzab", 0, 1)), (State{Kind::kPresent, "zzab"}));
  EXPECT_EQ(step(ends_with_ab, get("x", "ba", 0, 1)), std::nullopt);
  EXPECT_EQ(step(ends_with_ab, get("x", std::nullopt, 0, 1)), std::nullopt);
  EXPECT_EQ(step(ends_with_ab, cas("x", "b", "c", true, 0, 1)), std::nullopt);
  EXPECT_EQ(step(ends_with_ab, cas("x", "ab", "c", true, 0, 1)), (State{Kind::kPresent, "c"}));
  EXPECT_EQ(step(ends_with_ab, cas("x", "ab", "c", false, 0, 1)), ends_with_ab);
}

TEST(KvRegisterModelTest, CasOnAConcreteState) {
  const State one{Kind::kPresent, "1"};
  EXPECT_EQ(step(one, cas("x", "1", "2", true, 0, 1)), (State{Kind::kPresent, "2"}));
  EXPECT_EQ(step(one, cas("x", "1", "2", false, 0, 1)), std::nullopt);
  EXPECT_EQ(step(one, cas("x", "3", "2", false, 0, 1)), one);
  EXPECT_EQ(step(one, unknown(cas("x", "1", "2", false, 0, 1))), (State{Kind::kPresent, "2"}));
  EXPECT_EQ(step(one, unknown(cas("x", "3", "2", true, 0, 1))), one);
  EXPECT_EQ(step(State{}, cas("x", "", "2", true, 0, 1)), std::nullopt);  // missing never matches
}

TEST(KvRegisterModelTest, AbstractMergesOnlyValuesNobodyCanObserve) {
  History h = history({
      unknown(put("x", "seen", 0, 0)),
      unknown(put("x", "prefix", 0, 0)),
      unknown(put("x", "expected", 0, 0)),
      unknown(put("x", "lost1", 0, 0)),
      cas("x", "expected", "lost2", true, 0, 1),
      get("x", "seen", 0, 1),
      get("x", "prefix+appended", 0, 1),
  });
  KvRegisterModel::abstract(h, 0);
  EXPECT_EQ(h[0].value, "seen");
  EXPECT_EQ(h[1].value, "prefix");
  EXPECT_EQ(h[2].value, "expected");
  EXPECT_EQ(h[3].value, h[4].value);  // lost1 and lost2 became one placeholder
  EXPECT_NE(h[3].value, "lost1");
  EXPECT_EQ(h[4].expected, "expected");
}

// --- budget -------------------------------------------------------------------------

// 14 mutually concurrent puts, then a read of a value none of them wrote: the
// search must try every subset of the puts before it can say no.
History hard_history() {
  History h;
  for (int i = 0; i < 14; ++i) h.push_back(put("x", std::to_string(i), 0, 1000));
  h.push_back(get("x", "nobody", 500, 2000));
  for (size_t i = 0; i < h.size(); ++i) h[i].id = h[i].client = i + 1;
  return h;
}

TEST(BudgetTest, TinyBudgetGivesUnknown) {
  CheckOptions opts;
  opts.max_steps = 1000;
  CheckResult r = check_linearizable(hard_history(), opts);
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_EQ(r.steps, 1000u);
  EXPECT_EQ(r.key, "x");
}

TEST(BudgetTest, EnoughBudgetFindsTheViolation) {
  CheckResult r = check_linearizable(hard_history());
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 15u);
  EXPECT_GT(r.steps, 1u << 14);  // every subset of the puts was visited
}

TEST(BudgetTest, BudgetIsSharedAcrossKeys) {
  History h = hard_history();
  h.push_back(put("y", "1", 0, 10));
  h.back().id = 100;
  CheckOptions opts;
  opts.max_steps = 500;
  CheckResult r = check_linearizable(h, opts);
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  ASSERT_EQ(r.keys.size(), 2u);
  EXPECT_EQ(r.keys[0].verdict, Verdict::kUnknown);
  EXPECT_EQ(r.keys[1].verdict, Verdict::kUnknown);  // nothing left for y
}

// --- randomized -------------------------------------------------------------------

TEST(RandomizedTest, GeneratedHistoriesAreLinearizableAndMutationsAreCaught) {
  Prng prng(2024);
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    testing::RegisterWorkload w;
    w.seed = seed;
    w.ops = 300 + prng.uniform(0, 700);
    w.clients = 2 + prng.uniform(0, 8);
    w.keys = 1 + prng.uniform(0, 3);
    w.append_ratio = prng.chance(0.3) ? 0.1 : 0;
    w.unknown_ratio = prng.chance(0.5) ? 0.02 : 0;
    w.fail_ratio = prng.chance(0.5) ? 0.02 : 0;
    w.distinct_values = 2 + prng.uniform(0, 8);
    History h = testing::generate_register_history(w);
    CheckResult ok = check_linearizable(h);
    ASSERT_EQ(ok.verdict, Verdict::kOk) << "seed " << seed << "\n" << ok.report;

    // A completed read now returns a value nobody wrote.
    std::vector<size_t> reads;
    for (size_t i = 0; i < h.size(); ++i) {
      if (h[i].kind == OpKind::kGet && h[i].status == OpStatus::kOk) reads.push_back(i);
    }
    ASSERT_FALSE(reads.empty());
    Operation& victim = h[reads[prng.uniform(0, reads.size() - 1)]];
    victim.found = true;
    victim.output = "NEVER";
    CheckResult bad = check_linearizable(h);
    ASSERT_EQ(bad.verdict, Verdict::kViolation) << "seed " << seed;
    EXPECT_EQ(bad.key, victim.key);
    // Everything before the victim's completion is still linearizable, so it
    // is exactly the op the search could not get past.
    EXPECT_EQ(bad.failed_op_id, victim.id) << "seed " << seed << "\n" << bad.report;
    EXPECT_TRUE(std::any_of(bad.window.begin(), bad.window.end(),
                            [&](const Operation& op) { return op.id == victim.id; }));
  }
}

// --- generic models -----------------------------------------------------------------

// A counter without an "any" state: put adds its value, get reads the total.
struct CounterModel {
  using State = int64_t;
  static State initial() { return 0; }
  static std::optional<State> step(State s, const Operation& op) {
    if (op.kind == OpKind::kPut) return s + std::stoll(op.value);
    if (op.status == OpStatus::kUnknown || std::stoll(op.output) == s) return s;
    return std::nullopt;
  }
  static uint64_t hash(State s) { return static_cast<uint64_t>(s); }
  static bool is_read_only(const Operation& op) { return op.kind == OpKind::kGet; }
  static std::string describe(State s) { return std::to_string(s); }
};
static_assert(Model<CounterModel> && !ModelWithAnyState<CounterModel>);
static_assert(ModelWithAnyState<KvRegisterModel>);

TEST(GenericModelTest, CounterModel) {
  History h = history(
      {put("c", "2", 0, 10), put("c", "3", 5, 15), get("c", "3", 8, 20), get("c", "5", 30, 40)});
  EXPECT_EQ(check_partition<CounterModel>(h).verdict, Verdict::kOk);
  h[2].output = "4";
  CheckResult r = check_partition<CounterModel>(h);
  EXPECT_EQ(r.verdict, Verdict::kViolation);
  EXPECT_EQ(r.failed_op_id, 3u);
  EXPECT_THAT(ids(r.window), ElementsAre(1, 2, 3));  // no any(): everything up to the failure
}

}  // namespace
}  // namespace chorus::check
