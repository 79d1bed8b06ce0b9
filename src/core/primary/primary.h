// PrimaryBackup<R>: a pure, deterministic primary-backup replication core,
// one class for the three acknowledgement rules R of DESIGN.md:
//
//   sync-all   a write is acknowledged once every member prepared it (logged
//              durably, not applied) — a leader-run two-phase commit; if a
//              member refuses it or does not prepare it within
//              prepare_timeout_ticks, the primary rolls it back everywhere
//              and its client learns it was certainly not applied
//              (ProposeStatus::kRolledBack);
//   semi-sync  once `acks` backups hold it durably; after ack_timeout_ticks
//              the client gets an indeterminate answer (kAckTimedOut,
//              on_timeout = error) or the write is acknowledged anyway and
//              counted while the engine reports itself degraded
//              (on_timeout = degrade);
//   async      once the primary holds it durably; backups stream it from
//              their replication offset (match index) afterwards.
//
// Why pure: like raft/raft.h, this class does no I/O, reads no clock and
// starts no thread. Inputs are step(), tick(), propose(), read_index() and
// configure(); everything it wants done comes back in a Ready (types.h).
//
// There is no election here. Who is primary of which epoch, and for how long
// it may write (its lease, in ticks), is an input: configure(Configuration)
// from the configuration manager (the metadata group's leader). The host
// calls it whenever the manager's decision for this group reaches the node —
// appointment and every lease renewal — besides the Engine concept's calls.
// A configuration may also arrive as a NewConfiguration message, and a
// backup learns a newer epoch and its primary from the primary's appends;
// neither ever grants a lease.
//
// Invariants and rules (each cited where enforced):
//  - Fencing: a node never accepts anything from an epoch older than the
//    highest it has seen (DurableState::epoch, synced before any message
//    that depends on it); a primary acknowledges writes and serves reads
//    only while its lease holds; it is primary of an epoch only if it had
//    not seen that epoch before (a restarted primary needs a new epoch).
//  - Log Matching: an entry's term is (epoch, generation) (options.h); a
//    primary only appends, except that a sync-all rollback replaces the
//    entries it aborts by a no-op marker of the next generation. So the same
//    term at one index means the same log through that index, and a backup
//    that checks (prev_index, prev_term) holds exactly the primary's prefix.
//  - Reconciliation: a new primary's log wins. It starts its epoch with a
//    no-op entry (Raft §8); a backup, or a returning old primary, whose log
//    has a suffix the new primary lacks drops it — truncating it when none of
//    it was applied, else asking for a snapshot — and reports every dropped
//    entry in Ready::dropped with what it knows of its acknowledgement.
//  - A drop is reported kRolledBack only once it is final: when this node
//    has committed the position where the log that replaced the entry
//    first differs from the entry's, or the entry's own position, with
//    another entry there (settle_drops()). Before that the log that
//    replaced the entry — a sync-all marker, or a new primary's suffix — may
//    itself be replaced by one that still holds the entry (its holders are
//    not all consulted at the next failover, or it came from a deposed
//    primary after the manager's probe), and the entry may then commit.
//  - Commitment (the prefix acknowledged to clients) follows R, counts the
//    primary only once its own copy is durable, and only starts once the
//    epoch's no-op is covered.
//
// Threading: single-threaded; the owner calls every method from one thread.
// Crash: nothing here is durable; the host rebuilds the engine from the
// PersistentState it persisted following each Ready. A restarted node is a
// backup until configured again, and has forgotten the rolled-back drops it
// had not settled: those entries are reported by the nodes that settle
// them (the primary that rolled them back included), not by this one.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "core/common/engine.h"
#include "core/common/types.h"
#include "core/primary/messages.h"
#include "core/primary/options.h"
#include "core/raft/log.h"

namespace chorus::primary {

using core::ProposeResult;
using core::ProposeStatus;
using Ready = core::Ready<Message, DurableState>;
using PersistentState = core::PersistentState<DurableState>;

// Term starts remembered beyond the log's compaction point.
inline constexpr size_t kMaxTermHistory = 1 << 16;
// Rolled-back drops waiting to be settled (primary.h, "A drop is reported
// kRolledBack only once it is final"), in entries; beyond it the lowest is
// reported kInDoubt at once. Bytes are bounded by Options::max_prepared_bytes.
inline constexpr size_t kMaxUnsettledDrops = 1 << 16;

// The primary's view of one backup.
struct PeerProgress {
  LogIndex match;  // Invariant: match < next; the backup holds our log through match
  LogIndex next;   // the next entry to send it
  uint64_t snapshot_sent_tick = 0;
  uint64_t last_ack_tick = 0;   // the last tick an acknowledgement or refusal arrived
  bool wants_snapshot = false;  // asked for one while we had none
  // The backup's snapshot point we found is not in our log; named in the
  // snapshot we send it so that it installs (InstallSnapshot::refuted).
  core::SnapshotMeta refuted;
  // Not a member (Configuration::learners): receives the log, counts for nothing.
  bool learner = false;
};

template <AckRule R>
class PrimaryBackup {
 public:
  using Message = primary::Message;
  using DurableState = primary::DurableState;
  static constexpr AckRule kRule = R;
  static constexpr std::string_view kName = ack_rule_name(R);
  // What every instance promises. Semi-sync loses acknowledged writes only
  // when the configuration manager promotes a replica that lacks them
  // (promotion = available), a per-keyspace option this static value cannot
  // see: capabilities(options) says it per instance.
  static constexpr core::Capabilities kCapabilities{
      .has_leader = true,
      .lease_reads = true,
      .linearizable = R != AckRule::kAsync,
      .may_lose_acknowledged_writes = R == AckRule::kAsync,
  };
  static core::Capabilities capabilities(const Options& o) {
    core::Capabilities c = kCapabilities;
    if (R == AckRule::kSemiSync && (o.promotion_available || o.on_timeout == OnTimeout::kDegrade)) {
      c.linearizable = false;
      c.may_lose_acknowledged_writes = true;
    }
    return c;
  }
  static std::string encode_durable(const DurableState& ds) { return encode_durable_state(ds); }
  static Result<DurableState> decode_durable(std::string_view b) { return decode_durable_state(b); }
  static bool durable_needs_sync(const DurableState& a, const DurableState& b) {
    return durable_state_needs_sync(a, b);
  }
  static std::string describe(const Message& m) { return primary::describe(m); }

  // Precondition: opts.validate() is OK.
  explicit PrimaryBackup(Options opts, PersistentState state = {});

  // A configuration from the configuration manager (see the class comment).
  // Refused, changing nothing, when its epoch is older than one seen, when it
  // would make this node primary of an epoch it already saw, when it names
  // another primary for this node's own epoch, or when semi-sync's `acks`
  // exceeds its backups.
  Status configure(const Configuration& c);

  // Engine concept (core/common/engine.h).
  void step(const Message& m);
  void tick();
  ProposeResult propose(std::string data);
  // Answered at once at the commit index while this node is primary, its
  // lease holds and its epoch's no-op is committed; both modes are lease
  // reads (fencing makes them linearizable for sync-all and semi-sync).
  ProposeResult read_index(uint64_t ctx, core::ReadMode mode = core::ReadMode::kLinearizable);
  std::optional<LogIndex> lease_read_index() const;
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);
  bool has_messages() const;
  std::vector<Message> take_messages();
  void compact(core::SnapshotRef snap);
  NodeId id() const { return opts_.id; }
  core::SoftState soft_state() const;
  core::EngineStatus status() const;
  // The epoch of the entry at i (primary-backup log entries carry epochs as terms).
  std::optional<Term> term_at(LogIndex i) const { return log_.term(i); }

  // Introspection for hosts and tests.
  Epoch epoch() const { return epoch_; }
  const Configuration& configuration() const { return config_; }
  bool is_primary() const { return std::holds_alternative<Primary>(role_); }
  bool lease_valid() const;
  const raft::RaftLog& log() const { return log_; }
  bool degraded() const { return degraded_; }
  uint64_t degraded_writes() const { return degraded_writes_; }
  std::optional<PeerProgress> progress(NodeId peer) const;
  // This node's tick clock; a lease request names it (Configuration::lease_anchor_tick).
  uint64_t ticks() const { return now_ticks_; }

 private:
  // A client write the primary has not committed yet.
  struct Pending {
    LogIndex index;
    Term term;
    uint64_t proposed_tick = 0;
    size_t bytes = 0;
    bool answered = false;  // an outcome already went out (semi-sync kAckTimedOut)
  };
  // Sync-all: writes rolled back behind `marker`, answered kRolledBack once
  // the marker is durable here and on a backup (so that the most up-to-date
  // replica a configuration manager can promote holds the rollback) while
  // the lease holds. Their drop reports wait for the same moment: before it
  // the rollback may still be abandoned and the writes commit elsewhere. An
  // abandoned rollback's drops are held until settled (note_drop()).
  struct Rollback {
    LogIndex marker;
    Term replaced_term;  // of the entry the marker replaced
    std::vector<Pending> aborted;
    std::vector<core::DroppedEntry> dropped;  // reported when released or settled
  };
  struct Backup {};
  struct Primary {
    std::map<NodeId, PeerProgress> peers;  // every member but this node
    uint64_t lease_until_tick = 0;         // exclusive
    uint64_t generation = 0;
    LogIndex epoch_start;  // this epoch's no-op
    std::deque<Pending> pending;
    std::vector<Rollback> rollbacks;
    size_t uncommitted_bytes = 0;  // Invariant: sum of pending bytes
    uint32_t heartbeat_elapsed_ticks = 0;
    bool broadcast_pending = false;
  };
  using RoleState = std::variant<Backup, Primary>;

  Status apply_configuration(Configuration c, bool from_message);
  Status check_same_epoch(const Configuration& c, bool from_message) const;
  // Where a lease granted by `c` ends (exclusive); 0 grants none.
  static uint64_t lease_end(const Configuration& c) {
    return c.lease_ticks > 0 ? c.lease_anchor_tick + c.lease_ticks : 0;
  }
  void become_primary(const Configuration& c);
  void become_backup(Epoch e, NodeId primary, std::string why);
  void abandon(Primary& p);
  void set_peers(Primary& p, const Configuration& c);

  // Backup side.
  void handle_append(const Message& m, const Append& a);
  void refuse(const Message& m, Refusal r, LogIndex hint = {}, LogIndex refused = {},
              Term refused_term = {}, Term hint_term = {});
  LogIndex first_conflict(const Append& a) const;
  const core::Entry* exceeds_prepare_limit(const Append& a, LogIndex conflict) const;
  void handle_snapshot(const Message& m, const InstallSnapshot& s);
  bool refutes_our_snapshot(const InstallSnapshot& s) const;
  void report_snapshot_loss(const InstallSnapshot& s);
  void report_dropped_from(LogIndex from);
  void report_dropped_against(const InstallSnapshot& s);
  // Reports a drop (Ready::dropped), or holds it until settle_drops() when
  // it is kRolledBack. `conflict` is the first position where the log that
  // replaced e differs from e's log, which had `conflict_term` there.
  void note_drop(const core::Entry& e, core::DropKind kind, LogIndex conflict, Term conflict_term);
  // Reports every held drop that is final; forgets those whose entry was
  // committed after all.
  void settle_drops();
  std::vector<TermStart> term_history() const;
  core::DropKind classify(const core::Entry& e) const;

  // Primary side.
  void handle_response(Primary& p, const Message& m, const AppendResponse& r);
  void send_append(const Primary& p, NodeId to, PeerProgress& pr, bool heartbeat);
  void send_snapshot(NodeId to, PeerProgress& pr);
  void handle_log_ends(const Primary& p, NodeId from, PeerProgress& pr, const AppendResponse& r);
  void handle_log_mismatch(const Primary& p, NodeId from, PeerProgress& pr,
                           const AppendResponse& r);
  // Our term at index i, the compacted prefix included as far as remembered.
  std::optional<Term> known_term(LogIndex i) const;
  void flush_outbox();
  void maybe_commit(Primary& p);
  LogIndex ack_index(const Primary& p) const;
  void check_timeouts(Primary& p);
  void rollback_from(Primary& p, LogIndex from);
  void release_rollbacks(Primary& p);
  void send(NodeId to, Body body, bool after_persist = false);

  Options opts_;
  Configuration config_;  // the latest known; members may be empty on a backup
  Epoch epoch_;           // the highest epoch seen
  Epoch durable_epoch_;   // the highest epoch the host has synced
  Epoch led_epoch_;       // the epoch this incarnation was last primary of
  raft::RaftLog log_;
  RoleState role_;
  uint64_t now_ticks_ = 0;
  bool degraded_ = false;
  uint64_t degraded_writes_ = 0;
  std::optional<core::SnapshotRef> snapshot_;         // latest, for lagging backups
  std::optional<core::SnapshotRef> pending_install_;  // received, to hand to the host
  // A backup waits for a snapshot newer than snapshot_: ask the host
  // (Ready::snapshot_wanted).
  bool snapshot_wanted_ = false;
  // A backup that must drop entries it applied waits for a snapshot.
  bool needs_snapshot_ = false;
  // The highest applied index an installed snapshot moved this node back
  // from (handle_snapshot): the host may still finish an image of that
  // replaced state, up to here (compact()). Volatile: a restart ends every
  // image in flight.
  LogIndex rewound_from_;
  // The newest Append::term taken. Volatile, but seeded from the log's last
  // term on a restart, and never below it: older appends are refused.
  Term append_term_;
  // The term starts of the compacted prefix of our log, oldest first (at
  // most kMaxTermHistory). Forgotten on a restart.
  std::vector<TermStart> compacted_terms_;

  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<core::ReadState> reads_;
  std::vector<core::Outcome> outcomes_;
  std::vector<core::DroppedEntry> dropped_;
  // A rolled-back drop not yet final (note_drop()).
  struct Unsettled {
    core::DroppedEntry drop;
    // The first position where the log that replaced the entry differs
    // from the entry's log, and the term the entry's log has there: once
    // another term is committed at `conflict`, the entry cannot come back
    // (Log Matching: a log holding it has conflict_term there).
    LogIndex conflict;
    Term conflict_term;
  };
  // Held drops by their entry's (index, term): one each. Volatile (see
  // "Crash" above). Invariant: unsettled_bytes_ is the sum of their
  // entry_bytes(), and at most Options::max_prepared_bytes.
  std::map<std::pair<LogIndex, Term>, Unsettled> unsettled_;
  size_t unsettled_bytes_ = 0;
  // True: final (report it); false: its entry was committed after all;
  // nullopt: not known yet.
  std::optional<bool> settled(const Unsettled& u) const;
  core::SoftState prev_soft_;
  DurableState prev_durable_;
  std::string role_reason_;
  bool ready_outstanding_ = false;
};

using SyncAll = PrimaryBackup<AckRule::kSyncAll>;
using SemiSync = PrimaryBackup<AckRule::kSemiSync>;
using Async = PrimaryBackup<AckRule::kAsync>;
extern template class PrimaryBackup<AckRule::kSyncAll>;
extern template class PrimaryBackup<AckRule::kSemiSync>;
extern template class PrimaryBackup<AckRule::kAsync>;

static_assert(core::Engine<SyncAll>);
static_assert(core::Engine<SemiSync>);
static_assert(core::Engine<Async>);

}  // namespace chorus::primary
