// Table tests for the quorum math (etcd's quorum/ package style).
#include "core/common/quorum.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "base/ids.h"

namespace chorus::core {
namespace {

TEST(Quorum, MajorityOfOneToSeven) {
  struct Case {
    size_t voters;
    size_t majority;
  };
  const Case cases[] = {{1, 1}, {2, 2}, {3, 2}, {4, 3}, {5, 3}, {6, 4}, {7, 4}};
  for (const auto& c : cases) EXPECT_EQ(majority(c.voters), c.majority) << "n=" << c.voters;
}

TEST(Quorum, MajoritiesAlwaysIntersect) {
  // The property Raft relies on: two majorities of the same n share a member.
  for (size_t n = 1; n <= 9; ++n) EXPECT_GT(2 * majority(n), n) << "n=" << n;
}

TEST(Quorum, QuorumValueIsTheHighestValueAMajorityReached) {
  struct Case {
    std::vector<uint64_t> acked;
    uint64_t want;
  };
  const Case cases[] = {
      {{5}, 5},     // a single voter is its own majority
      {{5, 3}, 3},  // two voters: both needed
      {{3, 5}, 3},
      {{1, 2, 3}, 2},  // three: the median
      {{3, 2, 1}, 2},
      {{7, 7, 0}, 7},
      {{0, 0, 7}, 0},     // one fast voter cannot commit alone
      {{1, 2, 3, 4}, 2},  // four: the third highest
      {{4, 4, 4, 0}, 4},
      {{9, 1, 8, 2, 7}, 7},  // five: the third highest
      {{0, 0, 0, 5, 5}, 0},
      {{6, 5, 4, 3, 2, 1, 0}, 3},  // seven: the fourth highest
      {{2, 2, 2, 2, 2, 2, 2}, 2},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(quorum_value(c.acked), c.want) << "acked of size " << c.acked.size();
  }
}

TEST(Quorum, QuorumValueWorksOnStrongTypes) {
  std::vector<LogIndex> match = {LogIndex(10), LogIndex(4), LogIndex(7)};
  EXPECT_EQ(quorum_value(match), LogIndex(7));
}

TEST(QuorumDeathTest, QuorumValueOfNothingAborts) {
  EXPECT_DEATH((void)quorum_value(std::vector<uint64_t>{}), "assertion failed");
}

TEST(Quorum, TallyOutcomes) {
  struct Case {
    size_t voters, granted, rejected;
    VoteResult want;
  };
  const Case cases[] = {
      {1, 1, 0, VoteResult::kWon},  // single node votes for itself
      {1, 0, 0, VoteResult::kPending}, {3, 1, 0, VoteResult::kPending},  // own vote only
      {3, 2, 0, VoteResult::kWon},     {3, 1, 1, VoteResult::kPending},  // the third voter decides
      {3, 1, 2, VoteResult::kLost},    {3, 0, 2, VoteResult::kLost},
      {4, 2, 1, VoteResult::kPending},  // needs 3 of 4; one voter left
      {4, 2, 2, VoteResult::kLost},     // 3 of 4 is now impossible
      {4, 3, 1, VoteResult::kWon},     {5, 3, 2, VoteResult::kWon},
      {5, 2, 2, VoteResult::kPending}, {5, 2, 3, VoteResult::kLost},
      {7, 4, 0, VoteResult::kWon},     {7, 3, 3, VoteResult::kPending},
      {7, 1, 4, VoteResult::kLost},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(tally(c.voters, c.granted, c.rejected), c.want)
        << "voters=" << c.voters << " granted=" << c.granted << " rejected=" << c.rejected;
  }
}

TEST(Quorum, TallyDecidesExactlyWhenTheOutcomeIsForced) {
  // For every split, kWon/kLost appear exactly when the remaining voters can
  // no longer change the outcome.
  for (size_t n = 1; n <= 7; ++n) {
    for (size_t g = 0; g <= n; ++g) {
      for (size_t r = 0; g + r <= n; ++r) {
        const size_t left = n - g - r;
        const bool can_win = g + left >= majority(n);
        const bool won = g >= majority(n);
        VoteResult want = won       ? VoteResult::kWon
                          : can_win ? VoteResult::kPending
                                    : VoteResult::kLost;
        EXPECT_EQ(tally(n, g, r), want) << n << " " << g << " " << r;
      }
    }
  }
}

}  // namespace
}  // namespace chorus::core
