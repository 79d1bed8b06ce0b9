// A bounded window of in-flight appends for one follower (etcd tracker/inflights).
//
// The leader records the last index of every append it pipelines to a
// follower; an acknowledgement of index i frees every append ending at or
// before i. When the window is full the leader stops sending new appends to
// that follower until acknowledgements arrive, so a slow follower cannot make
// the leader queue unbounded data.
#pragma once

#include <cstddef>
#include <deque>

#include "base/assert.h"
#include "base/ids.h"

namespace chorus::core {

class Inflights {
 public:
  explicit Inflights(size_t capacity) : capacity_(capacity) { CHORUS_ASSERT(capacity > 0); }

  bool full() const { return window_.size() >= capacity_; }
  size_t count() const { return window_.size(); }
  // Precondition: !full(), and last is greater than every index already added.
  void add(LogIndex last) {
    CHORUS_ASSERT(!full());
    CHORUS_ASSERT(window_.empty() || window_.back() < last);
    window_.push_back(last);
  }
  // Frees every in-flight append whose last index is <= to.
  void free_to(LogIndex to) {
    while (!window_.empty() && window_.front() <= to) window_.pop_front();
  }
  void reset() { window_.clear(); }

 private:
  size_t capacity_;
  std::deque<LogIndex> window_;  // Invariant: strictly increasing.
};

}  // namespace chorus::core
