// Fault settings for one simulated run. Each seed draws its own settings so a
// sweep covers gentle and hostile networks alike; a run prints them first, so
// a failure report carries everything needed to understand and replay it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/prng.h"
#include "sim/event_queue.h"
#include "storage/env/sim_env.h"

namespace chorus::sim {

struct FaultConfig {
  // Network.
  Time min_delay_us = 100;
  Time max_delay_us = 2000;
  double loss = 0;       // probability a message is dropped
  double duplicate = 0;  // probability a message is delivered twice
  double reorder = 0;    // probability a message gets extra delay (overtaken by later ones)
  Time reorder_extra_us = 20000;
  // Partitions: a new partition (or a heal) every mean_partition_interval_us on average.
  Time mean_partition_interval_us = 0;  // 0 = none
  bool asymmetric_partitions = false;
  // Crashes: a node crashes every mean_crash_interval_us on average and
  // restarts after [min_down_us, max_down_us].
  Time mean_crash_interval_us = 0;  // 0 = none
  Time min_down_us = 50 * kMillisecond;
  Time max_down_us = 2 * kSecond;
  double crash_leader_bias = 0.5;  // chance a crash picks the leader when there is one
  // Chance, per crash, that the node's newest snapshot file suffers media
  // corruption (only when it was taken locally and an older one exists, so a
  // correct node can fall back to the older one plus its log).
  double corrupt_snapshot = 0;
  // Disk: fsync latency range.
  Time min_fsync_us = 50;
  Time max_fsync_us = 1500;
  // Clocks: each node's monotonic clock runs at a rate in [1/max_skew,
  // max_skew] of virtual time (its ticks, its lease, its timeouts).
  double max_clock_skew = 1.0;
  // Stalls: a node's event loop stops (SIGSTOP, a long pause) every
  // mean_stall_interval_us on average, for [min_stall_us, max_stall_us];
  // everything bound for it waits, its storage executor runs on.
  Time mean_stall_interval_us = 0;  // 0 = none
  Time min_stall_us = 20 * kMillisecond;
  Time max_stall_us = 500 * kMillisecond;
  double stall_leader_bias = 0.7;  // chance a stall picks the leader when there is one
  // The "leader churn" profile: leaders crash within a few hundred ms of
  // winning, again and again, on 5 nodes with tiny appends — the conditions of
  // Raft's Figure 8, where a rule broken in commit counting shows.
  bool leader_churn = false;
  // Chance that a newly elected leader crashes within kill_new_leader_within_us.
  double kill_new_leader = 0;
  // Chance that a newly elected leader is cut off from everyone within the
  // same window, for isolate_new_leader_us (it keeps its divergent suffix).
  double isolate_new_leader = 0;
  Time isolate_new_leader_us = 200 * kMillisecond;
  Time kill_new_leader_within_us = 30 * kMillisecond;

  // Draws a random configuration (the one a seed uses in a sweep).
  static FaultConfig random(Prng& prng);
  // One line per group of settings.
  std::string describe() const;
};

// Parameters of a run that are not faults.
struct RunOptions {
  uint64_t seed = 1;
  int nodes = 0;    // 0 = chosen by the seed (3 or 5)
  int clients = 0;  // 0 = chosen by the seed
  int keys = 0;     // 0 = chosen by the seed
  Time tick_us = 10 * kMillisecond;
  Time safety_phase_us = 6 * kSecond;
  Time liveness_bound_us = 5 * kSecond;  // after healing: a leader and new commits within this
  Time client_timeout_us = 1500 * kMillisecond;
  uint64_t snapshot_every_entries = 0;  // 0 = chosen by the seed
  bool faults_from_seed = true;         // false: use `faults` as given
  FaultConfig faults;
  bool disk_faults_from_seed = true;  // false: use `disk` as given
  storage::SimEnvOptions disk;        // torn writes, fsync failures, bad reads
  // The state machine survives crashes (as RocksDB does) instead of being
  // rebuilt from the snapshot and the log; -1 = chosen by the seed.
  int durable_state_machine = -1;
  // Engine settings by name (e.g. "pre_vote" = 0 for Raft); each engine's
  // simulator traits read its own (sim/raft_sim.h) and let the seed choose
  // the ones not given, so a sweep covers each combination.
  std::map<std::string, int> knobs;
  bool trace = false;
};

}  // namespace chorus::sim
