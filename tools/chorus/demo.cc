// `chorus sim --demo`: a visible, simulated 3-node Raft cluster for newcomers.
// It elects a leader, commits writes, crashes the leader, re-elects, and
// brings the old leader back — printing each event as it happens in virtual
// time — and ends with the same safety checks as the seed sweep.
#include <cstdio>
#include <string>

#include "sim/assertion.h"
#include "sim/raft_sim.h"

namespace chorus::tools {

int run_demo(uint64_t seed) {
  using namespace chorus::sim;
  RunOptions o;
  o.seed = seed;
  o.nodes = 3;
  o.clients = -1;
  o.keys = 1;
  o.faults_from_seed = false;
  o.disk_faults_from_seed = false;
  o.faults.min_delay_us = 200;
  o.faults.max_delay_us = 1500;
  o.snapshot_every_entries = 1000000;
  o.trace = true;
  auto print = [](const std::string& line) {
    // Roles, crashes, restarts, partitions and commits; not every message.
    if (line.find("] send ") != std::string::npos || line.find("] drop ") != std::string::npos ||
        line.find("] client ") != std::string::npos) {
      return;
    }
    std::printf("%s\n", line.c_str());
  };
  std::printf("Chorus demo: a simulated 3-node Raft cluster (seed %llu, virtual time)\n\n",
              static_cast<unsigned long long>(seed));
  Cluster<raft::Raft> c(o, print);
  c.start();
  c.run_until([&] { return c.leader().has_value(); }, 5 * kSecond);
  if (!c.leader()) {
    std::printf("no leader elected\n");
    return 1;
  }
  size_t leader = *c.leader();
  std::printf("\n-- n%zu leads; writing three values\n", leader + 1);
  for (int i = 1; i <= 3; ++i) {
    auto op = c.execute(leader, check::OpKind::kPut, "greeting", "hello-" + std::to_string(i));
    std::printf("   SET greeting hello-%d -> %s\n", i,
                op.status == check::OpStatus::kOk ? "OK" : "not acknowledged");
  }
  std::printf("\n-- crashing the leader n%zu\n", leader + 1);
  c.crash(leader);
  c.run_until([&] { return c.leader().has_value(); }, 5 * kSecond);
  if (!c.leader()) {
    std::printf("no new leader\n");
    return 1;
  }
  const size_t next = *c.leader();
  std::printf("\n-- n%zu took over; writing through a follower (forwarded to the leader)\n",
              next + 1);
  const size_t follower = (next + 1) % 3 == leader ? (next + 2) % 3 : (next + 1) % 3;
  auto w = c.execute(follower, check::OpKind::kPut, "greeting", "after-failover");
  std::printf("   SET greeting after-failover via n%zu -> %s\n", follower + 1,
              w.status == check::OpStatus::kOk ? "OK" : "not acknowledged");
  std::printf("\n-- restarting n%zu: it rejoins as a follower and catches up\n", leader + 1);
  c.restart(leader);
  c.run_for(1 * kSecond);
  auto r = c.execute(leader, check::OpKind::kGet, "greeting");
  std::printf("   GET greeting on n%zu -> %s\n", leader + 1, r.output.c_str());
  RunReport rep = c.finish();
  std::printf(
      "\n-- checks: %s (linearizability, one leader per term, log matching, no lost writes)\n",
      rep.violations.empty() ? "all passed" : "VIOLATIONS");
  for (const auto& v : rep.violations) std::printf("   %s\n", v.c_str());
  return rep.violations.empty() ? 0 : 1;
}

}  // namespace chorus::tools
