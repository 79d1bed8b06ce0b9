// The closed-loop runner: N client threads, each owning one Driver, each
// issuing one operation at a time (or one pipeline of P operations at a
// time) and issuing the next only when the previous replies have arrived.
//
// Phases, shared by all clients:
//   connect  every client builds and connects its driver; if any fails, the
//            run is abandoned with that error (no measurement);
//   warm-up  operations run but are not counted: either warmup_ops
//            operations in total, or for `warmup` of wall time, or none;
//   measure  operations are timed and counted: either exactly `ops`
//            operations in total (successes plus errors), or every operation
//            started within `duration`.
// An operation belongs to the phase in which its batch was started. The
// measured duration runs from the start of the measure phase until the last
// measured operation completes (ops mode) or until `duration` has elapsed
// (duration mode; the few operations still in flight then are counted too).
//
// Latency: per operation, from its batch's first send to its own reply; only
// successful operations are recorded. Each client has its own Histogram and
// counters; they are merged after the threads are joined.
//
// Threads: run_closed_loop() blocks its caller, which prints the progress
// line (once per kProgressInterval, on `progress_out`) and drives the
// time-based phase changes.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "base/status.h"
#include "bench/driver.h"
#include "bench/histogram.h"
#include "bench/workload.h"

namespace chorus::bench {

inline constexpr std::chrono::milliseconds kProgressInterval{1000};
inline constexpr int kClientsMax = 1024;
inline constexpr int kPipelineMax = 1024;

struct RunOptions {
  int clients = 50;
  int pipeline = 1;  // operations in flight per client; <= the driver's pipeline_depth_max()
  // The measured phase: exactly one of ops > 0 or duration > 0.
  uint64_t ops = 0;
  std::chrono::nanoseconds duration{0};
  // The warm-up: at most one of warmup_ops > 0 or warmup > 0; neither: none.
  uint64_t warmup_ops = 0;
  std::chrono::nanoseconds warmup{0};
  FILE* progress_out = nullptr;  // null: no progress lines
};

struct RunReport {
  uint64_t ops = 0;        // measured operations that succeeded
  uint64_t errors = 0;     // measured operations that failed
  uint64_t reads = 0;      // successful GETs (included in ops)
  uint64_t not_found = 0;  // successful GETs of a missing key (included in reads)
  double duration_s = 0;
  // Clients that waited for one reply through the whole measured window (the
  // call began before the window and had not returned when it closed;
  // duration mode): a system that stalls shows up here instead of as a quiet
  // 0 ops with 0 errors.
  uint64_t stuck_clients = 0;
  Histogram latency;        // successful measured operations
  std::string first_error;  // the first error a client saw, if any

  double ops_per_s() const { return duration_s > 0 ? static_cast<double>(ops) / duration_s : 0; }
};

// InvalidArgument if `opts` breaks a rule above (or pipeline > 1 for a driver
// that does not pipeline: pass its pipeline_depth_max()).
Status validate(const RunOptions& opts, int driver_pipeline_depth_max);

// Runs the phases above. Error: a client's driver could not be built or
// connected. Precondition: validate(opts, ...) is OK.
Result<RunReport> run_closed_loop(const DriverFactory& factory, const DriverOptions& driver_opts,
                                  const Workload& workload, const RunOptions& opts);

struct PreloadOptions {
  int clients = 32;
  int pipeline = 16;                           // capped by the driver's pipeline_depth_max()
  int attempts_per_key = 5;                    // a key whose writes all fail fails the preload
  std::chrono::milliseconds retry_delay{100};  // before each retry of a failed write
  FILE* progress_out = nullptr;                // null: quiet
};

// Writes every key of the workload's key space once (keys split across
// `clients` connections), retrying failed writes. Error: a client could not
// connect, or a key could not be written in attempts_per_key attempts.
Status preload(const DriverFactory& factory, const DriverOptions& driver_opts,
               const Workload& workload, const PreloadOptions& opts);

}  // namespace chorus::bench
