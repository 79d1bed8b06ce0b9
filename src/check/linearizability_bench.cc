// Checker throughput on histories from a seeded concurrent workload (8
// clients, overlapping operations): 10,000 operations on one key (the hard
// case: one long search) and spread over 10 keys; variants with unknown ops,
// appends, and a violation to find.
#include <benchmark/benchmark.h>

#include <algorithm>

#include "base/assert.h"
#include "check/linearizability.h"
#include "check/register_workload.h"

namespace chorus::check {
namespace {

testing::RegisterWorkload workload(size_t keys) {
  testing::RegisterWorkload w;
  w.seed = 42;
  w.ops = 10'000;
  w.clients = 8;
  w.keys = keys;
  return w;
}

void run(benchmark::State& state, const testing::RegisterWorkload& w) {
  const History h = testing::generate_register_history(w);
  uint64_t steps = 0;
  for (auto _ : state) {
    CheckResult r = check_linearizable(h);
    CHORUS_ASSERT(r.verdict == Verdict::kOk);
    steps = r.steps;
    benchmark::DoNotOptimize(r);
  }
  state.counters["steps"] = static_cast<double>(steps);
  state.counters["ops_per_s"] = benchmark::Counter(static_cast<double>(h.size()),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

void BM_Check10kOps1Key(benchmark::State& state) {
  run(state, workload(1));
}
BENCHMARK(BM_Check10kOps1Key)->Unit(benchmark::kMillisecond);

void BM_Check10kOps10Keys(benchmark::State& state) {
  run(state, workload(10));
}
BENCHMARK(BM_Check10kOps10Keys)->Unit(benchmark::kMillisecond);

// 2% of the operations time out (unknown: each took effect or not) and 2% fail.
void BM_Check10kOps1KeyUnknowns(benchmark::State& state) {
  testing::RegisterWorkload w = workload(1);
  w.unknown_ratio = 0.02;
  w.fail_ratio = 0.02;
  run(state, w);
}
BENCHMARK(BM_Check10kOps1KeyUnknowns)->Unit(benchmark::kMillisecond);

// 20% appends: the state grows with every append and must be copied per step.
void BM_Check10kOps1KeyAppends(benchmark::State& state) {
  testing::RegisterWorkload w = workload(1);
  w.append_ratio = 0.2;
  run(state, w);
}
BENCHMARK(BM_Check10kOps1KeyAppends)->Unit(benchmark::kMillisecond);

// Finding a violation: 10 clients, 2% unknown writes, distinct values, and one
// read at 70% of the history returning the value of a put that completed long
// before (refuted locally, with its window).
void BM_Violation10kOps1KeyUnknowns(benchmark::State& state) {
  testing::RegisterWorkload w = workload(1);
  w.clients = 10;
  w.unknown_ratio = 0.02;
  w.distinct_values = 1000;
  History h = testing::generate_register_history(w);
  for (size_t i = h.size() * 7 / 10; i < h.size(); ++i) {
    if (h[i].kind != OpKind::kGet || h[i].status != OpStatus::kOk) continue;
    const auto stale = std::find_if(h.begin(), h.end(), [&](const Operation& op) {
      return op.kind == OpKind::kPut && op.status == OpStatus::kOk &&
             op.complete_us + 1000 < h[i].invoke_us && op.value != h[i].output;
    });
    CHORUS_ASSERT(stale != h.end());
    h[i].found = true;
    h[i].output = stale->value;
    break;
  }
  uint64_t steps = 0;
  for (auto _ : state) {
    CheckResult r = check_linearizable(h);
    CHORUS_ASSERT(r.verdict == Verdict::kViolation);
    steps = r.steps + r.window_steps;
    benchmark::DoNotOptimize(r);
  }
  state.counters["steps"] = static_cast<double>(steps);
}
BENCHMARK(BM_Violation10kOps1KeyUnknowns)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace chorus::check

BENCHMARK_MAIN();
