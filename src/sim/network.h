// The simulated network between nodes: per-message delay, loss, duplication
// and reordering, and a connectivity matrix that partitions (symmetric or
// one-way) change over time. It decides each message's fate with the run's
// Prng; the cluster schedules the deliveries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/prng.h"
#include "sim/faults.h"

namespace chorus::sim {

class Network {
 public:
  Network(int nodes, FaultConfig faults)
      : n_(nodes), faults_(faults), blocked_(nodes * nodes, false) {}

  // The delivery delays for one message from -> to (node indexes): empty when
  // dropped, two entries when duplicated.
  std::vector<Time> fate(int from, int to, Prng& prng) {
    std::vector<Time> out;
    if (blocked(from, to) || prng.chance(faults_.loss)) return out;
    const int copies = prng.chance(faults_.duplicate) ? 2 : 1;
    for (int i = 0; i < copies; ++i) {
      Time d = static_cast<Time>(prng.uniform(static_cast<uint64_t>(faults_.min_delay_us),
                                              static_cast<uint64_t>(faults_.max_delay_us)));
      if (prng.chance(faults_.reorder)) {
        d += static_cast<Time>(prng.uniform(0, static_cast<uint64_t>(faults_.reorder_extra_us)));
      }
      out.push_back(d);
    }
    return out;
  }

  bool blocked(int from, int to) const { return blocked_[from * n_ + to]; }
  void block(int from, int to) { blocked_[from * n_ + to] = true; }
  void heal() { std::fill(blocked_.begin(), blocked_.end(), false); }
  // Cuts every link between the two groups, in both directions.
  void split(const std::vector<int>& side_a) {
    heal();
    std::vector<bool> in_a(n_, false);
    for (int a : side_a) in_a[a] = true;
    for (int i = 0; i < n_; ++i) {
      for (int j = 0; j < n_; ++j) {
        if (in_a[i] != in_a[j]) block(i, j);
      }
    }
  }
  // Stop loss, duplication and reordering (the liveness phase).
  void make_reliable() {
    faults_.loss = 0;
    faults_.duplicate = 0;
    faults_.reorder = 0;
  }
  std::string describe() const {
    std::string s;
    for (int i = 0; i < n_; ++i) {
      for (int j = 0; j < n_; ++j) {
        if (i != j && blocked(i, j)) {
          if (!s.empty()) s += " ";
          s += "n" + std::to_string(i + 1) + "-/->n" + std::to_string(j + 1);
        }
      }
    }
    return s.empty() ? "fully connected" : s;
  }

 private:
  int n_;
  FaultConfig faults_;
  std::vector<bool> blocked_;
};

}  // namespace chorus::sim
