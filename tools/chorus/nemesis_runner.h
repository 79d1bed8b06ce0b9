// The nemesis run itself: cluster, clients, fault schedule, healing, final
// reads (nemesis.h describes the whole). The command (nemesis_command.cc)
// parses options, calls run() and reports on the result.
//
// Cleanup guarantee: run() stops every chorusd it started (by recorded PID)
// and removes its iptables chain before it returns — after a normal run, an
// interruption (the caller's `interrupted` flag, set from a SIGINT/SIGTERM
// handler, is polled at least every 50 ms) or a failure; the Firewall's and
// the cluster guard's destructors also run when an exception unwinds.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"
#include "check/history.h"
#include "nemesis.h"

namespace chorus::tools::nemesis {

struct RunResult {
  uint64_t seed = 0;
  std::string dir;
  std::string partition_note;  // why partitions were skipped, or empty
  std::string cluster_note;    // addresses and ports, for the header line
  // Every client operation (by invoke time), then the final reads.
  check::History history;
  size_t workload_ops = 0;  // history[0, workload_ops) are the clients' operations
  StallRange stall{};       // the lengths stalls were drawn from
  std::vector<FaultEvent> faults;
  // Key -> final value read through the leader after healing (nullopt: absent).
  std::map<std::string, std::optional<std::string>> finals;
  // Harness-level failures: a node that exited on its own, no leader after
  // healing, a node unhealthy at the end, keys that could not be read.
  std::vector<std::string> problems;
  // Replicas that disagree with the final read after catching up.
  std::vector<std::string> divergence;
  std::map<std::string, uint64_t> errors;  // why client operations failed
  int64_t workload_end_us = 0;
  bool interrupted = false;
  bool skipped = false;  // require_partitions, and partitions are impossible here
  // Acknowledged writes the nodes reported lost from the keyspace under test
  // (their <data>/lost-writes.log, kind lost-acknowledged), as (key, value);
  // how many such reports there were, how many were ranges of positions that
  // could not be enumerated, and how many entries were reported in doubt
  // (a node that could not tell; the entry may well survive elsewhere, so
  // those are not taken as losses: a lost acknowledged write is reported
  // lost-acknowledged by the primary that acknowledged it).
  std::set<std::pair<std::string, std::string>> lost_writes;
  uint64_t lost_reports = 0;
  uint64_t lost_ranges = 0;
  uint64_t in_doubt_reports = 0;
};

// Runs one nemesis run. Progress lines (each fault) go to stdout unless quiet.
// An error means the run could not start (bad directory, no free ports, no
// leader at start...).
Result<RunResult> run(const Options& o, const std::atomic<bool>& interrupted, bool quiet);

}  // namespace chorus::tools::nemesis
