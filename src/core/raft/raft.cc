// The Raft core: construction, introspection, inputs and step dispatch, outbox, Ready/advance.
#include "core/raft/raft.h"

#include <algorithm>
#include <utility>

#include "base/assert.h"
#include "base/planted.h"
#include "core/raft/raft_internal.h"
#include "fmt/format.h"

namespace chorus::raft {

using core::EntryType;
using core::Role;
using internal::Overloaded;

namespace {

// Messages that promise nothing about this node's durable state may leave
// before the Ready is persisted: the leader's appends, heartbeats and
// snapshots (thesis §10.2.1), and a follower's forwarded requests.
bool may_send_before_persist(const Body& b) {
  if constexpr (planted::kAckBeforeDurable) {
    if (std::holds_alternative<AppendEntriesResponse>(b)) return true;
  }
  return std::holds_alternative<AppendEntries>(b) || std::holds_alternative<Heartbeat>(b) ||
         std::holds_alternative<InstallSnapshot>(b) ||
         std::holds_alternative<ForwardProposals>(b) ||
         std::holds_alternative<ReadIndexRequest>(b) ||
         std::holds_alternative<ReadIndexResponse>(b);
}
}  // namespace

Status Config::validate() const {
  if (id == kNoNode) return Status::invalid_argument("raft: node id must be non-zero");
  if (std::find(voters.begin(), voters.end(), id) == voters.end()) {
    return Status::invalid_argument("raft: voters must include the node itself");
  }
  if (election_timeout_ticks < 2)
    return Status::invalid_argument("raft: election_timeout_ticks must be >= 2");
  if (heartbeat_interval_ticks == 0 || heartbeat_interval_ticks >= election_timeout_ticks) {
    return Status::invalid_argument(
        "raft: heartbeat_interval_ticks must be in [1, election_timeout_ticks)");
  }
  if (lease_reads && !check_quorum) {
    return Status::invalid_argument("raft: lease_reads requires check_quorum");
  }
  if (!(clock_drift_bound >= 1.0 && clock_drift_bound <= 4.0)) {
    return Status::invalid_argument("raft: clock_drift_bound must be in [1, 4]");
  }
  if (lease_reads &&
      lease_ticks > max_safe_lease_ticks(election_timeout_ticks, clock_drift_bound)) {
    return Status::invalid_argument(fmt::format(
        "raft: lease_ticks {} leaves no margin for clock drift: with election_timeout_ticks {} "
        "and clocks within a factor {} of each other, at most {}",
        lease_ticks, election_timeout_ticks, clock_drift_bound,
        max_safe_lease_ticks(election_timeout_ticks, clock_drift_bound)));
  }
  if (max_entries_per_append == 0 || max_bytes_per_append == 0 || max_inflight_appends == 0 ||
      max_uncommitted_bytes == 0 || max_apply_bytes_per_ready == 0 || max_forward_bytes == 0 ||
      max_pending_reads == 0) {
    return Status::invalid_argument("raft: limits must be positive");
  }
  return Status::ok();
}

uint32_t max_safe_lease_ticks(uint32_t election_timeout_ticks, double drift) {
  if (election_timeout_ticks < 2 || drift < 1.0) return 0;
  // Largest L with L * drift^2 < election_timeout_ticks - 1 (strictly).
  const double limit = static_cast<double>(election_timeout_ticks - 1) / (drift * drift);
  uint32_t l = static_cast<uint32_t>(limit);
  if (static_cast<double>(l) >= limit && l > 0) --l;
  return l;
}

std::string_view raft_role_name(RaftRole r) {
  switch (r) {
    case RaftRole::kFollower:
      return "follower";
    case RaftRole::kPreCandidate:
      return "pre-candidate";
    case RaftRole::kCandidate:
      return "candidate";
    case RaftRole::kLeader:
      return "leader";
  }
  return "?";
}

Raft::Raft(Config cfg, Prng prng, PersistentState state) : cfg_(std::move(cfg)), prng_(prng) {
  Status st = cfg_.validate();
  CHORUS_ASSERT_MSG(st.is_ok(), st.message().c_str());
  std::sort(cfg_.voters.begin(), cfg_.voters.end());
  core::SnapshotMeta snap_meta;
  if (state.snapshot) {
    snap_meta = state.snapshot->meta;
    snapshot_ = state.snapshot;
  }
  LogIndex applied = std::max(state.applied, snap_meta.index);
  log_ = RaftLog(snap_meta, std::move(state.entries), state.durable.commit, applied);
  term_ = state.durable.term;
  voted_for_ = state.durable.voted_for;
  // Thesis §6.4.1: before a crash this node may have acknowledged a leader's
  // heartbeat round, on which that leader bases its lease; it has forgotten,
  // so it refuses votes for one election timeout after a restart. (A node that
  // never adopted a term acknowledged nothing.)
  if (cfg_.lease_reads && term_ > Term(0)) vote_fence_until_tick_ = cfg_.election_timeout_ticks;
  prev_hard_ = hard_state();
  prev_soft_ = soft_state();
  durable_term_ = term_;
  reset_election_timer();
}

// ---------------------------------------------------------------------------
// Introspection

RaftRole Raft::raft_role() const {
  return std::visit(Overloaded{
                        [](const Follower&) { return RaftRole::kFollower; },
                        [](const PreCandidate&) { return RaftRole::kPreCandidate; },
                        [](const Candidate&) { return RaftRole::kCandidate; },
                        [](const Leader&) { return RaftRole::kLeader; },
                    },
                    role_);
}

Role Raft::role() const {
  switch (raft_role()) {
    case RaftRole::kFollower:
      return Role::kFollower;
    case RaftRole::kPreCandidate:
    case RaftRole::kCandidate:
      return Role::kCandidate;
    case RaftRole::kLeader:
      return Role::kLeader;
  }
  return Role::kFollower;
}

core::EngineStatus Raft::status() const {
  core::EngineStatus st;
  st.soft = soft_state();
  st.role_name = raft_role_name(raft_role());
  st.commit_index = log_.committed();
  st.first_index = log_.first_index();
  st.last_index = log_.last_index();
  st.snapshot_index = log_.snapshot().index;
  if (const auto* l = std::get_if<Leader>(&role_)) {
    for (const auto& [id, pr] : l->progress) {
      const LogIndex last = log_.last_index();
      st.peers.push_back(core::PeerStatus{id, pr.match_index, pr.next_index,
                                          last - std::min(last, pr.match_index)});
    }
  }
  return st;
}

uint64_t Raft::lease_until_tick() const {
  const auto* l = std::get_if<Leader>(&role_);
  return l == nullptr ? 0 : l->lease_until_tick;
}

core::SoftState Raft::soft_state() const {
  return {role(), term_, leader_};
}

std::optional<Progress> Raft::progress(NodeId peer) const {
  if (auto* l = std::get_if<Leader>(&role_)) {
    auto it = l->progress.find(peer);
    if (it != l->progress.end()) return it->second;
  }
  return std::nullopt;
}

bool Raft::committed_in_current_term() const {
  return log_.term(log_.committed()) == std::optional<Term>(term_);
}

// ---------------------------------------------------------------------------
// Inputs

void Raft::tick() {
  ++now_ticks_;
  ++election_elapsed_ticks_;
  if (auto* l = std::get_if<Leader>(&role_)) {
    for (auto& [id, pr] : l->progress) {
      if (pr.mode == Progress::Mode::kSnapshot &&
          ++pr.snapshot_elapsed_ticks >= cfg_.election_timeout_ticks) {
        pr.become_probe();  // the snapshot or its answer was lost: start over
        l->broadcast_pending = true;
      }
    }
    // A leader's election_elapsed_ticks_ only keeps it "in lease" (ignoring
    // RequestVotes while CheckQuorum is on); it restarts every timeout.
    if (election_elapsed_ticks_ >= cfg_.election_timeout_ticks) election_elapsed_ticks_ = 0;
    // CheckQuorum (thesis §6.2): step down when a majority was silent for a
    // whole election timeout, so a partitioned leader stops serving. Checked
    // every tick against each follower's last answer: a check once per
    // timeout over "heard this period" flags lets up to two timeouts pass.
    if (cfg_.check_quorum && !quorum_active(*l)) {
      become_follower(term_, kNoNode,
                      fmt::format("CheckQuorum: no quorum heard within {} ticks (silent: {})",
                                  cfg_.election_timeout_ticks, silent_peers(*l)));
      return;
    }
    if (++l->heartbeat_elapsed_ticks >= cfg_.heartbeat_interval_ticks) {
      l->heartbeat_elapsed_ticks = 0;
      l->heartbeat_pending = true;
    }
    return;
  }
  const bool promotable =
      std::find(cfg_.voters.begin(), cfg_.voters.end(), cfg_.id) != cfg_.voters.end();
  if (promotable && election_elapsed_ticks_ >= randomized_election_timeout_ticks_) {
    const std::string from =
        leader_ != kNoNode ? fmt::format("leader n{}", leader_.value()) : std::string("a leader");
    campaign(cfg_.pre_vote,
             fmt::format("no message from {} for {} ticks", from, election_elapsed_ticks_));
  }
}

ProposeResult Raft::propose(std::string data) {
  if (auto* l = std::get_if<Leader>(&role_)) {
    if (!append_entry(*l, EntryType::kNormal, std::move(data))) {
      return {ProposeStatus::kTooMuchUncommitted, cfg_.id, {}, {}};
    }
    return {ProposeStatus::kAccepted, cfg_.id, log_.last_index(), term_};
  }
  if (leader_ == kNoNode) return {ProposeStatus::kNoLeader, kNoNode, {}, {}};
  if (!cfg_.forward_proposals) return {ProposeStatus::kNotLeader, leader_, {}, {}};
  if (forward_bytes_ > 0 && forward_bytes_ + data.size() > cfg_.max_forward_bytes)
    return {ProposeStatus::kTooMuchUncommitted, leader_, {}, {}};
  forward_bytes_ += data.size();
  forward_buffer_.push_back(std::move(data));
  return {ProposeStatus::kForwarded, leader_, {}, {}};
}

ProposeResult Raft::read_index(uint64_t ctx, core::ReadMode mode) {
  if (auto* l = std::get_if<Leader>(&role_)) {
    if (reads_full(*l)) return {ProposeStatus::kTooMuchUncommitted, cfg_.id, {}, term_};
    if (!committed_in_current_term()) {
      // Thesis §6.4 step 1: the commit index is only known to be current once
      // an entry of this term (the no-op) is committed.
      l->reads_before_commit.push_back(PendingRead{cfg_.id, ctx, {}, 0});
      return {ProposeStatus::kAccepted, cfg_.id, {}, term_};
    }
    if (cfg_.lease_reads && mode == core::ReadMode::kLease && now_ticks_ < l->lease_until_tick) {
      reads_.push_back({ctx, log_.committed()});
      return {ProposeStatus::kAccepted, cfg_.id, log_.committed(), term_};
    }
    add_read(*l, cfg_.id, ctx);
    return {ProposeStatus::kAccepted, cfg_.id, log_.committed(), term_};
  }
  if (leader_ == kNoNode) return {ProposeStatus::kNoLeader, kNoNode, {}, {}};
  if (!cfg_.forward_proposals) return {ProposeStatus::kNotLeader, leader_, {}, {}};
  send(leader_, ReadIndexRequest{ctx});
  return {ProposeStatus::kForwarded, leader_, {}, {}};
}

std::optional<LogIndex> Raft::lease_read_index() const {
  const auto* l = std::get_if<Leader>(&role_);
  if (l == nullptr || !cfg_.lease_reads || !committed_in_current_term() ||
      now_ticks_ >= l->lease_until_tick) {
    return std::nullopt;
  }
  return log_.committed();
}

bool Raft::vote_fenced(const Message& m, const RequestVote& rv) const {
  // Repeating a vote already granted in this term promises nothing new.
  if (!rv.pre_vote && m.term == term_ && voted_for_ == m.from) return false;
  if (now_ticks_ < vote_fence_until_tick_) return true;
  // A leader under CheckQuorum keeps its followers' promises for as long as
  // it leads (it steps down once a quorum is silent for a timeout).
  return cfg_.check_quorum && std::holds_alternative<Leader>(role_);
}

// Applies the term rules of Raft §5.1 (and PreVote's exceptions). Returns true
// when the message was fully handled here.
bool Raft::step_stale_or_newer_term(const Message& m) {
  const auto* rv = std::get_if<RequestVote>(&m.body);
  const auto* rvr = std::get_if<RequestVoteResponse>(&m.body);
  // Leader stickiness (thesis §4.2.3, needed for CheckQuorum and leases):
  // while a leader may still hold its lease, ignore candidates — before the
  // term rules, so an ignored candidate cannot raise our term either.
  if (rv != nullptr && m.term >= term_ && vote_fenced(m, *rv)) return true;
  if (m.term > term_) {
    if (rv != nullptr && rv->pre_vote) return false;  // a pre-vote changes no term
    if (rvr != nullptr && rvr->pre_vote && rvr->granted) return false;  // nor does its grant
    const bool from_leader = std::holds_alternative<AppendEntries>(m.body) ||
                             std::holds_alternative<Heartbeat>(m.body) ||
                             std::holds_alternative<InstallSnapshot>(m.body);
    // Raft Figure 2: a follower's election timer restarts only on hearing from
    // the current leader or granting a vote. A candidate's higher term alone
    // must not restart it, or a node that keeps losing elections (stale log,
    // fast clock) would hold everyone else's timers back forever.
    become_follower(m.term, from_leader ? m.from : kNoNode,
                    fmt::format("{} from n{} carries term {} > {}", message_name(m.body),
                                m.from.value(), m.term.value(), term_.value()),
                    /*reset_timer=*/from_leader);
    return false;
  }
  if (m.term < term_) {
    // A stale leader (e.g. one that was partitioned) learns the new term from
    // our answer and steps down; with PreVote it would otherwise never hear it.
    if (std::holds_alternative<AppendEntries>(m.body) ||
        std::holds_alternative<Heartbeat>(m.body)) {
      send(m.from, AppendEntriesResponse{});
    } else if (rv != nullptr && rv->pre_vote) {
      send(m.from, RequestVoteResponse{false, true});
    }
    return true;  // otherwise: ignore messages from old terms
  }
  return false;
}

void Raft::step(const Message& m) {
  CHORUS_ASSERT(m.to == cfg_.id);
  if (step_stale_or_newer_term(m)) return;
  if (const auto* rv = std::get_if<RequestVote>(&m.body)) {
    handle_vote_request(m, *rv);
    return;
  }
  if (auto* l = std::get_if<Leader>(&role_)) {
    step_leader(*l, m);
    return;
  }
  if (const auto* r = std::get_if<RequestVoteResponse>(&m.body)) {
    handle_vote_response(m, *r);
    return;
  }
  step_follower(m);
}

void Raft::step_follower(const Message& m) {
  const bool from_leader = std::holds_alternative<AppendEntries>(m.body) ||
                           std::holds_alternative<Heartbeat>(m.body) ||
                           std::holds_alternative<InstallSnapshot>(m.body);
  if (from_leader) {
    // A (pre-)candidate that hears from a leader of its term steps back (§5.2).
    if (!std::holds_alternative<Follower>(role_)) {
      become_follower(
          m.term, m.from,
          fmt::format("heard from n{}, leader of term {}", m.from.value(), m.term.value()));
    }
    if (leader_ != m.from) {
      role_reason_ =
          fmt::format("heard from n{}, leader of term {}", m.from.value(), m.term.value());
    }
    leader_ = m.from;
    election_elapsed_ticks_ = 0;
    if (cfg_.check_quorum) vote_fence_until_tick_ = now_ticks_ + cfg_.election_timeout_ticks;
  }
  std::visit(Overloaded{
                 [&](const AppendEntries& a) { handle_append(m, a); },
                 [&](const Heartbeat& h) { handle_heartbeat(m, h); },
                 [&](const InstallSnapshot& s) { handle_snapshot(m, s); },
                 [&](const ReadIndexResponse& r) {
                   reads_.push_back({r.ctx, r.index});
                 },
                 [](const auto&) {},  // not for a follower: stale or misdirected, ignored
             },
             m.body);
}

// ---------------------------------------------------------------------------
// Ready / advance

void Raft::send(NodeId to, Body body) {
  Message m{cfg_.id, to, term_, std::move(body)};
  // A heartbeat response vouches for the leader in term_ (its lease and read
  // rounds rest on it), so term_ must be durable first; it is when the host
  // has persisted a hard state of this term.
  const bool vouches_in_durable_term =
      std::holds_alternative<HeartbeatResponse>(m.body) && term_ == durable_term_;
  if (may_send_before_persist(m.body) || vouches_in_durable_term) {
    msgs_.push_back(std::move(m));
  } else {
    msgs_after_persist_.push_back(std::move(m));
  }
}

bool Raft::has_ready() const {
  if (ready_outstanding_) return false;
  if (!msgs_.empty() || !msgs_after_persist_.empty() || !reads_.empty() || !outcomes_.empty() ||
      !forward_buffer_.empty() || pending_install_ || log_.has_unstable() ||
      log_.has_committed_to_apply()) {
    return true;
  }
  if (hard_state() != prev_hard_ || soft_state() != prev_soft_) return true;
  if (const auto* l = std::get_if<Leader>(&role_)) {
    return l->broadcast_pending || l->heartbeat_pending;
  }
  return false;
}

void Raft::flush_outbox() {
  if (auto* l = std::get_if<Leader>(&role_)) {
    if (l->broadcast_pending) {
      l->broadcast_pending = false;
      broadcast_append(*l);
    }
    if (l->heartbeat_pending) {
      l->heartbeat_pending = false;
      broadcast_heartbeat(*l);
    }
  }
  if (!forward_buffer_.empty()) {
    if (leader_ != kNoNode && leader_ != cfg_.id) {
      send(leader_, ForwardProposals{std::move(forward_buffer_)});
    }
    forward_buffer_.clear();  // no leader any more: dropped; the host offers them again
    forward_bytes_ = 0;
  }
}

bool Raft::has_messages() const {
  if (!msgs_.empty() || !forward_buffer_.empty()) return true;
  if (const auto* l = std::get_if<Leader>(&role_)) {
    return l->broadcast_pending || l->heartbeat_pending;
  }
  return false;
}

std::vector<Message> Raft::take_messages() {
  flush_outbox();
  return std::exchange(msgs_, {});
}

Ready Raft::ready() {
  CHORUS_ASSERT_MSG(!ready_outstanding_, "ready() called before advance() of the previous Ready");
  flush_outbox();

  Ready rd;
  const core::SoftState soft = soft_state();
  if (soft != prev_soft_) {
    rd.soft_state = soft;
    rd.soft_state_reason = std::move(role_reason_);
  }
  role_reason_.clear();
  const HardState hard = hard_state();
  if (hard != prev_hard_) rd.durable_state = hard;
  prev_soft_ = soft;
  prev_hard_ = hard;
  if (pending_install_) {
    rd.snapshot = std::move(*pending_install_);
    pending_install_.reset();
  }
  rd.entries = log_.unstable_entries();
  log_.mark_handed(log_.last_index());
  rd.messages = std::move(msgs_);
  rd.messages_after_persist = std::move(msgs_after_persist_);
  rd.committed = log_.take_committed(cfg_.max_apply_bytes_per_ready);
  rd.reads = std::move(reads_);
  rd.outcomes = std::move(outcomes_);
  msgs_.clear();
  msgs_after_persist_.clear();
  reads_.clear();
  outcomes_.clear();
  ready_outstanding_ = true;
  return rd;
}

void Raft::advance(const Ready& rd) {
  CHORUS_ASSERT(ready_outstanding_);
  ready_outstanding_ = false;
  if (rd.durable_state) durable_term_ = rd.durable_state->term;
  log_.stable_to_handed();
  if (auto* l = std::get_if<Leader>(&role_)) {
    // Our own entries are durable now; they may complete a quorum.
    if (maybe_commit(*l)) l->broadcast_pending = true;
  }
}

void Raft::compact(core::SnapshotRef snap) {
  CHORUS_ASSERT_MSG(snap.meta.index <= log_.applied(), "snapshot beyond the applied index");
  if (snap.meta.index <= log_.snapshot().index) return;
  CHORUS_ASSERT(log_.term(snap.meta.index) == std::optional<Term>(snap.meta.term));
  snapshot_ = std::move(snap);
  const uint64_t keep = cfg_.snapshot_trailing_entries;
  const LogIndex target =
      snapshot_->meta.index.value() > keep ? snapshot_->meta.index - keep : LogIndex(0);
  log_.compact(std::min(target, log_.stable()));
}

}  // namespace chorus::raft
