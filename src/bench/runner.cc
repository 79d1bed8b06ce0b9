#include "bench/runner.h"

#include <algorithm>
#include <atomic>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "base/assert.h"

namespace chorus::bench {
namespace {

using Clock = std::chrono::steady_clock;
// How often the coordinating thread checks deadlines and whether clients are done.
constexpr std::chrono::milliseconds kCoordinatorPoll{5};

enum class Phase { kWarmup, kMeasure, kDone };

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

// State shared by the client threads and the coordinating thread.
struct Shared {
  Shared(const RunOptions& o, const Workload& w) : opts(o), workload(w), connected(o.clients) {}

  const RunOptions& opts;
  const Workload& workload;
  std::atomic<Phase> phase{Phase::kWarmup};
  std::atomic<uint64_t> warmup_claimed{0};   // warm-up operations handed out (ops mode)
  std::atomic<uint64_t> measure_claimed{0};  // measured operations handed out (ops mode)
  std::atomic<int64_t> measure_start_ns{0};  // 0 until the measure phase begins
  std::atomic<bool> abort{false};            // a client failed to connect
  std::latch connected;                      // every client has tried to connect
  std::latch start{1};                       // the coordinator says go
  std::atomic<int> running{0};               // client threads not yet finished
};

// One client's counters. The atomics feed the progress line; the rest is
// owned by the client thread until it is joined.
struct alignas(64) ClientState {
  std::atomic<uint64_t> completed{0};     // operations finished in any phase
  std::atomic<uint64_t> failed{0};        // of which errors
  std::atomic<int64_t> call_start_ns{0};  // when the call now waiting began; 0: none
  Status connect_status;
  std::unique_ptr<Driver> driver;
  RunReport report;  // measured operations only; duration_s unused
  int64_t last_done_ns = 0;
};

// Moves the run from warm-up to measure, once; records when.
void begin_measure(Shared& s) {
  const int64_t t = now_ns();
  Phase expected = Phase::kWarmup;
  if (s.phase.compare_exchange_strong(expected, Phase::kMeasure)) s.measure_start_ns.store(t);
}

struct Claim {
  int n = 0;  // operations the client may start now; 0: stop
  bool measured = false;
};

// Hands out the next batch of at most `want` operations.
Claim claim(Shared& s, int want) {
  for (;;) {
    const Phase ph = s.phase.load();
    if (ph == Phase::kDone) return {};
    const bool warm = ph == Phase::kWarmup;
    const uint64_t limit = warm ? s.opts.warmup_ops : s.opts.ops;
    if (limit == 0) return {want, !warm};  // this phase ends on a deadline
    auto& counter = warm ? s.warmup_claimed : s.measure_claimed;
    const uint64_t first = counter.fetch_add(static_cast<uint64_t>(want));
    if (first < limit) {
      return {static_cast<int>(std::min<uint64_t>(static_cast<uint64_t>(want), limit - first)),
              !warm};
    }
    if (!warm) return {};
    begin_measure(s);
  }
}

void account(ClientState& st, const Op& op, const Reply& reply, int64_t latency_ns, bool measured) {
  st.completed.fetch_add(1, std::memory_order_relaxed);
  if (!reply.status.is_ok()) st.failed.fetch_add(1, std::memory_order_relaxed);
  if (!measured) return;
  RunReport& r = st.report;
  if (!reply.status.is_ok()) {
    ++r.errors;
    if (r.first_error.empty()) r.first_error = reply.status.to_string();
    return;
  }
  ++r.ops;
  r.latency.record(static_cast<uint64_t>(std::max<int64_t>(latency_ns, 0)));
  if (op.type == OpType::kGet) {
    ++r.reads;
    if (!reply.found) ++r.not_found;
  }
}

Reply execute_one(Driver& d, const Op& op) {
  if (op.type == OpType::kSet) return {d.set(op.key, op.value), false};
  Result<bool> r = d.get(op.key);
  if (!r.is_ok()) return {r.status(), false};
  return {Status::ok(), *r};
}

// Sends n operations, then receives their n replies, timing each reply from
// the first send.
void execute_batch(ClientState& st, const std::vector<Op>& ops, int n, bool measured,
                   std::vector<Status>& sent) {
  Driver& d = *st.driver;
  sent.clear();
  const int64_t t0 = now_ns();
  for (int i = 0; i < n; ++i) sent.push_back(d.send(ops[static_cast<size_t>(i)]));
  for (int i = 0; i < n; ++i) {
    Reply r = d.receive();
    if (!sent[static_cast<size_t>(i)].is_ok()) r.status = sent[static_cast<size_t>(i)];
    const int64_t t = now_ns();
    account(st, ops[static_cast<size_t>(i)], r, t - t0, measured);
    if (measured) st.last_done_ns = t;
  }
}

void client_loop(Shared& s, ClientState& st, int index) {
  OpGenerator gen(s.workload, index);
  const int depth = s.opts.pipeline;
  std::vector<std::string> keys(static_cast<size_t>(depth));
  std::vector<Op> ops(static_cast<size_t>(depth));
  std::vector<Status> sent;
  sent.reserve(static_cast<size_t>(depth));
  for (;;) {
    const Claim c = claim(s, depth);
    if (c.n == 0) return;
    for (int i = 0; i < c.n; ++i)
      ops[static_cast<size_t>(i)] = gen.next(&keys[static_cast<size_t>(i)]);
    if (depth > 1) {
      st.call_start_ns.store(now_ns(), std::memory_order_relaxed);
      execute_batch(st, ops, c.n, c.measured, sent);
      st.call_start_ns.store(0, std::memory_order_relaxed);
      continue;
    }
    const int64_t t0 = now_ns();
    st.call_start_ns.store(t0, std::memory_order_relaxed);
    const Reply r = execute_one(*st.driver, ops[0]);
    st.call_start_ns.store(0, std::memory_order_relaxed);
    const int64_t t1 = now_ns();
    account(st, ops[0], r, t1 - t0, c.measured);
    if (c.measured) st.last_done_ns = t1;
  }
}

void client_main(Shared& s, ClientState& st, const DriverFactory& factory,
                 const DriverOptions& dopts, int index) {
  auto made = factory(dopts, index);
  if (made.is_ok()) {
    st.driver = std::move(made).value();
    st.connect_status = st.driver->connect();
  } else {
    st.connect_status = made.status();
  }
  if (!st.connect_status.is_ok()) s.abort.store(true);
  s.connected.count_down();
  s.start.wait();
  if (!s.abort.load()) client_loop(s, st, index);
  s.running.fetch_sub(1);
}

void print_progress(const Shared& s, const std::vector<std::unique_ptr<ClientState>>& clients,
                    double elapsed_s, uint64_t* last_completed) {
  uint64_t completed = 0;
  uint64_t failed = 0;
  for (const auto& c : clients) {
    completed += c->completed.load(std::memory_order_relaxed);
    failed += c->failed.load(std::memory_order_relaxed);
  }
  const double rate = static_cast<double>(completed - *last_completed) /
                      std::chrono::duration<double>(kProgressInterval).count();
  *last_completed = completed;
  const char* phase = s.phase.load() == Phase::kWarmup ? "warm-up" : "measure";
  std::fprintf(s.opts.progress_out, "bench: %6.1fs %-7s %10.0f ops/s  errors %llu\n", elapsed_s,
               phase, rate, static_cast<unsigned long long>(failed));
  std::fflush(s.opts.progress_out);
}

// Drives the time-based phase changes and the progress line until every
// client has finished. Returns the end of the measured phase in duration
// mode (0 in ops mode).
int64_t coordinate(Shared& s, const std::vector<std::unique_ptr<ClientState>>& clients,
                   uint64_t* stuck_clients) {
  const auto begin = Clock::now();
  auto next_progress = begin + kProgressInterval;
  uint64_t last_completed = 0;
  int64_t end_ns = 0;
  while (s.running.load() > 0) {
    std::this_thread::sleep_for(kCoordinatorPoll);
    const auto now = Clock::now();
    if (s.phase.load() == Phase::kWarmup && s.opts.warmup.count() > 0 &&
        now - begin >= s.opts.warmup) {
      begin_measure(s);
    }
    const int64_t start_ns = s.measure_start_ns.load();
    if (s.phase.load() == Phase::kMeasure && s.opts.duration.count() > 0 && start_ns != 0 &&
        now_ns() - start_ns >= s.opts.duration.count()) {
      end_ns = now_ns();
      s.phase.store(Phase::kDone);
      for (const auto& c : clients) {
        const int64_t began = c->call_start_ns.load();
        if (began != 0 && began < start_ns) ++*stuck_clients;
      }
    }
    if (s.opts.progress_out != nullptr && now >= next_progress) {
      print_progress(s, clients, std::chrono::duration<double>(now - begin).count(),
                     &last_completed);
      next_progress += kProgressInterval;
    }
  }
  return end_ns;
}

RunReport merge_reports(const Shared& s, std::vector<std::unique_ptr<ClientState>>& clients,
                        int64_t end_ns) {
  RunReport total;
  int64_t last_done = 0;
  for (auto& c : clients) {
    total.ops += c->report.ops;
    total.errors += c->report.errors;
    total.reads += c->report.reads;
    total.not_found += c->report.not_found;
    total.latency.merge(c->report.latency);
    if (total.first_error.empty()) total.first_error = c->report.first_error;
    last_done = std::max(last_done, c->last_done_ns);
  }
  const int64_t start = s.measure_start_ns.load();
  if (end_ns == 0) end_ns = std::max(last_done, start);
  total.duration_s = start == 0 ? 0 : static_cast<double>(end_ns - start) / 1e9;
  return total;
}

}  // namespace

Status validate(const RunOptions& o, int driver_pipeline_depth_max) {
  if (o.clients < 1 || o.clients > kClientsMax) {
    return Status::invalid_argument("--clients must be 1.." + std::to_string(kClientsMax));
  }
  const int depth_max = std::min(kPipelineMax, driver_pipeline_depth_max);
  if (o.pipeline < 1 || o.pipeline > depth_max) {
    return Status::invalid_argument("--pipeline must be 1.." + std::to_string(depth_max) +
                                    " for this driver");
  }
  if ((o.ops > 0) == (o.duration.count() > 0)) {
    return Status::invalid_argument("give exactly one of --ops and --duration");
  }
  if (o.duration.count() < 0 || o.warmup.count() < 0) {
    return Status::invalid_argument("durations must not be negative");
  }
  if (o.warmup_ops > 0 && o.warmup.count() > 0) {
    return Status::invalid_argument("the warm-up is either operations or time, not both");
  }
  return Status::ok();
}

Result<RunReport> run_closed_loop(const DriverFactory& factory, const DriverOptions& dopts,
                                  const Workload& workload, const RunOptions& opts) {
  CHORUS_ASSERT(validate(opts, kPipelineMax).is_ok());
  Shared s(opts, workload);
  const bool warm = opts.warmup_ops > 0 || opts.warmup.count() > 0;
  if (!warm) {
    s.phase.store(Phase::kMeasure);
    s.measure_start_ns.store(now_ns());  // reset below, when the clients start
  }
  s.running.store(opts.clients);
  std::vector<std::unique_ptr<ClientState>> clients;
  std::vector<std::thread> threads;
  for (int i = 0; i < opts.clients; ++i) {
    clients.push_back(std::make_unique<ClientState>());
    threads.emplace_back(client_main, std::ref(s), std::ref(*clients.back()), std::cref(factory),
                         std::cref(dopts), i);
  }
  s.connected.wait();
  if (!warm) s.measure_start_ns.store(now_ns());
  s.start.count_down();
  uint64_t stuck_clients = 0;
  const int64_t end_ns = s.abort.load() ? 0 : coordinate(s, clients, &stuck_clients);
  for (auto& t : threads) t.join();
  for (int i = 0; i < opts.clients; ++i) {
    const Status& st = clients[static_cast<size_t>(i)]->connect_status;
    if (!st.is_ok()) {
      return Status(st.code(), "client " + std::to_string(i) + ": " + st.message());
    }
  }
  RunReport r = merge_reports(s, clients, end_ns);
  r.stuck_clients = stuck_clients;
  return r;
}

}  // namespace chorus::bench
