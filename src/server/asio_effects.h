// The server's host::Effects (host/effects.h): the node's Asio event loop,
// steady_clock, the peer transport, and a lane of the node's StorageExecutor
// (storage_executor.h), the one storage thread every group of the node
// shares.
//
// Destruction waits until this group's queued storage jobs have run; the
// owner must stop the host first, so that no new job arrives, and destroy
// these effects before anything a job uses. DiskDone callbacks that reach
// the loop after the effects are gone are dropped.
//
// Threading: every method but the storage jobs runs on the loop thread (the
// thread running `io`).
#pragma once

#include <asio.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "host/effects.h"
#include "server/storage_executor.h"

namespace chorus::server {

int64_t wall_clock_ms();

template <class Msg>
class AsioEffects {
 public:
  using Sender = std::function<void(Msg)>;

  // `storage` is the node's executor; it must outlive these effects.
  AsioEffects(asio::io_context& io, Sender send, StorageExecutor& storage)
      : io_(io),
        timer_(io),
        send_(std::move(send)),
        storage_(storage.open_lane([&io](host::Task t) { asio::post(io, std::move(t)); })) {}
  ~AsioEffects() {
    storage_.reset();  // waits for this group's queued jobs
    *alive_ = false;
  }
  AsioEffects(const AsioEffects&) = delete;
  AsioEffects& operator=(const AsioEffects&) = delete;

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
    storage_->submit(std::move(job), [alive = alive_, done = std::move(done)](Status st) {
      if (*alive) done(std::move(st));
    });
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
  // False once destroyed; read and written on the loop thread only.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::unique_ptr<StorageExecutor::Lane> storage_;
};

}  // namespace chorus::server
