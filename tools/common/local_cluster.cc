#include "local_cluster.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "base/assert.h"

namespace chorus::tools {

namespace fs = std::filesystem;

std::string executable_dir() {
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

LocalCluster::LocalCluster(LocalClusterOptions opts) : opts_(std::move(opts)) {
  if (opts_.chorusd.empty()) opts_.chorusd = executable_dir() + "/chorusd";
  for (int k = 1; k <= opts_.nodes; ++k) configs_.push_back(make_config(k));
}

std::string LocalCluster::node_dir(int k) const {
  return fmt::format("{}/n{}", opts_.dir, k);
}
std::string LocalCluster::pid_file(int k) const {
  return node_dir(k) + "/chorusd.pid";
}

server::NodeConfig LocalCluster::make_config(int k) const {
  auto host = [&](int node) {
    return opts_.ip_per_node ? fmt::format("127.0.0.{}", 10 + node) : "127.0.0.1";
  };
  auto port = [&](int offset, int node) {
    return static_cast<uint16_t>(opts_.base_port + offset + node - 1);
  };
  server::NodeConfig c = server::default_node_config();
  c.node_id = static_cast<uint64_t>(k);
  c.data_dir = fs::absolute(node_dir(k)).string() + "/data";
  c.listen.client = {host(k), port(0, k)};
  c.listen.peer = {host(k), port(100, k)};
  c.listen.admin = {host(k), port(1000, k)};
  for (int p = 1; p <= opts_.nodes; ++p) {
    c.peers.push_back(server::PeerConfig{static_cast<uint64_t>(p), {host(p), port(100, p)}});
  }
  if (opts_.tune) opts_.tune(c);
  return c;
}

Status LocalCluster::write_configs() {
  for (int k = 1; k <= opts_.nodes; ++k) {
    std::error_code ec;
    fs::create_directories(node_dir(k), ec);
    if (ec) return Status::io_error(fmt::format("cannot create {}: {}", node_dir(k), ec.message()));
    CHORUS_RETURN_IF_ERROR(server::validate_config(config(k)));
    std::ofstream out(node_dir(k) + "/node.toml", std::ios::trunc);
    out << server::render_config(config(k));
    if (!out) return Status::io_error(fmt::format("cannot write {}/node.toml", node_dir(k)));
  }
  return Status::ok();
}

namespace {

std::optional<pid_t> read_pid_file(const std::string& path) {
  std::ifstream in(path);
  long p = 0;
  if (!(in >> p) || p <= 0) return std::nullopt;
  return static_cast<pid_t>(p);
}

}  // namespace

std::optional<pid_t> LocalCluster::pid(int k) const {
  if (auto child = children_.find(k); child != children_.end()) return child->second;
  return read_pid_file(pid_file(k));
}

bool LocalCluster::running(int k) const {
  if (auto child = children_.find(k); child != children_.end()) {
    // Peek without reaping (WNOWAIT): reap_exited() and stop() collect the status.
    siginfo_t info{};
    const id_t id = static_cast<id_t>(child->second);
    if (waitid(P_PID, id, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return false;
    return info.si_pid == 0;
  }
  auto p = pid(k);
  if (!p) return false;
  if (kill(*p, 0) != 0) return false;
  // The PID may have been reused: check it is still a chorusd with our config.
  std::ifstream cmd(fmt::format("/proc/{}/cmdline", *p));
  std::string line((std::istreambuf_iterator<char>(cmd)), std::istreambuf_iterator<char>());
  if (line.find("chorusd") == std::string::npos) return false;
  // A zombie is not running.
  std::ifstream st(fmt::format("/proc/{}/stat", *p));
  std::string stat((std::istreambuf_iterator<char>(st)), std::istreambuf_iterator<char>());
  auto rp = stat.rfind(')');
  return !(rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'Z');
}

Status LocalCluster::start(int k) {
  if (running(k))
    return Status::invalid_argument(fmt::format("node {} is already running (pid {})", k, *pid(k)));
  if (children_.contains(k)) reap(k);  // an earlier run of node k that has exited
  if (access(opts_.chorusd.c_str(), X_OK) != 0) {
    return Status::not_found(fmt::format("chorusd not found at {}", opts_.chorusd));
  }
  const std::string conf = fs::absolute(node_dir(k) + "/node.toml").string();
  const std::string log = node_dir(k) + "/chorusd.log";
  const pid_t child = fork();
  if (child < 0) return Status::io_error(fmt::format("fork: {}", std::strerror(errno)));
  if (child == 0) {
    setsid();  // its own process group: Ctrl-C in a terminal reaches only `chorus up`
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    execl(opts_.chorusd.c_str(), "chorusd", "--config", conf.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  children_[k] = child;
  std::ofstream(pid_file(k), std::ios::trunc) << child << "\n";
  return Status::ok();
}

Status LocalCluster::start_all() {
  for (int k = 1; k <= opts_.nodes; ++k) CHORUS_RETURN_IF_ERROR(start(k));
  return Status::ok();
}

Status LocalCluster::signal(int k, int sig) {
  if (!running(k)) return Status::not_found(fmt::format("node {} is not running", k));
  if (kill(*pid(k), sig) != 0)
    return Status::io_error(fmt::format("kill: {}", std::strerror(errno)));
  return Status::ok();
}

Status LocalCluster::stop(int k, std::chrono::milliseconds grace) {
  if (!running(k)) {
    if (children_.contains(k)) {
      reap(k);
    } else {
      std::error_code ec;
      fs::remove(pid_file(k), ec);
    }
    return Status::ok();
  }
  const pid_t p = *pid(k);
  kill(p, SIGCONT);  // a paused node cannot handle SIGTERM
  kill(p, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (running(k) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (running(k)) {
    kill(p, SIGKILL);
    while (running(k)) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (children_.contains(k)) {
    reap(k);
  } else {
    std::error_code ec;
    fs::remove(pid_file(k), ec);
  }
  return Status::ok();
}

void LocalCluster::stop_all() {
  for (int k = 1; k <= opts_.nodes; ++k) stop(k).ignore();
}

void LocalCluster::stop_children() {
  std::vector<int> nodes;
  for (const auto& [k, p] : children_) nodes.push_back(k);
  for (int k : nodes) stop(k).ignore();
  CHORUS_ASSERT(children_.empty());
}

ChildExit LocalCluster::reap(int k) {
  const auto it = children_.find(k);
  CHORUS_ASSERT(it != children_.end());
  ChildExit e{k, it->second, 0};
  while (waitpid(e.pid, &e.wait_status, 0) < 0 && errno == EINTR) {
  }
  children_.erase(it);
  if (read_pid_file(pid_file(k)) == e.pid) {
    std::error_code ec;
    fs::remove(pid_file(k), ec);
  }
  return e;
}

std::vector<ChildExit> LocalCluster::reap_exited() {
  std::vector<int> exited;
  for (const auto& [k, p] : children_) {
    if (!running(k)) exited.push_back(k);
  }
  std::vector<ChildExit> out;
  for (int k : exited) out.push_back(reap(k));
  return out;
}

bool ChildExit::clean() const {
  return WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0;
}

std::string ChildExit::describe() const {
  if (WIFSIGNALED(wait_status)) {
    const int sig = WTERMSIG(wait_status);
    return fmt::format("killed by signal {} ({})", sig, strsignal(sig));
  }
  return fmt::format("exited with status {}", WEXITSTATUS(wait_status));
}

Result<NodeStatus> LocalCluster::status(int k, std::chrono::milliseconds timeout) const {
  const auto& a = config(k).listen.admin;
  httplib::Client cli(a.host, a.port);
  const auto secs = timeout.count() / 1000;
  const auto usecs = (timeout.count() % 1000) * 1000;
  cli.set_connection_timeout(secs, usecs);
  cli.set_read_timeout(secs, usecs);
  auto res = cli.Get("/status");
  if (!res)
    return Status::unavailable(fmt::format("node {}: admin {} unreachable", k, a.to_string()));
  if (res->status != 200)
    return Status::unavailable(fmt::format("node {}: /status answered {}", k, res->status));
  auto j = nlohmann::json::parse(res->body, nullptr, false);
  if (j.is_discarded()) return Status::corruption(fmt::format("node {}: /status is not JSON", k));
  NodeStatus s;
  s.raw = res->body;
  s.node_id = j.value("node_id", uint64_t{0});
  s.role = j.value("role", std::string());
  s.term = j.value("term", uint64_t{0});
  s.leader = j.value("leader", uint64_t{0});
  s.commit_index = j.value("commit_index", uint64_t{0});
  s.applied_index = j.value("applied_index", uint64_t{0});
  s.last_index = j.value("last_index", uint64_t{0});
  s.healthy = j.value("healthy", false);
  s.routing_ready = j.value("routing_ready", true);
  s.error = j.value("error", std::string());
  return s;
}

LeaderAgreement leader_agreement(const std::vector<std::optional<NodeStatus>>& statuses) {
  LeaderAgreement a;
  for (size_t i = 0; i < statuses.size(); ++i) {
    const auto& s = statuses[i];
    if (!s || s->role != "leader") continue;
    if (a.leader == 0 || s->term > a.term) {
      a.leader = i + 1;
      a.term = s->term;
    }
  }
  for (size_t i = 0; i < statuses.size(); ++i) {
    const auto& s = statuses[i];
    if (a.leader == 0 || !s || s->term != a.term || s->leader != a.leader || !s->routing_ready) {
      a.not_joined.push_back(static_cast<int>(i + 1));
    }
  }
  return a;
}

LeaderAgreement LocalCluster::wait_for_agreement(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    std::vector<std::optional<NodeStatus>> all;
    for (int k = 1; k <= opts_.nodes; ++k) {
      auto s = status(k, std::chrono::milliseconds(200));
      all.push_back(s.is_ok() ? std::optional<NodeStatus>(*s) : std::nullopt);
    }
    LeaderAgreement a = leader_agreement(all);
    if (a.agreed() || std::chrono::steady_clock::now() >= deadline) return a;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::optional<int> LocalCluster::wait_for_leader(std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    for (int k = 1; k <= opts_.nodes; ++k) {
      auto s = status(k, std::chrono::milliseconds(200));
      if (s.is_ok() && s->role == "leader" && s->routing_ready) return k;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

}  // namespace chorus::tools
