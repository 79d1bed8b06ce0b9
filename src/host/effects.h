// What a ReplicaHost (replica_host.h) needs from the world, as one type
// parameter: its clocks, its event loop, the network, and the executors that
// run storage work. The server gives Asio effects (server/asio_effects.h); the
// simulator gives effects on its virtual clock and event queue
// (sim/sim_effects.h). Everything else — the Ready contract, pending client
// requests, apply, snapshots — is the host's own code, the same in both.
//
// Threading model the host assumes: one loop thread runs every host method
// and every callback the effects invoke (post, after, done of the storage
// executors). Storage jobs run elsewhere (the server's storage thread) or
// later (the simulator), never concurrently with each other.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>

#include "base/status.h"

namespace chorus::host {

// A node's monotonic time. The server reads steady_clock; the simulator
// synthesizes it from virtual time at the node's own clock rate.
using Instant = std::chrono::steady_clock::time_point;
using Duration = std::chrono::nanoseconds;

using Task = std::function<void()>;
// Disk work (a persist, a snapshot): runs off the loop and returns its
// outcome. DiskDone gets it on the loop — or the failure of a sync the
// executor shared between several jobs, which overrides an OK: a job's
// writes are durable only once the executor says so.
using DiskJob = std::function<Status()>;
using DiskDone = std::function<void(Status)>;

template <class X, class Msg>
concept Effects = requires(X& x, Msg m, Task task, Duration d, DiskJob job, DiskDone done) {
  // This node's monotonic clock: never goes back, and runs at a rate within
  // raft::Config::clock_drift_bound of real time.
  { x.now() } -> std::same_as<Instant>;
  // This node's calendar clock, milliseconds since the Unix epoch (expiry).
  { x.wall_ms() } -> std::same_as<int64_t>;
  // Runs `task` on the loop after the handlers already queued.
  { x.post(std::move(task)) } -> std::same_as<void>;
  // Runs `task` on the loop once `d` has passed. At most one is armed at a
  // time (the tick timer); stop() disarms it.
  { x.arm_timer(d, std::move(task)) } -> std::same_as<void>;
  // Hands a message to the network; never blocks, may drop.
  { x.send(std::move(m)) } -> std::same_as<void>;
  // Runs `job` on the storage executor — jobs complete in submission order
  // — then `done` on the loop with the outcome. The loop keeps running
  // meanwhile.
  { x.run_on_storage(std::move(job), std::move(done)) } -> std::same_as<void>;
  // Runs `job` with the loop blocked (nothing else on this node runs until
  // it is over), then `done`. The server calls both at once; the simulator
  // holds the node for the job's simulated disk latency first.
  { x.run_blocking(std::move(job), std::move(done)) } -> std::same_as<void>;
  // Stops the timer; later post/arm_timer/done callbacks may be dropped.
  { x.stop() } -> std::same_as<void>;
};

}  // namespace chorus::host
