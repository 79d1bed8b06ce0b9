// The server's host::Effects (host/effects.h): the node's Asio event loop,
// steady_clock, the peer transport, and one storage thread.
//
// StorageThread runs jobs one at a time in submission order and posts each
// job's completion back to the loop. Its destructor finishes the queued
// jobs and joins; the owner must stop the host first, so that no new job
// arrives, and destroy these effects before anything a job uses.
//
// Threading: every method but the storage thread's jobs runs on the loop
// thread (the thread running `io`).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "host/effects.h"

namespace chorus::server {

class StorageThread {
 public:
  explicit StorageThread(asio::io_context& io);
  ~StorageThread();  // finishes the queued jobs, then joins
  StorageThread(const StorageThread&) = delete;
  StorageThread& operator=(const StorageThread&) = delete;

  // Runs `job` on the storage thread, then posts `done` with its outcome to the loop.
  void submit(host::DiskJob job, host::DiskDone done);

 private:
  void main();

  asio::io_context& io_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::pair<host::DiskJob, host::DiskDone>> jobs_;
  bool stop_ = false;
  std::thread thread_;
};

int64_t wall_clock_ms();

template <class Msg>
class AsioEffects {
 public:
  using Sender = std::function<void(Msg)>;

  AsioEffects(asio::io_context& io, Sender send)
      : io_(io), timer_(io), send_(std::move(send)), storage_(io) {}

  host::Instant now() const { return std::chrono::steady_clock::now(); }
  int64_t wall_ms() const { return wall_clock_ms(); }
  void post(host::Task task) { asio::post(io_, std::move(task)); }
  void arm_timer(host::Duration d, host::Task task) {
    if (stopped_) return;
    timer_.expires_after(d);
    timer_.async_wait([this, task = std::move(task)](std::error_code ec) {
      if (!ec && !stopped_) task();
    });
  }
  void send(Msg m) {
    if (!stopped_) send_(std::move(m));
  }
  void run_on_storage(host::DiskJob job, host::DiskDone done) {
    storage_.submit(std::move(job), std::move(done));
  }
  // The loop is blocked for the job: nothing to simulate, just run it.
  void run_blocking(host::DiskJob job, host::DiskDone done) { done(job()); }
  void stop() {
    stopped_ = true;
    timer_.cancel();
  }

 private:
  asio::io_context& io_;
  asio::steady_timer timer_;
  Sender send_;
  bool stopped_ = false;
  StorageThread storage_;
};

}  // namespace chorus::server
