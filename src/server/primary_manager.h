// PrimaryManagers: the configuration manager of every primary-backup
// keyspace (sync-all, semi-sync, async) as it runs inside chorusd — both
// sides of it (docs/strategies.md, "Who is primary").
//
// Replica side (every node, every tick): each primary-backup group sends the
// metadata group's leader a report (its epoch, last durable entry, commit
// index, its engine's tick, the newest probe round it heard). Grants that
// come back are handed to the group's engine (ReplicaGroup::configure).
//
// Manager side (the metadata group's leader only): one pure
// primary::ConfigManager per keyspace, ticked by this node's monotonic clock
// and fed the reports. Its state (who is primary of which epoch, members,
// witnesses) lives in the metadata group under "primary/<group id>": a
// decision that changes it is written there by compare-and-set first and
// delivered only once committed, so a later manager (after a metadata
// leader change) starts from every appointment ever made and never reuses
// an epoch. A failed compare-and-set means another manager wrote since:
// this one stops and reloads. Lease renewals change nothing stored and go
// out at once; each is anchored at the primary's report (config_manager.h),
// so a late delivery never stretches a lease.
//
// Probe rounds: a grant carries round = (manager tag << 32) | the manager's
// round, and reports echo the newest heard. The tag names the manager: the
// metadata term (low 24 bits) and how many times this leader reloaded that
// keyspace's manager in the term (8 bits), so it grows with every new
// manager. A round of another manager counts as none (a report sent before
// this manager probed can never answer its probe), and a replica ignores
// grants of a manager older than the newest it has heard from.
//
// Leases across incarnations: a grant's lease is anchored at a report's
// tick, and a restarted node's tick clock starts again at 0, so an anchor
// from before a restart would stretch the lease. A report's tick carries a
// random nonce of this process in its high bits (the manager only echoes
// it); a node takes a lease only from an anchor with its own nonce.
//
// Fencing the managers: renewals go out at once from the metadata leader,
// which must step down when cut off from a majority (raft.check_quorum,
// required by primary-backup keyspaces), and only while its metadata group
// says it leads the term the manager was loaded in. A deposed leader may
// not know it for up to about one election timeout after the next leader is
// elected, so a new leader starts its managers only one maximal election
// timeout (stretched by the clock drift bound) after it became leader; a
// new manager then also assumes a lease was granted at its first tick.
//
// Threading: the node's event loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "base/prng.h"
#include "core/primary/config_manager.h"
#include "net/transport/transport.h"
#include "server/config.h"
#include "server/keyspaces.h"
#include "server/replica_group.h"

namespace chorus::server {

// The metadata group's key for keyspace `group`'s manager state.
std::string manager_state_key(GroupId group);

class PrimaryManagers {
 public:
  struct Deps {
    const NodeConfig* config = nullptr;
    net::Transport* transport = nullptr;
    ReplicaGroup* meta = nullptr;
    std::function<ReplicaGroup*(GroupId)> group;  // nullptr: not hosted here
    std::function<const KeyspaceTable&()> table;
    uint64_t prng_seed = 0;
  };
  explicit PrimaryManagers(Deps d);

  // Every tick of the node's timer.
  void tick();
  // A peer message with a manager body.
  Status receive(const net::IncomingMessage& m);

  // This node's manager's view of keyspace `group`; nullopt when this node
  // is not the manager (not the metadata leader) or has not loaded it yet.
  std::optional<primary::ManagerStatus> status(GroupId group) const;

 private:
  struct Slot {
    std::unique_ptr<primary::ConfigManager> mgr;
    primary::ManagerState persisted;
    std::string persisted_bytes;  // "" when the key was absent
    bool persisting = false;
    std::deque<primary::Decision> queue;  // waiting for their state to be committed
    uint64_t session = 0;                 // the metadata writes' client session
    uint64_t seq = 0;
    std::chrono::steady_clock::time_point origin;
    uint64_t ticks_done = 0;
    uint64_t generation = 0;  // tells callbacks of an older slot apart
    uint64_t tag = 0;         // names this manager in probe rounds (see above)
    // The report nonce last seen from each replica: a new one is a restart.
    std::map<NodeId, uint64_t> incarnations;
  };
  using Clock = std::chrono::steady_clock;

  void advance(Slot& s);
  // Still the metadata leader of the term the managers were loaded in.
  bool still_leading() const;
  void report_all();
  void send_report(GroupId g, ReplicaGroup& rg);
  void on_report(GroupId g, primary::ReplicaReport r);
  void on_grant(GroupId g, const std::optional<primary::Configuration>& c, uint64_t round);
  void manage();
  void load_missing();
  void process(GroupId g, Slot& s);
  void persist(GroupId g, Slot& s);
  void deliver(GroupId g, const primary::Decision& d, const primary::ManagerState& st);
  void probe(GroupId g, const Slot& s);
  void refresh(GroupId g, const Slot& s, NodeId n);
  void grant(GroupId g, NodeId n, const std::optional<primary::Configuration>& c, uint64_t round);
  uint64_t wire_round(const Slot& s) const;
  NodeId self() const { return NodeId(d_.config->node_id); }

  Deps d_;
  Prng prng_;
  // Replica side, per group: the newest probe round heard (its tag names the
  // newest manager heard) and the last grant.
  std::map<GroupId, uint64_t> round_heard_;
  std::map<GroupId, primary::Configuration> last_grant_;
  uint64_t incarnation_ = 0;  // the nonce in this process's report ticks (24 bits, nonzero)
  Clock::time_point leading_since_;
  // Manager side: reloads of each keyspace's manager in managed_term_, and
  // keyspaces whose manager failed to load, with when to try again.
  std::map<GroupId, uint64_t> reloads_;
  std::map<GroupId, Clock::time_point> retry_after_;
  // Manager side: valid for the metadata term managed_term_ only.
  std::map<GroupId, Slot> slots_;
  uint64_t managed_term_ = 0;
  bool leading_ = false;
  bool loading_ = false;
  uint64_t generation_ = 0;
};

}  // namespace chorus::server
