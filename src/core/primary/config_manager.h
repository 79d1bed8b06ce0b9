// ConfigManager: the configuration manager's decisions for one primary-backup
// keyspace (DESIGN.md, "the metadata group"; PacificA's configuration
// manager). The metadata group's leader runs one per keyspace; this class
// only decides, like the engines it is pure (no clock, no I/O, no thread):
// inputs are tick() and report(), outputs are the Decisions it queues.
//
// What it decides:
//  - lease renewals for a live primary, each anchored at a report the
//    primary sent (see "Leases" below);
//  - a new appointment, epoch + 1, when the primary's reports stop for longer
//    than failure_timeout_ticks, or it reports that it restarted and cannot
//    serve its epoch — never before the old primary's lease has
//    certainly expired — naming the reachable replica with the most durable
//    log by (last term, last index) (the term encodes (epoch, generation), so
//    this is Raft's §5.4.1 up-to-date order);
//  - sync-all with on_replica_failure = reconfigure: a renewal without a
//    backup silent for failure_timeout_ticks, and one with it again once it
//    reports having caught up. Every replica that is not a member is named a
//    learner in each configuration: the primary streams the log to it
//    without counting it, so it can catch up (PacificA).
//
// Promotion rules (after the old lease expired, the manager opens a probe
// round; only reports that echo it count, so each was sent after the old
// primary could last acknowledge a write). The *witnesses* of an epoch are
// every replica that was a member at any time in it; the failed primary
// excepted:
//  - promotion = safe, semi-sync with k acks and m backups: m - k + 1
//    answers. An acknowledged write is durable on k backups, so any m - k + 1
//    of them include one, and the most up-to-date log among them holds every
//    acknowledged write (Log Matching, as in Raft's election restriction).
//  - promotion = safe, sync-all: every witness answers. One backup would
//    suffice for acknowledged writes (each is on every member) but not for a
//    rollback: the client of a rolled-back write was answered once the marker
//    was durable on the primary and on *one* backup, so only the most
//    up-to-date log among all of them is sure to hold it. A backup dropped by
//    reconfigure in this epoch is still a witness: the primary may have
//    relied on it before the renewal that dropped it arrived. And until
//    every member holds an entry of the epoch, the previous epoch's
//    witnesses and its failed primary stay witnesses: before that, writes
//    acknowledged earlier may be on the failed primaries alone (members
//    re-admitted or added without them).
//  - promotion = available: the best of the witnesses that answered, once
//    all answered or promotion_wait_ticks after the probe. Acknowledged
//    writes may be lost (the engines count and report them).
//  - async acknowledges on the primary alone: only promotion = available.
// Until a rule holds the manager refuses to promote and status() says why.
// If the old primary answers the probe before a successor is appointed, it
// keeps its epoch and gets a new lease: it holds every acknowledged write.
//
// Leases (fencing): a primary writes only under a lease of lease_ticks of its
// own monotonic clock. Each grant names the report it answers
// (Decision::lease_anchor_tick = that report's sent_tick, on the primary's
// clock); the primary's lease runs from there — the host configures the
// engine with lease_ticks - (its now - anchor), and not at all when that is
// <= 0 — so a late delivery never stretches it. The manager counts the lease
// from its grant (later than the anchor) for ceil(lease * drift^2) + 1 of
// its own ticks: both clocks run within a factor `drift` of real time
// (raft::Config::clock_drift_bound), and one tick is lost to granularity.
//
// Crash / leader change: nothing here is durable. The host persists state()
// through the metadata group before it delivers a Decision (an appointment
// must be committed before anyone learns it, or a new manager could reuse
// the epoch), and a new manager starts from the committed state, assuming a
// lease was granted and every replica reported at its first tick.
// Threading: single-threaded.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "core/primary/options.h"

namespace chorus::primary {

enum class Promotion : uint8_t {
  kSafe,       // only a replica that certainly holds every acknowledged write
  kAvailable,  // the best reachable replica, after promotion_wait_ticks
};
enum class OnReplicaFailure : uint8_t {
  kBlock,        // members stay; sync-all writes stall while one is down
  kReconfigure,  // sync-all: drop a silent backup, re-admit it once caught up
};

struct ManagerOptions {
  AckRule rule = AckRule::kSemiSync;
  uint32_t acks = 1;  // semi-sync: k
  Promotion promotion = Promotion::kSafe;
  OnReplicaFailure on_replica_failure = OnReplicaFailure::kBlock;
  // A replica whose reports stop for longer than this is failed.
  uint64_t failure_timeout_ticks = 30;
  // The lease a primary gets, in its own ticks.
  uint64_t lease_ticks = 10;
  // A live primary's lease is renewed at most this often.
  uint64_t renew_interval_ticks = 3;
  // promotion = available (and the first appointment): how long after the
  // probe to wait for more answers before taking the best so far.
  uint64_t promotion_wait_ticks = 10;
  // Reconfigure: a learner is re-admitted once its log, of the current
  // epoch, ends at most this many entries before the primary's commit index
  // (the reports are not simultaneous; the primary sends it the rest).
  uint64_t readmit_lag_entries = 256;
  // On a tie of logs, a replica other than this one is appointed (the
  // manager's own node: a primary there shares its fate, and when that node
  // dies its successor manager first waits out a whole lease).
  NodeId prefer_not = kNoNode;
  // Every node's monotonic clock runs within this factor of real time.
  double clock_drift_bound = 1.1;

  // OK, or an error naming the first bad option.
  Status validate() const;
};

// What a replica tells the manager, periodically.
struct ReplicaReport {
  NodeId node;
  Epoch epoch;     // the highest epoch it has seen
  Term last_term;  // its last durable entry
  LogIndex last_index;
  LogIndex commit;         // its commit index
  uint64_t sent_tick = 0;  // its own monotonic tick when it sent this
  uint64_t round = 0;      // the newest probe_round() it has heard of
  // False when the manager named this node primary of `epoch` and it cannot
  // serve it: it restarted since (a node is primary only of an epoch it had
  // not seen, primary.h), so the appointment and every renewal are refused.
  // The manager treats such a primary as failed. See reports_serving().
  bool serving = true;
};

// ReplicaReport::serving for node `me`, which holds `epoch` and is or is not
// primary, given the newest grant it received since it started (none yet:
// nullopt). A node holding an epoch that has had no grant since it started
// restarted after learning that epoch, so it can never be primary of it:
// whether the manager names it primary there is unknown to it, and saying
// false costs nothing when it is not (the manager reads `serving` only from
// the primary it named of that very epoch). Saying true instead let the
// manager renew the lease of a restarted primary that cannot use it, which
// postponed the failover by a whole lease.
bool reports_serving(NodeId me, Epoch epoch, bool is_primary,
                     const std::optional<Configuration>& grant_since_start);

// What the metadata group persists for the keyspace.
struct ManagerState {
  Configuration config;          // epoch 0: no primary appointed yet
  std::vector<NodeId> replicas;  // every replica of the keyspace
  // Every member of config.epoch so far (the promotion witnesses).
  std::vector<NodeId> witnesses;
  // Sync-all: witnesses inherited from earlier epochs (their witnesses and
  // failed primaries), until every member reported an entry of this epoch.
  std::vector<NodeId> inherited;
  bool operator==(const ManagerState&) const = default;
};

struct Decision {
  enum class Kind : uint8_t { kAppointment, kRenewal };
  Kind kind;
  Configuration config;  // lease_ticks = ManagerOptions::lease_ticks
  // The primary's own tick its lease counts from (ReplicaReport::sent_tick).
  uint64_t lease_anchor_tick = 0;
  std::string why;
  // A periodic renewal that changes nothing but the lease (hosts log the
  // others).
  bool routine = false;
};

struct ManagerStatus {
  enum class Phase : uint8_t {
    kServing,        // a primary holds (or may hold) a lease
    kLeaseExpiring,  // the primary is silent; its lease may still hold
    kProbing,        // waiting for replicas to answer the probe
  };
  Phase phase = Phase::kServing;
  Configuration config;
  std::string reason;            // one line: what the manager is waiting for
  std::vector<NodeId> excluded;  // replicas dropped by reconfigure
};
std::string_view phase_name(ManagerStatus::Phase p);

class ConfigManager {
 public:
  // Precondition: opts.validate() is OK; state.replicas is not empty and
  // holds config.members.
  ConfigManager(ManagerOptions opts, ManagerState state);

  void tick();
  void report(const ReplicaReport& r);
  std::vector<Decision> take_decisions();

  const Configuration& configuration() const { return state_.config; }
  const ManagerState& state() const { return state_; }
  // The host sends it to every replica; their reports echo it.
  uint64_t probe_round() const { return probe_round_; }
  ManagerStatus status() const;
  uint64_t ticks() const { return now_; }
  // The first tick at which the latest lease has certainly expired.
  uint64_t lease_expiry_tick() const;

 private:
  struct Replica {
    std::optional<ReplicaReport> last;
    uint64_t received_tick = 0;  // of `last`, or the manager's start
  };
  struct Serving {};
  struct Failover {
    NodeId failed;  // kNoNode: the first appointment
    uint64_t probe_tick = 0;
  };

  void evaluate();
  void serve();
  void maybe_renew();
  void maybe_reconfigure();
  void start_failover_if_due();
  void try_promote(const Failover& f);
  std::vector<NodeId> needed_answers(const Failover& f, size_t* quorum) const;
  std::vector<NodeId> answered(const Failover& f) const;
  bool answered_probe(NodeId n, const Failover& f) const;
  std::optional<NodeId> best_of(const std::vector<NodeId>& nodes) const;
  void appoint(NodeId primary, std::vector<NodeId> members, std::string why,
               NodeId failed = kNoNode);
  void note_established();
  std::vector<NodeId> promotion_witnesses() const;
  std::vector<NodeId> learners_besides(const std::vector<NodeId>& members) const;
  void renew(std::vector<NodeId> members, std::string why, bool routine = false);
  bool silent(NodeId n) const;
  // Silent, or reports that it cannot serve the current epoch (ReplicaReport::serving).
  bool failed(NodeId n) const;
  bool is_member(NodeId n) const;
  std::string failover_reason(const Failover& f) const;

  ManagerOptions opts_;
  ManagerState state_;
  std::map<NodeId, Replica> replicas_;
  std::variant<Serving, Failover> phase_;
  uint64_t now_ = 0;
  uint64_t last_grant_tick_ = 0;
  uint64_t probe_round_ = 0;
  std::string reason_;  // set by evaluate(): what it waits for
  std::vector<Decision> decisions_;
};

}  // namespace chorus::primary
