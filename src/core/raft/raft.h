// Raft: a pure, deterministic implementation of the Raft consensus core
// (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm",
// and Ongaro's thesis for PreVote, CheckQuorum, ReadIndex and leases).
//
// Why pure: this class never touches a socket, a file, a thread, a clock or a
// global random generator. Inputs are step() (a message), tick() (one unit of
// logical time), propose() and read_index(); outputs are collected in a Ready
// (types.h) that tells the host what to persist, send, apply and answer, in
// that order. The same object therefore runs in the deterministic simulator,
// in unit tests driven message by message, and in the real server.
//
// What it does:
//  - leader election with randomized timeouts in [T, 2T) drawn from the
//    injected Prng; PreVote (thesis §9.6) so a rejoining node cannot disrupt a
//    stable leader; CheckQuorum (thesis §6.2) so a leader cut off from a
//    majority steps down within one election timeout;
//  - log replication with per-follower probe/pipelined modes, a bounded
//    in-flight window and fast backtracking over divergent logs;
//  - §5.4.2: only entries of the current term are committed by counting
//    replicas, and each new leader appends a no-op to commit its predecessors';
//  - ReadIndex reads (thesis §6.4) batched per heartbeat round, optional
//    leader-lease reads (only with CheckQuorum);
//  - proposal and read forwarding from followers to the leader;
//  - log compaction on the host's word, and InstallSnapshot to followers
//    whose next entry was compacted away.
//
// Threading: single-threaded; the owner calls every method from one thread.
// Crash: nothing here is durable. The host rebuilds a Raft from the
// PersistentState it persisted following each Ready.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "base/prng.h"
#include "base/status.h"
#include "core/common/engine.h"
#include "core/common/types.h"
#include "core/raft/hard_state.h"
#include "core/raft/log.h"
#include "core/raft/messages.h"
#include "core/raft/progress.h"

namespace chorus::raft {

using core::ProposeResult;
using core::ProposeStatus;

// Raft's own roles; core::Role is what hosts see (a pre-candidate is a
// core::Role::kCandidate there).
enum class RaftRole : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
std::string_view raft_role_name(RaftRole r);

using Ready = core::Ready<Message, HardState>;
using PersistentState = core::PersistentState<HardState>;

// The longest lease (in ticks) that stays safe when any two nodes' monotonic
// clocks run at rates within a factor `drift` of real time: a leader's lease
// of L ticks ends, in real time, within L * drift of the heartbeat it rests
// on; a follower that acknowledged that heartbeat refuses votes for at least
// election_timeout - 1 ticks (one tick is lost to granularity) of its own
// clock, i.e. (election_timeout - 1) / drift of real time. Safe iff
// L * drift^2 < election_timeout - 1. Returns 0 when no lease is safe.
uint32_t max_safe_lease_ticks(uint32_t election_timeout_ticks, double drift);

struct Config {
  NodeId id;
  std::vector<NodeId> voters;  // every member, including id

  uint32_t election_timeout_ticks = 10;  // randomized in [T, 2T)
  uint32_t heartbeat_interval_ticks = 1;
  bool pre_vote = true;
  bool check_quorum = true;
  // Serve reads from the leader without a heartbeat round while a quorum has
  // confirmed it within the last lease_ticks. Requires check_quorum: followers
  // that heard from a leader within an election timeout refuse to vote.
  // The host must deliver ticks by a monotonic clock (one per tick period of
  // real time, caught up before every input), never one per loop turn: a
  // stalled loop would otherwise stretch the lease (host/replica_host.h).
  bool lease_reads = false;
  // At most max_safe_lease_ticks(election_timeout_ticks, clock_drift_bound).
  uint32_t lease_ticks = 5;
  // Any two nodes' monotonic clocks advance at rates within this factor of
  // real time (1.1: 10%, far above NTP-disciplined clocks' 500 ppm). Leases
  // are sized against it.
  double clock_drift_bound = 1.1;
  bool forward_proposals = true;

  size_t max_entries_per_append = 256;
  size_t max_bytes_per_append = 1 << 20;
  size_t max_inflight_appends = 64;
  size_t max_uncommitted_bytes = 64u << 20;
  size_t max_apply_bytes_per_ready = 16u << 20;
  // A follower holds at most this many proposal bytes to forward at the next
  // Ready; beyond it propose() refuses (kTooMuchUncommitted).
  size_t max_forward_bytes = 16u << 20;
  // A leader holds at most this many reads waiting for a heartbeat round or
  // for its first commit; beyond it a local read is refused
  // (kTooMuchUncommitted) and a forwarded one dropped (its host asks again).
  size_t max_pending_reads = 65536;
  // Entries kept behind a snapshot so slightly lagging followers get entries, not a snapshot.
  uint64_t snapshot_trailing_entries = 0;

  Status validate() const;
};

// A read waiting for its leadership confirmation.
struct PendingRead {
  NodeId from;       // the node whose client asked (the leader itself, or a follower)
  uint64_t ctx = 0;  // the asker's identifier
  LogIndex index;    // commit index when the read arrived
  uint64_t round = 0;
};

class Raft {
 public:
  using Message = raft::Message;
  using DurableState = HardState;
  static constexpr std::string_view kName = "raft";
  static constexpr core::Capabilities kCapabilities{
      .has_leader = true,
      .lease_reads = true,
      .linearizable = true,
      .may_lose_acknowledged_writes = false,
  };
  static std::string encode_durable(const HardState& hs) { return encode_hard_state(hs); }
  static Result<HardState> decode_durable(std::string_view b) { return decode_hard_state(b); }
  static bool durable_needs_sync(const HardState& a, const HardState& b) {
    return hard_state_needs_sync(a, b);
  }
  static std::string describe(const Message& m) { return raft::describe(m); }

  Raft(Config cfg, Prng prng, PersistentState state = {});

  void step(const Message& m);
  void tick();
  ProposeResult propose(std::string data);
  // A read barrier: ReadIndex (a heartbeat round confirms leadership), or
  // under the leader lease when mode is kLease, lease_reads is on and the
  // lease holds (else ReadIndex).
  ProposeResult read_index(uint64_t ctx, core::ReadMode mode = core::ReadMode::kLinearizable);
  // The index a lease read may be served at right now, without queueing a
  // read: the commit index, when this node is leader, lease_reads is on, an
  // entry of its term is committed and its lease holds. nullopt otherwise
  // (then use read_index()). The host serves the read once it has applied
  // through the returned index.
  std::optional<LogIndex> lease_read_index() const;
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);
  // Messages that may leave at once, also while a Ready is outstanding (when
  // has_ready() is false until it is advanced): heartbeats, the leader's
  // appends (which may precede its own fsync, thesis §10.2.1), forwarded
  // proposals, read-index traffic, and heartbeat responses in a term that is
  // already durable. Never what a Ready puts in messages_after_persist. A host
  // whose persist takes long (a snapshot being written) sends these so that
  // heartbeats and CheckQuorum keep flowing meanwhile.
  bool has_messages() const;
  std::vector<Message> take_messages();
  // The host's state machine snapshot covers everything through
  // snap.meta.index (which must be applied). The log before it may go.
  void compact(core::SnapshotRef snap);

  // Introspection for hosts, tests and the simulator's checks.
  NodeId id() const { return cfg_.id; }
  core::SoftState soft_state() const;
  core::EngineStatus status() const;
  std::optional<Term> term_at(LogIndex i) const { return log_.term(i); }
  HardState hard_state() const { return {term_, voted_for_, log_.committed()}; }
  core::Role role() const;
  RaftRole raft_role() const;
  Term term() const { return term_; }
  NodeId leader() const { return leader_; }
  const RaftLog& log() const { return log_; }
  const Config& config() const { return cfg_; }
  // The leader's view of a follower; nullopt when not leader.
  std::optional<Progress> progress(NodeId peer) const;
  uint64_t ticks() const { return now_ticks_; }
  // The last tick at which this leader's lease holds (exclusive); 0 when not
  // leader or never confirmed. For tests and the simulator's lease check.
  uint64_t lease_until_tick() const;

 private:
  struct Follower {};
  struct PreCandidate {
    std::map<NodeId, bool> votes;
  };
  struct Candidate {
    std::map<NodeId, bool> votes;
  };
  struct Leader {
    std::map<NodeId, Progress> progress;  // every voter but this node
    bool broadcast_pending = false;       // new entries or commit to send at ready()
    bool heartbeat_pending = false;       // reads are waiting for a round
    uint32_t heartbeat_elapsed_ticks = 0;
    uint64_t read_round = 0;                       // last heartbeat round sent
    std::deque<PendingRead> reads;                 // waiting for a round to be confirmed
    std::vector<PendingRead> reads_before_commit;  // waiting for the first commit in this term
    std::map<uint64_t, uint64_t> round_sent_tick;  // round -> tick it was sent (bounded)
    uint64_t lease_until_tick = 0;
    size_t uncommitted_bytes = 0;
    LogIndex term_start_index;  // index of this term's no-op
  };
  using RoleState = std::variant<Follower, PreCandidate, Candidate, Leader>;

  // Transitions.
  // `why` is the one line the host logs with the role change.
  void become_follower(Term term, NodeId leader, std::string why, bool reset_timer = true);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void campaign(bool pre_vote, std::string why);
  void reset_election_timer();

  // Handlers.
  void handle_vote_request(const Message& m, const RequestVote& rv);
  void handle_vote_response(const Message& m, const RequestVoteResponse& r);
  void handle_append(const Message& m, const AppendEntries& a);
  void handle_heartbeat(const Message& m, const Heartbeat& h);
  void handle_snapshot(const Message& m, const InstallSnapshot& s);
  // The first index at which `entries` (following `prev`) would replace a
  // different entry in our log; 0 when they replace nothing.
  LogIndex first_conflict(const std::vector<core::Entry>& entries) const;
  // Drops append acknowledgements not yet sent that promise entries from
  // `from` on: those entries are being replaced within the same Ready.
  void void_acks_from(LogIndex from);
  void handle_append_response(Leader& l, const Message& m, const AppendEntriesResponse& r);
  void handle_heartbeat_response(Leader& l, const Message& m, const HeartbeatResponse& r);
  void step_leader(Leader& l, const Message& m);
  void step_follower(const Message& m);
  bool step_stale_or_newer_term(const Message& m);
  // True while a RequestVote (or pre-vote) from `m.from` must be ignored.
  bool vote_fenced(const Message& m, const RequestVote& rv) const;

  // Leader helpers.
  bool append_entry(Leader& l, core::EntryType type, std::string data);
  bool maybe_send_append(NodeId to, Progress& pr, bool send_if_empty);
  // Turns pending broadcasts and forwarded proposals into messages in msgs_.
  void flush_outbox();
  void send_empty_append(NodeId to, Progress& pr);
  void broadcast_append(Leader& l);
  void broadcast_heartbeat(Leader& l);
  bool maybe_commit(Leader& l);
  void on_commit_advanced(Leader& l, LogIndex old_commit);
  void add_read(Leader& l, NodeId from, uint64_t ctx);
  bool reads_full(const Leader& l) const {
    return l.reads.size() + l.reads_before_commit.size() >= cfg_.max_pending_reads;
  }
  void release_read(const PendingRead& r);
  void release_confirmed_reads(Leader& l);
  bool quorum_active(const Leader& l) const;
  std::string silent_peers(const Leader& l) const;
  bool committed_in_current_term() const;

  void send(NodeId to, Body body);

  Config cfg_;
  Prng prng_;

  // Persistent state (Raft Figure 2).
  Term term_;
  NodeId voted_for_;
  RaftLog log_;

  // Volatile state.
  NodeId leader_;
  RoleState role_;
  uint32_t election_elapsed_ticks_ = 0;  // follower/candidate: since last heard; leader: stickiness
  uint32_t randomized_election_timeout_ticks_ = 0;
  uint64_t now_ticks_ = 0;
  // No vote nor pre-vote is granted, in any term, before this tick: the node
  // heard a leader less than an election timeout ago (leader stickiness,
  // thesis §4.2.3, which CheckQuorum and leases rest on), or it restarted
  // and may have acknowledged a lease round it forgot (§6.4.1). Kept apart
  // from leader_ and the term: a higher term learned from any other message
  // must not reopen voting early.
  uint64_t vote_fence_until_tick_ = 0;
  std::optional<core::SnapshotRef> snapshot_;         // latest snapshot, for lagging followers
  std::optional<core::SnapshotRef> pending_install_;  // received, to hand to the host
  std::vector<std::string> forward_buffer_;           // proposals to forward at ready()
  size_t forward_bytes_ = 0;  // Invariant: sum of forward_buffer_ sizes <= max_forward_bytes

  // Output waiting for the next Ready.
  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<core::ReadState> reads_;
  std::vector<core::Outcome> outcomes_;
  core::SoftState prev_soft_;
  HardState prev_hard_;
  std::string role_reason_;  // why the role last changed, for the next Ready
  Term durable_term_;        // the term of the last hard state the host made durable
  bool ready_outstanding_ = false;
};

static_assert(core::Engine<Raft>);

}  // namespace chorus::raft
