// Table tests for the in-flight append window (etcd tracker/inflights).
#include "core/common/inflights.h"

#include <gtest/gtest.h>

#include <vector>

namespace chorus::core {
namespace {

Inflights window_with(size_t capacity, std::vector<uint64_t> lasts) {
  Inflights in(capacity);
  for (uint64_t l : lasts) in.add(LogIndex(l));
  return in;
}

TEST(Inflights, FillsUpToCapacity) {
  Inflights in(3);
  EXPECT_EQ(in.count(), 0u);
  EXPECT_FALSE(in.full());
  in.add(LogIndex(2));
  in.add(LogIndex(5));
  EXPECT_FALSE(in.full());
  in.add(LogIndex(9));
  EXPECT_EQ(in.count(), 3u);
  EXPECT_TRUE(in.full());
}

TEST(Inflights, FreeToReleasesEveryAppendEndingAtOrBefore) {
  struct Case {
    uint64_t free_to;
    size_t left;
  };
  // Window of appends ending at 2, 5, 9, 12.
  const Case cases[] = {
      {0, 4},             // nothing acknowledged
      {1, 4},             // inside the first append: it is not complete
      {2, 3},             // exactly the first
      {6, 2},             // between appends
      {9, 1},   {12, 0},  // everything
      {100, 0},
  };
  for (const auto& c : cases) {
    Inflights in = window_with(4, {2, 5, 9, 12});
    in.free_to(LogIndex(c.free_to));
    EXPECT_EQ(in.count(), c.left) << "free_to " << c.free_to;
    EXPECT_EQ(in.full(), c.left == 4) << "free_to " << c.free_to;
  }
}

TEST(Inflights, FreeingMakesRoomAgain) {
  Inflights in = window_with(2, {3, 6});
  ASSERT_TRUE(in.full());
  in.free_to(LogIndex(3));
  EXPECT_FALSE(in.full());
  in.add(LogIndex(8));
  EXPECT_TRUE(in.full());
  in.free_to(LogIndex(5));  // a stale acknowledgement below the window frees nothing
  EXPECT_EQ(in.count(), 2u);
}

TEST(Inflights, ResetEmptiesTheWindow) {
  Inflights in = window_with(3, {1, 2, 3});
  in.reset();
  EXPECT_EQ(in.count(), 0u);
  EXPECT_FALSE(in.full());
  in.add(LogIndex(1));  // after a reset (probe), indexes may start lower again
  EXPECT_EQ(in.count(), 1u);
}

TEST(InflightsDeathTest, AddingToAFullWindowAborts) {
  Inflights in = window_with(1, {4});
  EXPECT_DEATH(in.add(LogIndex(5)), "assertion failed");
}

TEST(InflightsDeathTest, IndexesMustIncrease) {
  Inflights in = window_with(3, {4});
  EXPECT_DEATH(in.add(LogIndex(4)), "assertion failed");
}

TEST(InflightsDeathTest, CapacityMustBePositive) {
  EXPECT_DEATH(Inflights(0), "assertion failed");
}

}  // namespace
}  // namespace chorus::core
