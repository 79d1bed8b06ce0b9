#include "bench/zookeeper_path.h"

#include <gtest/gtest.h>

#include <set>

#include "bench/workload.h"

namespace chorus::bench {
namespace {

std::string name_of(std::string_view key) {
  std::string out;
  append_znode_name(key, &out);
  return out;
}

TEST(ZnodePathTest, WorkloadKeysPassThrough) {
  std::string key;
  format_key(42, 16, &key);
  EXPECT_EQ(name_of(key), key);
  EXPECT_EQ(znode_path("/chorus-bench", key), "/chorus-bench/" + key);
  EXPECT_EQ(name_of("a b~!:;"), "a b~!:;");
}

TEST(ZnodePathTest, BytesAZnodeNameCannotHoldAreEscaped) {
  EXPECT_EQ(name_of("a/b"), "a%2Fb");
  EXPECT_EQ(name_of("50%"), "50%25");
  EXPECT_EQ(name_of(std::string_view("x\0y", 3)), "x%00y");
  EXPECT_EQ(name_of("\x1f\x7f\x80\xff"), "%1F%7F%80%FF");
  EXPECT_EQ(name_of("."), "%2E");
  EXPECT_EQ(name_of(".."), "%2E%2E");
  EXPECT_EQ(name_of("..."), "...");  // a valid name as it is
  EXPECT_EQ(name_of(".a"), ".a");
  EXPECT_EQ(name_of(""), "%");
}

TEST(ZnodePathTest, DistinctKeysGetDistinctNames) {
  const std::vector<std::string> keys = {"",       "%", "%25", ".",   "%2E",   "..",
                                         "%2E%2E", "/", "%2F", "a/b", "a%2Fb", "%%"};
  std::set<std::string> names;
  for (const auto& k : keys) names.insert(name_of(k));
  EXPECT_EQ(names.size(), keys.size());
}

TEST(ZnodePathTest, RootIsChecked) {
  EXPECT_TRUE(check_znode_root("/chorus-bench").is_ok());
  EXPECT_TRUE(check_znode_root("/a/b.c/d").is_ok());
  EXPECT_TRUE(check_znode_root("/zookeeperish").is_ok());
  struct Case {
    std::string root;
    std::string expected;  // a substring of the message
  };
  const std::vector<Case> cases = {
      {"", "must be an absolute path"},
      {"chorus", "must be an absolute path"},
      {"/", "must be below /"},
      {"/a/", "must not end with '/'"},
      {"/a//b", "empty component"},
      {"/a/./b", "relative component"},
      {"/..", "relative component"},
      {"/a\tb", "printable ASCII"},
      {"/zookeeper", "ZooKeeper's own subtree"},
      {"/zookeeper/quota", "ZooKeeper's own subtree"},
  };
  for (const auto& c : cases) {
    const Status st = check_znode_root(c.root);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << c.root;
    EXPECT_NE(st.message().find(c.expected), std::string::npos)
        << "root '" << c.root << "': got '" << st.message() << "'";
  }
}

TEST(ZnodePathTest, AncestorsAreListedTopDown) {
  EXPECT_EQ(znode_ancestors("/chorus-bench"), std::vector<std::string>{"/chorus-bench"});
  EXPECT_EQ(znode_ancestors("/a/b/c"), (std::vector<std::string>{"/a", "/a/b", "/a/b/c"}));
}

}  // namespace
}  // namespace chorus::bench
