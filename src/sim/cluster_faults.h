// Cluster<E> (cluster.h): the fault schedule of the safety phase —
// partitions that change over time, crashes and restarts, stalled loops,
// and the leader-churn profile's attacks on new leaders.
#pragma once

#include "sim/cluster.h"

namespace chorus::sim {

template <core::Engine E>
void Cluster<E>::schedule_partition() {
  if (opts_.faults.mean_partition_interval_us == 0) return;
  q_.after(jittered(opts_.faults.mean_partition_interval_us), [this] {
    if (!faults_on_) return;
    change_partition();
    schedule_partition();
  });
}

template <core::Engine E>
void Cluster<E>::change_partition() {
  const int n = opts_.nodes;
  uint64_t kind = prng_.uniform(0, opts_.faults.asymmetric_partitions ? 6 : 4);
  if (kind == 4 && !opts_.faults.asymmetric_partitions) kind = 1;
  if (kind == 6) kind = 1;  // isolating the leader is the most telling partition: twice as likely
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int i = n - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[prng_.uniform(0, static_cast<uint64_t>(i))]);
  switch (kind) {
    case 0:
      net_->heal();
      break;
    case 1: {  // isolate the leader (or a random node)
      auto l = current_leader();
      net_->split({l ? static_cast<int>(*l) : order[0]});
      break;
    }
    case 2: {  // majority / minority
      const int minority = static_cast<int>(prng_.uniform(1, static_cast<uint64_t>((n - 1) / 2)));
      net_->split(std::vector<int>(order.begin(), order.begin() + minority));
      break;
    }
    case 3: {  // bridge: two halves that only order[0] connects
      net_->heal();
      for (int i = 1; i < n; ++i) {
        for (int j = 1; j < n; ++j) {
          if ((i % 2) != (j % 2))
            net_->block(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
        }
      }
      break;
    }
    default: {  // asymmetric: some links drop in one direction only
      net_->heal();
      const int cuts = static_cast<int>(prng_.uniform(1, static_cast<uint64_t>(n)));
      for (int k = 0; k < cuts; ++k) {
        const int a = static_cast<int>(prng_.uniform(0, static_cast<uint64_t>(n - 1)));
        const int b = static_cast<int>(prng_.uniform(0, static_cast<uint64_t>(n - 1)));
        if (a != b) net_->block(a, b);
      }
      break;
    }
  }
  ++report_.partitions;
  trace("partition: " + net_->describe());
}

template <core::Engine E>
void Cluster<E>::schedule_crash() {
  if (opts_.faults.mean_crash_interval_us == 0) return;
  q_.after(jittered(opts_.faults.mean_crash_interval_us), [this] {
    if (!faults_on_) return;
    size_t down = 0;
    for (size_t i = 0; i < nodes_.size(); ++i) down += up(i) ? 0 : 1;
    if (down < static_cast<size_t>(opts_.nodes - 1) / 2 + 1) {
      auto l = current_leader();
      const size_t victim = (l && prng_.chance(opts_.faults.crash_leader_bias))
                                ? *l
                                : static_cast<size_t>(prng_.uniform(0, nodes_.size() - 1));
      if (up(victim)) {
        crash_node(victim);
        q_.after(uniform_time(opts_.faults.min_down_us, opts_.faults.max_down_us), [this, victim] {
          if (!nodes_[victim]->loop->up() && faults_on_) start_node(victim);
        });
      }
    }
    schedule_crash();
  });
}

// A node's loop stops for a while (SIGSTOP, a long pause): the leader's
// lease must run out in real time meanwhile, not in loop turns.
template <core::Engine E>
void Cluster<E>::schedule_stall() {
  if (opts_.faults.mean_stall_interval_us == 0) return;
  q_.after(jittered(opts_.faults.mean_stall_interval_us), [this] {
    if (!faults_on_) return;
    auto l = current_leader();
    const size_t victim = (l && prng_.chance(opts_.faults.stall_leader_bias))
                              ? *l
                              : static_cast<size_t>(prng_.uniform(0, nodes_.size() - 1));
    if (up(victim))
      stall(victim, uniform_time(opts_.faults.min_stall_us, opts_.faults.max_stall_us));
    schedule_stall();
  });
}

// Crash a freshly elected leader soon, possibly before it replicated its
// first entries (Figure 8), and restart it later.
template <core::Engine E>
void Cluster<E>::schedule_leader_kill(size_t i) {
  const uint64_t inc = nodes_[i]->loop->incarnation();
  q_.after(uniform_time(0, opts_.faults.kill_new_leader_within_us), [this, i, inc] {
    if (!faults_on_ || !up(i) || nodes_[i]->loop->incarnation() != inc) return;
    crash_node(i);
    q_.after(uniform_time(opts_.faults.min_down_us, opts_.faults.max_down_us), [this, i] {
      if (!nodes_[i]->loop->up() && faults_on_) start_node(i);
    });
  });
}

template <core::Engine E>
void Cluster<E>::schedule_leader_isolation(size_t i) {
  q_.after(uniform_time(0, opts_.faults.kill_new_leader_within_us), [this, i] {
    if (!faults_on_) return;
    net_->split({static_cast<int>(i)});
    ++report_.partitions;
    trace("partition: new leader cut off: " + net_->describe());
    q_.after(opts_.faults.isolate_new_leader_us, [this] {
      if (!faults_on_) return;
      net_->heal();
      trace("partition: healed");
    });
  });
}

}  // namespace chorus::sim
