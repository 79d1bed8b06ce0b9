// The simulator's side of host::Effects (host/effects.h): what a simulated
// node's ReplicaHost sees as its world.
//
// NodeLoop is the non-engine part of a simulated node: its event loop on the
// cluster's virtual clock. Every callback bound for the node goes through
// it, so that
//  - a crash (a new incarnation) drops everything still queued for the node;
//  - a stall (stalled_until) holds everything bound for the loop until the
//    stall ends, in order — the node's process is stopped (SIGSTOP, a long
//    GC, a blocking fsync on the loop);
//  - after each callback the cluster runs its checks (after_event).
// The node's clocks run at its own rate (`rate`, drawn from the fault
// settings' clock skew) from its own origin, so no two nodes agree on time.
//
// SimEffects<Msg> implements the host's effects on a NodeLoop: post and the
// tick timer are loop events; run_on_storage is a FIFO executor whose jobs
// take a simulated disk latency each and keep running while the loop is
// stalled (the real storage thread does); run_blocking stalls the loop for
// the job's latency (a follower's fsync on its loop).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "base/prng.h"
#include "host/effects.h"
#include "sim/event_queue.h"

namespace chorus::sim {

class NodeLoop {
 public:
  NodeLoop(EventQueue& q, Prng& prng) : q_(q), prng_(prng) {}

  // Starts a new incarnation (after a crash) at the current virtual time.
  void begin_incarnation() {
    ++incarnation_;
    up_ = true;
    stalled_until_ = 0;
    storage_free_at_ = 0;
    disk_jobs_.clear();
  }
  // A crash: everything queued for the node is dropped.
  void crash() {
    up_ = false;
    ++incarnation_;
    disk_jobs_.clear();
  }

  // Disk jobs (persist, snapshot) submitted and not yet run. A job runs at
  // its completion time in one piece; take_first_disk_job() lets a crash
  // run the oldest one first with its syncs suspended, so the node dies in
  // the middle of its fsyncs and the disk keeps un-synced writes.
  using DiskJob = std::shared_ptr<host::DiskJob>;
  DiskJob add_disk_job(host::DiskJob job) {
    auto j = std::make_shared<host::DiskJob>(std::move(job));
    disk_jobs_.push_back(j);
    return j;
  }
  // Runs `j` unless a crash took it; its outcome, or nullopt when it was taken.
  std::optional<Status> run_disk_job(const DiskJob& j) {
    auto it = std::find(disk_jobs_.begin(), disk_jobs_.end(), j);
    if (it == disk_jobs_.end()) return std::nullopt;
    disk_jobs_.erase(it);
    return (*j)();
  }
  DiskJob take_first_disk_job() {
    if (disk_jobs_.empty()) return nullptr;
    DiskJob j = disk_jobs_.front();
    disk_jobs_.erase(disk_jobs_.begin());
    return j;
  }
  bool up() const { return up_; }
  uint64_t incarnation() const { return incarnation_; }

  // Runs fn on the node's loop at virtual time t (or when a stall ends).
  void at(Time t, std::function<void()> fn) {
    const uint64_t inc = incarnation_;
    q_.at(t, [this, inc, fn = std::move(fn)]() mutable { run(inc, std::move(fn)); });
  }
  // Holds the loop until now + d.
  void stall(Time d) { stalled_until_ = std::max(stalled_until_, q_.now() + d); }
  bool stalled() const { return q_.now() < stalled_until_; }
  Time stalled_until() const { return stalled_until_; }

  // The storage executor: one job at a time, each taking `latency`.
  // Returns when the job submitted now completes.
  Time storage_slot(Time latency) {
    storage_free_at_ = std::max(storage_free_at_, q_.now()) + latency;
    return storage_free_at_;
  }

  // The node's clocks: local = origin + (virtual now) * rate.
  void set_clock(double rate, int64_t origin_ns) {
    rate_ = rate;
    origin_ns_ = origin_ns;
  }
  double rate() const { return rate_; }
  int64_t local_ns() const {
    return origin_ns_ + static_cast<int64_t>(static_cast<double>(q_.now()) * 1000.0 * rate_);
  }
  // The virtual time that passes while this node's clock advances `local`.
  Time real_delay(host::Duration local) const {
    const double us = static_cast<double>(local.count()) / 1000.0 / rate_;
    return static_cast<Time>(std::ceil(us));
  }

  EventQueue& queue() { return q_; }
  Prng& prng() { return prng_; }
  // The cluster's checks, run after every callback on this node.
  std::function<void()> after_event;

 private:
  void run(uint64_t inc, std::function<void()> fn) {
    if (!up_ || incarnation_ != inc) return;
    if (q_.now() < stalled_until_) {
      q_.at(stalled_until_, [this, inc, fn = std::move(fn)]() mutable { run(inc, std::move(fn)); });
      return;
    }
    fn();
    if (after_event && up_ && incarnation_ == inc) after_event();
  }

  EventQueue& q_;
  Prng& prng_;
  uint64_t incarnation_ = 0;
  bool up_ = false;
  Time stalled_until_ = 0;
  Time storage_free_at_ = 0;
  std::vector<DiskJob> disk_jobs_;
  double rate_ = 1.0;
  int64_t origin_ns_ = 0;
};

// Draws one disk operation's latency (the fault settings' fsync range).
using LatencyFn = std::function<Time()>;

template <class Msg>
class SimEffects {
 public:
  using Sender = std::function<void(Msg)>;
  // 2023-01-01T00:00:00Z: the calendar clock's origin (plus the node's
  // monotonic clock), so expiry times look like real ones.
  static constexpr int64_t kCalendarOriginMs = 1'672'531'200'000;

  SimEffects(NodeLoop& loop, Sender send, LatencyFn disk_latency)
      : loop_(loop), send_(std::move(send)), disk_latency_(std::move(disk_latency)) {}

  host::Instant now() const { return host::Instant(std::chrono::nanoseconds(loop_.local_ns())); }
  int64_t wall_ms() const { return kCalendarOriginMs + loop_.local_ns() / 1'000'000; }
  void post(host::Task task) { loop_.at(loop_.queue().now(), std::move(task)); }
  void arm_timer(host::Duration d, host::Task task) {
    const uint64_t gen = ++timer_gen_;
    loop_.at(loop_.queue().now() + loop_.real_delay(d), [this, gen, task = std::move(task)] {
      if (gen == timer_gen_ && !stopped_) task();
    });
  }
  void send(Msg m) {
    if (!stopped_) send_(std::move(m));
  }
  void run_on_storage(host::DiskJob job, host::DiskDone done) {
    const Time at = loop_.storage_slot(disk_latency_());
    const uint64_t inc = loop_.incarnation();
    // The job itself does not wait for a stalled loop (the storage thread
    // runs on); its completion is a loop event. (Captures the loop, which
    // outlives every incarnation, never these effects, which do not.)
    NodeLoop* loop = &loop_;
    NodeLoop::DiskJob j = loop_.add_disk_job(std::move(job));
    loop_.queue().at(at, [loop, inc, j, done = std::move(done)]() mutable {
      if (!loop->up() || loop->incarnation() != inc) return;  // crashed: never completed
      std::optional<Status> st = loop->run_disk_job(j);
      if (!st) return;
      loop->at(loop->queue().now(), [done = std::move(done), st = std::move(*st)] { done(st); });
    });
  }
  void run_blocking(host::DiskJob job, host::DiskDone done) {
    const Time latency = disk_latency_();
    loop_.stall(latency);
    NodeLoop::DiskJob j = loop_.add_disk_job(std::move(job));
    NodeLoop* loop = &loop_;
    loop_.at(loop_.queue().now() + latency, [loop, j, done = std::move(done)] {
      if (std::optional<Status> st = loop->run_disk_job(j)) done(std::move(*st));
    });
  }
  void stop() {
    stopped_ = true;
    ++timer_gen_;
  }

 private:
  NodeLoop& loop_;
  Sender send_;
  LatencyFn disk_latency_;
  uint64_t timer_gen_ = 0;
  bool stopped_ = false;
};

}  // namespace chorus::sim
