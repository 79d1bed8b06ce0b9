// The nemesis: a Jepsen-style fault-injection run against real chorusd
// processes (`chorus nemesis`, docs/reliability.md).
//
// One run:
//   1. starts its own cluster on 127.0.0.11.. (one loopback address per node,
//      so that iptables rules between addresses partition it), data in a
//      temporary directory;
//   2. runs concurrent hiredis clients (nemesis_workload.h) that record every
//      operation with its invoke/complete time (steady clock, microseconds
//      since the run started) and what the client learned (ok / failed /
//      unknown);
//   3. meanwhile injects a seeded random schedule of faults, one at a time:
//      kill -9 (the leader more often) and restart later, SIGSTOP/SIGCONT
//      held for seconds (pause) or for under a second (stall), iptables
//      partitions (nemesis_firewall.h), crash-restarts;
//   4. heals everything, waits for a leader, reads every key, and checks the
//      history (nemesis_analysis.h): linearizability per key (with follower
//      reads, of the writes, and the reads against what follower reads
//      promise), no acknowledged write missing, replicas converged; plus
//      availability figures.
//
// Times in this header are microseconds since the run started (t0), the clock
// of the recorded history.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "host/consistency.h"

namespace chorus::tools::nemesis {

enum class FaultKind : uint8_t {
  kKill,   // kill -9 one node; restarted when the fault heals
  kPause,  // SIGSTOP one node for seconds; SIGCONT when it heals
  // SIGSTOP one node (the leader more often) for under a second, but longer
  // than an election timeout (stall_range): a stalled event loop. It resumes
  // while another leader may already exist, the window in which a leader that
  // measured time by its own loop turns would trust an expired lease. With
  // the firewall, half the stalls are deaf: the peers' traffic to the node is
  // dropped until a lease's length after SIGCONT (nemesis_runner.cc).
  kStall,
  kPartition,  // iptables drops between node addresses; flushed when it heals
  kRestart,    // kill -9 one node (or all of them) and start it again at once
};
inline constexpr FaultKind kAllFaultKinds[] = {FaultKind::kKill, FaultKind::kPause,
                                               FaultKind::kStall, FaultKind::kPartition,
                                               FaultKind::kRestart};
std::string_view fault_kind_name(FaultKind k);
std::optional<FaultKind> parse_fault_kind(std::string_view name);
// "kill,stall,partition", "all", "none" or "" -> the kinds, each once, in the
// order given; nullopt if a name is unknown (*bad names it).
std::optional<std::vector<FaultKind>> parse_fault_list(std::string_view list, std::string* bad);
// "kill, pause, stall, partition, restart": the names --faults accepts.
std::string fault_kind_names();

// How long a stall holds the node stopped, from the cluster's timing: at
// least 1.5 election timeouts (tick_ms * election_timeout_ticks; the core
// randomizes the timeout in [T, 2T), so the others often, not always, elect
// a new leader meanwhile) and at most 6 (it resumes while that leader is
// young, still sending its first heartbeats). 150-600 ms with the defaults.
struct StallRange {
  std::chrono::milliseconds min, max;
};
StallRange stall_range(uint32_t tick_ms, uint32_t election_timeout_ticks);

// The read mode every client connection sets (CHORUS.CONSISTENCY). What the
// check proves depends on it: kLinearizable and kLease reads are checked for
// linearizability like the writes; kFollower reads promise less, and are
// checked by check_follower_reads (nemesis_analysis.h).
using host::Consistency;
std::optional<Consistency> parse_consistency(std::string_view name);

enum class WorkloadKind : uint8_t {
  kRegister,  // GET / SET / CHORUS.CAS on a few keys
  kAppend,    // APPEND ",<unique>" and GET: every read is a comma list
};
std::string_view workload_name(WorkloadKind w);

// One injected fault.
struct FaultEvent {
  FaultKind kind = FaultKind::kKill;
  // Finer label for the statistics: "kill-leader", "pause-follower",
  // "partition-bridge", "restart-all"...
  std::string shape;
  std::string what;  // for humans: "kill -9 n2 (leader)"
  int64_t start_us = 0;
  int64_t end_us = -1;  // healed at; -1 while active
};

struct Options {
  int nodes = 3;
  std::chrono::milliseconds duration{60'000};
  std::vector<FaultKind> faults;
  WorkloadKind workload = WorkloadKind::kRegister;
  int clients = 10;
  int keys = 8;  // keys in use at any time (each rotates to a fresh key now and then)
  uint64_t seed = 0;
  std::string dir;            // empty: a fresh temporary directory
  bool keep = false;          // keep the directory (it is kept anyway after a violation)
  std::string chorusd;        // empty: the chorusd next to this executable
  int rate_per_client = 100;  // operations per second per client; 0 = as fast as possible
  std::chrono::milliseconds op_timeout{6'000};  // > the server's 5 s request timeout
  uint16_t base_port = 0;                       // 0: pick free ports
  // Faults: a quiet gap, then one fault held for a while, then healed.
  std::chrono::milliseconds quiet_min{1'000}, quiet_max{4'000};
  std::chrono::milliseconds hold_min{2'000}, hold_max{6'000};
  // A fresh key after this many operations on a key (register) or appends to
  // it (append): bounds the values' length and each key's history.
  int ops_per_key = 0;  // 0: the workload's default
  // Server settings under test (docs/config.md): raft.check_quorum.
  bool check_quorum = true;
  // Every client connection's read mode. kLease also runs the nodes with
  // raft.lease_reads = true (which needs check_quorum).
  Consistency consistency = Consistency::kLinearizable;
  // The replication strategy of the keys under test: "raft" (the default
  // keyspace), or paxos / sync-all / semi-sync / async — a keyspace of that strategy
  // created for the workload's keys (their common prefix).
  std::string strategy = "raft";
  // Partitions asked for but impossible here: do not run at all
  // (RunResult::skipped) rather than run without them.
  bool require_partitions = false;
};

}  // namespace chorus::tools::nemesis
