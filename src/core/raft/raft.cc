#include "core/raft/raft.h"

#include <algorithm>
#include <utility>

#include "base/assert.h"
#include "base/planted.h"
#include "core/common/quorum.h"
#include "fmt/format.h"

namespace chorus::raft {

using core::Entry;
using core::EntryType;
using core::Role;

namespace {
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// (clang 14 needs the deduction guide that C++20 makes implicit.)
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

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
// Transitions

void Raft::reset_election_timer() {
  election_elapsed_ticks_ = 0;
  randomized_election_timeout_ticks_ = static_cast<uint32_t>(
      prng_.uniform(cfg_.election_timeout_ticks, 2 * cfg_.election_timeout_ticks - 1));
}

void Raft::become_follower(Term term, NodeId leader, std::string why, bool reset_timer) {
  if (!std::holds_alternative<Follower>(role_) || term > term_) role_reason_ = std::move(why);
  if (auto* l = std::get_if<Leader>(&role_)) {
    // Reads waiting for confirmation can no longer be confirmed by us.
    for (const auto& r : l->reads_before_commit) {
      if (r.from == cfg_.id) outcomes_.push_back({r.ctx, ProposeStatus::kDropped, leader, {}, {}});
    }
    for (const auto& r : l->reads) {
      if (r.from == cfg_.id) outcomes_.push_back({r.ctx, ProposeStatus::kDropped, leader, {}, {}});
    }
  }
  // Raft §5.1: a higher term resets the vote.
  if (term > term_) {
    term_ = term;
    voted_for_ = kNoNode;
  }
  role_ = Follower{};
  leader_ = leader;
  if (reset_timer) reset_election_timer();
}

void Raft::become_pre_candidate() {
  CHORUS_ASSERT(!std::holds_alternative<Leader>(role_));
  // PreVote: term and vote stay unchanged; nothing is persisted.
  role_ = PreCandidate{};
  leader_ = kNoNode;
  reset_election_timer();
}

void Raft::become_candidate() {
  CHORUS_ASSERT(!std::holds_alternative<Leader>(role_));
  // Raft §5.2: increment current_term, vote for self, reset the election timer.
  term_ = term_.next();
  voted_for_ = cfg_.id;
  role_ = Candidate{};
  leader_ = kNoNode;
  reset_election_timer();
}

void Raft::become_leader() {
  CHORUS_ASSERT(std::holds_alternative<Candidate>(role_));
  role_reason_ = fmt::format("won the election for term {}", term_.value());
  Leader l;
  for (NodeId v : cfg_.voters) {
    if (v == cfg_.id) continue;
    Progress pr(log_.last_index().next(), cfg_.max_inflight_appends);
    pr.last_heard_tick = now_ticks_;  // the election counts: one election timeout of grace
    l.progress.emplace(v, std::move(pr));
  }
  role_ = std::move(l);
  leader_ = cfg_.id;
  election_elapsed_ticks_ = 0;
  Leader& leader = std::get<Leader>(role_);
  // Raft §8 / §5.4.2: a no-op in the new term lets the leader commit the
  // entries of earlier terms, and is what ReadIndex waits for.
  leader.term_start_index = log_.last_index().next();
  append_entry(leader, EntryType::kNoop, {});
}

void Raft::campaign(bool pre_vote, std::string why) {
  role_reason_ = std::move(why);
  Term vote_term;
  std::map<NodeId, bool>* votes = nullptr;
  if (pre_vote) {
    become_pre_candidate();
    vote_term = term_.next();
    votes = &std::get<PreCandidate>(role_).votes;
  } else {
    become_candidate();
    vote_term = term_;
    votes = &std::get<Candidate>(role_).votes;
  }
  (*votes)[cfg_.id] = true;
  if (core::tally(cfg_.voters.size(), 1, 0) == core::VoteResult::kWon) {
    if (pre_vote) {
      campaign(false, "a single-node cluster wins its own pre-vote");
    } else {
      become_leader();
    }
    return;
  }
  for (NodeId v : cfg_.voters) {
    if (v == cfg_.id) continue;
    msgs_after_persist_.push_back(
        Message{cfg_.id, v, vote_term, RequestVote{log_.last_index(), log_.last_term(), pre_vote}});
  }
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
// Elections

void Raft::handle_vote_request(const Message& m, const RequestVote& rv) {
  // Raft §5.2 / §5.4.1: one vote per term, first come first served, and only
  // for a candidate whose log is at least as up-to-date as ours.
  bool can_vote = voted_for_ == m.from || (voted_for_ == kNoNode && leader_ == kNoNode) ||
                  (rv.pre_vote && m.term > term_);
  if constexpr (planted::kDoubleVote) can_vote = can_vote || !rv.pre_vote;
  if (can_vote && log_.is_up_to_date(rv.last_log_index, rv.last_log_term)) {
    // A granted pre-vote answers in the term asked about, so the
    // pre-candidate can tell it from a stale answer.
    msgs_after_persist_.push_back(Message{cfg_.id, m.from, rv.pre_vote ? m.term : term_,
                                          RequestVoteResponse{true, rv.pre_vote}});
    if (!rv.pre_vote) {
      voted_for_ = m.from;
      election_elapsed_ticks_ = 0;  // §5.2: granting a vote resets the election timer
    }
  } else {
    send(m.from, RequestVoteResponse{false, rv.pre_vote});
  }
}

void Raft::handle_vote_response(const Message& m, const RequestVoteResponse& r) {
  std::map<NodeId, bool>* votes = nullptr;
  if (auto* pc = std::get_if<PreCandidate>(&role_)) {
    if (!r.pre_vote) return;
    // Grants come in term_+1; rejections in the voter's own term.
    if (r.granted && m.term != term_.next()) return;
    votes = &pc->votes;
  } else if (auto* c = std::get_if<Candidate>(&role_)) {
    if (r.pre_vote || m.term != term_) return;
    votes = &c->votes;
  } else {
    return;
  }
  votes->emplace(m.from, r.granted);
  size_t granted = 0;
  size_t rejected = 0;
  for (const auto& [id, g] : *votes) (g ? granted : rejected)++;
  switch (core::tally(cfg_.voters.size(), granted, rejected)) {
    case core::VoteResult::kWon:
      if (std::holds_alternative<PreCandidate>(role_)) {
        campaign(false,
                 fmt::format("a majority granted the pre-vote for term {}", term_.next().value()));
      } else {
        become_leader();
      }
      break;
    case core::VoteResult::kLost:
      become_follower(
          term_, kNoNode,
          fmt::format("a majority rejected the {} for term {}", r.pre_vote ? "pre-vote" : "vote",
                      (r.pre_vote ? term_.next() : term_).value()));
      break;
    case core::VoteResult::kPending:
      break;
  }
}

// ---------------------------------------------------------------------------
// Follower side of replication

void Raft::handle_append(const Message& m, const AppendEntries& a) {
  if (a.prev_log_index < log_.committed()) {
    // Everything up to our commit index matches the leader (Log Matching);
    // this append is old or reordered.
    send(m.from, AppendEntriesResponse{true, log_.committed(), {}, {}, {}});
    return;
  }
  bool prev_matches = log_.match_term(a.prev_log_index, a.prev_log_term);
  if constexpr (planted::kNoPrevCheck) prev_matches = a.prev_log_index <= log_.last_index();
  if (!prev_matches) {
    // Raft §5.3 rule 2: reject. The hint names the last index at or before
    // the leader's prev whose term is <= the leader's prev term, so the leader
    // can skip a whole divergent term per round trip.
    LogIndex hint_index = log_.last_index_with_term_at_most(
        a.prev_log_term, std::min(a.prev_log_index, log_.last_index()));
    Term hint_term = *log_.term(hint_index);
    send(m.from, AppendEntriesResponse{false, {}, a.prev_log_index, hint_term, hint_index});
    return;
  }
  // Raft §5.3 / Figure 2: an acknowledgement promises its entries are
  // durable. Several appends can be stepped before one Ready is persisted; an
  // earlier one (say from a stale leader) may have been acknowledged, and
  // this one replaces what it acknowledged: that promise must not leave.
  if (const LogIndex c = first_conflict(a.entries); c != LogIndex(0)) void_acks_from(c);
  const LogIndex last_new = log_.append_after(a.prev_log_index, a.entries);
  // Raft §5.3 rule 5: commit up to min(leader_commit, index of last new entry).
  log_.commit_to(std::min(a.leader_commit, last_new));
  send(m.from, AppendEntriesResponse{true, last_new, {}, {}, {}});
}

void Raft::handle_heartbeat(const Message& m, const Heartbeat& h) {
  log_.commit_to(std::min(h.commit, log_.last_index()));
  send(m.from, HeartbeatResponse{h.read_round});
}

void Raft::handle_snapshot(const Message& m, const InstallSnapshot& s) {
  const core::SnapshotMeta meta = s.snapshot.meta;
  if (meta.index <= log_.committed()) {
    send(m.from, AppendEntriesResponse{true, log_.committed(), {}, {}, {}});
    return;
  }
  if (log_.match_term(meta.index, meta.term)) {
    // We hold the snapshot's last entry: our log matches through it.
    log_.commit_to(meta.index);
    send(m.from, AppendEntriesResponse{true, meta.index, {}, {}, {}});
    return;
  }
  void_acks_from(log_.committed().next());  // everything past the commit index is replaced
  log_.restore(meta);
  snapshot_ = s.snapshot;
  pending_install_ = s.snapshot;
  send(m.from, AppendEntriesResponse{true, meta.index, {}, {}, {}});
}

LogIndex Raft::first_conflict(const std::vector<core::Entry>& entries) const {
  for (const core::Entry& e : entries) {
    if (e.index <= log_.snapshot().index) continue;
    const auto t = log_.term(e.index);
    if (!t) return LogIndex(0);  // past our end: nothing is replaced
    if (*t != e.term) return e.index;
  }
  return LogIndex(0);
}

void Raft::void_acks_from(LogIndex from) {
  std::erase_if(msgs_after_persist_, [&](const Message& m) {
    const auto* r = std::get_if<AppendEntriesResponse>(&m.body);
    return r != nullptr && r->success && r->match_index >= from;
  });
}

// ---------------------------------------------------------------------------
// Leader

void Raft::step_leader(Leader& l, const Message& m) {
  std::visit(Overloaded{
                 [&](const AppendEntriesResponse& r) { handle_append_response(l, m, r); },
                 [&](const HeartbeatResponse& r) { handle_heartbeat_response(l, m, r); },
                 [&](const ForwardProposals& p) {
                   for (const auto& d : p.data) {
                     // A refused forwarded proposal is dropped; its client times out.
                     if (!append_entry(l, EntryType::kNormal, d)) break;
                   }
                 },
                 [&](const ReadIndexRequest& r) {
                   if (reads_full(l)) return;  // dropped: the asker asks again later
                   if (!committed_in_current_term()) {
                     l.reads_before_commit.push_back(PendingRead{m.from, r.ctx, {}, 0});
                   } else {
                     add_read(l, m.from, r.ctx);
                   }
                 },
                 // Another leader in our own term would break Election Safety;
                 // the simulator's checks report it. Nothing to do here.
                 [](const auto&) {},
             },
             m.body);
}

bool Raft::append_entry(Leader& l, EntryType type, std::string data) {
  const size_t bytes = data.size();
  if (type == EntryType::kNormal && l.uncommitted_bytes > 0 &&
      l.uncommitted_bytes + bytes > cfg_.max_uncommitted_bytes) {
    return false;
  }
  log_.append(Entry{term_, log_.last_index().next(), type, std::move(data)});
  l.uncommitted_bytes += bytes;
  l.broadcast_pending = true;
  return true;
}

bool Raft::maybe_send_append(NodeId to, Progress& pr, bool send_if_empty) {
  if (pr.paused()) return false;
  const LogIndex prev = pr.next_index.prev();
  const auto prev_term = log_.term(prev);
  if (!prev_term) {
    // The entries this follower needs are compacted: send the snapshot.
    CHORUS_ASSERT_MSG(snapshot_.has_value(), "log compacted without a snapshot");
    pr.become_snapshot(snapshot_->meta.index);
    send(to, InstallSnapshot{*snapshot_});
    return true;
  }
  std::vector<Entry> entries = log_.slice(pr.next_index, log_.last_index(),
                                          cfg_.max_entries_per_append, cfg_.max_bytes_per_append);
  if (entries.empty() && !send_if_empty) return false;
  const LogIndex last = entries.empty() ? prev : entries.back().index;
  send(to, AppendEntries{prev, *prev_term, std::move(entries), log_.committed()});
  if (last > prev) {
    if (pr.mode == Progress::Mode::kReplicate) {
      pr.next_index = last.next();  // optimistic: pipeline the next batch
      pr.inflights.add(last);
    } else {
      pr.probe_sent = true;
    }
  } else if (pr.mode == Progress::Mode::kProbe) {
    pr.probe_sent = true;
  }
  return true;
}

void Raft::send_empty_append(NodeId to, Progress& pr) {
  const LogIndex prev = pr.next_index.prev();
  if (const auto prev_term = log_.term(prev)) {
    // Carries no entries, so it takes no slot in the in-flight window.
    send(to, AppendEntries{prev, *prev_term, {}, log_.committed()});
    return;
  }
  // What was in flight has been compacted away: start over (likely a snapshot).
  pr.become_probe();
  maybe_send_append(to, pr, /*send_if_empty=*/true);
}

void Raft::broadcast_append(Leader& l) {
  for (auto& [id, pr] : l.progress) {
    bool sent = maybe_send_append(id, pr, /*send_if_empty=*/true);
    while (sent && pr.mode == Progress::Mode::kReplicate && pr.next_index <= log_.last_index()) {
      sent = maybe_send_append(id, pr, false);
    }
  }
}

void Raft::broadcast_heartbeat(Leader& l) {
  ++l.read_round;
  l.round_sent_tick[l.read_round] = now_ticks_;
  // Keep the round map bounded: rounds older than a lease can no longer matter.
  while (l.round_sent_tick.size() > 4ull * cfg_.election_timeout_ticks + 16) {
    l.round_sent_tick.erase(l.round_sent_tick.begin());
  }
  for (auto& [id, pr] : l.progress) {
    send(id, Heartbeat{std::min(pr.match_index, log_.committed()), l.read_round});
  }
  release_confirmed_reads(l);  // a single-node cluster confirms at once
}

void Raft::handle_append_response(Leader& l, const Message& m, const AppendEntriesResponse& r) {
  auto it = l.progress.find(m.from);
  if (it == l.progress.end()) return;
  Progress& pr = it->second;
  pr.last_heard_tick = now_ticks_;
  if (!r.success) {
    if (r.rejected_index == LogIndex(0) && r.conflict_index == LogIndex(0))
      return;  // stale-term reply
    // The leader's side of fast backtracking: the last index at or before the
    // follower's hint whose term is <= the follower's term there.
    LogIndex probe = r.conflict_index;
    if (r.conflict_term > Term(0))
      probe = log_.last_index_with_term_at_most(r.conflict_term, r.conflict_index);
    if (pr.maybe_decrease(r.rejected_index, probe)) {
      if (pr.mode == Progress::Mode::kReplicate) pr.become_probe();
      maybe_send_append(m.from, pr, true);
    }
    return;
  }
  const bool updated = pr.maybe_update(r.match_index);
  // Any success answering our probe unblocks the probe, even without progress.
  if (pr.mode == Progress::Mode::kProbe && r.match_index >= pr.next_index.prev())
    pr.probe_sent = false;
  if (updated) {
    switch (pr.mode) {
      case Progress::Mode::kProbe:
        pr.become_replicate();
        break;
      case Progress::Mode::kSnapshot:
        if (pr.match_index >= pr.pending_snapshot) pr.become_replicate();
        break;
      case Progress::Mode::kReplicate:
        pr.inflights.free_to(pr.match_index);
        break;
    }
    if (maybe_commit(l)) l.broadcast_pending = true;
  }
  while (maybe_send_append(m.from, pr, false) && pr.mode == Progress::Mode::kReplicate) {
  }
}

void Raft::handle_heartbeat_response(Leader& l, const Message& m, const HeartbeatResponse& r) {
  auto it = l.progress.find(m.from);
  if (it == l.progress.end()) return;
  Progress& pr = it->second;
  pr.last_heard_tick = now_ticks_;
  pr.acked_read_round = std::max(pr.acked_read_round, r.read_round);
  if (pr.mode == Progress::Mode::kProbe) pr.probe_sent = false;  // resume a stuck probe
  if (pr.match_index < log_.last_index()) {
    // Raft §5.3: the leader retries AppendEntries indefinitely. Pipelined
    // appends may have been lost, and then neither their acknowledgements nor
    // a later append (no new proposal, or a full window) would ever come:
    // probe with an append at next_index, empty when everything was sent. The
    // follower accepts it, or rejects it and replication restarts from match.
    if (pr.mode == Progress::Mode::kReplicate && pr.paused()) {
      send_empty_append(m.from, pr);
    } else {
      maybe_send_append(m.from, pr, /*send_if_empty=*/true);
    }
  }
  release_confirmed_reads(l);
}

bool Raft::maybe_commit(Leader& l) {
  std::vector<LogIndex> matches;
  matches.reserve(l.progress.size() + 1);
  matches.push_back(log_.stable());  // the leader counts itself once its entries are durable
  for (const auto& [id, pr] : l.progress) matches.push_back(pr.match_index);
  const LogIndex n = core::quorum_value(std::move(matches));
  if (n <= log_.committed()) return false;
  bool may_commit = log_.term(n) == std::optional<Term>(term_);
  if constexpr (planted::kCommitOldTerm) may_commit = true;
  // Raft §5.4.2: only entries from the current term are committed by counting
  // replicas; earlier ones are committed indirectly (Figure 8).
  if (!may_commit) return false;
  const LogIndex old = log_.committed();
  log_.commit_to(n);
  on_commit_advanced(l, old);
  return true;
}

void Raft::on_commit_advanced(Leader& l, LogIndex old_commit) {
  for (LogIndex i = std::max(old_commit.next(), log_.first_index()); i <= log_.committed();
       i = i.next()) {
    const size_t b = log_.at(i).data.size();
    l.uncommitted_bytes = l.uncommitted_bytes > b ? l.uncommitted_bytes - b : 0;
  }
  if (old_commit < l.term_start_index && log_.committed() >= l.term_start_index) {
    // The first commit of this term: reads that waited for it get an index now.
    for (const auto& r : l.reads_before_commit) add_read(l, r.from, r.ctx);
    l.reads_before_commit.clear();
  }
}

void Raft::add_read(Leader& l, NodeId from, uint64_t ctx) {
  if constexpr (planted::kReadIndexNoConfirm) {
    release_read(PendingRead{from, ctx, log_.committed(), 0});
    return;
  }
  // Thesis §6.4: remember the commit index, then confirm leadership with a
  // heartbeat round. Reads that arrive before the next round is sent share it.
  l.reads.push_back(PendingRead{from, ctx, log_.committed(), l.read_round + 1});
  l.heartbeat_pending = true;
}

void Raft::release_read(const PendingRead& r) {
  if (r.from == cfg_.id) {
    reads_.push_back({r.ctx, r.index});
  } else {
    send(r.from, ReadIndexResponse{r.ctx, r.index});
  }
}

void Raft::release_confirmed_reads(Leader& l) {
  std::vector<uint64_t> acked;
  acked.push_back(l.read_round);  // the leader confirms its own rounds
  for (const auto& [id, pr] : l.progress) acked.push_back(pr.acked_read_round);
  const uint64_t confirmed = core::quorum_value(std::move(acked));
  while (!l.reads.empty() && l.reads.front().round <= confirmed) {
    release_read(l.reads.front());
    l.reads.pop_front();
  }
  // A confirmed round proves no other leader could be elected before
  // (sent tick + lease_ticks): followers refuse votes for an election timeout.
  auto it = l.round_sent_tick.find(confirmed);
  if (it != l.round_sent_tick.end()) {
    l.lease_until_tick = std::max(l.lease_until_tick, it->second + cfg_.lease_ticks);
    l.round_sent_tick.erase(l.round_sent_tick.begin(), std::next(it));
  }
}

bool Raft::quorum_active(const Leader& l) const {
  size_t active = 1;  // self
  for (const auto& [id, pr] : l.progress) {
    active += now_ticks_ - pr.last_heard_tick < cfg_.election_timeout_ticks ? 1 : 0;
  }
  return active >= core::majority(cfg_.voters.size());
}

std::string Raft::silent_peers(const Leader& l) const {
  std::string out;
  for (const auto& [id, pr] : l.progress) {
    if (now_ticks_ - pr.last_heard_tick < cfg_.election_timeout_ticks) continue;
    out += fmt::format("{}n{} for {} ticks", out.empty() ? "" : ", ", id.value(),
                       now_ticks_ - pr.last_heard_tick);
  }
  return out;
}

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

// ---------------------------------------------------------------------------
// Ready / advance

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
