#include "sim/faults.h"

#include <fmt/format.h>

namespace chorus::sim {

FaultConfig FaultConfig::random(Prng& prng) {
  FaultConfig f;
  f.min_delay_us = static_cast<Time>(prng.uniform(50, 500));
  f.max_delay_us = f.min_delay_us + static_cast<Time>(prng.uniform(0, 10000));
  f.loss = prng.chance(0.7) ? prng.real() * 0.15 : 0;
  f.duplicate = prng.chance(0.5) ? prng.real() * 0.1 : 0;
  f.reorder = prng.chance(0.5) ? prng.real() * 0.2 : 0;
  f.reorder_extra_us = static_cast<Time>(prng.uniform(1000, 50000));
  f.mean_partition_interval_us =
      prng.chance(0.8) ? static_cast<Time>(prng.uniform(200, 2000)) * kMillisecond : 0;
  f.asymmetric_partitions = prng.chance(0.5);
  f.mean_crash_interval_us =
      prng.chance(0.7) ? static_cast<Time>(prng.uniform(300, 3000)) * kMillisecond : 0;
  f.min_down_us = static_cast<Time>(prng.uniform(10, 200)) * kMillisecond;
  f.max_down_us = f.min_down_us + static_cast<Time>(prng.uniform(0, 2000)) * kMillisecond;
  f.crash_leader_bias = prng.real();
  f.min_fsync_us = static_cast<Time>(prng.uniform(20, 200));
  f.max_fsync_us = f.min_fsync_us + static_cast<Time>(prng.uniform(0, 3000));
  f.max_clock_skew = prng.chance(0.7) ? 1.0 + prng.real() * 0.5 : 1.0;
  f.corrupt_snapshot = prng.chance(0.3) ? 0.5 : 0;
  if (prng.chance(0.4)) {
    f.mean_stall_interval_us = static_cast<Time>(prng.uniform(300, 3000)) * kMillisecond;
    f.min_stall_us = static_cast<Time>(prng.uniform(5, 100)) * kMillisecond;
    f.max_stall_us = f.min_stall_us + static_cast<Time>(prng.uniform(0, 600)) * kMillisecond;
    f.stall_leader_bias = prng.real();
  }
  if (prng.chance(0.25)) {
    f.leader_churn = true;
    f.mean_crash_interval_us = static_cast<Time>(prng.uniform(80, 400)) * kMillisecond;
    f.crash_leader_bias = 0.9;
    f.kill_new_leader = 0.3 + prng.real() * 0.5;
    f.kill_new_leader_within_us = static_cast<Time>(prng.uniform(1, 40)) * kMillisecond;
    f.isolate_new_leader = prng.real() * 0.5;
    f.isolate_new_leader_us = static_cast<Time>(prng.uniform(20, 500)) * kMillisecond;
    f.min_down_us = static_cast<Time>(prng.uniform(5, 50)) * kMillisecond;
    f.max_down_us = f.min_down_us + static_cast<Time>(prng.uniform(0, 400)) * kMillisecond;
  }
  return f;
}

std::string FaultConfig::describe() const {
  std::string s;
  s += fmt::format("network: delay {}..{}us loss {:.3f} dup {:.3f} reorder {:.3f} (+{}us)\n",
                   min_delay_us, max_delay_us, loss, duplicate, reorder, reorder_extra_us);
  if (mean_partition_interval_us > 0) {
    s += fmt::format("partitions: every ~{}ms, {}\n", mean_partition_interval_us / kMillisecond,
                     asymmetric_partitions ? "symmetric and asymmetric" : "symmetric only");
  } else {
    s += "partitions: none\n";
  }
  if (mean_crash_interval_us > 0) {
    s += fmt::format("crashes: every ~{}ms, down {}..{}ms, leader bias {:.2f}\n",
                     mean_crash_interval_us / kMillisecond, min_down_us / kMillisecond,
                     max_down_us / kMillisecond, crash_leader_bias);
  } else {
    s += "crashes: none\n";
  }
  if (mean_stall_interval_us > 0) {
    s += fmt::format("stalls: every ~{}ms for {}..{}ms, leader bias {:.2f}\n",
                     mean_stall_interval_us / kMillisecond, min_stall_us / kMillisecond,
                     max_stall_us / kMillisecond, stall_leader_bias);
  }
  if (corrupt_snapshot > 0)
    s += fmt::format("snapshot media corruption: {:.2f} per crash\n", corrupt_snapshot);
  s += fmt::format("disk: fsync {}..{}us\nclocks: rates within {:.2f}x of real time", min_fsync_us,
                   max_fsync_us, max_clock_skew);
  if (leader_churn) {
    s += fmt::format(
        "\nprofile: leader churn; new leaders crash within {}ms with chance {:.2f}, or are "
        "isolated "
        "for {}ms with chance {:.2f}",
        kill_new_leader_within_us / kMillisecond, kill_new_leader,
        isolate_new_leader_us / kMillisecond, isolate_new_leader);
  }
  return s;
}

}  // namespace chorus::sim
