// The simulator's virtual clock and event queue.
//
// Time is virtual microseconds. Events at the same time run in the order they
// were scheduled (a sequence number breaks ties), so a run is a pure function
// of its seed.
#pragma once

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

namespace chorus::sim {

using Time = int64_t;  // virtual microseconds
constexpr Time kMillisecond = 1000;
constexpr Time kSecond = 1000 * kMillisecond;

class EventQueue {
 public:
  Time now() const { return now_; }
  void at(Time t, std::function<void()> fn) {
    heap_.push(Event{t < now_ ? now_ : t, next_seq_++, std::move(fn)});
  }
  void after(Time delay, std::function<void()> fn) { at(now_ + delay, std::move(fn)); }
  // Runs events until the queue is empty or the next one is after `until`;
  // the clock then reads `until`.
  void run_until(Time until) {
    while (!stopped_ && !heap_.empty() && heap_.top().t <= until) {
      Event e = std::move(const_cast<Event&>(heap_.top()));
      heap_.pop();
      now_ = e.t;
      ++events_run_;
      e.fn();
    }
    if (!stopped_ && now_ < until) now_ = until;
  }
  // Makes run_until return at once, now and later (a run that is over).
  void stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }
  uint64_t events_run() const { return events_run_; }

 private:
  struct Event {
    Time t;
    uint64_t seq;
    std::function<void()> fn;
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  std::priority_queue<Event, std::vector<Event>, std::greater<>> heap_;
  Time now_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t events_run_ = 0;
  bool stopped_ = false;
};

}  // namespace chorus::sim
