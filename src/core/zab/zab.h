// Zab: a pure, deterministic ZooKeeper Atomic Broadcast core (Junqueira,
// Reed & Serafini, "Zab: High-performance broadcast for primary-backup
// systems", DSN 2011; Medeiros, "ZooKeeper's atomic broadcast protocol:
// Theory and practice", 2012; the facts of Apache ZooKeeper's Zab 1.0).
//
// Why pure: this class never touches a socket, a file, a thread, a clock or
// a global random generator. Inputs are step() (a message), tick() (one unit
// of logical time), propose() and read_index(); outputs are collected in a
// Ready (core/common/types.h) that tells the host what to persist, send,
// apply and answer, in that order. Every rule of the protocol can be driven
// message by message in a unit test, and replayed from a seed.
//
// A participant moves through the four phases of the paper (README.md maps
// each rule to this code):
//  0. election (LOOKING): Fast Leader Election. Each node votes for the best
//     (currentEpoch, last zxid, id) it has heard of in the current election
//     round, re-broadcasting its vote when it changes; when a quorum of the
//     round's votes agree with its own and nothing better arrives within
//     finalize_wait_ticks, it becomes LEADING or FOLLOWING. Nodes outside the
//     election answer with their settled vote, so a late node joins an
//     established leader. No randomized timeouts: ties break by id.
//  1. discovery: followers send FollowerInfo (CEPOCH) with acceptedEpoch; on
//     a quorum the leader picks e' = max + 1, persists it as its own
//     acceptedEpoch and sends NewEpoch; a follower refuses an epoch below its
//     acceptedEpoch, else persists it and answers AckEpoch with its
//     currentEpoch and last zxid. A leader that learns of a follower ahead of
//     itself gives up (back to LOOKING), as ZooKeeper does.
//  2. synchronization: with a quorum of AckEpochs the leader sets
//     currentEpoch = e' and sends each follower NewLeader with what it lacks
//     of the leader's history (DIFF, TRUNC or SNAP). The follower applies it,
//     persists currentEpoch = e' and acknowledges. A quorum of
//     acknowledgements commits the whole initial history; the leader then
//     sends UpToDate and only then proposes anything in e'.
//  3. broadcast: Proposal / Ack / Commit in zxid order, pipelined (any
//     number in flight up to max_uncommitted_proposals) and batched; a
//     follower accepts proposals only from the leader it synchronized with,
//     in its epoch, without gaps, and acknowledges once they are durable.
//     The leader commits the longest prefix a quorum acknowledged.
//  A follower that hears nothing from its leader for sync_limit_ticks, and a
//  leader that has not heard from a quorum for as long, go back to LOOKING.
//
// Reads (kCapabilities.lease_reads is false): read_index() makes the leader
// propose a no-op and answer once it commits; the commit proves that a quorum
// still followed this leader after the read arrived (ZooKeeper's sync()).
//
// Persistence through Ready: `durable_state` carries acceptedEpoch and
// currentEpoch; `entries` carry the log (term = packed zxid), rewritten from
// the lowest changed index. A snapshot from the leader (SNAP) is in
// `snapshot`. Nothing that promises durability — AckEpoch, NewLeaderAck,
// Ack, a leader's NewEpoch or NewLeader — leaves before the Ready that
// persists it (messages_after_persist). The leader's own Proposals may go out
// in parallel with its fsync; it counts itself only once durable.
//
// Threading: single-threaded; the owner calls every method from one thread.
// Crash: nothing here is durable. The host rebuilds a Zab from the
// PersistentState it persisted following each Ready; a restarted node starts
// LOOKING.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "core/common/engine.h"
#include "core/common/types.h"
#include "core/zab/messages.h"
#include "core/zab/zxid.h"

namespace chorus::zab {

using core::ProposeResult;
using core::ProposeStatus;

using Ready = core::Ready<Message, DurableState>;
using PersistentState = core::PersistentState<DurableState>;

// The phase a FOLLOWING or LEADING node is in (DSN 2011's phases 1-3).
enum class Phase : uint8_t { kDiscovery, kSynchronization, kBroadcast };
std::string_view phase_name(Phase p);

// The state before any transaction: what a follower installs when a
// TRUNC empties its log (the host truncates only by writing from an index,
// or by installing a snapshot). Its data is the empty string.
core::SnapshotRef empty_snapshot();

// FLE's totalOrderPredicate: true when `a` ranks above `b` (higher
// currentEpoch, then higher last zxid, then higher id).
bool vote_beats(const Vote& a, const Vote& b);

struct Config {
  NodeId id;
  std::vector<NodeId> members;  // every voting participant, including id

  // FLE: a LOOKING node re-sends its vote after this many ticks without
  // news, doubling up to max_notification_interval_ticks (ZooKeeper's
  // notification timeout backoff), and waits finalize_wait_ticks after a
  // quorum agrees before it settles (ZooKeeper's finalizeWait).
  uint32_t notification_interval_ticks = 2;
  uint32_t max_notification_interval_ticks = 16;
  uint32_t finalize_wait_ticks = 2;
  // Discovery and synchronization must finish within init_limit_ticks
  // (ZooKeeper's initLimit); in broadcast, a leader and its followers that
  // have not heard from each other for sync_limit_ticks give up (syncLimit).
  uint32_t init_limit_ticks = 20;
  uint32_t sync_limit_ticks = 10;
  uint32_t ping_interval_ticks = 1;
  // A follower whose handshake step is unanswered this long connects again
  // (a new session): a handshake message was lost.
  uint32_t handshake_retry_ticks = 4;

  size_t max_entries_per_proposal = 64;
  size_t max_uncommitted_proposals = 1024;  // propose() refuses beyond
  size_t max_sync_entries = 4096;           // per NewLeader; the rest in another session
  size_t max_apply_entries_per_ready = 1024;
  size_t max_pending_reads = 4096;
  // The last zxid counter a leader uses in an epoch; when its epoch has no
  // counter left it forces a new election, hence a new epoch (ZooKeeper's
  // Leader.propose, ZOOKEEPER-1277). Lower only in tests.
  uint64_t max_zxid_counter = kMaxCounter;

  Status validate() const;
};

class Zab {
 public:
  using Message = zab::Message;
  using DurableState = zab::DurableState;
  static constexpr std::string_view kName = "zab";
  static constexpr core::Capabilities kCapabilities{
      .has_leader = true,
      .lease_reads = false,
      .linearizable = true,
      .may_lose_acknowledged_writes = false,
  };
  static std::string encode_durable(const DurableState& ds) { return encode_durable_state(ds); }
  static Result<DurableState> decode_durable(std::string_view b) { return decode_durable_state(b); }
  static bool durable_needs_sync(const DurableState& a, const DurableState& b) {
    return zab::durable_needs_sync(a, b);
  }
  static std::string describe(const Message& m) { return zab::describe(m); }

  explicit Zab(Config cfg, PersistentState state = {});

  void step(const Message& m);
  void tick();
  // A client write. On a leader in broadcast: kAccepted with the index and
  // the packed zxid that together name the write. A leader still in
  // discovery or synchronization: kNoLeader (no proposal of a new epoch
  // before synchronization). Elsewhere kNotLeader with a leader hint.
  ProposeResult propose(std::string data);
  ProposeResult read_index(uint64_t ctx, core::ReadMode mode = core::ReadMode::kLinearizable);
  std::optional<LogIndex> lease_read_index() const { return std::nullopt; }
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);
  // Proposals, Commits, Pings, notifications and handshake requests may
  // leave before the outstanding Ready is persisted; acknowledgements never.
  bool has_messages() const;
  std::vector<Message> take_messages();
  void compact(core::SnapshotRef snap);

  // Introspection for hosts, tests and the simulator's checks.
  NodeId id() const { return cfg_.id; }
  core::SoftState soft_state() const;
  core::EngineStatus status() const;
  std::optional<Term> term_at(LogIndex i) const;
  ServerState server_state() const;
  std::optional<Phase> phase() const;
  core::Role role() const;
  NodeId leader() const;
  const Vote& vote() const { return vote_; }
  uint64_t election_epoch() const { return logical_clock_; }
  uint64_t accepted_epoch() const { return accepted_epoch_; }
  uint64_t current_epoch() const { return current_epoch_; }
  Zxid last_zxid() const { return zxid_at(last_index()); }
  LogIndex last_index() const { return snapshot_index_ + log_.size(); }
  LogIndex commit_index() const { return commit_; }
  LogIndex applied() const { return applied_; }
  // The zxid at i; i must be the snapshot index or held in the log.
  Zxid zxid_at(LogIndex i) const;
  const Config& config() const { return cfg_; }

 private:
  struct Received {
    Vote vote;
    uint64_t election_epoch = 0;
    ServerState state = ServerState::kLooking;
  };
  // No default member initializers: the variant below needs Looking
  // default-constructible while Zab is still incomplete; Looking{} zeroes.
  struct Looking {
    std::map<NodeId, Received> recv;           // this round's votes (FLE's recvset)
    std::map<NodeId, Received> outofelection;  // settled peers' votes
    uint32_t resend_elapsed_ticks;
    uint32_t resend_interval_ticks;
    std::optional<uint32_t> finalize_left_ticks;  // set while a quorum agrees
  };
  struct Following {
    NodeId leader;
    Phase phase = Phase::kDiscovery;
    uint64_t session = 0;
    uint64_t epoch = 0;          // the leader's epoch, once its NewEpoch arrived
    bool acked_leader = false;   // NewLeaderAck sent for this session
    uint32_t idle_ticks = 0;     // since the last message from the leader
    uint32_t attempt_ticks = 0;  // since this session's last handshake step
    uint32_t behind_pings = 0;   // consecutive pings showing a lost tail
  };
  // The leader's view of one follower (ZooKeeper's LearnerHandler).
  struct Learner {
    enum class Stage : uint8_t { kConnected, kEpochSent, kEpochAcked, kSyncSent, kSynced };
    Stage stage = Stage::kConnected;
    uint64_t session = 0;
    uint64_t accepted_epoch = 0;
    Zxid peer_last_zxid;
    LogIndex peer_last_index;
    LogIndex acked;           // cumulative Ack; Invariant: acked <= leader's last index
    bool forwarding = false;  // receives Proposals and Commits (its sync was complete)
    // The Ready that carries the last message queued to it after persist
    // (NewEpoch, NewLeader): until that Ready is advanced, everything else
    // to it queues after persist too, so nothing overtakes its NewLeader.
    uint64_t after_persist_until = 0;
    uint32_t idle_ticks = 0;  // since we last heard from it
  };
  struct Leading {
    Phase phase = Phase::kDiscovery;
    uint64_t epoch = 0;  // 0 until a quorum of FollowerInfos fixed e'
    std::map<NodeId, Learner> learners;
    std::set<NodeId> epoch_acks;      // AckEpoch received (and self)
    std::set<NodeId> newleader_acks;  // NewLeaderAck received (and self once durable)
    LogIndex initial_last;            // the end of the initial history I_e'
    uint64_t next_counter = 1;        // the next proposal's zxid counter in e'
    uint32_t phase_ticks = 0;
    uint32_t ping_elapsed_ticks = 0;
    std::optional<LogIndex> unsent_from;  // proposals not yet broadcast
    bool commit_pending = false;
    std::map<LogIndex, std::vector<uint64_t>> read_slots;  // no-op index -> read ctxs
    size_t pending_reads = 0;
  };
  using RoleState = std::variant<Looking, Following, Leading>;

  // ---- Phase 0: Fast Leader Election (zab_election.cc) ----
  void start_election(std::string why);
  Vote initial_vote() const;
  void send_notifications();
  void on_notification(NodeId from, const Notification& n);
  void on_notification_looking(Looking& l, NodeId from, const Notification& n);
  void check_termination(Looking& l);
  bool quorum_agrees(const std::map<NodeId, Received>& votes, const Vote& v, bool full) const;
  bool check_leader(const std::map<NodeId, Received>& votes, NodeId leader,
                    std::optional<uint64_t> election_epoch) const;
  void settle(const Vote& v, std::string why);
  void tick_looking(Looking& l);

  // ---- Phases 1-2 on the follower (zab_follower.cc) ----
  void become_following(NodeId leader, std::string why);
  void connect(Following& f);
  void on_new_epoch(Following& f, const NewEpoch& e);
  void on_new_leader(Following& f, const NewLeader& n);
  bool apply_sync(const NewLeader& n);
  void on_up_to_date(Following& f, const UpToDate& u);
  void on_proposal(Following& f, const Proposal& p);
  void on_commit(Following& f, LogIndex index);
  void on_ping(Following& f, const Ping& p);
  void send_ack(Following& f);
  void tick_following(Following& f);
  bool from_my_leader(NodeId from, uint64_t epoch, Following*& f);

  // ---- Phases 1-3 on the leader (zab_leader.cc) ----
  void become_leading(std::string why);
  void on_follower_info(Leading& l, NodeId from, const FollowerInfo& fi);
  void on_ack_epoch(Leading& l, NodeId from, const AckEpoch& a);
  void start_synchronization(Leading& l);
  void send_new_leader(Leading& l, NodeId to, Learner& lr);
  void on_new_leader_ack(Leading& l, NodeId from, const NewLeaderAck& a);
  void check_established(Leading& l);
  void on_ack(Leading& l, NodeId from, const Ack& a);
  void append_proposal(Leading& l, core::EntryType type, std::string data);
  // True (and LOOKING) when the epoch has no zxid counter left.
  bool counters_exhausted(Leading& l);
  void broadcast_proposals(Leading& l);
  void update_commit(Leading& l);
  void tick_leading(Leading& l);
  size_t quorum() const { return cfg_.members.size() / 2 + 1; }

  // ---- Log (zab.cc) ----
  const core::Entry& entry(LogIndex i) const;
  void truncate_after(LogIndex i);
  void append(core::Entry e);
  void set_commit(LogIndex i);
  void mark_unstable(LogIndex from);
  // A leader that steps down answers its pending reads with kDropped.
  void drop_reads();

  void send(NodeId to, Body body);
  void send_after_persist(NodeId to, Body body);
  // The leader's sends to a learner, in FIFO order (LearnerHandler's queue).
  void send_learner(Learner& lr, NodeId to, Body body, bool after_persist = false);

  Config cfg_;

  // Durable (through Ready): the epochs, the log, the snapshot.
  uint64_t accepted_epoch_ = 0;
  uint64_t current_epoch_ = 0;
  LogIndex snapshot_index_;
  Zxid snapshot_zxid_;
  std::vector<core::Entry> log_;  // entries after snapshot_index_, contiguous

  // Volatile.
  LogIndex commit_;             // Invariant: commit_ <= last_index(); only grows
  LogIndex applied_;            // handed to the host in Ready::committed; <= commit_
  uint64_t logical_clock_ = 0;  // FLE's election round
  Vote vote_;                   // while LOOKING the proposal, after it the settled vote
  uint64_t incarnation_ = 0;    // durable: persisted +1 at start
  uint64_t session_ = 0;        // the follower's connection attempts in this incarnation
  // The leader this incarnation acknowledged acceptedEpoch to when it
  // raised it (the only one its ACK-E for that epoch may count for).
  std::optional<NodeId> epoch_acked_to_;
  RoleState role_{Looking{}};
  std::optional<core::SnapshotRef> snapshot_;         // latest snapshot, for SNAP
  std::optional<core::SnapshotRef> pending_install_;  // a leader's SNAP, for the host

  // Output waiting for the next Ready.
  std::optional<LogIndex> unstable_from_;  // the host's log must be rewritten from here
  LogIndex handed_last_;                   // the last index handed to the host
  LogIndex durable_last_;                  // the host's log is durable through here
  DurableState durable_;                   // as last persisted (advance())
  DurableState prev_durable_;              // as last handed in a Ready
  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<core::ReadState> reads_;
  std::vector<core::Outcome> outcomes_;
  core::SoftState prev_soft_;
  std::string role_reason_;
  bool ready_outstanding_ = false;
  uint64_t readies_taken_ = 0;     // ready() calls
  uint64_t readies_advanced_ = 0;  // advance() calls
};

static_assert(core::Engine<Zab>);

}  // namespace chorus::zab
