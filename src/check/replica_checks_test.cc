// Table tests of the engine-independent replica checks: each case is a small
// picture of logs or applied entries, and what the check must say about it.
#include "check/replica_checks.h"

#include <gtest/gtest.h>

namespace chorus::check {
namespace {

EntryId e(uint64_t index, uint64_t term, uint64_t hash = 0) {
  return EntryId{index, term, hash == 0 ? index * 100 + term : hash};
}

LogView log(uint64_t node, std::vector<EntryId> entries, uint64_t commit = 0) {
  return LogView{node, true, commit, std::move(entries)};
}

TEST(AppliedLog, OneValuePerIndex) {
  AppliedLog a;
  EXPECT_FALSE(a.record(1, e(1, 1)));
  EXPECT_FALSE(a.record(2, e(1, 1))) << "the same entry applied twice is fine";
  EXPECT_FALSE(a.record(1, e(2, 1)));
  auto bad = a.record(3, e(2, 2));
  ASSERT_TRUE(bad.has_value());
  EXPECT_NE(bad->find("a committed entry changed"), std::string::npos) << *bad;
  EXPECT_TRUE(a.record(3, e(1, 1, 999)).has_value()) << "same term, other content";
  EXPECT_EQ(a.max_index(), 2u);
  EXPECT_EQ(a.distinct(), 2u);
}

TEST(LogMatching, Cases) {
  struct Case {
    const char* name;
    std::vector<LogView> logs;
    bool violated;
  };
  const Case cases[] = {
      {"identical", {log(1, {e(1, 1), e(2, 1)}), log(2, {e(1, 1), e(2, 1)})}, false},
      {"one is a prefix", {log(1, {e(1, 1)}), log(2, {e(1, 1), e(2, 1)})}, false},
      {"diverge after a common prefix",
       {log(1, {e(1, 1), e(2, 1)}), log(2, {e(1, 1), e(2, 2)})},
       false},
      {"same later entry, different earlier one",
       {log(1, {e(1, 1), e(2, 2)}), log(2, {e(1, 1, 7), e(2, 2)})},
       true},
      {"snapshots cut the logs at different places",
       {log(1, {e(3, 1), e(4, 2)}), log(2, {e(4, 2)})},
       false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(!check_log_matching(c.logs).empty(), c.violated) << c.name;
  }
}

TEST(AcknowledgedWrites, MustStayInEveryLogThatReachesThem) {
  const std::map<uint64_t, uint64_t> acked = {{2, e(2, 1).hash}};
  EXPECT_TRUE(check_acknowledged_present({log(1, {e(1, 1), e(2, 1)})}, acked).empty());
  EXPECT_TRUE(check_acknowledged_present({log(1, {e(3, 1)})}, acked).empty())
      << "covered by the snapshot";
  EXPECT_FALSE(check_acknowledged_present({log(1, {e(1, 1)})}, acked).empty()) << "lost";
  EXPECT_FALSE(check_acknowledged_present({log(1, {e(1, 1), e(2, 2)})}, acked).empty())
      << "replaced";
}

TEST(CommittedEntries, MatchWhatWasApplied) {
  AppliedLog a;
  ASSERT_FALSE(a.record(1, e(1, 1)));
  ASSERT_FALSE(a.record(1, e(2, 1)));
  EXPECT_TRUE(check_committed_match_applied({log(2, {e(1, 1), e(2, 1)}, 2)}, a).empty());
  EXPECT_FALSE(check_committed_match_applied({log(2, {e(1, 1), e(2, 3)}, 2)}, a).empty());
  EXPECT_TRUE(check_committed_match_applied({log(2, {e(1, 1), e(2, 3)}, 1)}, a).empty())
      << "index 2 is not committed there";
}

TEST(Convergence, SameIndexSameData) {
  EXPECT_TRUE(check_converged({{1, 5, 42}, {2, 5, 42}, {3, 4, 7}}).empty());
  EXPECT_FALSE(check_converged({{1, 5, 42}, {2, 5, 43}}).empty());
}

}  // namespace
}  // namespace chorus::check
