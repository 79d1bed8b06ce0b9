// Many groups, one disk (results go to docs/benchmarks.md, "Many groups, one
// disk: shared syncs"). N ReplicaStorage instances, each in its own
// directory on the real disk (PosixEnv), each driven like a Raft leader's
// host: one persist in flight per group, each a Ready of
// CHORUS_BENCH_ENTRIES_PER_READY entries of CHORUS_BENCH_ENTRY_BYTES, the
// next submitted from the loop as soon as the previous one's DiskDone
// arrives. Two ways to run the storage jobs, alternated in one run:
//
//   PerGroup  one StorageExecutor per group (a storage thread per group,
//             every WAL sync its own fdatasync: the server before the
//             shared executor);
//   Shared    one StorageExecutor for all groups, one storage thread: the
//             jobs of several groups under one shared sync, committed with
//             one syncfs;
//   SharedT<k> (8 groups) the shared executor with k threads, each group
//             pinned to one: k commits in flight.
//
// Per run: device syncs per second (PosixEnv::sync_counts(), every
// fdatasync, fsync and syncfs of the process), entries per second across all
// groups, and p50/p99 of the persist latency (submit to DiskDone on the
// loop). Each (groups, variant) pair runs CHORUS_BENCH_ROUNDS times, the
// variants alternating within a round, after a warm-up of 0.5 s per run that is not counted;
// the summary gives medians and Shared/PerGroup ratios.
//
// Files go to CHORUS_BENCH_DIR (default /tmp/chorus-shared-sync-bench-<pid>),
// removed at exit. CHORUS_BENCH_SECONDS per run (default 3).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/storage_executor.h"
#include "storage/env/posix_env.h"
#include "storage/replica/replica_storage.h"

namespace chorus::server {
namespace {

using Clock = std::chrono::steady_clock;
using storage::PosixEnv;

std::string g_dir;
double g_seconds = 3;
int g_rounds = 3;
size_t g_entries_per_ready = 8;
size_t g_entry_bytes = 256;
constexpr double kWarmupSeconds = 0.5;

// The node's event loop: one thread running posted tasks in order.
class Loop {
 public:
  Loop() : thread_([this] { run(); }) {}
  ~Loop() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void post(host::Task t) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      tasks_.push_back(std::move(t));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    for (;;) {
      host::Task t;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return stop_ || !tasks_.empty(); });
        if (tasks_.empty()) return;
        t = std::move(tasks_.front());
        tasks_.pop_front();
      }
      t();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<host::Task> tasks_;
  bool stop_ = false;
  std::thread thread_;
};

// One replication group's leader: persists a Ready, and when its DiskDone
// arrives (on the loop) the next. Touched only on the loop thread, except
// the atomics.
struct Group {
  std::unique_ptr<storage::ReplicaStorage> store;
  std::unique_ptr<StorageExecutor::Lane> lane;
  uint64_t next_index = 1;
  Clock::time_point submitted;
  std::vector<double> latency_us;  // persists completed after the warm-up
  std::atomic<uint64_t> persists{0};
  std::atomic<bool> in_flight{false};
  std::atomic<bool> failed{false};
};

struct Run {
  double seconds = 0;
  double syncs_per_s = 0;
  double fdatasyncs_per_s = 0;
  double syncfs_per_s = 0;
  double entries_per_s = 0;
  double p50_us = 0;
  double p99_us = 0;
};
std::map<std::string, std::vector<Run>> g_runs;  // "groups/variant" -> runs

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

std::vector<core::Entry> ready_entries(uint64_t first) {
  std::vector<core::Entry> es;
  for (size_t i = 0; i < g_entries_per_ready; ++i) {
    es.push_back(core::Entry{Term(1), LogIndex(first + i), core::EntryType::kNormal,
                             std::string(g_entry_bytes, static_cast<char>('a' + i % 26))});
  }
  return es;
}

void submit_next(Group& g, const std::atomic<bool>& stop, Clock::time_point warm) {
  if (stop.load() || g.failed.load()) {
    g.in_flight = false;
    return;
  }
  g.in_flight = true;
  auto es = std::make_shared<std::vector<core::Entry>>(ready_entries(g.next_index));
  g.next_index += es->size();
  g.submitted = Clock::now();
  g.lane->submit([&g, es] { return g.store->persist(std::nullopt, *es, std::nullopt); },
                 [&g, &stop, warm](Status st) {
                   const auto now = Clock::now();
                   if (!st.is_ok()) {
                     std::fprintf(stderr, "persist failed: %s\n", st.to_string().c_str());
                     g.failed = true;
                   }
                   if (now >= warm) {
                     g.latency_us.push_back(
                         std::chrono::duration<double, std::micro>(now - g.submitted).count());
                     g.persists.fetch_add(1);
                   }
                   submit_next(g, stop, warm);
                 });
}

// threads == 0: an executor per group; else one executor with that many threads.
Run run_groups(int groups, int threads, benchmark::State& state) {
  const bool shared = threads > 0;
  const std::string root = g_dir + "/run";
  std::filesystem::remove_all(root);
  std::vector<std::unique_ptr<Group>> gs;
  for (int i = 0; i < groups; ++i) {
    auto g = std::make_unique<Group>();
    auto s = storage::ReplicaStorage::open(PosixEnv::get(), root + "/g" + std::to_string(i));
    if (!s.is_ok()) {
      state.SkipWithError(s.status().to_string().c_str());
      return {};
    }
    g->store = std::move(s).value();
    gs.push_back(std::move(g));
  }
  Loop loop;
  std::vector<std::unique_ptr<StorageExecutor>> executors;
  for (int i = 0; i < (shared ? 1 : groups); ++i) {
    StorageExecutorOptions o;
    o.threads = shared ? static_cast<size_t>(threads) : 1;
    executors.push_back(std::make_unique<StorageExecutor>(PosixEnv::get(), o));
  }
  for (int i = 0; i < groups; ++i) {
    gs[i]->lane =
        executors[shared ? 0 : i]->open_lane([&loop](host::Task t) { loop.post(std::move(t)); });
  }
  std::atomic<bool> stop{false};
  const auto start = Clock::now();
  const auto warm = start + std::chrono::duration_cast<Clock::duration>(
                                std::chrono::duration<double>(kWarmupSeconds));
  for (auto& g : gs) {
    Group* gp = g.get();
    loop.post([gp, &stop, warm] { submit_next(*gp, stop, warm); });
  }
  std::this_thread::sleep_until(warm);
  const PosixEnv::SyncCounts c0 = PosixEnv::sync_counts();
  uint64_t p0 = 0;
  for (auto& g : gs) p0 += g->persists.load();
  std::this_thread::sleep_for(std::chrono::duration<double>(g_seconds));
  const PosixEnv::SyncCounts c1 = PosixEnv::sync_counts();
  uint64_t p1 = 0;
  for (auto& g : gs) p1 += g->persists.load();
  const double elapsed = std::chrono::duration<double>(Clock::now() - warm).count();
  stop = true;
  for (auto& g : gs) {
    while (g->in_flight.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  for (auto& g : gs) g->lane.reset();
  executors.clear();
  Run r;
  r.seconds = elapsed;
  r.syncs_per_s = static_cast<double>(c1.total() - c0.total()) / elapsed;
  r.fdatasyncs_per_s = static_cast<double>(c1.fdatasyncs - c0.fdatasyncs) / elapsed;
  r.syncfs_per_s = static_cast<double>(c1.syncfs - c0.syncfs) / elapsed;
  r.entries_per_s =
      static_cast<double>((p1 - p0) * g_entries_per_ready) / elapsed;  // persists in the window
  std::vector<double> lat;
  for (auto& g : gs) {
    if (g->failed) state.SkipWithError("a persist failed");
    lat.insert(lat.end(), g->latency_us.begin(), g->latency_us.end());
  }
  r.p50_us = percentile(lat, 0.50);
  r.p99_us = percentile(lat, 0.99);
  gs.clear();
  std::filesystem::remove_all(root);
  return r;
}

std::string variant_name(int threads) {
  if (threads == 0) return "PerGroup";
  if (threads == 1) return "Shared";
  return "SharedT" + std::to_string(threads);
}

// Args: groups, threads (0: an executor per group), round (only to alternate).
void BM_Groups(benchmark::State& state) {
  const int groups = static_cast<int>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  Run r;
  for (auto _ : state) {
    r = run_groups(groups, threads, state);
    state.SetIterationTime(r.seconds);
  }
  state.counters["syncs/s"] = r.syncs_per_s;
  state.counters["fdatasync/s"] = r.fdatasyncs_per_s;
  state.counters["syncfs/s"] = r.syncfs_per_s;
  state.counters["entries/s"] = r.entries_per_s;
  state.counters["p50_us"] = r.p50_us;
  state.counters["p99_us"] = r.p99_us;
  g_runs[std::to_string(groups) + "/" + variant_name(threads)].push_back(r);
}

double median(std::vector<double> v) {
  return percentile(std::move(v), 0.5);
}

void print_summary() {
  std::printf("\n== many groups, one disk: medians of %d rounds, %.1f s each ==\n", g_rounds,
              g_seconds);
  std::printf("%-16s %10s %10s %10s %12s %9s %9s\n", "groups/variant", "syncs/s", "fdatasync/s",
              "syncfs/s", "entries/s", "p50 ms", "p99 ms");
  std::map<std::string, Run> med;
  for (const auto& [name, runs] : g_runs) {
    auto col = [&](double Run::*f) {
      std::vector<double> v;
      for (const auto& r : runs) v.push_back(r.*f);
      return median(v);
    };
    Run m{0,
          col(&Run::syncs_per_s),
          col(&Run::fdatasyncs_per_s),
          col(&Run::syncfs_per_s),
          col(&Run::entries_per_s),
          col(&Run::p50_us),
          col(&Run::p99_us)};
    med[name] = m;
    std::printf("%-16s %10.0f %10.0f %10.0f %12.0f %9.2f %9.2f\n", name.c_str(), m.syncs_per_s,
                m.fdatasyncs_per_s, m.syncfs_per_s, m.entries_per_s, m.p50_us / 1e3,
                m.p99_us / 1e3);
  }
  for (const auto& [name, m] : med) {
    const std::string n = name.substr(0, name.find('/'));
    const std::string a = n + "/PerGroup";
    if (name == a || !med.count(a)) continue;
    std::printf(
        "%-14s / PerGroup: syncs/s %.2fx, entries/s %.2fx, p50 %.2fx, p99 %.2fx; per round "
        "entries/s:",
        name.c_str(), m.syncs_per_s / med[a].syncs_per_s, m.entries_per_s / med[a].entries_per_s,
        m.p50_us / med[a].p50_us, m.p99_us / med[a].p99_us);
    // Per-round ratios, to see the spread on a noisy disk.
    const auto& ra = g_runs[a];
    const auto& rb = g_runs[name];
    for (size_t i = 0; i < std::min(ra.size(), rb.size()); ++i)
      std::printf(" %.2f", rb[i].entries_per_s / ra[i].entries_per_s);
    std::printf("\n");
  }
}

}  // namespace
}  // namespace chorus::server

int main(int argc, char** argv) {
  using namespace chorus::server;
  g_dir = std::getenv("CHORUS_BENCH_DIR")
              ? std::getenv("CHORUS_BENCH_DIR")
              : "/tmp/chorus-shared-sync-bench-" + std::to_string(::getpid());
  if (const char* s = std::getenv("CHORUS_BENCH_SECONDS")) g_seconds = std::atof(s);
  if (const char* s = std::getenv("CHORUS_BENCH_ROUNDS")) g_rounds = std::max(1, std::atoi(s));
  if (const char* s = std::getenv("CHORUS_BENCH_ENTRIES_PER_READY"))
    g_entries_per_ready = std::max<size_t>(1, std::strtoull(s, nullptr, 10));
  if (const char* s = std::getenv("CHORUS_BENCH_ENTRY_BYTES"))
    g_entry_bytes = std::strtoull(s, nullptr, 10);
  std::filesystem::create_directories(g_dir);
  std::printf(
      "bench dir %s, %.1f s per run after %.1f s warm-up, %d rounds, Readies of %zu x %zu B, "
      "syncfs reports errors: %s\n",
      g_dir.c_str(), g_seconds, kWarmupSeconds, g_rounds, g_entries_per_ready, g_entry_bytes,
      PosixEnv::syncfs_reports_errors() ? "yes" : "no (per-file syncs)");
  // Alternate: round r runs 1/PerGroup, 1/Shared, 8/PerGroup, 8/Shared,
  // 8/SharedT2, 8/SharedT4.
  for (int r = 0; r < g_rounds; ++r) {
    for (int groups : {1, 8}) {
      for (int threads : {0, 1, 2, 4}) {
        if (groups == 1 && threads > 1) continue;
        benchmark::RegisterBenchmark((std::string("Groups/") + std::to_string(groups) + "/" +
                                      variant_name(threads) + "/round:" + std::to_string(r + 1))
                                         .c_str(),
                                     BM_Groups)
            ->Args({groups, threads, r})
            ->Iterations(1)
            ->UseManualTime()
            ->Unit(benchmark::kMillisecond);
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_summary();
  std::filesystem::remove_all(g_dir);
  return 0;
}
