// Conformance tests for the Raft paper (Ongaro & Ousterhout, 2014) and the
// thesis features the core implements. Each test is named after the section
// whose rule it checks (etcd's raft_paper_test.go), so a failure names the
// broken rule.
//
// Small rules are checked on one Raft driven by hand (messages in, Ready out);
// scenarios use the Cluster harness (testing.h), which also checks Election
// Safety and State Machine Safety on every step.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/raft/raft.h"
#include "core/raft/testing.h"

namespace chorus::raft {
namespace {

using namespace chorus::raft::testing;  // NOLINT

// Paper defaults for hand-driven nodes: no PreVote, no CheckQuorum, so only
// the §5 rules are in play unless a test turns a feature on.
void paper_only(Config& c) {
  c.pre_vote = false;
  c.check_quorum = false;
}

Raft make_node(uint64_t id, size_t n, PersistentState ps = {},
               const std::function<void(Config&)>& tweak = paper_only, uint64_t seed = 1) {
  return Raft(make_config(id, n, tweak), Prng(seed), std::move(ps));
}

PersistentState state_with(std::vector<uint64_t> log_terms, uint64_t term, uint64_t voted_for = 0) {
  PersistentState ps;
  ps.entries = entries_with_terms(log_terms);
  ps.durable.term = Term(term);
  ps.durable.voted_for = NodeId(voted_for);
  return ps;
}

// Ticks `r` until its election timer fires; returns the number of ticks.
int tick_until_campaign(Raft& r) {
  const RaftRole before = r.raft_role();
  const Term term = r.term();
  for (int i = 1; i <= 1000; ++i) {
    r.tick();
    if (r.raft_role() != before || r.term() != term) return i;
  }
  ADD_FAILURE() << "no campaign";
  return -1;
}

Raft make_leader(uint64_t id, size_t n, PersistentState ps = {},
                 const std::function<void(Config&)>& tweak = paper_only) {
  Raft r = make_node(id, n, std::move(ps), tweak);
  tick_until_campaign(r);
  for (uint64_t v = 1; v <= n && r.raft_role() != RaftRole::kLeader; ++v) {
    if (v != id) r.step(msg(v, id, r.term().value(), RequestVoteResponse{true, false}));
  }
  EXPECT_EQ(r.raft_role(), RaftRole::kLeader);
  return r;
}

const AppendEntriesResponse* append_response(const Message& m) {
  return std::get_if<AppendEntriesResponse>(&m.body);
}

std::vector<uint64_t> log_terms(const RaftLog& log) {
  std::vector<uint64_t> out;
  for (LogIndex i = log.first_index(); i <= log.last_index(); i = i.next()) {
    out.push_back(log.at(i).term.value());
  }
  return out;
}

// ===========================================================================
// §5.1 Raft basics: terms

// "If a server's current term is smaller than the other's, it updates its
// current term to the larger value. If a candidate or leader discovers that its
// term is out of date, it immediately reverts to follower state."
TEST(RaftPaper, Sec5_1_HigherTermMakesEveryRoleAFollowerAndResetsTheVote) {
  struct Case {
    const char* name;
    std::function<Raft()> make;
  };
  const Case cases[] = {
      {"follower", [] { return make_node(1, 3, state_with({}, 1, 3)); }},
      {"candidate",
       [] {
         Raft r = make_node(1, 3);
         tick_until_campaign(r);
         EXPECT_EQ(r.raft_role(), RaftRole::kCandidate);
         return r;
       }},
      {"pre-candidate",
       [] {
         Raft r = make_node(1, 3, {}, [](Config& c) { c.check_quorum = false; });
         tick_until_campaign(r);
         EXPECT_EQ(r.raft_role(), RaftRole::kPreCandidate);
         return r;
       }},
      {"leader", [] { return make_leader(1, 3); }},
  };
  for (const auto& c : cases) {
    Raft r = c.make();
    ASSERT_LT(r.term(), Term(7)) << c.name;
    r.step(msg(2, 1, 7, Heartbeat{LogIndex(0), 0}));
    EXPECT_EQ(r.raft_role(), RaftRole::kFollower) << c.name;
    EXPECT_EQ(r.term(), Term(7)) << c.name;
    EXPECT_EQ(r.leader(), NodeId(2)) << c.name;
    EXPECT_EQ(r.hard_state().voted_for, kNoNode) << c.name << ": a new term has no vote yet";
  }
}

TEST(RaftPaper, Sec5_1_HigherTermInAResponseAlsoUpdatesTheTerm) {
  Raft leader = make_leader(1, 3);
  leader.step(msg(3, 1, 9, AppendEntriesResponse{}));
  EXPECT_EQ(leader.raft_role(), RaftRole::kFollower);
  EXPECT_EQ(leader.term(), Term(9));
  EXPECT_EQ(leader.leader(), kNoNode);  // a response names no leader
}

// "If a server receives a request with a stale term number, it rejects the
// request." Responses carry the receiver's current term so the sender learns it.
TEST(RaftPaper, Sec5_1_StaleTermRequestsAreRejectedWithTheCurrentTerm) {
  Raft r = make_node(1, 3, state_with({1, 2}, 5));
  (void)take(r);

  r.step(msg(2, 1, 3, AppendEntries{LogIndex(2), Term(2), {entry(3, 3)}, LogIndex(3)}));
  auto rd = take(r);
  EXPECT_EQ(r.log().last_index(), LogIndex(2)) << "a stale append must not touch the log";
  EXPECT_EQ(r.log().committed(), LogIndex(0));
  auto out = all_messages(rd);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].to, NodeId(2));
  EXPECT_EQ(out[0].term, Term(5));
  ASSERT_NE(append_response(out[0]), nullptr);
  EXPECT_FALSE(append_response(out[0])->success);

  r.step(msg(3, 1, 4, RequestVote{LogIndex(9), Term(4), false}));
  EXPECT_EQ(r.hard_state().voted_for, kNoNode) << "no vote for a stale candidate";
  EXPECT_EQ(r.term(), Term(5));
  for (const auto& m : all_messages(take(r))) {
    const auto* v = std::get_if<RequestVoteResponse>(&m.body);
    if (v != nullptr) {
      EXPECT_FALSE(v->granted);
    }
  }
}

TEST(RaftPaper, Sec5_1_StaleLeaderStepsDownWhenItLearnsTheNewTerm) {
  Cluster c({.nodes = 3, .config = paper_only});
  ASSERT_TRUE(c.elect(1));
  const Term old_term = c.raft(1).term();

  c.isolate(1);
  ASSERT_TRUE(c.run_until([&] { return c.leader() != 1u; }));
  const uint64_t new_leader = *c.leader();
  EXPECT_GT(c.raft(new_leader).term(), old_term);
  EXPECT_EQ(c.role(1), RaftRole::kLeader)
      << "without CheckQuorum, the cut-off leader does not know";

  c.heal();
  c.tick(1);  // its heartbeat reaches the others, whose answers carry the new term
  c.stabilize();
  EXPECT_EQ(c.role(1), RaftRole::kFollower);
  EXPECT_EQ(c.raft(1).term(), c.raft(new_leader).term());
  EXPECT_EQ(c.leader(), new_leader);
}

// ===========================================================================
// §5.2 Leader election

TEST(RaftPaper, Sec5_2_FollowerStartsAnElectionAfterTheElectionTimeout) {
  Raft r = make_node(1, 3);
  const int T = static_cast<int>(r.config().election_timeout_ticks);
  for (int i = 0; i < T - 1; ++i) r.tick();
  EXPECT_EQ(r.raft_role(), RaftRole::kFollower) << "no election before T ticks";
  EXPECT_FALSE(r.has_ready());

  tick_until_campaign(r);
  // "To begin an election, a follower increments its current term and
  // transitions to candidate state. It then votes for itself and issues
  // RequestVote RPCs in parallel to each of the other servers."
  EXPECT_EQ(r.raft_role(), RaftRole::kCandidate);
  EXPECT_EQ(r.term(), Term(1));
  auto rd = take(r);
  ASSERT_TRUE(rd.durable_state.has_value());
  EXPECT_EQ(rd.durable_state->term, Term(1));
  EXPECT_EQ(rd.durable_state->voted_for, NodeId(1));
  EXPECT_TRUE(rd.messages.empty())
      << "a vote request promises our own vote: it waits for the fsync";
  auto votes = of_type<RequestVote>(rd.messages_after_persist);
  ASSERT_EQ(votes.size(), 2u);
  std::set<uint64_t> to;
  for (const auto& m : votes) {
    to.insert(m.to.value());
    EXPECT_EQ(m.term, Term(1));
    EXPECT_FALSE(std::get<RequestVote>(m.body).pre_vote);
  }
  EXPECT_EQ(to, (std::set<uint64_t>{2, 3}));
}

// "Raft uses randomized election timeouts ... chosen randomly from a fixed
// interval (e.g., 150-300ms)": here [T, 2T) ticks, drawn from the injected Prng.
TEST(RaftPaper, Sec5_2_ElectionTimeoutIsRandomizedInTToTwoTAndDiffersAcrossSeeds) {
  std::set<int> timeouts;
  uint32_t T = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Raft r = make_node(1, 3, {}, paper_only, seed);
    T = r.config().election_timeout_ticks;
    const int ticks = tick_until_campaign(r);
    EXPECT_GE(ticks, static_cast<int>(T)) << "seed " << seed;
    EXPECT_LT(ticks, static_cast<int>(2 * T)) << "seed " << seed;
    timeouts.insert(ticks);
    // The same seed gives the same timeout (replayable).
    Raft again = make_node(1, 3, {}, paper_only, seed);
    EXPECT_EQ(tick_until_campaign(again), ticks) << "seed " << seed;
  }
  EXPECT_GE(timeouts.size(), T / 2) << "timeouts barely vary across seeds";
}

TEST(RaftPaper, Sec5_2_CandidateBecomesLeaderOnlyWithAMajorityOfVotes) {
  struct Case {
    size_t size;
    std::map<uint64_t, bool> votes;  // voter -> granted
    RaftRole want;
  };
  const Case cases[] = {
      {1, {}, RaftRole::kLeader},
      {3, {{2, true}, {3, true}}, RaftRole::kLeader},
      {3, {{2, true}}, RaftRole::kLeader},
      {5, {{2, true}, {3, true}, {4, true}, {5, true}}, RaftRole::kLeader},
      {5, {{2, true}, {3, true}}, RaftRole::kLeader},
      {3, {}, RaftRole::kCandidate},
      {5, {{2, true}}, RaftRole::kCandidate},
      {5, {{2, false}, {3, false}}, RaftRole::kCandidate},
      {5, {{2, true}, {3, false}}, RaftRole::kCandidate},
      {3, {{2, false}, {3, false}}, RaftRole::kFollower},
      {5, {{2, false}, {3, false}, {4, false}}, RaftRole::kFollower},
      {5, {{2, true}, {3, false}, {4, false}, {5, false}}, RaftRole::kFollower},
  };
  for (const auto& c : cases) {
    Raft r = make_node(1, c.size);
    tick_until_campaign(r);
    for (const auto& [voter, granted] : c.votes) {
      r.step(msg(voter, 1, 1, RequestVoteResponse{granted, false}));
    }
    EXPECT_EQ(r.raft_role(), c.want) << "size " << c.size << ", " << c.votes.size() << " answers";
  }
}

TEST(RaftPaper, Sec5_2_CandidateCountsEachVoterOnce) {
  Raft r = make_node(1, 5);
  tick_until_campaign(r);
  for (int i = 0; i < 3; ++i) r.step(msg(2, 1, 1, RequestVoteResponse{true, false}));
  EXPECT_EQ(r.raft_role(), RaftRole::kCandidate) << "one voter's duplicates are one vote";
}

// "Each server will vote for at most one candidate in a given term, on a
// first-come-first-served basis."
TEST(RaftPaper, Sec5_2_OneVotePerTermFirstComeFirstServed) {
  Raft r = make_node(1, 3);
  r.step(msg(2, 1, 1, RequestVote{LogIndex(0), Term(0), false}));
  r.step(msg(3, 1, 1, RequestVote{LogIndex(0), Term(0), false}));
  r.step(msg(2, 1, 1, RequestVote{LogIndex(0), Term(0), false}));  // a retransmission
  auto rd = take(r);
  ASSERT_TRUE(rd.durable_state);
  EXPECT_EQ(rd.durable_state->voted_for, NodeId(2));
  std::map<uint64_t, std::vector<bool>> answers;
  for (const auto& m : of_type<RequestVoteResponse>(all_messages(rd))) {
    answers[m.to.value()].push_back(std::get<RequestVoteResponse>(m.body).granted);
    EXPECT_EQ(m.term, Term(1));
  }
  EXPECT_EQ(answers[2], (std::vector<bool>{true, true})) << "the same candidate may ask again";
  EXPECT_EQ(answers[3], (std::vector<bool>{false}));

  // The vote survives a restart: it was in the Ready's hard state.
  Raft restarted = make_node(1, 3, PersistentState{*rd.durable_state, {}, {}, {}});
  restarted.step(msg(3, 1, 1, RequestVote{LogIndex(0), Term(0), false}));
  auto again = of_type<RequestVoteResponse>(all_messages(take(restarted)));
  ASSERT_EQ(again.size(), 1u);
  EXPECT_FALSE(std::get<RequestVoteResponse>(again[0].body).granted);
}

// "If the leader's term is at least as large as the candidate's current term,
// then the candidate recognizes the leader as legitimate and returns to
// follower state."
TEST(RaftPaper, Sec5_2_CandidateStepsDownOnAppendEntriesOfItsTerm) {
  Raft r = make_node(1, 3);
  tick_until_campaign(r);
  ASSERT_EQ(r.raft_role(), RaftRole::kCandidate);
  (void)take(r);
  r.step(msg(2, 1, 1, AppendEntries{LogIndex(0), Term(0), {entry(1, 1, "x")}, LogIndex(0)}));
  EXPECT_EQ(r.raft_role(), RaftRole::kFollower);
  EXPECT_EQ(r.term(), Term(1));
  EXPECT_EQ(r.leader(), NodeId(2));
  EXPECT_EQ(r.hard_state().voted_for, NodeId(1)) << "the vote of this term stands";
  EXPECT_EQ(r.log().last_index(), LogIndex(1)) << "and the append is accepted";

  // A pre-candidate steps down the same way on a heartbeat.
  Raft p = make_node(1, 3, {}, [](Config& c) { c.check_quorum = false; });
  tick_until_campaign(p);
  ASSERT_EQ(p.raft_role(), RaftRole::kPreCandidate);
  p.step(msg(3, 1, 0, Heartbeat{LogIndex(0), 0}));
  EXPECT_EQ(p.raft_role(), RaftRole::kFollower);
  EXPECT_EQ(p.leader(), NodeId(3));
}

// "If many followers become candidates at the same time, votes could be split
// so that no candidate obtains a majority. When this happens, each candidate
// will time out and start a new election by incrementing its term."
TEST(RaftPaper, Sec5_2_SplitVoteLeadsToANewElectionInAHigherTerm) {
  Cluster c({.nodes = 4, .config = paper_only});
  // n1 and n3 time out together; n2 hears n1 first, n4 hears n3 first.
  c.cut(1, 4);
  c.cut(3, 2);
  c.campaign(1);
  c.campaign(3);
  c.stabilize();
  EXPECT_EQ(c.role(1), RaftRole::kCandidate);
  EXPECT_EQ(c.role(3), RaftRole::kCandidate);
  EXPECT_EQ(c.raft(1).term(), Term(1));
  EXPECT_EQ(c.raft(3).term(), Term(1));
  EXPECT_EQ(c.leader(), std::nullopt) << "2 of 4 votes is no majority";

  c.heal();
  ASSERT_TRUE(c.run_until([&] { return c.leader().has_value(); }));
  EXPECT_GE(c.raft(*c.leader()).term(), Term(2));
}

// ===========================================================================
// §5.3 Log replication

TEST(RaftPaper, Sec5_3_LeaderReplicatesAndCommitsAnEntry) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  const ProposeResult p = c.propose(1, "x");
  ASSERT_EQ(p.status, ProposeStatus::kAccepted);
  EXPECT_EQ(p.index, LogIndex(2)) << "after the leader's no-op";
  EXPECT_EQ(p.term, c.raft(1).term());
  c.stabilize();
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.committed(id), LogIndex(2)) << "n" << id;
    EXPECT_EQ(c.sm(id).commands, (std::vector<std::string>{"x"})) << "n" << id;
    EXPECT_EQ(c.disk(id).last_index(), LogIndex(2)) << "n" << id;
  }
}

// "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers."
TEST(RaftPaper, Sec5_3_EntryIsCommittedOnceAMajorityStoresIt) {
  Cluster c({.nodes = 5});
  ASSERT_TRUE(c.elect(1));
  c.isolate(4);
  c.isolate(5);
  const LogIndex x = c.propose(1, "x").index;
  c.stabilize();
  EXPECT_EQ(c.committed(1), x) << "3 of 5 is a majority";

  c.isolate(3);
  const LogIndex y = c.propose(1, "y").index;
  c.stabilize();
  EXPECT_EQ(c.committed(1), x) << "2 of 5 is not";
  EXPECT_EQ(c.raft(2).log().last_index(), y) << "though n2 stores it";
  c.heal();
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.committed(1), y);
}

// AppendEntries receiver rule 2: "Reply false if log doesn't contain an entry
// at prevLogIndex whose term matches prevLogTerm."
TEST(RaftPaper, Sec5_3_FollowerRejectsAnAppendWhosePreviousEntryDoesNotMatch) {
  struct Case {
    uint64_t prev_index, prev_term;
    bool accepted;
  };
  const Case cases[] = {
      {3, 2, true},   // matches the last entry
      {2, 1, true},   // matches inside the log
      {0, 0, true},   // the start of the log always matches
      {3, 3, false},  // same index, other term
      {4, 2, false},  // past our end
      {2, 2, false},
  };
  for (const auto& c : cases) {
    Raft r = make_node(2, 3, state_with({1, 1, 2}, 2));
    r.step(msg(
        1, 2, 3,
        AppendEntries{
            LogIndex(c.prev_index), Term(c.prev_term), {entry(c.prev_index + 1, 3)}, LogIndex(0)}));
    auto rd = take(r);
    auto out = all_messages(rd);
    ASSERT_EQ(out.size(), 1u);
    const auto* resp = append_response(out[0]);
    ASSERT_NE(resp, nullptr);
    EXPECT_EQ(resp->success, c.accepted) << c.prev_index << "/" << c.prev_term;
    if (c.accepted) {
      EXPECT_EQ(r.log().last_index(), LogIndex(c.prev_index + 1));
      EXPECT_EQ(resp->match_index, LogIndex(c.prev_index + 1));
    } else {
      EXPECT_EQ(log_terms(r.log()), (std::vector<uint64_t>{1, 1, 2}))
          << "a rejected append changes nothing";
      EXPECT_TRUE(rd.entries.empty());
      EXPECT_EQ(resp->rejected_index, LogIndex(c.prev_index));
    }
  }
}

// Rule 3: "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it."
TEST(RaftPaper, Sec5_3_ConflictingSuffixIsTruncated) {
  Raft r = make_node(2, 3, state_with({1, 1, 2, 2, 2}, 2));
  r.step(msg(1, 2, 3, AppendEntries{LogIndex(2), Term(1), {entry(3, 3, "new")}, LogIndex(0)}));
  EXPECT_EQ(log_terms(r.log()), (std::vector<uint64_t>{1, 1, 3}));
  auto rd = take(r);
  ASSERT_EQ(rd.entries.size(), 1u) << "the host rewrites from the first conflicting index";
  EXPECT_EQ(rd.entries[0].index, LogIndex(3));
  EXPECT_EQ(rd.entries[0].data, "new");
}

// Rule 5: "If leaderCommit > commitIndex, set commitIndex =
// min(leaderCommit, index of last new entry)."
TEST(RaftPaper, Sec5_3_FollowerCommitIsMinOfLeaderCommitAndLastNewEntry) {
  struct Case {
    const char* name;
    uint64_t prev;
    std::vector<Entry> entries;
    uint64_t leader_commit;
    uint64_t want_commit;
  };
  const std::vector<Case> cases = {
      {"leader commit below our entries", 1, {entry(2, 1)}, 1, 1},
      {"leader commit covers the new entry", 1, {entry(2, 1)}, 2, 2},
      // Entry 3 might be stale: only what this append vouched for commits.
      {"leader commit past the last new entry", 1, {entry(2, 1)}, 3, 2},
      {"empty append vouches only for prev", 1, {}, 3, 1},
      {"empty append at our end", 3, {}, 3, 3},
  };
  for (const auto& c : cases) {
    Raft r = make_node(2, 3, state_with({1, 1, 1}, 1));
    r.step(msg(1, 2, 1,
               AppendEntries{LogIndex(c.prev), Term(1), c.entries, LogIndex(c.leader_commit)}));
    EXPECT_EQ(r.log().committed(), LogIndex(c.want_commit)) << c.name;
    auto rd = take(r);
    EXPECT_EQ(rd.committed.size(), c.want_commit) << c.name;
  }
}

// "When sending an AppendEntries RPC, the leader includes the index and term
// of the entry in its log that immediately precedes the new entries" and a
// new leader "initializes all nextIndex values to the index just after the last
// one in its log".
TEST(RaftPaper, Sec5_3_NewLeaderProbesFromTheEndOfItsLog) {
  Raft r = make_leader(1, 3, state_with({1, 1, 2}, 2));
  auto rd = take(r);
  auto appends = of_type<AppendEntries>(rd.messages);
  ASSERT_EQ(appends.size(), 2u);
  for (const auto& m : appends) {
    const auto& a = std::get<AppendEntries>(m.body);
    EXPECT_EQ(a.prev_log_index, LogIndex(3));
    EXPECT_EQ(a.prev_log_term, Term(2));
    ASSERT_EQ(a.entries.size(), 1u);
    EXPECT_EQ(a.entries[0].type, core::EntryType::kNoop) << "a new leader starts with a no-op (§8)";
    EXPECT_EQ(a.entries[0].term, r.term());
  }
}

// The paper's Figure 7: a leader of term 8 brings each possible follower log
// (a)-(f) in line with its own. With the fast backtracking optimisation (§5.3,
// last paragraphs) each repair needs at most a couple of rejections.
TEST(RaftPaper, Sec5_3_Figure7LeaderRepairsEveryFollowerLog) {
  const std::vector<uint64_t> leader = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::map<char, std::vector<uint64_t>> followers = {
      {'a', {1, 1, 1, 4, 4, 5, 5, 6, 6}},
      {'b', {1, 1, 1, 4}},
      {'c', {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}},
      {'d', {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}},
      {'e', {1, 1, 1, 4, 4, 4, 4}},
      {'f', {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}},
  };
  for (const auto& [name, follower] : followers) {
    // n2 holds the leader's log and gives n1 its majority; n3 is the follower.
    Cluster c({.nodes = 3, .logs = {leader, leader, follower}, .terms = {8, 8, 8}});
    ASSERT_TRUE(c.elect(1)) << name;
    c.tick(1);  // one heartbeat round, in case n3 was left probing
    c.stabilize();
    const size_t rejections = c.count_delivered<AppendEntriesResponse>(
        [](const Message& m, const AppendEntriesResponse& r) {
          return m.from == NodeId(3) && !r.success;
        });
    EXPECT_LE(rejections, 2u) << "follower (" << name << ")";
    EXPECT_EQ(log_terms(c.raft(3).log()), log_terms(c.raft(1).log()))
        << "follower (" << name << ")";
    EXPECT_EQ(c.committed(3), c.committed(1)) << "follower (" << name << ")";
    EXPECT_EQ(c.committed(1), LogIndex(leader.size() + 1)) << "follower (" << name << ")";
  }
}

// "If desired, the protocol can be optimized to reduce the number of rejected
// AppendEntries RPCs": a follower 60 divergent entries behind is repaired in a
// few round trips, not 60.
TEST(RaftPaper, Sec5_3_LeaderBacksUpOverALongDivergentLogInFewRoundTrips) {
  auto terms = [](std::vector<std::pair<uint64_t, size_t>> runs) {
    std::vector<uint64_t> out;
    for (auto [term, n] : runs) out.insert(out.end(), n, term);
    return out;
  };
  struct Case {
    const char* name;
    std::vector<uint64_t> leader, follower;
    size_t max_rejections;
  };
  const std::vector<Case> cases = {
      {"follower's uncommitted tail of one old term", terms({{1, 3}, {3, 60}}),
       terms({{1, 3}, {2, 60}}), 1},
      {"follower's tail spans several old terms", terms({{1, 3}, {5, 60}}),
       terms({{1, 3}, {2, 20}, {3, 20}, {4, 20}}), 1},
      {"both sides diverge over several terms", terms({{1, 3}, {2, 20}, {4, 20}, {6, 20}}),
       terms({{1, 3}, {3, 20}, {5, 40}}), 3},
      {"follower far shorter", terms({{1, 3}, {2, 70}}), terms({{1, 3}}), 1},
      {"follower far longer in an old term", terms({{1, 3}, {3, 2}}), terms({{1, 3}, {2, 80}}), 1},
  };
  for (const auto& k : cases) {
    Cluster c({.nodes = 3,
               .logs = {k.leader, k.leader, k.follower},
               .terms = {k.leader.back(), k.leader.back(), k.follower.back()},
               .config = [](Config& cfg) { cfg.max_entries_per_append = 16; }});
    ASSERT_TRUE(c.elect(1)) << k.name;
    c.tick(1);
    c.stabilize();
    const size_t rejections = c.count_delivered<AppendEntriesResponse>(
        [](const Message& m, const AppendEntriesResponse& r) {
          return m.from == NodeId(3) && !r.success;
        });
    EXPECT_LE(rejections, k.max_rejections) << k.name;
    EXPECT_EQ(log_terms(c.raft(3).log()), log_terms(c.raft(1).log())) << k.name;
    EXPECT_EQ(c.committed(3), c.raft(1).log().last_index()) << k.name;
  }
}

// ===========================================================================
// §5.4.1 Election restriction

// "The voter denies its vote if its own log is more up-to-date than that of
// the candidate": compare last terms first, then lengths.
TEST(RaftPaper, Sec5_4_1_VoteIsDeniedToACandidateWithAStaleLog) {
  struct Case {
    const char* name;
    uint64_t last_index, last_term;
    bool granted;
  };
  const Case cases[] = {
      {"lower last term, even if longer", 9, 1, false},
      {"same last term but shorter", 2, 2, false},
      {"same last term, same length", 3, 2, true},
      {"same last term, longer", 4, 2, true},
      {"higher last term, even if shorter", 1, 3, true},
  };
  for (bool pre_vote : {false, true}) {
    for (const auto& c : cases) {
      // The voter's log ends at 3/2.
      Raft r =
          make_node(1, 3, state_with({1, 1, 2}, 2), [](Config& cfg) { cfg.check_quorum = false; });
      r.step(msg(2, 1, 3, RequestVote{LogIndex(c.last_index), Term(c.last_term), pre_vote}));
      auto answers = of_type<RequestVoteResponse>(all_messages(take(r)));
      ASSERT_EQ(answers.size(), 1u);
      const auto& v = std::get<RequestVoteResponse>(answers[0].body);
      EXPECT_EQ(v.granted, c.granted) << c.name << (pre_vote ? " (pre-vote)" : "");
      EXPECT_EQ(v.pre_vote, pre_vote);
      EXPECT_EQ(r.hard_state().voted_for, c.granted && !pre_vote ? NodeId(2) : kNoNode) << c.name;
    }
  }
}

TEST(RaftPaper, Sec5_4_1_NodeWithAStaleLogCannotBeElected) {
  // n3 missed entries of term 2; n1 and n2 refuse it, whatever its term.
  Cluster c({.nodes = 3, .logs = {{1, 2}, {1, 2}, {1}}, .terms = {2, 2, 5}, .config = paper_only});
  c.campaign(3);
  c.stabilize();
  EXPECT_NE(c.role(3), RaftRole::kLeader);
  ASSERT_TRUE(c.run_until([&] { return c.leader().has_value(); }));
  EXPECT_NE(*c.leader(), 3u);
  EXPECT_EQ(log_terms(c.raft(3).log()).at(1), 2u) << "n3 received the entry it lacked";
}

// ===========================================================================
// §5.4.2 Committing entries from previous terms (Figure 8)

// "Raft never commits log entries from previous terms by counting replicas.
// Only log entries from the leader's current term are committed by counting
// replicas; once an entry from the current term has been committed in this
// way, then all prior entries are committed indirectly."
TEST(RaftPaper, Sec5_4_2_PreviousTermEntryIsNotCommittedByCountingReplicas) {
  // Figure 8 (c): S1 leads term 4; index 2 holds its term-2 entry.
  Raft s1 = make_leader(1, 5, state_with({1, 2}, 3));
  ASSERT_EQ(s1.term(), Term(4));
  (void)take(s1);  // its no-op 3@4 is durable on S1
  // S2 and S3 store index 2: term-2 entry on a majority (S1, S2, S3).
  s1.step(msg(2, 1, 4, AppendEntriesResponse{true, LogIndex(2), {}, {}, {}}));
  s1.step(msg(3, 1, 4, AppendEntriesResponse{true, LogIndex(2), {}, {}, {}}));
  EXPECT_EQ(s1.log().committed(), LogIndex(0)) << "2@2 is on 3 of 5 but not of this term";
  // S2 stores the no-op as well: 3@4 on 2 of 5, still nothing.
  s1.step(msg(2, 1, 4, AppendEntriesResponse{true, LogIndex(3), {}, {}, {}}));
  EXPECT_EQ(s1.log().committed(), LogIndex(0));
  // S3 stores the no-op: a majority holds an entry of term 4, which commits it
  // and, indirectly, index 2.
  s1.step(msg(3, 1, 4, AppendEntriesResponse{true, LogIndex(3), {}, {}, {}}));
  EXPECT_EQ(s1.log().committed(), LogIndex(3));
  auto rd = take(s1);
  ASSERT_EQ(rd.committed.size(), 3u);
  EXPECT_EQ(rd.committed[1].term, Term(2));
}

// Figure 8 (c)->(d) as a cluster story: why the rule above is needed. S1's
// term-2 entry reaches a majority, but S1's own term-4 entry does not; S1
// crashes, and S5 (whose log ends in term 3) may legitimately be elected and
// overwrite index 2 everywhere. Had S1 counted replicas and applied 2@2, the
// harness would report a State Machine Safety violation here.
TEST(RaftPaper, Sec5_4_2_Figure8OldTermEntryOnAMajorityMayStillBeOverwritten) {
  Cluster c({.nodes = 5,
             .logs = {{1, 2}, {1, 2}, {1}, {1}, {1, 3}},
             .terms = {3, 3, 3, 3, 3},
             .config = [](Config& cfg) {
               paper_only(cfg);
               cfg.max_entries_per_append = 1;
             }});
  c.crash(5);
  // S1's term-4 entries never land in another log.
  c.drop([&c](const Message& m) {
    const auto* a = std::get_if<AppendEntries>(&m.body);
    if (a == nullptr || m.from != NodeId(1) || !c.up(m.to.value())) return false;
    for (const auto& e : a->entries) {
      if (e.term == Term(4) &&
          c.raft(m.to.value()).log().match_term(a->prev_log_index, a->prev_log_term)) {
        return true;
      }
    }
    return false;
  });
  ASSERT_TRUE(c.elect(1));
  ASSERT_EQ(c.raft(1).term(), Term(4));
  c.tick(1);
  c.stabilize();
  for (uint64_t id : {1, 2, 3, 4}) {
    ASSERT_TRUE(c.raft(id).log().match_term(LogIndex(2), Term(2))) << "n" << id;
  }
  EXPECT_EQ(c.committed(1), LogIndex(0)) << "2@2 is on 4 of 5 servers, yet not committed";

  c.crash(1);
  c.heal();
  c.restart(5);
  // S5's log (last term 3) is more up-to-date than S2-S4's (last term 2).
  c.campaign(5);  // term 4: refused, S2-S4 already voted for S1 in term 4
  c.stabilize();
  ASSERT_NE(c.role(5), RaftRole::kLeader);
  ASSERT_TRUE(c.elect(5));  // term 5: S2-S4 grant, S5's log ends in a later term
  c.restart(1);
  c.tick(5);
  c.stabilize();
  for (uint64_t id = 1; id <= 5; ++id) {
    EXPECT_TRUE(c.raft(id).log().match_term(LogIndex(2), Term(3)))
        << "n" << id << ": 2@2 was overwritten";
    EXPECT_EQ(c.committed(id), c.raft(5).log().last_index()) << "n" << id;
  }
}

// Figure 8 (e): once S1 commits an entry of its own term, the earlier entry is
// committed with it, and S5 can no longer win an election.
TEST(RaftPaper, Sec5_4_2_Figure8CurrentTermEntryCommitsThePreviousOnes) {
  Cluster c({.nodes = 5,
             .logs = {{1, 2}, {1, 2}, {1}, {1}, {1, 3}},
             .terms = {3, 3, 3, 3, 3},
             .config = paper_only});
  c.crash(5);
  c.cut(1, 4);  // the no-op reaches S2 and S3 only: just a majority
  ASSERT_TRUE(c.elect(1));
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.committed(1), LogIndex(3));
  EXPECT_EQ(c.sm(1).commands, (std::vector<std::string>{"1@1", "2@2"}));

  c.crash(1);
  c.heal();
  c.restart(5);
  ASSERT_TRUE(c.run_until([&] { return c.leader().has_value(); }, 500));
  EXPECT_NE(*c.leader(), 5u) << "S5's log lacks a committed entry";
  c.restart(1);
  c.tick(*c.leader());
  c.stabilize();
  for (uint64_t id = 1; id <= 5; ++id) {
    EXPECT_TRUE(c.raft(id).log().match_term(LogIndex(2), Term(2))) << "n" << id;
  }
}

// ===========================================================================
// Thesis §9.6 PreVote

TEST(RaftThesis, Sec9_6_PreVoteDoesNotRaiseTermsOfAPartitionedNode) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  const Term term = c.raft(1).term();
  c.isolate(3);
  c.tick(3, 10 * static_cast<int>(c.raft(3).config().election_timeout_ticks));
  c.stabilize();
  EXPECT_EQ(c.raft(3).term(), term) << "pre-votes that fail change no term";
  EXPECT_NE(c.role(3), RaftRole::kLeader);

  // On rejoining, n3 does not disrupt the leader.
  c.heal();
  ASSERT_TRUE(c.run_until([&] { return c.role(3) == RaftRole::kFollower; }, 5));
  for (int i = 0; i < 30; ++i) {
    c.tick_all();
    c.stabilize();
  }
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.raft(1).term(), term);
  EXPECT_EQ(c.raft(3).leader(), NodeId(1));
}

TEST(RaftThesis, Sec9_6_WithoutPreVoteARejoiningNodeDisruptsTheLeader) {
  // The contrast that motivates PreVote: same story, plain §5 elections.
  Cluster c({.nodes = 3, .config = paper_only});
  ASSERT_TRUE(c.elect(1));
  const Term term = c.raft(1).term();
  c.isolate(3);
  c.tick(3, 10 * static_cast<int>(c.raft(3).config().election_timeout_ticks));
  EXPECT_GT(c.raft(3).term(), term);
  c.heal();
  c.tick(1);
  c.stabilize();
  EXPECT_GT(c.raft(1).term(), term) << "the leader was forced into n3's higher term";
}

// ===========================================================================
// Thesis §6.2 CheckQuorum

TEST(RaftThesis, Sec6_2_CheckQuorumMakesAnIsolatedLeaderStepDownWithinAnElectionTimeout) {
  for (int isolate_after : {0, 1, 5, 13}) {
    Cluster c({.nodes = 3});
    ASSERT_TRUE(c.elect(1));
    for (int i = 0; i < isolate_after; ++i) {  // some time as a healthy leader
      c.tick_all();
      c.stabilize();
    }
    c.isolate(1);
    const int T = static_cast<int>(c.raft(1).config().election_timeout_ticks);
    c.tick(1, T);
    c.stabilize();
    EXPECT_EQ(c.role(1), RaftRole::kFollower) << "isolated after " << isolate_after << " ticks";
  }
}

TEST(RaftThesis, Sec6_2_LeaderHearingFromAMajorityStaysLeader) {
  Cluster c({.nodes = 5});
  ASSERT_TRUE(c.elect(1));
  c.isolate(4);
  c.isolate(5);
  for (int i = 0; i < 50; ++i) {
    c.tick(1);
    c.stabilize();
  }
  EXPECT_EQ(c.role(1), RaftRole::kLeader) << "n2 and n3 still answer: a majority";
}

TEST(RaftThesis, Sec6_2_WithoutCheckQuorumAnIsolatedLeaderStaysLeader) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) { cfg.check_quorum = false; }});
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  c.tick(1, 50);
  EXPECT_EQ(c.role(1), RaftRole::kLeader);
}

// ===========================================================================
// Thesis §6.4 ReadIndex and leases

TEST(RaftThesis, Sec6_4_ReadIndexWaitsForTheLeaderToCommitInItsTerm) {
  Cluster c({.nodes = 3});
  // The leader is elected but no append is acknowledged: its no-op is uncommitted.
  c.drop([](const Message& m) { return std::holds_alternative<AppendEntriesResponse>(m.body); });
  ASSERT_TRUE(c.elect(1));
  ASSERT_EQ(c.committed(1), LogIndex(0));
  const ProposeResult r = c.read_index(1, 7);
  EXPECT_EQ(r.status, ProposeStatus::kAccepted);
  for (int i = 0; i < 3; ++i) {  // heartbeat rounds are confirmed, yet...
    c.tick(1);
    c.stabilize();
  }
  EXPECT_TRUE(c.reads(1).empty()) << "...the commit index is not known to be current yet";

  c.heal();
  c.tick(1);
  c.stabilize();
  ASSERT_EQ(c.reads(1).size(), 1u);
  EXPECT_EQ(c.reads(1)[0].ctx, 7u);
  EXPECT_EQ(c.reads(1)[0].index, LogIndex(1)) << "the no-op's index";
}

TEST(RaftThesis, Sec6_4_ReadIndexIsReleasedOnlyAfterAHeartbeatQuorum) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  const ProposeResult r = c.read_index(1, 9);
  ASSERT_EQ(r.status, ProposeStatus::kAccepted);
  EXPECT_EQ(r.index, c.committed(1));

  c.process_ready(1);
  EXPECT_TRUE(c.reads(1).empty()) << "not before the round is confirmed";
  EXPECT_EQ(c.deliver(), 2u);  // heartbeats reach n2 and n3
  c.process_ready(2);
  c.process_ready(3);
  c.process_ready(1);
  EXPECT_TRUE(c.reads(1).empty());
  // n2's acknowledgement makes a majority with the leader.
  ASSERT_EQ(c.deliver_if([](const Message& m) { return m.from == NodeId(2); }), 1u);
  c.process_ready(1);
  ASSERT_EQ(c.reads(1).size(), 1u);
  EXPECT_EQ(c.reads(1)[0].ctx, 9u);
  EXPECT_EQ(c.reads(1)[0].index, r.index);
}

TEST(RaftThesis, Sec6_4_CutOffLeaderNeverServesTheReadAndDropsItWhenSteppingDown) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  ASSERT_EQ(c.read_index(1, 5).status, ProposeStatus::kAccepted);
  c.stabilize();
  const int T = static_cast<int>(c.raft(1).config().election_timeout_ticks);
  for (int i = 0; i < 2 * T; ++i) {
    c.tick(1);
    c.stabilize();
  }
  EXPECT_TRUE(c.reads(1).empty());
  EXPECT_EQ(c.role(1), RaftRole::kFollower);
  ASSERT_EQ(c.outcomes(1).size(), 1u);
  EXPECT_EQ(c.outcomes(1)[0].id, 5u);
  EXPECT_EQ(c.outcomes(1)[0].status, ProposeStatus::kDropped);
}

TEST(RaftThesis, Sec6_4_ManyReadsShareOneHeartbeatRound) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.clear_delivered();
  for (uint64_t ctx = 1; ctx <= 5; ++ctx)
    ASSERT_EQ(c.read_index(1, ctx).status, ProposeStatus::kAccepted);
  c.stabilize();
  EXPECT_EQ(c.count_delivered<Heartbeat>(), 2u) << "one heartbeat per follower for all five reads";
  ASSERT_EQ(c.reads(1).size(), 5u);
  for (uint64_t ctx = 1; ctx <= 5; ++ctx) EXPECT_EQ(c.reads(1)[ctx - 1].ctx, ctx);
}

TEST(RaftThesis, Sec6_4_1_LeaseReadIsServedWithoutARoundOnlyWithLeaseReads) {
  for (bool lease : {false, true}) {
    Cluster c({.nodes = 3, .config = [lease](Config& cfg) { cfg.lease_reads = lease; }});
    ASSERT_TRUE(c.elect(1));
    c.tick(1);  // one confirmed heartbeat round starts a lease
    c.stabilize();
    c.clear_delivered();
    ASSERT_EQ(c.read_index(1, 1, core::ReadMode::kLease).status, ProposeStatus::kAccepted);
    c.process_ready(1);
    EXPECT_EQ(c.reads(1).size(), lease ? 1u : 0u) << (lease ? "lease" : "no lease");
    c.stabilize();
    EXPECT_EQ(c.reads(1).size(), 1u);
    EXPECT_EQ(c.count_delivered<Heartbeat>(), lease ? 0u : 2u) << (lease ? "lease" : "no lease");
  }
}

TEST(RaftThesis, Sec6_4_1_LeaseReadIndexIsOfferedOnlyWhileTheLeaseHolds) {
  for (bool lease : {false, true}) {
    Cluster c({.nodes = 3, .config = [lease](Config& cfg) { cfg.lease_reads = lease; }});
    ASSERT_TRUE(c.elect(1));
    EXPECT_FALSE(c.raft(2).lease_read_index()) << "a follower never";
    c.tick(1);  // one confirmed heartbeat round starts a lease
    c.stabilize();
    const auto idx = c.raft(1).lease_read_index();
    if (!lease) {
      EXPECT_FALSE(idx) << "lease_reads off: every read takes a round";
      continue;
    }
    ASSERT_TRUE(idx);
    EXPECT_EQ(*idx, c.raft(1).log().committed());
    // Cut off, the leader keeps its lease only for lease_ticks.
    c.isolate(1);
    c.tick(1, static_cast<int>(c.raft(1).config().lease_ticks));
    ASSERT_EQ(c.role(1), RaftRole::kLeader);
    EXPECT_FALSE(c.raft(1).lease_read_index()) << "the lease ran out";
  }
}

TEST(RaftThesis, Sec6_4_1_LeaseExpiresWithoutConfirmation) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) { cfg.lease_reads = true; }});
  ASSERT_TRUE(c.elect(1));
  c.tick(1);
  c.stabilize();
  c.isolate(1);
  c.tick(1, static_cast<int>(c.raft(1).config().lease_ticks));
  ASSERT_EQ(c.role(1), RaftRole::kLeader);
  ASSERT_EQ(c.read_index(1, 1, core::ReadMode::kLease).status, ProposeStatus::kAccepted);
  c.stabilize();
  EXPECT_TRUE(c.reads(1).empty()) << "the lease ran out: the read needs a round";
}

// A lease holds because every follower that acknowledged the round refuses
// votes for an election timeout. A follower that crashes and restarts has
// forgotten whom it heard from; it must not vote right away either.
TEST(RaftThesis, Sec6_4_1_RestartedFollowerDoesNotVoteWhileALeaseMayHold) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) { cfg.lease_reads = true; }});
  ASSERT_TRUE(c.elect(1));
  c.tick(1);  // n2 and n3 confirm a round: n1 holds a lease
  c.stabilize();
  c.isolate(1);  // n1 keeps serving lease reads, unaware of what follows
  c.crash(2);
  c.restart(2);
  c.campaign(3);
  c.stabilize();
  EXPECT_EQ(c.leader(), 1u) << "n2 voted while n1's lease may still hold";
  ASSERT_EQ(c.read_index(1, 1, core::ReadMode::kLease).status, ProposeStatus::kAccepted);
  c.process_ready(1);
  EXPECT_EQ(c.reads(1).size(), 1u) << "n1 serves from its lease";

  // Once an election timeout has passed on n2, it votes again.
  c.tick(2, static_cast<int>(c.raft(2).config().election_timeout_ticks));
  ASSERT_TRUE(c.run_until([&] { return c.leader() != 1u; }, 50));
  EXPECT_GT(c.raft(*c.leader()).term(), c.raft(1).term());
}

TEST(RaftThesis, Sec6_4_1_LeaseReadsRequireCheckQuorum) {
  Config cfg = make_config(1, 3);
  cfg.lease_reads = true;
  cfg.check_quorum = false;
  EXPECT_EQ(cfg.validate().code(), StatusCode::kInvalidArgument);
  cfg.check_quorum = true;
  EXPECT_TRUE(cfg.validate().is_ok());
  cfg.lease_ticks = cfg.election_timeout_ticks;
  EXPECT_FALSE(cfg.validate().is_ok()) << "a lease must end before another leader can be elected";
}

// ===========================================================================
// Client interaction (§8) and limits

TEST(RaftThesis, FollowersForwardProposalsAndReadsToTheLeader) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  const ProposeResult p = c.propose(2, "via-n2");
  EXPECT_EQ(p.status, ProposeStatus::kForwarded);
  EXPECT_EQ(p.leader, NodeId(1));
  c.stabilize();
  for (uint64_t id = 1; id <= 3; ++id) {
    EXPECT_EQ(c.sm(id).commands, (std::vector<std::string>{"via-n2"})) << "n" << id;
  }

  const ProposeResult r = c.read_index(3, 77);
  EXPECT_EQ(r.status, ProposeStatus::kForwarded);
  EXPECT_EQ(r.leader, NodeId(1));
  c.stabilize();
  ASSERT_EQ(c.reads(3).size(), 1u);
  EXPECT_EQ(c.reads(3)[0].ctx, 77u);
  EXPECT_EQ(c.reads(3)[0].index, c.committed(1)) << "the read sees the forwarded write";
  EXPECT_EQ(c.count_delivered<ReadIndexRequest>(), 1u);
}

TEST(RaftThesis, NoLeaderAndNotLeaderOutcomes) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) { cfg.forward_proposals = false; }});
  EXPECT_EQ(c.propose(2, "x").status, ProposeStatus::kNoLeader);
  EXPECT_EQ(c.read_index(2, 1).status, ProposeStatus::kNoLeader);
  ASSERT_TRUE(c.elect(1));
  const ProposeResult p = c.propose(2, "x");
  EXPECT_EQ(p.status, ProposeStatus::kNotLeader);
  EXPECT_EQ(p.leader, NodeId(1)) << "a hint where to go";
  const ProposeResult r = c.read_index(3, 1);
  EXPECT_EQ(r.status, ProposeStatus::kNotLeader);
  EXPECT_EQ(r.leader, NodeId(1));
  c.stabilize();
  EXPECT_EQ(c.raft(1).log().last_index(), LogIndex(1)) << "nothing was forwarded";
}

TEST(RaftThesis, MaxUncommittedBytesRefusesProposals) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) { cfg.max_uncommitted_bytes = 100; }});
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);  // nothing commits
  EXPECT_EQ(c.propose(1, std::string(60, 'a')).status, ProposeStatus::kAccepted);
  const ProposeResult refused = c.propose(1, std::string(60, 'b'));
  EXPECT_EQ(refused.status, ProposeStatus::kTooMuchUncommitted);
  EXPECT_EQ(refused.leader, NodeId(1));
  EXPECT_EQ(c.propose(1, std::string(40, 'c')).status, ProposeStatus::kAccepted)
      << "exactly at the limit";
  EXPECT_EQ(c.propose(1, "d").status, ProposeStatus::kTooMuchUncommitted);
  c.stabilize();  // the appends are lost

  c.heal();
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.sm(1).commands.size(), 2u);
  EXPECT_EQ(c.propose(1, std::string(60, 'e')).status, ProposeStatus::kAccepted)
      << "room again once committed";
}

TEST(RaftThesis, InflightWindowBoundsOutstandingAppendsToASlowFollower) {
  Cluster c({.nodes = 3, .config = [](Config& cfg) {
               cfg.max_inflight_appends = 2;
               cfg.max_entries_per_append = 1;
             }});
  ASSERT_TRUE(c.elect(1));
  c.tick(1);
  c.stabilize();
  ASSERT_EQ(c.raft(1).progress(NodeId(2))->mode, Progress::Mode::kReplicate);
  c.drop([](const Message& m) { return m.from == NodeId(2); });  // n2 is slow: no answers yet
  c.clear_delivered();
  for (int i = 0; i < 10; ++i) c.propose(1, "e" + std::to_string(i));
  c.stabilize();
  const size_t to_n2 =
      c.count_delivered<AppendEntries>([](const Message& m, const AppendEntries& a) {
        return m.to == NodeId(2) && !a.entries.empty();
      });
  EXPECT_EQ(to_n2, 2u) << "the window holds two appends";
  EXPECT_TRUE(c.raft(1).progress(NodeId(2))->paused());
  EXPECT_EQ(c.committed(1), LogIndex(11)) << "n3 keeps up, so commits go on";

  c.heal();
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.raft(2).log().last_index(), LogIndex(11));
  EXPECT_EQ(c.committed(2), LogIndex(11));
}

// Messages can be lost (§5.3: "the leader retries AppendEntries RPCs
// indefinitely"): a follower whose pipelined appends were all dropped must
// catch up from heartbeats alone, even with a full in-flight window and no new
// proposals.
TEST(RaftThesis, FollowerWhosePipelinedAppendsWereLostCatchesUp) {
  for (size_t window : {2, 64}) {
    Cluster c({.nodes = 3, .config = [window](Config& cfg) {
                 cfg.max_inflight_appends = window;
                 cfg.max_entries_per_append = 1;
               }});
    ASSERT_TRUE(c.elect(1));
    c.tick(1);
    c.stabilize();
    c.drop([](const Message& m) {
      return m.to == NodeId(2) && std::holds_alternative<AppendEntries>(m.body);
    });
    for (int i = 0; i < 5; ++i) c.propose(1, "e" + std::to_string(i));
    c.stabilize();
    ASSERT_EQ(c.raft(2).log().last_index(), LogIndex(1));
    c.heal();
    for (int i = 0; i < 3; ++i) {
      c.tick(1);
      c.stabilize();
    }
    EXPECT_EQ(c.raft(2).log().last_index(), LogIndex(6)) << "window " << window;
    EXPECT_EQ(c.committed(2), LogIndex(6)) << "window " << window;
  }
}

// §7 Log compaction: "the leader must occasionally send snapshots to followers
// that lag behind".
TEST(RaftPaper, Sec7_LaggingFollowerReceivesASnapshotAndCatchesUp) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.isolate(3);
  for (int i = 0; i < 10; ++i) c.propose(1, "e" + std::to_string(i));
  c.stabilize();
  ASSERT_EQ(c.committed(1), LogIndex(11));
  c.compact(1);
  c.compact(2);
  ASSERT_EQ(c.raft(1).log().first_index(), LogIndex(12)) << "everything applied was compacted";

  c.heal();
  c.propose(1, "after");
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.count_delivered<InstallSnapshot>(), 1u);
  ASSERT_TRUE(c.disk(3).snapshot.has_value());
  EXPECT_EQ(c.disk(3).snapshot->meta.index, LogIndex(11));
  EXPECT_EQ(c.committed(3), LogIndex(12));
  EXPECT_EQ(c.sm(3).commands, c.sm(1).commands);
  EXPECT_EQ(c.sm(3).commands.back(), "after");

  // It survives a restart from its disk (snapshot + log).
  c.crash(3);
  c.restart(3);
  EXPECT_EQ(c.sm(3).applied, LogIndex(11));
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.sm(3).commands, c.sm(1).commands);
}

TEST(RaftPaper, Sec7_SnapshotInstallIsRetriedWhenLost) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.isolate(3);
  for (int i = 0; i < 5; ++i) c.propose(1, "e" + std::to_string(i));
  c.stabilize();
  c.compact(1);
  c.heal();
  c.drop([](const Message& m) { return std::holds_alternative<InstallSnapshot>(m.body); });
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.raft(1).progress(NodeId(3))->mode, Progress::Mode::kSnapshot);
  c.heal();
  ASSERT_TRUE(c.run_until([&] { return c.committed(3) == c.committed(1); }, 50));
  EXPECT_EQ(c.sm(3).commands, c.sm(1).commands);
}

// ===========================================================================
// Durability ordering (thesis §10.2.1 and the Ready contract)

TEST(RaftThesis, Sec10_2_1_LeaderCountsItsOwnEntryOnlyOnceDurable) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.cut(1, 3);
  c.hold(1);  // the leader's fsync is slow
  const LogIndex x = c.propose(1, "x").index;
  c.stabilize();
  ASSERT_EQ(c.raft(1).progress(NodeId(2))->match_index, x)
      << "n2 stored it (appends go out before our fsync)";
  EXPECT_LT(c.committed(1), x)
      << "n2 alone is not a majority while the leader's copy is not durable";
  c.release(1);
  c.stabilize();
  EXPECT_EQ(c.committed(1), x);
}

TEST(RaftThesis, Sec10_2_1_LeaderAloneDoesNotCommitInAThreeNodeCluster) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  const LogIndex before = c.committed(1);
  c.drop([](const Message& m) { return m.to == NodeId(1); });  // followers are silent
  const LogIndex x = c.propose(1, "x").index;
  c.stabilize();
  EXPECT_EQ(c.disk(1).last_index(), x) << "durable on the leader";
  EXPECT_EQ(c.committed(1), before) << "but one copy of three is not a majority";
}

TEST(RaftThesis, Sec10_2_1_VotesAndAcksWaitForTheFsyncButLeaderAppendsDoNot) {
  // Leader side: its appends are in `messages`, next to the entries it persists.
  Raft leader = make_leader(1, 3);
  (void)take(leader);
  for (uint64_t f : {2, 3})
    leader.step(msg(f, 1, 1, AppendEntriesResponse{true, LogIndex(1), {}, {}, {}}));
  (void)take(leader);
  leader.propose("x");
  auto rd = leader.ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(of_type<AppendEntries>(rd.messages).size(), 2u);
  EXPECT_TRUE(of_type<AppendEntries>(rd.messages_after_persist).empty());
  leader.advance(rd);

  // Follower side: a vote and an append acknowledgement promise durability.
  Raft follower = make_node(2, 3);
  follower.step(msg(1, 2, 1, RequestVote{LogIndex(0), Term(0), false}));
  auto vote = follower.ready();
  EXPECT_TRUE(vote.messages.empty());
  ASSERT_EQ(of_type<RequestVoteResponse>(vote.messages_after_persist).size(), 1u);
  ASSERT_TRUE(vote.durable_state);
  EXPECT_EQ(vote.durable_state->voted_for, NodeId(1)) << "persisted in the same Ready";
  follower.advance(vote);

  follower.step(msg(1, 2, 1, AppendEntries{LogIndex(0), Term(0), {entry(1, 1)}, LogIndex(0)}));
  auto ack = follower.ready();
  EXPECT_EQ(ack.entries.size(), 1u);
  EXPECT_TRUE(ack.messages.empty());
  ASSERT_EQ(of_type<AppendEntriesResponse>(ack.messages_after_persist).size(), 1u);
  follower.advance(ack);

  // A heartbeat response vouches for the leader in its term (lease, read
  // rounds): it may leave at once when that term is already durable here...
  follower.step(msg(1, 2, 1, Heartbeat{LogIndex(1), 1}));
  auto hb = follower.ready();
  EXPECT_EQ(of_type<HeartbeatResponse>(hb.messages).size(), 1u);
  EXPECT_TRUE(hb.messages_after_persist.empty());
  follower.advance(hb);

  // ...and waits for the fsync when the heartbeat brought a new term.
  follower.step(msg(3, 2, 2, Heartbeat{LogIndex(1), 1}));
  auto hb2 = follower.ready();
  ASSERT_TRUE(hb2.durable_state);
  EXPECT_EQ(hb2.durable_state->term, Term(2));
  EXPECT_TRUE(of_type<HeartbeatResponse>(hb2.messages).empty());
  EXPECT_EQ(of_type<HeartbeatResponse>(hb2.messages_after_persist).size(), 1u);
  follower.advance(hb2);

  // Once term 2 is durable, responses leave at once again.
  follower.step(msg(3, 2, 2, Heartbeat{LogIndex(1), 2}));
  auto hb3 = follower.ready();
  EXPECT_EQ(of_type<HeartbeatResponse>(hb3.messages).size(), 1u);
  follower.advance(hb3);
}

TEST(RaftThesis, Sec10_2_1_MessagesThatNeedNoFsyncLeaveWhileAReadyIsOutstanding) {
  // A leader whose Ready (an entry to persist) is still outstanding.
  Raft leader = make_leader(1, 3);
  (void)take(leader);
  for (uint64_t f : {2, 3})
    leader.step(msg(f, 1, 1, AppendEntriesResponse{true, LogIndex(1), {}, {}, {}}));
  (void)take(leader);
  leader.propose("a");
  auto rd = leader.ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_FALSE(leader.has_messages());

  // A second proposal and heartbeats: no Ready, but the appends (thesis
  // §10.2.1) and heartbeats may go out now.
  leader.propose("b");
  for (uint32_t t = 0; t < 2; ++t) leader.tick();
  EXPECT_FALSE(leader.has_ready());
  ASSERT_TRUE(leader.has_messages());
  auto early = leader.take_messages();
  EXPECT_FALSE(leader.has_messages());
  const auto appends = of_type<AppendEntries>(early);
  ASSERT_EQ(appends.size(), 2u);
  for (const auto& m : appends) {
    const auto& a = std::get<AppendEntries>(m.body);
    ASSERT_FALSE(a.entries.empty());
    EXPECT_EQ(a.entries.back().data, "b");
  }
  EXPECT_FALSE(of_type<Heartbeat>(early).empty());

  // "b" was sent but not yet handed for persisting: the next Ready holds it,
  // and the leader counts it for itself only after that Ready's advance().
  leader.advance(rd);
  auto next = leader.ready();
  ASSERT_EQ(next.entries.size(), 1u);
  EXPECT_EQ(next.entries[0].data, "b");
  for (uint64_t f : {2, 3})
    leader.step(msg(f, 1, 1, AppendEntriesResponse{true, next.entries[0].index, {}, {}, {}}));
  EXPECT_EQ(leader.log().committed(), next.entries[0].index)
      << "two followers are a majority of three without the leader's own fsync";
  leader.advance(next);
}

TEST(RaftThesis, Sec10_2_1_FollowerAcksNeverLeaveBeforeTheirFsync) {
  Raft f = make_node(2, 3);
  f.step(msg(1, 2, 1, AppendEntries{LogIndex(0), Term(0), {entry(1, 1)}, LogIndex(0)}));
  auto rd = f.ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  // While it is outstanding, another append arrives: its ack waits too.
  f.step(msg(1, 2, 1, AppendEntries{LogIndex(1), Term(1), {entry(2, 1)}, LogIndex(0)}));
  for (const auto& m : f.take_messages()) {
    EXPECT_FALSE(std::holds_alternative<AppendEntriesResponse>(m.body));
  }
  f.advance(rd);
  auto next = f.ready();
  EXPECT_EQ(of_type<AppendEntriesResponse>(next.messages_after_persist).size(), 1u);
  f.advance(next);
}

}  // namespace
}  // namespace chorus::raft

namespace chorus::raft::testing {
namespace {

// Raft Figure 2 (Followers): the election timer restarts only on hearing from
// the current leader or on granting a vote. A losing candidate's higher term
// must not restart it: in the simulator (seed 7201, pre-vote off) a node with
// a stale log and a fast clock otherwise held every other node's election
// back forever.
TEST(RaftPaper, Sec5_2_RejectedCandidateDoesNotRestartTheFollowersElectionTimer) {
  Config cfg = make_config(1, 3, [](Config& c) {
    c.pre_vote = false;
    c.check_quorum = false;
  });
  // Node 1 has a log ending at term 2; the candidate's ends at term 1.
  PersistentState ps;
  ps.durable.term = Term(2);
  ps.entries = entries_with_terms({1, 2});
  Raft r(cfg, Prng(1), ps);
  uint32_t ticks = 0;
  // Run the timer most of the way, then receive a stale candidate's request.
  for (; ticks < cfg.election_timeout_ticks - 1; ++ticks) r.tick();
  r.step(msg(3, 1, 5, RequestVote{LogIndex(1), Term(1), false}));
  EXPECT_EQ(r.term(), Term(5));
  auto rd = take(r);
  auto votes = of_type<RequestVoteResponse>(all_messages(rd));
  ASSERT_EQ(votes.size(), 1u);
  EXPECT_FALSE(std::get<RequestVoteResponse>(votes[0].body).granted)
      << "the candidate's log is stale";
  // The timer kept running: node 1 campaigns within the original 2T bound.
  bool campaigned = false;
  for (; ticks < 2 * cfg.election_timeout_ticks && !campaigned; ++ticks) {
    r.tick();
    campaigned = r.raft_role() == RaftRole::kCandidate;
  }
  EXPECT_TRUE(campaigned) << "rejecting a vote restarted the election timer";
}

}  // namespace
}  // namespace chorus::raft::testing

namespace chorus::raft {
namespace {

// Figure 2 / §5.3: an append acknowledgement promises its entries are
// durable. Two appends stepped before one Ready is persisted: the first (from
// a stale leader of term 2) is acknowledged, the second (from the leader of
// term 3) replaces what it acknowledged. The first acknowledgement must not
// leave: the entries it promises are never written (found by the simulator,
// seed 17551 of a 20,000-seed sweep, through a stalled follower's batch).
TEST(RaftPaper, Sec5_3_AnAcknowledgementVoidedWithinTheSameReadyNeverLeaves) {
  Raft r = make_node(3, 3, state_with({1, 1}, 1));
  r.step(msg(1, 3, 2, AppendEntries{LogIndex(2), Term(1), entries_with_terms({2}, 3), LogIndex(1)}));
  r.step(msg(2, 3, 3, AppendEntries{LogIndex(1), Term(1), entries_with_terms({3}, 2), LogIndex(1)}));
  Ready rd = r.ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].index, LogIndex(2));
  EXPECT_EQ(rd.entries[0].term, Term(3));
  for (const auto& m : all_messages(rd)) {
    const auto* a = std::get_if<AppendEntriesResponse>(&m.body);
    if (a == nullptr || !a->success) continue;
    EXPECT_LT(a->match_index, LogIndex(3)) << "n3 promised index 3 to n" << m.to
                                           << ", which this Ready replaces";
  }
  const auto acks = of_type<AppendEntriesResponse>(rd.messages_after_persist);
  ASSERT_EQ(acks.size(), 1u) << "the newer leader's acknowledgement stays";
  EXPECT_EQ(acks[0].to, NodeId(2));
  EXPECT_EQ(std::get<AppendEntriesResponse>(acks[0].body).match_index, LogIndex(2));
}

}  // namespace
}  // namespace chorus::raft
