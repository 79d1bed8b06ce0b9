// What the nemesis concludes from a recorded history: the list-append checks,
// availability and unavailability figures, and the fault schedule printed
// around a violation. Pure functions of their arguments (unit-tested in
// nemesis_analysis_test.cc); the linearizability check itself is
// check::check_partition (src/check/linearizability.h), run per key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "check/history.h"
#include "check/linearizability.h"
#include "nemesis.h"

namespace chorus::tools::nemesis {

// ---------------------------------------------------------------------------
// The append workload
//
// Every append writes a unique ",<value>", so the final read of a key (taken
// after healing, through the leader) lists, in order, every append that took
// effect. Checked per key:
//   1. no value appears twice in the final read, and each one was appended by
//      an operation that was not refused (kOk or kUnknown);
//   2. every acknowledged append appears in the final read (nothing lost);
//   3. every successful read is a prefix of the final read (element-wise);
//   4. real-time order: give an append at position i the rank 2i and a read
//      of p elements the rank 2p+1; whenever X completed before Y was
//      invoked, rank(X) <= rank(Y).
// Together these are exactly linearizability of a list-append history whose
// reads return the whole list: sorting the operations by rank (reads of equal
// rank by completion) gives a legal sequential order that respects real time,
// and any violated rule rules every order out. So this check is complete and
// runs in O(n log n), whereas the general search can blow up on many
// concurrent appends; the nemesis runs both.
struct AppendCheck {
  bool violation = false;
  size_t keys = 0;           // keys checked
  size_t keys_no_final = 0;  // keys without a final read (inconclusive for them)
  uint64_t acked_appends = 0;
  uint64_t appends_in_final = 0;      // acked and unknown appends that took effect
  std::vector<std::string> problems;  // one line each, at most kMaxProblems
  // The operations behind the first problem, for the report (by invoke time).
  std::vector<check::Operation> window;
  static constexpr size_t kMaxProblems = 20;
};

// `finals`: key -> its final value (nullopt: the key is absent); a key of the
// history missing from `finals` had no final read.
AppendCheck check_appends(const check::History& h,
                          const std::map<std::string, std::optional<std::string>>& finals);

// ---------------------------------------------------------------------------
// Follower reads (--consistency follower)
//
// A follower read (CHORUS.CONSISTENCY follower) is answered from the state
// the node has applied: the state after some prefix of the committed log,
// possibly an old one. Such reads are not linearizable by design, so a stale
// one is counted, not reported as a fault. What they do promise is checked,
// per key, for every successful read of the workload:
//   - register: the read returns no value, or a value written by a SET or
//     CHORUS.CAS that was not refused (nor a CAS known not to have swapped)
//     and that was invoked before the read completed. That is: a value the
//     key held at some point, never one no client wrote, one whose write was
//     refused, or one from the future;
//   - append: the read is a list prefix of the key's final read (which lists
//     every append that took effect, in log order: a committed prefix), and
//     every element in it was appended by an operation invoked before the
//     read completed.
// The writes and the final reads (which are linearizable reads) are checked
// for linearizability as in the other modes, without these reads.
//
// Stale: a read that certainly missed a write acknowledged before it began.
//   - register: the value read was written by W (or is absent), and some
//     acknowledged write W2 (a SET, or a CAS that swapped) was invoked after
//     W was acknowledged — so W2 follows W in every linearization of the
//     writes — and was itself acknowledged before the read was invoked (for
//     an absent value: any acknowledged write before the read). Writes whose
//     order the history does not fix are not counted: a lower bound;
//   - append: an acknowledged append at a position past the read's length
//     was acknowledged before the read was invoked (exact: the final read
//     fixes the order).
struct FollowerReadCheck {
  bool violation = false;
  uint64_t reads = 0;                 // successful reads checked
  uint64_t stale = 0;                 // of those, certainly stale
  uint64_t unchecked = 0;             // append reads of a key without a final read
  std::vector<std::string> problems;  // one line each, at most kMaxProblems
  // The operations behind the first problem, for the report (by invoke time).
  std::vector<check::Operation> window;
  static constexpr size_t kMaxProblems = 20;
};

// `ops`: the workload's operations, whose every kGet is a follower read (not
// the final reads). `finals` as for check_appends; used for kAppend only.
FollowerReadCheck check_follower_reads(
    std::span<const check::Operation> ops, WorkloadKind workload,
    const std::map<std::string, std::optional<std::string>>& finals);

// ---------------------------------------------------------------------------
// Strategies that may lose acknowledged writes (async)
//
// Such a strategy promises that every lost write is reported (each node's
// lost-writes.log). Its history must be linearizable once exactly those
// writes are removed, with every read that returned one of their values
// (matched by key and value: every value the register workload writes is
// unique). Then every acknowledged write not reported lost is present. The
// final reads of lost values are removed too: a write's dropped copy may
// have been offered again by its node and committed (its client not yet
// answered), so a reported value may legitimately survive. A write whose
// client got a definite failure is never removed, nor are reads of its value.
// A survivor may also be built on (a compare-and-set that expected its
// value): check_key_with_losses() then keeps that report.
// Limits: a write is matched by value, not by log position, so a report of
// one copy excuses every copy of that write; and two primaries acknowledging
// at once are excused if the loser's writes are all reported (the simulator's
// checker, which sees every node's log, is the stronger proof).
struct LostWritesRemoved {
  uint64_t acknowledged = 0;  // writes the client saw succeed
  uint64_t other = 0;         // failed or indeterminate writes
  uint64_t reads = 0;         // successful reads of a lost value
};
check::History without_lost_writes(const check::History& h,
                                   const std::set<std::pair<std::string, std::string>>& lost,
                                   LostWritesRemoved* removed);

// One key's register check under loss reports that may over-count. A report
// names a copy of a write, not the write: a node that forwarded a write to a
// primary which appended it but could not answer (a one-way partition)
// offers it again to the next primary, which applies it once (the session
// table); the first primary then reports its copy lost. A later operation
// may have built on the surviving copy — a compare-and-set that expected its
// value — so removing every reported write is wrong too. The key is
// linearizable if it is once some subset of its reported writes is removed
// (with the reads of their values): first all of them, then keeping one,
// then two, ..., within `max_tries` checks. Only reported writes whose value
// a successful, unreported compare-and-set expected may be kept. Every
// write removed is still one a node reported; `kept` says how many reports
// the history refuted. A violation with subsets left untried, or a subset
// the search could not decide, is `undecided`: not proof.
struct LossyKeyCheck {
  check::CheckResult result;  // of the last subset tried (the first, if none passed)
  LostWritesRemoved removed;  // by the subset that passed (or by removing all)
  size_t kept = 0;            // reported writes kept because the history shows them
  size_t tries = 0;           // subsets checked
  uint64_t steps = 0;         // search steps over every subset
  bool undecided = false;     // a violation, but not every subset was decided
};
LossyKeyCheck check_key_with_losses(std::span<const check::Operation> ops,
                                    const std::set<std::pair<std::string, std::string>>& lost,
                                    size_t max_tries = 256);

// ---------------------------------------------------------------------------
// Figures

struct OpCounts {
  uint64_t total = 0, ok = 0, failed = 0, unknown = 0;
  uint64_t reads = 0, writes = 0;
};
OpCounts count_ops(const check::History& h);

// Operations invoked while some fault was active, and how many succeeded.
struct Availability {
  uint64_t during_faults = 0, ok_during_faults = 0;
  uint64_t total = 0, ok_total = 0;
  double percent_during_faults() const;
  double percent_total() const;
};
Availability availability(const check::History& h, const std::vector<FaultEvent>& faults,
                          int64_t end_us);

// Per fault: milliseconds from its injection to the completion of the first
// acknowledged write invoked at or after it; nullopt if no write succeeded
// after it (parallel to `faults`).
std::vector<std::optional<double>> unavailability_ms(const check::History& h,
                                                     const std::vector<FaultEvent>& faults);

struct Spread {
  std::string label;  // a fault kind or shape
  size_t faults = 0;
  size_t without_write = 0;  // no write succeeded after it
  double median_ms = 0, max_ms = 0;
};
// Grouped by kind (by_shape false) or by shape, in order of first appearance.
std::vector<Spread> unavailability_spread(const std::vector<FaultEvent>& faults,
                                          const std::vector<std::optional<double>>& ms,
                                          bool by_shape);

// The faults active in [from_us, to_us], widened by `margin_us` on each side,
// one line each: "  +12.345s .. +15.001s  kill -9 n2 (leader)".
std::string faults_around(const std::vector<FaultEvent>& faults, int64_t from_us, int64_t to_us,
                          int64_t margin_us);

}  // namespace chorus::tools::nemesis
