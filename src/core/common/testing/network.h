// The simulated network of the in-memory protocol harnesses
// (core/paxos/testing.h, core/zab/testing.h). Header-only and test-only, but
// pure like the cores it carries messages for: no clock, no threads, no I/O.
// Time is the harness's tick count and every fault is drawn from a Prng the
// harness passes in, so one seed replays one exact sequence of message fates.
//
// The fate of a message sent at time `now`, in the order of the draws:
//   1. dropped with probability `drop` (no draw when drop is 0);
//   2. otherwise queued once, or twice with probability `duplicate` (no draw
//      when duplicate is 0);
//   3. each copy due at now + uniform(0, max_delay_ticks) (no draw when the
//      maximum is 0).
// deliver_due() takes every message due by now out of the queue, in send
// order or, with `reorder`, shuffled (Fisher-Yates, one draw per position),
// and hands each to the harness unless its link is cut at that moment: a cut
// link loses messages, it does not hold them. Messages sent during a delivery
// round wait for the next round.
//
// The draw order above is part of the contract: change it and every seeded
// sweep replays a different run under the same seed.
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "base/assert.h"
#include "base/ids.h"
#include "base/prng.h"

namespace chorus::core::testing {

// What the network needs of a message: its two ends, as the Engine concept
// (core/common/engine.h) requires of every E::Message.
template <class M>
concept Addressed = requires(const M& m) {
  { m.from } -> std::convertible_to<NodeId>;
  { m.to } -> std::convertible_to<NodeId>;
};

struct NetFaults {
  double drop = 0;
  double duplicate = 0;
  uint32_t max_delay_ticks = 0;  // each copy waits a uniform 0..max ticks
  bool reorder = false;          // deliver the due messages in random order
};

// Messages in flight at once, more than any test cluster reaches; past it the
// harness is in a message storm, a bug to stop at rather than to simulate.
inline constexpr size_t kMaxInFlight = size_t{1} << 20;

// Only a harness calls it, from its one thread. Not copyable: it draws from
// the harness's Prng by reference.
template <Addressed Message>
class Network {
 public:
  explicit Network(Prng& prng) : prng_(prng) {}
  Network(const Network&) = delete;
  Network& operator=(const Network&) = delete;

  NetFaults& faults() { return faults_; }
  uint64_t now() const { return now_; }
  void tick() { ++now_; }
  bool empty() const { return in_flight_.empty(); }

  // ---- Links ---------------------------------------------------------------

  void cut(uint64_t a, uint64_t b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void isolate(uint64_t a, const std::vector<NodeId>& members) {
    for (NodeId b : members) {
      if (b.value() != a) cut(a, b.value());
    }
  }
  void heal() { cut_.clear(); }
  bool is_cut(uint64_t a, uint64_t b) const { return cut_.contains({a, b}); }

  // ---- Traffic -------------------------------------------------------------

  // Decides m's fate now (see the top of this file).
  void send(const Message& m) {
    if (prng_.chance(faults_.drop)) return;
    const int copies = prng_.chance(faults_.duplicate) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      const uint64_t delay =
          faults_.max_delay_ticks ? prng_.uniform(0, faults_.max_delay_ticks) : 0;
      CHORUS_ASSERT_MSG(in_flight_.size() < kMaxInFlight, "message storm in the test network");
      in_flight_.push_back(InFlight{now_ + delay, m});
    }
  }

  // Hands every message due by now to receive(const Message&), skipping
  // those whose link is cut.
  template <class Receive>
  void deliver_due(Receive&& receive) {
    std::vector<InFlight> due;
    std::vector<InFlight> later;
    for (InFlight& f : in_flight_) (f.due <= now_ ? due : later).push_back(std::move(f));
    in_flight_ = std::move(later);
    if (faults_.reorder) {
      for (size_t i = due.size(); i > 1; --i) std::swap(due[i - 1], due[prng_.uniform(0, i - 1)]);
    }
    for (const InFlight& f : due) {
      if (is_cut(f.m.from.value(), f.m.to.value())) continue;
      receive(f.m);
    }
  }

  // Moves time to each next due message and delivers, until the network is
  // quiet or max_rounds have passed (duplicates may keep it busy).
  template <class Receive>
  void deliver_all(Receive&& receive, size_t max_rounds) {
    for (size_t r = 0; r < max_rounds && !empty(); ++r) {
      now_ = std::max(now_, min_due());
      deliver_due(receive);
    }
  }

 private:
  struct InFlight {
    uint64_t due = 0;
    Message m;
  };

  // Precondition: !empty().
  uint64_t min_due() const {
    CHORUS_ASSERT(!empty());
    uint64_t d = UINT64_MAX;
    for (const InFlight& f : in_flight_) d = std::min(d, f.due);
    return d;
  }

  Prng& prng_;
  NetFaults faults_;
  std::vector<InFlight> in_flight_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  uint64_t now_ = 0;
};

}  // namespace chorus::core::testing
