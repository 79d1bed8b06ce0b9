// leader_agreement(): when `chorus up` may say the cluster is up. One row per
// situation a freshly started or disturbed cluster goes through.
#include "local_cluster.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace chorus::tools {
namespace {

std::optional<NodeStatus> node(std::string role, uint64_t term, uint64_t leader) {
  NodeStatus s;
  s.role = std::move(role);
  s.term = term;
  s.leader = leader;
  return s;
}
constexpr std::nullopt_t kNoAnswer = std::nullopt;

struct Case {
  const char* name;
  std::vector<std::optional<NodeStatus>> statuses;  // node k at index k-1
  uint64_t leader;
  uint64_t term;
  std::vector<int> not_joined;
};

const Case kCases[] = {
    {"EveryNodeFollowsTheLeader",
     {node("follower", 2, 2), node("leader", 2, 2), node("follower", 2, 2)},
     2,
     2,
     {}},
    {"FollowersThatHaveNotHeardFromTheLeaderYet",
     {node("leader", 1, 1), node("follower", 0, 0), node("follower", 1, 0)},
     1,
     1,
     {2, 3}},
    {"ANodeThatDoesNotAnswer",
     {node("leader", 1, 1), kNoAnswer, node("follower", 1, 1)},
     1,
     1,
     {2}},
    {"AFollowerInAnOlderTermWithTheSameLeaderId",
     {node("leader", 3, 1), node("follower", 2, 1), node("follower", 3, 1)},
     1,
     3,
     {2}},
    {"AStaleLeaderInALowerTermIsNotTheLeader",
     {node("leader", 1, 1), node("leader", 2, 2), node("follower", 2, 2)},
     2,
     2,
     {1}},
    {"ACandidateHasNotJoined",
     {node("leader", 4, 1), node("follower", 4, 1), node("candidate", 5, 0)},
     1,
     4,
     {3}},
    {"NoLeaderAtAll",
     {node("follower", 0, 0), node("candidate", 1, 0), kNoAnswer},
     0,
     0,
     {1, 2, 3}},
    {"OneNodeClusterLeadsItself", {node("leader", 1, 1)}, 1, 1, {}},
};

class LeaderAgreementTest : public ::testing::TestWithParam<Case> {};

TEST_P(LeaderAgreementTest, NamesTheLeaderAndTheNodesNotFollowingIt) {
  const Case& c = GetParam();
  const LeaderAgreement a = leader_agreement(c.statuses);
  EXPECT_EQ(a.leader, c.leader);
  EXPECT_EQ(a.term, c.term);
  EXPECT_EQ(a.not_joined, c.not_joined);
  EXPECT_EQ(a.agreed(), c.leader != 0 && c.not_joined.empty());
}

INSTANTIATE_TEST_SUITE_P(All, LeaderAgreementTest, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

}  // namespace
}  // namespace chorus::tools
