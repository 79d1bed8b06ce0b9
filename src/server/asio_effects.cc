#include "server/asio_effects.h"

namespace chorus::server {

int64_t wall_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

StorageThread::StorageThread(asio::io_context& io) : io_(io) {
  thread_ = std::thread([this] { main(); });
}

StorageThread::~StorageThread() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StorageThread::submit(host::DiskJob job, host::DiskDone done) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    jobs_.emplace_back(std::move(job), std::move(done));
  }
  cv_.notify_one();
}

void StorageThread::main() {
  for (;;) {
    std::pair<host::DiskJob, host::DiskDone> next;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // stopping, nothing left
      next = std::move(jobs_.front());
      jobs_.pop_front();
    }
    Status st = next.first();
    asio::post(io_, [done = std::move(next.second), st = std::move(st)] { done(st); });
  }
}

}  // namespace chorus::server
