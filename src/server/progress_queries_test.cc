// ProgressQueries (progress_queries.h): a follower asks its group's leader
// how many replicas hold a write and believes only an answer it can vouch
// for. Two nodes' ProgressQueries over fake groups; their messages cross a
// fake wire as bytes, as the transport delivers them.
#include "server/progress_queries.h"

#include <gtest/gtest.h>

#include <deque>
#include <optional>

#include "chorus/wire.pb.h"
#include "net/codec/progress_codec.h"
#include "server/fake_group.h"

namespace chorus::server {
namespace {

using Clock = ProgressQueries::Clock;
using State = WriteProgress::State;
constexpr GroupId kGroup{5};

// One node: its group (the fake) and its ProgressQueries; what it sends
// waits in `outbox`.
struct TestNode {
  explicit TestNode(NodeId self, FakeGroup g) : group(std::move(g)) {
    group.id = kGroup;
    ProgressQueries::Deps d;
    d.self = self;
    d.send = [this, self](net::OutgoingMessage m) {
      m.message.set_from(self.value());
      m.message.set_to(m.to.value());
      outbox.push_back(std::move(m));
    };
    d.group = [this](GroupId id) -> ReplicaGroup* { return id == kGroup ? &group : nullptr; };
    queries.emplace(std::move(d));
  }
  // The oldest message this node sent, as its receiver gets it.
  net::IncomingMessage take() {
    EXPECT_FALSE(outbox.empty());
    net::IncomingMessage in;
    in.from = NodeId(outbox.front().message.from());
    EXPECT_TRUE(in.message.ParseFromString(outbox.front().message.SerializeAsString()));
    outbox.pop_front();
    return in;
  }

  FakeGroup group;
  std::optional<ProgressQueries> queries;
  std::deque<net::OutgoingMessage> outbox;
};

// n1 leads (fake_group.h's leader()); n2 follows it in term 2 and holds 1..9.
FakeGroup follower_of_n1() {
  FakeGroup g = leader();
  g.st.engine.soft = core::SoftState{core::Role::kFollower, Term(2), NodeId(1)};
  g.st.engine.peers.clear();
  g.st.durable_index = LogIndex(9);
  g.terms.erase(10);
  return g;
}

class ProgressQueriesTest : public ::testing::Test {
 protected:
  TestNode n1{NodeId(1), leader()};
  TestNode n2{NodeId(2), follower_of_n1()};
  Clock::time_point t0 = Clock::now();
  int completions = 0;
  std::optional<WriteProgress> got;

  // n2 asks n1 about (index, term); returns the query as n1 receives it.
  net::IncomingMessage ask(uint64_t index, uint64_t term,
                           Clock::time_point deadline = Clock::time_point::max()) {
    EXPECT_EQ(n2.queries->leader_to_ask(n2.group), NodeId(1));
    const int before = completions;
    n2.queries->ask(n2.group, LogIndex(index), Term(term), t0, deadline,
                    [this](std::optional<WriteProgress> p) {
                      ++completions;
                      got = p;
                    });
    EXPECT_EQ(completions, before) << "never completed inside ask()";
    return n2.take();
  }
  // The whole round trip: n1 answers, n2 takes the answer.
  void round_trip(uint64_t index, uint64_t term) {
    ASSERT_TRUE(n1.queries->receive(ask(index, term)).is_ok());
    ASSERT_TRUE(n2.queries->receive(n1.take()).is_ok());
    ASSERT_EQ(completions, 1);
  }
};

TEST_F(ProgressQueriesTest, AFollowerLearnsTheLeadersCount) {
  round_trip(5, 2);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state, State::kCommitted);
  EXPECT_EQ(got->replicas, 2u);  // n2 and n3 match through 5
  EXPECT_EQ(n2.queries->outstanding(), 0u);
}

TEST_F(ProgressQueriesTest, TheLeaderHoldingAnotherTermThereVouchesForNone) {
  round_trip(9, 3);  // n1 holds term 2 at 9, uncommitted
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->state, State::kPending);
  EXPECT_EQ(got->replicas, 0u);
  completions = 0;
  round_trip(8, 3);  // n1's committed log holds term 2 at 8
  EXPECT_EQ(got->state, State::kLost);
  EXPECT_EQ(got->replicas, 0u);
}

TEST_F(ProgressQueriesTest, AnUnknownGroupOrANonLeaderAnswersAnErrorAndTheAskerCountsLocally) {
  net::IncomingMessage q = ask(5, 2);
  q.message.set_group_id(99);
  ASSERT_TRUE(n1.queries->receive(q).is_ok());
  net::IncomingMessage a = n1.take();
  EXPECT_EQ(a.message.progress().answer().error(), wirepb::PROGRESS_UNKNOWN_GROUP);

  // n1 lost its leadership (or failed) before the query arrived.
  n1.group.st.engine.soft.role = core::Role::kFollower;
  ASSERT_TRUE(n1.queries->receive(ask(5, 2)).is_ok());
  a = n1.take();
  EXPECT_EQ(a.message.progress().answer().error(), wirepb::PROGRESS_NOT_LEADER);
  ASSERT_TRUE(n2.queries->receive(a).is_ok());
  EXPECT_EQ(completions, 1);
  EXPECT_FALSE(got.has_value());
  n1.group.st.engine.soft.role = core::Role::kLeader;
  n1.group.healthy_ = false;
  ASSERT_TRUE(n1.queries->receive(ask(5, 2)).is_ok());
  EXPECT_EQ(n1.take().message.progress().answer().error(), wirepb::PROGRESS_NOT_LEADER);
}

TEST_F(ProgressQueriesTest, AnAnswerOfAnotherTermOrAfterTheLeaderChangedIsNotBelieved) {
  // n1 answers from term 3 (re-elected, or a stale view at n2): another term.
  n1.group.st.engine.soft.term = Term(3);
  round_trip(5, 2);
  EXPECT_FALSE(got.has_value());

  // n2 hears of a new leader while the query is out.
  n1.group.st.engine.soft.term = Term(2);
  completions = 0;
  ASSERT_TRUE(n1.queries->receive(ask(5, 2)).is_ok());
  n2.group.st.engine.soft = core::SoftState{core::Role::kFollower, Term(3), NodeId(3)};
  ASSERT_TRUE(n2.queries->receive(n1.take()).is_ok());
  EXPECT_EQ(completions, 1);
  EXPECT_FALSE(got.has_value());
}

TEST_F(ProgressQueriesTest, NoAnswerByTheDeadlineCountsLocallyAndALateAnswerIsDropped) {
  net::IncomingMessage q = ask(5, 2);
  n2.queries->expire(t0 + ProgressQueries::kTimeout - std::chrono::milliseconds(1));
  EXPECT_EQ(completions, 0);
  n2.queries->expire(t0 + ProgressQueries::kTimeout);
  EXPECT_EQ(completions, 1);
  EXPECT_FALSE(got.has_value());
  ASSERT_TRUE(n1.queries->receive(q).is_ok());
  EXPECT_TRUE(n2.queries->receive(n1.take()).is_ok());
  EXPECT_EQ(completions, 1);

  // A WAIT whose own deadline is nearer waits no longer than that.
  completions = 0;
  ask(5, 2, t0 + std::chrono::milliseconds(40));
  n2.queries->expire(t0 + std::chrono::milliseconds(40));
  EXPECT_EQ(completions, 1);
}

TEST_F(ProgressQueriesTest, NobodyToAskOnTheLeaderWithoutALeaderOrWhenFull) {
  EXPECT_EQ(n1.queries->leader_to_ask(n1.group), std::nullopt);  // it is the leader
  FakeGroup orphan = follower_of_n1();
  orphan.st.engine.soft.leader = kNoNode;
  EXPECT_EQ(n2.queries->leader_to_ask(orphan), std::nullopt);
  for (size_t i = 0; i < ProgressQueries::kOutstandingMax; ++i) {
    n2.queries->ask(n2.group, LogIndex(5), Term(2), t0, Clock::time_point::max(),
                    [this](std::optional<WriteProgress>) { ++completions; });
  }
  EXPECT_EQ(n2.queries->leader_to_ask(n2.group), std::nullopt);
  n2.queries->stop();  // completes every one; asks nobody afterwards
  EXPECT_EQ(completions, static_cast<int>(ProgressQueries::kOutstandingMax));
  EXPECT_EQ(n2.queries->outstanding(), 0u);
  EXPECT_EQ(n2.queries->leader_to_ask(n2.group), std::nullopt);
}

TEST_F(ProgressQueriesTest, MalformedOrMismatchedMessagesAreRefused) {
  net::IncomingMessage q = ask(5, 2);
  net::IncomingMessage bad = q;
  bad.message.mutable_progress()->mutable_query()->set_index(0);
  EXPECT_EQ(n1.queries->receive(bad).code(), StatusCode::kCorruption);
  EXPECT_TRUE(n1.outbox.empty()) << "a malformed query is not answered";

  ASSERT_TRUE(n1.queries->receive(q).is_ok());
  net::IncomingMessage a = n1.take();
  net::IncomingMessage other_write = a;
  other_write.message.mutable_progress()->mutable_answer()->set_index(6);
  EXPECT_EQ(n2.queries->receive(other_write).code(), StatusCode::kCorruption);
  net::IncomingMessage not_asked = a;
  not_asked.from = NodeId(3);
  not_asked.message.set_from(3);
  EXPECT_EQ(n2.queries->receive(not_asked).code(), StatusCode::kCorruption);
  EXPECT_EQ(completions, 0);
  ASSERT_TRUE(n2.queries->receive(a).is_ok());  // the real answer still counts
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->replicas, 2u);
}

TEST(WithLeaderViewTest, TheLeaderGivesTheCountAndOnlyItsCommittedLogOverrulesTheState) {
  const WriteProgress committed_here{State::kCommitted, 1};
  const WriteProgress pending_here{State::kPending, 1};
  EXPECT_EQ(with_leader_view(committed_here, std::nullopt).replicas, 1u);
  const WriteProgress two = with_leader_view(pending_here, WriteProgress{State::kCommitted, 2});
  EXPECT_EQ(two.state, State::kPending);  // this node's verdict stays
  EXPECT_EQ(two.replicas, 2u);
  const WriteProgress none = with_leader_view(committed_here, WriteProgress{State::kPending, 0});
  EXPECT_EQ(none.state, State::kCommitted);
  EXPECT_EQ(none.replicas, 0u);  // the leader holds another term there
  const WriteProgress lost = with_leader_view(pending_here, WriteProgress{State::kLost, 0});
  EXPECT_EQ(lost.state, State::kLost);
  EXPECT_EQ(lost.replicas, 0u);
  EXPECT_EQ(with_leader_view(pending_here, WriteProgress{State::kRolledBack, 0}).state,
            State::kRolledBack);
  const WriteProgress lost_here{State::kLost, 0};
  EXPECT_EQ(with_leader_view(lost_here, WriteProgress{State::kCommitted, 2}).replicas, 0u);
}

}  // namespace
}  // namespace chorus::server
