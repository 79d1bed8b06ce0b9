// Paxos: a pure, deterministic Multi-Paxos core (Lamport, "Paxos Made
// Simple" §3; van Renesse & Altinbuken, "Paxos Made Moderately Complex";
// Chandra, Griesemer & Redstone, "Paxos Made Live").
//
// Why pure: this class never touches a socket, a file, a thread, a clock or a
// global random generator. Inputs are step() (a message), tick() (one unit of
// logical time), propose() and read_index(); outputs are collected in a Ready
// (core/common/types.h) that tells the host what to persist, send, apply and
// answer, in that order. Every protocol rule can therefore be driven message
// by message in a unit test and replayed from a seed.
//
// Every replica plays the three roles of the papers at once:
//  - acceptor: keeps `promised` (the highest ballot it promised) and, per
//    slot, the (ballot, value) it accepted last. It answers a Prepare or an
//    Accept at or above `promised` with a Promise or an Accepted, and below
//    it with a Nack carrying `promised`. The answer leaves only after the
//    Ready that persists the promise and the accepted values
//    (messages_after_persist);
//  - learner: slots are chosen when a majority accepted them under one
//    ballot. A learner knows slot s is chosen when the proposer's commit
//    point (in its Accepts and Heartbeats) covers s and its own accepted
//    ballot at s is the proposer's ballot (a proposer proposes one value per
//    slot per ballot); otherwise it asks the proposer for the chosen values
//    (CatchupRequest -> Decide, or InstallSnapshot when they were
//    compacted). Chosen slots are applied strictly in order;
//  - proposer: at most one is "distinguished" at a time in a stable run. A
//    replica that hears no proposer for a randomized timeout picks a ballot
//    above every one it saw and runs phase 1 once for all slots from its
//    first unchosen slot. With a majority of promises it adopts, per slot,
//    the value accepted with the highest ballot, fills holes with no-ops,
//    and runs phase 2 for them and for new client commands: pipelined (up to
//    max_inflight_slots slots open) and batched (several slots per Accept).
//    A Nack with a higher ballot preempts it: it steps back to follower and
//    retries after a randomized backoff.
//
// Unlike Raft, ANY replica may become proposer: phase 1 recovers the values
// it lacks from the promises, so no "most up-to-date log" rule is needed.
//
// Persistence through Ready: `durable_state` carries the promised ballot;
// `entries` carry accepted slots as log entries (term = accepted ballot
// packed, data = origin ballot + command, see slot_codec below), rewritten
// from the lowest changed slot to the last one, with holes as term-0
// entries. A slot learned chosen through a Decide is written with
// kChosenBallot.
//
// Threading: single-threaded; the owner calls every method from one thread.
// Crash: nothing here is durable. The host rebuilds a Paxos from the
// PersistentState it persisted following each Ready.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/prng.h"
#include "base/status.h"
#include "core/common/engine.h"
#include "core/common/types.h"
#include "core/paxos/ballot.h"
#include "core/paxos/messages.h"

namespace chorus::paxos {

using core::ProposeResult;
using core::ProposeStatus;

using Ready = core::Ready<Message, DurableState>;
using PersistentState = core::PersistentState<DurableState>;

// Paxos's own roles; core::Role is what hosts see.
enum class PaxosRole : uint8_t {
  kFollower,   // acceptor and learner only
  kPreparing,  // proposer in phase 1 (core::Role::kCandidate)
  kLeader,     // distinguished proposer in phase 2
};
std::string_view paxos_role_name(PaxosRole r);

struct Config {
  NodeId id;
  std::vector<NodeId> members;  // every acceptor, including id

  // A follower that hears no proposer for a time in [T, 2T) starts phase 1;
  // a preempted or stuck proposer retries after a time in the same range.
  uint32_t election_timeout_ticks = 10;
  uint32_t heartbeat_interval_ticks = 1;

  size_t max_inflight_slots = 256;  // slots in phase 2 at once; propose() refuses beyond
  // A batch (Accept, Decide) stops at the slot or the byte limit, whichever
  // comes first, counting pvalue_bytes(); it always carries at least one
  // slot, so one value above the byte limit still goes alone. Keeps messages
  // well under the transport's max_frame_bytes (16 MiB), which drops larger
  // frames: an Accept or Decide it drops would be sent again unchanged.
  size_t max_slots_per_accept = 64;
  size_t max_bytes_per_accept = 1 << 20;
  // An open slot a peer has not acknowledged is sent to it again after this
  // many ticks (then once per heartbeat): the Accept or the Accepted was lost.
  uint32_t accept_retry_ticks = 3;
  size_t max_slots_per_decide = 256;
  size_t max_bytes_per_decide = 1 << 20;
  size_t max_apply_slots_per_ready = 1024;
  size_t max_pending_reads = 4096;

  Status validate() const;
};

// Codec between an acceptor slot and a core::Entry in the log the host
// persists: term = accepted ballot packed (0 for a hole: nothing accepted),
// data = 8 bytes of the origin ballot (packed, little-endian) + the command.
core::Entry encode_slot(LogIndex slot, const Ballot& accepted, const Value& v);
core::Entry encode_hole(LogIndex slot);
bool is_hole(const core::Entry& e);
// The pvalue in a persisted entry; nullopt for a hole. Asserts on a malformed
// entry (the host's log checksums entries, so this is a bug, not corruption).
std::optional<PValue> decode_slot(const core::Entry& e);

class Paxos {
 public:
  using Message = paxos::Message;
  using DurableState = paxos::DurableState;
  static constexpr std::string_view kName = "paxos";
  // What a host calls the distinguished proposer when it refuses a request
  // on another replica (replicas do not forward, see propose()).
  static constexpr std::string_view kServingRole = "leader";
  static constexpr core::Capabilities kCapabilities{
      .has_leader = true,
      .lease_reads = false,
      .linearizable = true,
      .may_lose_acknowledged_writes = false,
      // Slots are independent: an entry's term is its accepted ballot, which
      // says nothing about the entries before it.
      .log_matching = false,
  };
  static std::string encode_durable(const DurableState& ds) { return encode_durable_state(ds); }
  static Result<DurableState> decode_durable(std::string_view b) { return decode_durable_state(b); }
  static bool durable_needs_sync(const DurableState& a, const DurableState& b) {
    return paxos::durable_needs_sync(a, b);
  }
  static std::string describe(const Message& m) { return paxos::describe(m); }

  Paxos(Config cfg, Prng prng, PersistentState state = {});

  void step(const Message& m);
  void tick();
  // A client write. On the leader: kAccepted with the slot (index) and the
  // origin ballot (term) that together name the write; it is chosen when
  // applied there with that term. Elsewhere kNotLeader with a leader hint.
  ProposeResult propose(std::string data);
  // A read barrier through the log: the leader opens a no-op slot and
  // answers with ReadState{ctx, slot} once it is chosen, which proves the
  // leader's ballot was still the highest a majority promised at that point.
  // There are no leases (kCapabilities.lease_reads is false).
  ProposeResult read_index(uint64_t ctx, core::ReadMode mode = core::ReadMode::kLinearizable);
  std::optional<LogIndex> lease_read_index() const { return std::nullopt; }
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);
  // Accepts, Heartbeats, Nacks and Decides may leave before the outstanding
  // Ready is persisted; Prepares, Promises and Accepteds never do.
  bool has_messages() const;
  std::vector<Message> take_messages();
  // The host's snapshot covers every slot through snap.meta.index (applied).
  void compact(core::SnapshotRef snap);

  // Introspection for hosts, tests and the simulator's checks.
  NodeId id() const { return cfg_.id; }
  core::SoftState soft_state() const;
  core::EngineStatus status() const;
  // The origin ballot (packed) of the value this replica holds at `i`.
  std::optional<Term> term_at(LogIndex i) const;
  PaxosRole paxos_role() const;
  core::Role role() const;
  Ballot promised() const { return promised_; }
  // This node's ballot while it proposes; the null ballot otherwise.
  Ballot ballot() const;
  NodeId leader() const { return leader_; }
  LogIndex chosen_through() const { return chosen_through_; }
  // Slots through here are in the host's snapshot (and no longer held).
  LogIndex snapshot_index() const { return snapshot_index_; }
  // Set after a restart that found the log ending below the durable
  // written_through: a crash cut a tail rewrite short, and slots up to it
  // this acceptor had accepted may be lost. Until it has learned every slot
  // through it as chosen it answers no Prepare from a slot at or below it,
  // nor counts its own promise (its report could omit a chosen value; Paxos
  // Made Live §5.1 keeps a replica that lost its disk from voting likewise).
  std::optional<LogIndex> amnesic_through() const { return amnesic_through_; }
  LogIndex applied() const { return applied_; }
  // The (ballot, value) this acceptor holds at `slot`, if any.
  std::optional<PValue> accepted(LogIndex slot) const;
  const Config& config() const { return cfg_; }

 private:
  struct Follower {};
  struct Preparing {
    Ballot ballot;
    LogIndex first_slot;
    std::map<NodeId, std::vector<PValue>> promises;  // includes self once durable
  };
  struct Slot {
    Value value;
    std::set<NodeId> accepted_by;  // self counted only once durable
    bool sent = false;             // broadcast at least once
    uint64_t sent_tick = 0;        // when it was first broadcast
  };
  struct Leader {
    Ballot ballot;
    LogIndex next_slot;                                    // the next slot a command gets
    std::map<LogIndex, Slot> open;                         // slots in phase 2, not yet chosen
    std::map<LogIndex, std::vector<uint64_t>> read_slots;  // no-op slot -> read ctxs
    std::set<LogIndex> chosen;                             // chosen slots above chosen_through_
    size_t pending_reads = 0;
    uint32_t heartbeat_elapsed_ticks = 0;
    bool accepts_pending = false;  // unsent slots to broadcast at the next flush
    bool commit_pending = false;   // the chosen prefix moved: tell the learners
  };
  using RoleState = std::variant<Follower, Preparing, Leader>;

  struct Record {
    Ballot ballot;
    Value value;
  };

  // Transitions.
  void become_follower(NodeId leader, std::string why);
  void start_phase1(std::string why);
  void become_leader(Preparing p);
  void reset_timer();

  // Acceptor.
  void on_prepare(const Message& m, const Prepare& p);
  void on_accept(const Message& m, const Accept& a);
  void on_heartbeat(const Message& m, const Heartbeat& h);
  // Raises the promise to b if higher; steps down a proposer with a lower
  // ballot.
  void promise_at_least(Ballot b, NodeId from);
  void write_record(LogIndex slot, Ballot b, Value v);
  bool is_chosen_locally(LogIndex slot) const;

  // Learner.
  void learn_commit(Ballot b, LogIndex commit, bool may_catch_up);
  void on_decide(const Decide& d);
  void on_snapshot(const InstallSnapshot& s);
  void advance_chosen_prefix();

  // Proposer.
  void on_promise(Preparing& p, NodeId from, const Promise& pr);
  // What this acceptor reports in a Promise for slots from `first` on.
  Promise make_promise(Ballot b, LogIndex first) const;
  void flush_outbox();
  void on_accepted(Leader& l, const Message& m, const Accepted& a);
  void on_nack(const Nack& n);
  void on_catchup(const Message& m, const CatchupRequest& c);
  void open_slot(Leader& l, LogIndex slot, Value v);
  void count_accept(Leader& l, LogIndex slot, NodeId who);
  void send_accepts(Leader& l, bool resend);
  void broadcast_heartbeat(Leader& l);
  void on_self_durable(const Ready& rd);
  size_t majority() const { return cfg_.members.size() / 2 + 1; }
  // Whether this acceptor may promise for every slot from `first` on.
  bool may_promise_from(LogIndex first) const {
    return !amnesic_through_ || first > *amnesic_through_;
  }
  Ballot next_ballot() const;

  void send(NodeId to, Body body);
  void send_after_persist(NodeId to, Body body);

  Config cfg_;
  Prng prng_;

  // Acceptor state. Durable: promised_, written_through_ and every record
  // in slots_.
  Ballot promised_;
  LogIndex written_through_;                 // as handed in the durable state
  LogIndex disk_high_;                       // the highest slot ever handed to the host
  std::optional<LogIndex> amnesic_through_;  // see amnesic_through()
  std::map<LogIndex, Record> slots_;         // slots after snapshot_index_ that hold a value

  // Learner state (volatile; rebuilt from the host's applied index).
  LogIndex snapshot_index_;  // slots through here are in the host's snapshot
  LogIndex chosen_through_;  // Invariant: every slot <= it is chosen and held (or compacted)
  LogIndex applied_;         // handed to the host in Ready::committed
  Ballot leader_ballot_;     // highest proposer ballot heard from
  LogIndex leader_commit_;   // its commit point
  bool catchup_outstanding_ = false;

  // Volatile.
  NodeId leader_;
  RoleState role_;
  Ballot highest_seen_;  // the highest ballot heard of, for choosing the next one
  uint64_t now_ticks_ = 0;
  uint32_t elapsed_ticks_ = 0;
  uint32_t timeout_ticks_ = 0;
  std::optional<core::SnapshotRef> snapshot_;         // latest snapshot, for lagging learners
  std::optional<core::SnapshotRef> pending_install_;  // received, to hand to the host

  // Output waiting for the next Ready. Slots from unstable_from_ on must be
  // written again (Invariant: unstable_from_ > snapshot_index_ when set).
  std::optional<LogIndex> unstable_from_;
  // The last slot of the log as handed to the host (holes included).
  // Invariant: handed_last_ >= snapshot_index_.
  LogIndex handed_last_;
  Ballot durable_promised_;
  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<core::ReadState> reads_;
  std::vector<core::Outcome> outcomes_;
  core::SoftState prev_soft_;
  DurableState prev_durable_;
  std::string role_reason_;
  bool ready_outstanding_ = false;
};

static_assert(core::Engine<Paxos>);

}  // namespace chorus::paxos
