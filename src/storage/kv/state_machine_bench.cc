// Benchmarks of the key-value state machines (issue: "snapshot write and load
// time for 1M keys (16 B keys, 100 B values), memory and RocksDB state
// machines"), plus apply throughput of puts.
//
//   kv_bench [--benchmark_filter=...]
//
// Snapshots go to a file in /tmp through a plain 1 MiB-chunk write() sink,
// without fsync (the snapshot store adds checksum, fsync and rename); a raw
// write of the same number of bytes is measured alongside as the baseline.
// Rates are per wall-clock second (UseRealTime): RocksDB flushes and compacts
// on background threads that the CPU column of the main thread misses.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/prng.h"
#include "storage/kv/rocksdb_state_machine.h"
#include "storage/kv/state_machine.h"

namespace chorus::kv {
namespace {

namespace fs = std::filesystem;

constexpr size_t kSnapshotKeys = 1'000'000;
constexpr size_t kValueBytes = 100;
constexpr size_t kApplyBatch = 1000;
constexpr size_t kChunkBytes = size_t{1} << 20;

fs::path bench_dir() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("chorus_kv_bench." + std::to_string(getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

struct MemoryHost {
  static std::unique_ptr<StateMachine> make() { return std::make_unique<MemoryStateMachine>(); }
};

struct RocksDbHost {
  static std::unique_ptr<StateMachine> make() {
    static int n = 0;
    const fs::path path = bench_dir() / ("db" + std::to_string(n++));
    auto sm = RocksDbStateMachine::open(path.string());
    if (!sm.is_ok()) {
      fprintf(stderr, "%s\n", sm.status().to_string().c_str());
      abort();
    }
    return std::move(sm).value();
  }
};

// 16-byte keys in random order, 100-byte values.
class PutSource {
 public:
  explicit PutSource(uint64_t seed) : prng_(seed) {}
  std::vector<std::string> next_batch(size_t n) {
    std::vector<std::string> out;
    out.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      char key[17];
      snprintf(key, sizeof key, "%016" PRIx64, prng_.next_u64());
      std::string value(kValueBytes, static_cast<char>('a' + i % 26));
      out.push_back(encode(make_put(key, std::move(value))));
    }
    return out;
  }

 private:
  Prng prng_;
};

void apply_encoded(StateMachine& sm, const std::vector<std::string>& cmds) {
  std::vector<StateMachine::Entry> batch;
  batch.reserve(cmds.size());
  for (size_t i = 0; i < cmds.size(); ++i) batch.push_back({sm.applied_index() + (i + 1), cmds[i]});
  auto r = sm.apply_batch(batch);
  if (!r.is_ok()) {
    fprintf(stderr, "%s\n", r.status().to_string().c_str());
    abort();
  }
}

void fill(StateMachine& sm, size_t keys) {
  PutSource src(42);
  for (size_t done = 0; done < keys; done += kApplyBatch)
    apply_encoded(sm, src.next_batch(kApplyBatch));
}

// A sink writing chunks to a file with write(2); returns the bytes written.
Status write_snapshot_file(const StateMachine& sm, const fs::path& path, uint64_t* bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return Status::io_error("open " + path.string());
  *bytes = 0;
  Status st = sm.save_snapshot([&](std::string_view chunk) {
    if (::write(fd, chunk.data(), chunk.size()) != static_cast<ssize_t>(chunk.size())) {
      return Status::io_error("write " + path.string());
    }
    *bytes += chunk.size();
    return Status::ok();
  });
  ::close(fd);
  return st;
}

Status load_snapshot_file(StateMachine& sm, const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return Status::io_error("open " + path.string());
  Status st = sm.load_snapshot([&]() -> Result<std::optional<std::string>> {
    std::string chunk(kChunkBytes, '\0');
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0) return Status::io_error("read " + path.string());
    if (n == 0) return std::optional<std::string>();
    chunk.resize(static_cast<size_t>(n));
    return std::optional<std::string>(std::move(chunk));
  });
  ::close(fd);
  return st;
}

void check(const Status& st, benchmark::State& state) {
  if (!st.is_ok()) state.SkipWithError(st.to_string().c_str());
}

template <class Host>
void BM_ApplyPuts(benchmark::State& state) {
  auto sm = Host::make();
  PutSource src(7);
  for (auto _ : state) {
    state.PauseTiming();
    const auto cmds = src.next_batch(kApplyBatch);
    state.ResumeTiming();
    apply_encoded(*sm, cmds);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kApplyBatch));
}

template <class Host>
void BM_SnapshotWrite1M(benchmark::State& state) {
  auto sm = Host::make();
  fill(*sm, kSnapshotKeys);
  const fs::path file = bench_dir() / "snapshot";
  uint64_t bytes = 0;
  for (auto _ : state) check(write_snapshot_file(*sm, file, &bytes), state);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSnapshotKeys));
  state.counters["snapshot_MB"] = static_cast<double>(bytes) / 1e6;
}

template <class Host>
void BM_SnapshotLoad1M(benchmark::State& state) {
  const fs::path file = bench_dir() / "snapshot_load";
  uint64_t bytes = 0;
  {
    MemoryStateMachine source;
    fill(source, kSnapshotKeys);
    check(write_snapshot_file(source, file, &bytes), state);
  }
  auto sm = Host::make();
  for (auto _ : state) check(load_snapshot_file(*sm, file), state);
  auto n = sm->key_count();
  if (!n.is_ok() || *n != kSnapshotKeys) state.SkipWithError("wrong key count after load");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kSnapshotKeys));
}

// Baseline: write(2) of the same number of bytes in 1 MiB chunks (page cache, no fsync).
void BM_RawFileWrite(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0));
  const std::string chunk(kChunkBytes, 'x');
  const fs::path file = bench_dir() / "raw";
  for (auto _ : state) {
    const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    for (size_t done = 0; done < bytes; done += chunk.size()) {
      if (::write(fd, chunk.data(), chunk.size()) < 0) state.SkipWithError("write");
    }
    ::close(fd);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

BENCHMARK_TEMPLATE(BM_ApplyPuts, MemoryHost)
    ->Name("ApplyPuts/memory")
    ->Iterations(1000)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_ApplyPuts, RocksDbHost)
    ->Name("ApplyPuts/rocksdb")
    ->Iterations(1000)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_SnapshotWrite1M, MemoryHost)
    ->Name("SnapshotWrite1M/memory")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_SnapshotWrite1M, RocksDbHost)
    ->Name("SnapshotWrite1M/rocksdb")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_SnapshotLoad1M, MemoryHost)
    ->Name("SnapshotLoad1M/memory")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK_TEMPLATE(BM_SnapshotLoad1M, RocksDbHost)
    ->Name("SnapshotLoad1M/rocksdb")
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();
BENCHMARK(BM_RawFileWrite)
    ->Arg(140'000'000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3)
    ->UseRealTime();

}  // namespace
}  // namespace chorus::kv

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  std::error_code ec;
  std::filesystem::remove_all(chorus::kv::bench_dir(), ec);
  return 0;
}
