// preload(): writes the whole key space once before a `get` or `mixed` run.
#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "base/assert.h"
#include "bench/runner.h"

namespace chorus::bench {
namespace {

constexpr std::chrono::milliseconds kPreloadPoll{5};

struct PreloadShared {
  PreloadShared(const DriverFactory& f, const DriverOptions& d, const Workload& w,
                const PreloadOptions& o)
      : factory(f), dopts(d), workload(w), opts(o) {}

  const DriverFactory& factory;
  const DriverOptions& dopts;
  const Workload& workload;
  const PreloadOptions& opts;
  int clients = 0;
  std::atomic<uint64_t> written{0};
  std::atomic<bool> failed{false};
  std::atomic<int> running{0};
  std::mutex mu;
  Status error;  // guarded by mu: the first failure
};

void fail(PreloadShared& s, Status st) {
  std::lock_guard lock(s.mu);
  if (s.error.is_ok()) s.error = std::move(st);
  s.failed.store(true);
}

// Writes one key until it succeeds, at most attempts_per_key times in all.
Status write_with_retries(PreloadShared& s, Driver& d, const Op& op, Status last, int attempts) {
  for (; attempts < s.opts.attempts_per_key; ++attempts) {
    std::this_thread::sleep_for(s.opts.retry_delay);
    last = d.set(op.key, op.value);
    if (last.is_ok()) return last;
  }
  return Status(last.code(), "preload " + std::string(op.key) + ": " + last.message());
}

// Keys client, client + clients, client + 2*clients...: one pipelined batch
// at a time, then one retry loop per failed key.
Status preload_keys(PreloadShared& s, Driver& d, int client) {
  OpGenerator gen(s.workload, client);
  const int depth = std::max(1, std::min(s.opts.pipeline, d.pipeline_depth_max()));
  std::vector<std::string> keys(static_cast<size_t>(depth));
  std::vector<Op> ops(static_cast<size_t>(depth));
  std::vector<Status> results(static_cast<size_t>(depth));
  const auto stride = static_cast<uint64_t>(s.clients);
  uint64_t next = static_cast<uint64_t>(client);
  while (next < s.workload.spec().keys && !s.failed.load()) {
    int n = 0;
    for (; n < depth && next < s.workload.spec().keys; ++n, next += stride) {
      ops[static_cast<size_t>(n)] = gen.write_of(next, &keys[static_cast<size_t>(n)]);
    }
    if (depth == 1) {
      results[0] = d.set(ops[0].key, ops[0].value);
    } else {
      for (int i = 0; i < n; ++i)
        results[static_cast<size_t>(i)] = d.send(ops[static_cast<size_t>(i)]);
      for (int i = 0; i < n; ++i) {
        Reply r = d.receive();
        if (results[static_cast<size_t>(i)].is_ok()) results[static_cast<size_t>(i)] = r.status;
      }
    }
    for (int i = 0; i < n; ++i) {
      const auto k = static_cast<size_t>(i);
      if (!results[k].is_ok())
        CHORUS_RETURN_IF_ERROR(write_with_retries(s, d, ops[k], results[k], 1));
    }
    s.written.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  }
  return Status::ok();
}

void preload_client(PreloadShared& s, int client) {
  auto made = s.factory(s.dopts, client);
  Status st = made.status();
  if (made.is_ok()) {
    st = (*made)->connect();
    if (st.is_ok()) st = preload_keys(s, **made, client);
  }
  if (!st.is_ok())
    fail(s, Status(st.code(), "preload client " + std::to_string(client) + ": " + st.message()));
  s.running.fetch_sub(1);
}

}  // namespace

Status preload(const DriverFactory& factory, const DriverOptions& dopts, const Workload& workload,
               const PreloadOptions& opts) {
  CHORUS_ASSERT(opts.clients >= 1 && opts.pipeline >= 1 && opts.attempts_per_key >= 1);
  PreloadShared s(factory, dopts, workload, opts);
  s.clients = static_cast<int>(
      std::min<uint64_t>(static_cast<uint64_t>(opts.clients), workload.spec().keys));
  s.running.store(s.clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < s.clients; ++i) threads.emplace_back(preload_client, std::ref(s), i);
  const auto begin = std::chrono::steady_clock::now();
  auto next_progress = begin + kProgressInterval;
  while (s.running.load() > 0) {
    std::this_thread::sleep_for(kPreloadPoll);
    if (opts.progress_out != nullptr && std::chrono::steady_clock::now() >= next_progress) {
      std::fprintf(opts.progress_out, "bench: preload %llu/%llu keys\n",
                   static_cast<unsigned long long>(s.written.load()),
                   static_cast<unsigned long long>(workload.spec().keys));
      std::fflush(opts.progress_out);
      next_progress += kProgressInterval;
    }
  }
  for (auto& t : threads) t.join();
  std::lock_guard lock(s.mu);
  return s.error;
}

}  // namespace chorus::bench
