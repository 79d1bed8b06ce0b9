// Smoke test of the load generator: `chorus bench` for about a second against
// a real 3-node cluster, through the leader; the JSON report must show
// successful operations and no errors.
#include <nlohmann/json.hpp>

#include "cluster_fixture.h"

namespace chorus::tests {
namespace {

// The last line of `out` that starts with '{' (the --json report).
std::string last_json_line(const std::string& out) {
  std::string found;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    if (end == std::string::npos) end = out.size();
    if (out[start] == '{') found = out.substr(start, end - start);
    start = end + 1;
  }
  return found;
}

TEST_F(ClusterTest, BenchRunsForASecondAgainstTheLeader) {
  make(3);
  const auto& ep = c().config(*c().wait_for_leader(5s)).listen.client;
  std::string out;
  const int rc = run(std::string(CHORUS_PATH) + " bench --driver resp --endpoints " + ep.host +
                         ":" + std::to_string(ep.port) +
                         " --workload set --clients 4 --duration 1s --warmup 200ms --json --quiet",
                     &out);
  ASSERT_EQ(rc, 0) << out;
  const std::string line = last_json_line(out);
  ASSERT_FALSE(line.empty()) << out;
  const auto j = nlohmann::json::parse(line);
  EXPECT_EQ(j["driver"], "resp");
  EXPECT_EQ(j["workload"], "set");
  EXPECT_EQ(j["clients"], 4);
  EXPECT_GT(j["ops"].get<uint64_t>(), 0u) << line;
  EXPECT_EQ(j["errors"].get<uint64_t>(), 0u) << line;
  EXPECT_GT(j["ops_per_s"].get<double>(), 0) << line;
  EXPECT_GE(j["duration_s"].get<double>(), 1.0) << line;
  EXPECT_GT(j["p50_us"].get<double>(), 0) << line;
  EXPECT_LE(j["p50_us"].get<double>(), j["p99_us"].get<double>()) << line;
}

TEST_F(ClusterTest, BenchReadsPreloadedKeysThroughEveryNode) {
  make(3);
  std::string endpoints;
  for (int k = 1; k <= 3; ++k) {
    const auto& ep = c().config(k).listen.client;
    endpoints += (k > 1 ? "," : "") + ep.host + ":" + std::to_string(ep.port);
  }
  std::string out;
  const int rc = run(std::string(CHORUS_PATH) + " bench --endpoints " + endpoints +
                         " --connect-to round-robin --workload mixed --distribution zipfian"
                         " --keys 2000 --clients 3 --ops 600 --warmup 0 --json --quiet",
                     &out);
  ASSERT_EQ(rc, 0) << out;
  const auto j = nlohmann::json::parse(last_json_line(out));
  EXPECT_EQ(j["ops"].get<uint64_t>() + j["errors"].get<uint64_t>(), 600u) << out;
  EXPECT_EQ(j["errors"].get<uint64_t>(), 0u) << out;
  EXPECT_EQ(j["not_found"].get<uint64_t>(), 0u) << out;  // the preload wrote every key
}

TEST_F(ClusterTest, BenchExitsOneWhenNothingListens) {
  std::string out;
  // Port 1 on loopback: connection refused.
  const int rc = run(
      std::string(CHORUS_PATH) + " bench --endpoints 127.0.0.1:1 --clients 2 --duration 1s --quiet",
      &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("client 0"), std::string::npos) << out;
}

}  // namespace
}  // namespace chorus::tests
