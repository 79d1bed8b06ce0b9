// Storage benchmarks (results go to docs/benchmarks.md). Every figure is set
// against a baseline measured in the same run on the same disk:
//
//   Baseline/RawAppend4K      4 KiB pwrite that extends the file + fdatasync
//                             (what a WAL append costs at the file-system level)
//   Baseline/RawOverwrite4K   4 KiB pwrite over existing data + fdatasync
//                             (no size change: the file system's best case)
//   WalVsRawLatency/<bytes>   one thread alternating a raw 4 KiB append+fdatasync
//                             and a 1-appender WAL append: p50/p99 of each
//   WalAppend/<bytes>/<appenders>
//                             GroupCommitWal::append_next_and_wait from N
//                             threads; entries/s, MB/s, mean latency
//   Recovery                  Wal::open (read + verify every record) of a log
//                             of CHORUS_BENCH_RECOVERY_MB (default 256; set
//                             1024 for the 1 GiB figure), cold (page cache
//                             dropped for the files with POSIX_FADV_DONTNEED)
//                             and warm
//   Snapshot{Write,Load}      1M keys (16 B key + 100 B value) as raw bytes
//                             through SnapshotWriter / load_latest
//
// Files go to CHORUS_BENCH_DIR (default /tmp/chorus-storage-bench-<pid>),
// removed at exit. Each benchmark runs for CHORUS_BENCH_SECONDS (default 3).
// A summary compares the results with the goals in the storage issue.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/env/posix_env.h"
#include "storage/snapshot/snapshot_store.h"
#include "storage/wal/group_commit_wal.h"
#include "storage/wal/wal.h"

namespace chorus::storage {
namespace {

using Clock = std::chrono::steady_clock;

std::string g_dir;
double g_seconds = 3;
uint64_t g_recovery_mb = 256;
std::map<std::string, double> g_results;  // summary figures by name
std::mutex g_results_mu;

void record(const std::string& name, double value) {
  std::lock_guard lock(g_results_mu);
  g_results[name] = value;
}

double since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string fresh_dir(const std::string& name) {
  const std::string dir = g_dir + "/" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Drops the page cache for every file under dir (clean pages only; they are
// clean after fdatasync), so the next read comes from the disk.
void drop_cache(const std::string& dir) {
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const int fd = ::open(e.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

// ---------------------------------------------------------------- baseline

void raw_4k(benchmark::State& state, bool overwrite) {
  const std::string dir = fresh_dir("raw");
  const std::string path = dir + "/raw.dat";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    state.SkipWithError("open failed");
    return;
  }
  std::string block(4096, 'x');
  if (overwrite && (::pwrite(fd, block.data(), block.size(), 0) != 4096 || ::fdatasync(fd) != 0)) {
    state.SkipWithError("prepare failed");
  }
  uint64_t ops = 0;
  double elapsed = 0;
  for (auto _ : state) {
    const auto start = Clock::now();
    while (since(start) < g_seconds) {
      const off_t at = overwrite ? 0 : static_cast<off_t>(ops * block.size());
      if (::pwrite(fd, block.data(), block.size(), at) != 4096 || ::fdatasync(fd) != 0) {
        state.SkipWithError("write/fdatasync failed");
        break;
      }
      ++ops;
    }
    elapsed = since(start);
    state.SetIterationTime(elapsed);
  }
  ::close(fd);
  const double rate = static_cast<double>(ops) / elapsed;
  state.counters["syncs/s"] = rate;
  state.counters["latency_us"] = 1e6 / rate;
  record(overwrite ? "raw_overwrite_per_s" : "raw_append_per_s", rate);
}

void BM_RawAppend4K(benchmark::State& state) {
  raw_4k(state, false);
}
void BM_RawOverwrite4K(benchmark::State& state) {
  raw_4k(state, true);
}

// ---------------------------------------------------------------- WAL append

void BM_WalAppend(benchmark::State& state) {
  const size_t entry_bytes = static_cast<size_t>(state.range(0));
  const int appenders = static_cast<int>(state.range(1));
  const std::string dir = fresh_dir("append");
  auto wal = Wal::open(PosixEnv::get(), dir);
  if (!wal.is_ok()) {
    state.SkipWithError(wal.status().to_string().c_str());
    return;
  }
  GroupCommitWal gc(std::move(wal).value());
  std::atomic<uint64_t> appended{0};
  std::atomic<bool> failed{false};
  double elapsed = 0;
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    const auto start = Clock::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < appenders; ++t) {
      threads.emplace_back([&] {
        const std::string data(entry_bytes, 'e');
        while (!stop.load(std::memory_order_relaxed)) {
          if (!gc.append_next_and_wait(Term(1), core::EntryType::kNormal, data).is_ok()) {
            failed = true;
            return;
          }
          appended.fetch_add(1, std::memory_order_relaxed);
        }
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(g_seconds));
    stop = true;
    for (auto& th : threads) th.join();
    elapsed = since(start);
    state.SetIterationTime(elapsed);
  }
  if (failed) state.SkipWithError("append failed");
  const double rate = static_cast<double>(appended.load()) / elapsed;
  const auto stats = gc.stats();
  state.counters["entries/s"] = rate;
  state.counters["MB/s"] = rate * static_cast<double>(entry_bytes) / 1e6;
  state.counters["latency_us"] = 1e6 * appenders / rate;
  state.counters["entries/sync"] = static_cast<double>(stats.requests) /
                                   static_cast<double>(std::max<uint64_t>(1, stats.batches));
  record("wal_" + std::to_string(entry_bytes) + "_" + std::to_string(appenders) + "_per_s", rate);
}

// One thread alternates a raw 4 KiB append+fdatasync and a WAL append (one
// entry, waits for durability), so both see the same disk conditions: the
// fdatasync latency of a shared virtual disk drifts by 10x within minutes.
void BM_WalVsRawLatency(benchmark::State& state) {
  const size_t entry_bytes = static_cast<size_t>(state.range(0));
  const std::string dir = fresh_dir("paired");
  const int fd = ::open((dir + "/raw.dat").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  auto wal = Wal::open(PosixEnv::get(), dir + "/wal");
  if (fd < 0 || !wal.is_ok()) {
    state.SkipWithError("open failed");
    return;
  }
  GroupCommitWal gc(std::move(wal).value());
  const std::string block(4096, 'x');
  const std::string data(entry_bytes, 'e');
  std::vector<double> raw_us, wal_us;
  for (auto _ : state) {
    const auto start = Clock::now();
    while (since(start) < g_seconds) {
      auto t = Clock::now();
      const off_t at = static_cast<off_t>(raw_us.size() * block.size());
      if (::pwrite(fd, block.data(), block.size(), at) != 4096 || ::fdatasync(fd) != 0) {
        state.SkipWithError("raw write failed");
        break;
      }
      raw_us.push_back(since(t) * 1e6);
      t = Clock::now();
      if (!gc.append_next_and_wait(Term(1), core::EntryType::kNormal, data).is_ok()) {
        state.SkipWithError("wal append failed");
        break;
      }
      wal_us.push_back(since(t) * 1e6);
    }
    state.SetIterationTime(since(start));
  }
  ::close(fd);
  auto pct = [](std::vector<double> v, double p) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
  };
  const double raw50 = pct(raw_us, 0.5), wal50 = pct(wal_us, 0.5);
  state.counters["pairs"] = static_cast<double>(wal_us.size());
  state.counters["raw_p50_us"] = raw50;
  state.counters["raw_p99_us"] = pct(raw_us, 0.99);
  state.counters["wal_p50_us"] = wal50;
  state.counters["wal_p99_us"] = pct(wal_us, 0.99);
  state.counters["wal/raw_p50"] = raw50 > 0 ? wal50 / raw50 : 0;
  const std::string key = "paired_" + std::to_string(entry_bytes);
  record(key + "_raw_p50", raw50);
  record(key + "_wal_p50", wal50);
}

// ---------------------------------------------------------------- recovery

void BM_Recovery(benchmark::State& state) {
  const std::string dir = fresh_dir("recovery");
  const uint64_t target = g_recovery_mb << 20;
  {
    auto wal = std::move(Wal::open(PosixEnv::get(), dir, WalOptions{.write_buffer_bytes = 8 << 20}))
                   .value();
    std::vector<core::Entry> batch;
    uint64_t bytes = 0;
    uint64_t index = 1;
    while (bytes < target) {
      batch.clear();
      for (int i = 0; i < 1024; ++i, ++index) {
        batch.push_back(
            {Term(1), LogIndex(index), core::EntryType::kNormal, std::string(1024, 'r')});
        bytes += 1024 + kRecordHeaderBytes;
      }
      if (!wal->append(batch).is_ok()) state.SkipWithError("append failed");
    }
    if (!wal->sync().is_ok()) state.SkipWithError("sync failed");
  }
  double cold_mb_s = 0, warm_mb_s = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    drop_cache(dir);
    auto start = Clock::now();
    auto wal = Wal::open(PosixEnv::get(), dir);
    const double cold = since(start);
    if (!wal.is_ok()) {
      state.SkipWithError(wal.status().to_string().c_str());
      break;
    }
    bytes = (*wal)->recovery().bytes;
    wal = Status::aborted("closed");
    start = Clock::now();
    wal = Wal::open(PosixEnv::get(), dir);
    const double warm = since(start);
    state.SetIterationTime(cold);
    cold_mb_s = static_cast<double>(bytes) / 1e6 / cold;
    warm_mb_s = static_cast<double>(bytes) / 1e6 / warm;
  }
  state.counters["log_MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["cold_MB/s"] = cold_mb_s;
  state.counters["warm_MB/s"] = warm_mb_s;
  record("recovery_cold_mb_s", cold_mb_s);
  record("recovery_warm_mb_s", warm_mb_s);
  std::filesystem::remove_all(dir);
}

// ---------------------------------------------------------------- snapshots

constexpr int kSnapshotKeys = 1'000'000;

void BM_Snapshot(benchmark::State& state) {
  const std::string dir = fresh_dir("snapshot");
  auto store = std::move(SnapshotStore::open(PosixEnv::get(), dir)).value();
  std::string kv(116, 'v');
  double write_s = 0, load_cold_s = 0, load_warm_s = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    auto start = Clock::now();
    auto w = std::move(store->begin(core::SnapshotMeta{LogIndex(kSnapshotKeys), Term(1)})).value();
    for (int k = 0; k < kSnapshotKeys; ++k) {
      std::snprintf(kv.data(), 17, "key%013d", k);  // 16-byte key, then the value
      kv[16] = 'v';
      if (!w->append(kv).is_ok()) state.SkipWithError("append failed");
    }
    auto info = w->finish();
    write_s = since(start);
    if (!info.is_ok()) {
      state.SkipWithError(info.status().to_string().c_str());
      break;
    }
    bytes = info->data_bytes;
    drop_cache(dir);
    start = Clock::now();
    auto cold = store->load_latest();
    load_cold_s = since(start);
    start = Clock::now();
    auto warm = store->load_latest();
    load_warm_s = since(start);
    if (!cold.is_ok() || !warm.is_ok() || warm->snapshot->data.size() != bytes) {
      state.SkipWithError("load failed");
    }
    state.SetIterationTime(write_s);
  }
  state.counters["MB"] = static_cast<double>(bytes) / 1e6;
  state.counters["write_s"] = write_s;
  state.counters["load_cold_s"] = load_cold_s;
  state.counters["load_warm_s"] = load_warm_s;
  record("snapshot_write_s", write_s);
  record("snapshot_load_cold_s", load_cold_s);
  record("snapshot_load_warm_s", load_warm_s);
  record("snapshot_mb", static_cast<double>(bytes) / 1e6);
}

BENCHMARK(BM_RawAppend4K)
    ->Name("Baseline/RawAppend4K")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RawOverwrite4K)
    ->Name("Baseline/RawOverwrite4K")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_WalAppend)
    ->Name("WalAppend")
    ->ArgNames({"bytes", "appenders"})
    ->Args({100, 1})
    ->Args({1024, 1})
    ->Args({100, 64})
    ->Args({1024, 64})
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_WalVsRawLatency)
    ->Name("WalVsRawLatency")
    ->ArgNames({"bytes"})
    ->Arg(100)
    ->Arg(1024)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Recovery)
    ->Name("Recovery")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Snapshot)
    ->Name("Snapshot1MKeys")
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

double get(const std::string& name) {
  auto it = g_results.find(name);
  return it == g_results.end() ? 0 : it->second;
}

void print_summary() {
  const double raw = get("raw_append_per_s");
  const double raw_over = get("raw_overwrite_per_s");
  std::printf("\n== storage summary (goals from the durable-storage issue) ==\n");
  std::printf("raw 4 KiB append+fdatasync:    %8.0f /s  (%.0f us)\n", raw, raw > 0 ? 1e6 / raw : 0);
  std::printf("raw 4 KiB overwrite+fdatasync: %8.0f /s  (%.0f us)\n", raw_over,
              raw_over > 0 ? 1e6 / raw_over : 0);
  for (int bytes : {100, 1024}) {
    const std::string b = std::to_string(bytes);
    const double one = get("wal_" + b + "_1_per_s");
    const double many = get("wal_" + b + "_64_per_s");
    if (many > 0) {
      std::printf(
          "WAL %4d B, 64 appenders: %9.0f entries/s = %5.1fx raw append rate (goal >= 20x)\n",
          bytes, many, raw > 0 ? many / raw : 0);
    }
    if (one > 0) {
      std::printf("WAL %4d B,  1 appender : %9.0f entries/s, %6.0f us/entry (own run)\n", bytes,
                  one, 1e6 / one);
    }
    const double praw = get("paired_" + b + "_raw_p50");
    const double pwal = get("paired_" + b + "_wal_p50");
    if (praw > 0) {
      std::printf(
          "WAL %4d B,  1 appender interleaved with raw append: p50 %.0f us vs %.0f us = %.2fx"
          " (goal <= 1.3x)\n",
          bytes, pwal, praw, pwal / praw);
    }
  }
  if (get("recovery_cold_mb_s") > 0) {
    std::printf("recovery of %llu MiB: cold %.0f MB/s, warm %.0f MB/s (goal >= 500 MB/s)\n",
                static_cast<unsigned long long>(g_recovery_mb), get("recovery_cold_mb_s"),
                get("recovery_warm_mb_s"));
  }
  if (get("snapshot_mb") > 0) {
    std::printf("snapshot 1M keys (%.0f MB): write+fsync %.2f s, load cold %.2f s, warm %.2f s\n",
                get("snapshot_mb"), get("snapshot_write_s"), get("snapshot_load_cold_s"),
                get("snapshot_load_warm_s"));
  }
}

}  // namespace
}  // namespace chorus::storage

int main(int argc, char** argv) {
  using namespace chorus::storage;
  if (const char* d = std::getenv("CHORUS_BENCH_DIR")) {
    g_dir = d;
  } else {
    g_dir = "/tmp/chorus-storage-bench-" + std::to_string(::getpid());
  }
  if (const char* s = std::getenv("CHORUS_BENCH_SECONDS")) g_seconds = std::atof(s);
  if (const char* m = std::getenv("CHORUS_BENCH_RECOVERY_MB"))
    g_recovery_mb = std::strtoull(m, nullptr, 10);
  std::filesystem::create_directories(g_dir);
  std::printf("bench dir %s, %.1f s per run, recovery log %llu MiB\n", g_dir.c_str(), g_seconds,
              static_cast<unsigned long long>(g_recovery_mb));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  print_summary();
  std::filesystem::remove_all(g_dir);
  return 0;
}
