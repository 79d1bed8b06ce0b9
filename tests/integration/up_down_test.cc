// `chorus up`, `chorus up --foreground` and `chorus down` run as a user runs
// them, each test in its own directory on its own ports.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <iterator>
#include <sstream>

#include "cluster_fixture.h"

namespace chorus::tests {
namespace {

class UpDownTest : public ClusterTest {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("chorus-up-" + std::string(info->name()) + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    base_port_ = pick_base_port(3);
    ASSERT_NE(base_port_, 0) << "no free ports";
  }

  void TearDown() override {
    if (up_ > 0) {
      kill(up_, SIGINT);
      wait_for_up(10s);
      if (up_ > 0) {
        kill(up_, SIGKILL);
        waitpid(up_, nullptr, 0);
      }
    }
    run(chorus() + " down --dir " + dir_.string());
    ClusterTest::TearDown();
  }

  static std::string chorus() { return CHORUS_PATH; }
  std::string up_args() const {
    return "up --nodes 3 --dir " + dir_.string() + " --base-port " + std::to_string(base_port_);
  }

  // Starts `chorus up --foreground` with its output in dir_/up.out.
  void start_foreground_up() {
    std::filesystem::create_directories(dir_);
    const std::string out = (dir_ / "up.out").string();
    up_ = fork();
    ASSERT_GE(up_, 0);
    if (up_ == 0) {
      const std::string command =
          "exec " + chorus() + " " + up_args() + " --foreground > " + out + " 2>&1";
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }

  std::string up_output() const {
    std::ifstream in(dir_ / "up.out");
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }

  bool wait_for_output(const std::string& text, std::chrono::milliseconds limit) const {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      if (up_output().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // Waits for the `chorus up` process to exit; its wait status, or nullopt.
  std::optional<int> wait_for_up(std::chrono::milliseconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(up_, &status, WNOHANG) == up_) {
        up_ = -1;
        return status;
      }
      std::this_thread::sleep_for(50ms);
    }
    return std::nullopt;
  }

  std::vector<pid_t> node_pids() const {
    std::vector<pid_t> pids;
    for (int k = 1; k <= 3; ++k) {
      std::ifstream in(dir_ / ("n" + std::to_string(k)) / "chorusd.pid");
      long p = 0;
      if (in >> p) pids.push_back(static_cast<pid_t>(p));
    }
    return pids;
  }

  static bool gone(pid_t p) { return kill(p, 0) != 0 && errno == ESRCH; }

  uint16_t base_port_ = 0;
  pid_t up_ = -1;
};

// The rows of the status table: "n1    127.0.0.1:7001   follower   2   n2 ...".
struct Row {
  std::string node, client, role, term, leader;
};
std::vector<Row> table_rows(const std::string& out) {
  std::vector<Row> rows;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() < 2 || line[0] != 'n' || !std::isdigit(static_cast<unsigned char>(line[1])))
      continue;
    Row r;
    std::istringstream fields(line);
    fields >> r.node >> r.client >> r.role >> r.term >> r.leader;
    rows.push_back(r);
  }
  return rows;
}

TEST_F(UpDownTest, UpPrintsTheTableOnceEveryNodeFollowsTheLeader) {
  std::string out;
  ASSERT_EQ(run(chorus() + " " + up_args(), &out), 0) << out;
  EXPECT_NE(out.find("Chorus is up: 3 nodes, leader n"), std::string::npos) << out;
  EXPECT_EQ(out.find("warning"), std::string::npos) << out;
  const std::vector<Row> rows = table_rows(out);
  ASSERT_EQ(rows.size(), 3u) << out;
  int leaders = 0;
  for (const Row& r : rows) {
    EXPECT_TRUE(r.role == "leader" || r.role == "follower") << out;
    EXPECT_NE(r.term, "0") << out;
    EXPECT_EQ(r.term, rows[0].term) << out;
    EXPECT_NE(r.leader, "-") << out;
    EXPECT_EQ(r.leader, rows[0].leader) << out;
    if (r.role == "leader") {
      ++leaders;
      EXPECT_EQ(r.leader, r.node) << out;
    }
  }
  EXPECT_EQ(leaders, 1) << out;
}

TEST_F(UpDownTest, ForegroundUpReapsItsNodesAndExitsOnceDownStoppedThem) {
  start_foreground_up();
  ASSERT_TRUE(wait_for_output("Press Ctrl-C", 30s)) << up_output();
  const std::vector<pid_t> pids = node_pids();
  ASSERT_EQ(pids.size(), 3u);

  std::string out;
  ASSERT_EQ(run(chorus() + " down --dir " + dir_.string(), &out), 0) << out;
  EXPECT_NE(out.find("stopped 3 node(s)"), std::string::npos) << out;

  const std::optional<int> status = wait_for_up(10s);
  ASSERT_TRUE(status.has_value()) << "chorus up --foreground still running:\n" << up_output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << up_output();
  const std::string log = up_output();
  for (int k = 1; k <= 3; ++k) {
    // The exit status comes from waitpid(): the node was reaped, not left a zombie.
    EXPECT_NE(log.find("node " + std::to_string(k) + " (pid " + std::to_string(pids[k - 1]) +
                       ") exited with status 0"),
              std::string::npos)
        << log;
  }
  EXPECT_NE(log.find("all 3 nodes have exited; chorus up is done"), std::string::npos) << log;
  for (pid_t p : pids) EXPECT_TRUE(gone(p)) << "pid " << p;
}

TEST_F(UpDownTest, ForegroundUpStopsItsNodesOnCtrlC) {
  start_foreground_up();
  ASSERT_TRUE(wait_for_output("Press Ctrl-C", 30s)) << up_output();
  const std::vector<pid_t> pids = node_pids();
  ASSERT_EQ(pids.size(), 3u);
  kill(up_, SIGINT);
  const std::optional<int> status = wait_for_up(20s);
  ASSERT_TRUE(status.has_value()) << up_output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << up_output();
  EXPECT_NE(up_output().find("all nodes stopped"), std::string::npos) << up_output();
  for (pid_t p : pids) EXPECT_TRUE(gone(p)) << "pid " << p;
  EXPECT_TRUE(node_pids().empty()) << "pid files left behind";
}

}  // namespace
}  // namespace chorus::tests
