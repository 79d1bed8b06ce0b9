// A real Chorus cluster (chorusd processes on loopback) for black-box tests,
// with hiredis clients. Each test gets its own directory and free ports, and
// stops exactly the processes it started.
#pragma once

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include "local_cluster.h"

namespace chorus::tests {

using namespace std::chrono_literals;

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const {
    if (c) redisFree(c);
  }
};
using Client = std::unique_ptr<redisContext, ContextDeleter>;

inline bool port_free(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// A base port whose client, peer and admin ports (base+k, +100+k, +1000+k) are all free.
inline uint16_t pick_base_port(int nodes) {
  std::mt19937 rng(static_cast<unsigned>(getpid()) * 7919u + static_cast<unsigned>(time(nullptr)));
  for (int attempt = 0; attempt < 200; ++attempt) {
    // Every port below 32768, the start of Linux's ephemeral range
    // (ip_local_port_range): a node killed and restarted by a test must get
    // its ports back, and an outgoing connection of any process may take a
    // freed port from that range meanwhile (seen: "Address already in use"
    // on restart, the test then waiting 15 s for a node that never came up).
    const uint16_t base = static_cast<uint16_t>(20000 + (rng() % 1100) * 10);
    bool ok = true;
    for (int k = 0; k < nodes && ok; ++k) {
      ok = port_free(static_cast<uint16_t>(base + k)) &&
           port_free(static_cast<uint16_t>(base + 100 + k)) &&
           port_free(static_cast<uint16_t>(base + 1000 + k));
    }
    if (ok) return base;
  }
  return 0;
}

class ClusterTest : public ::testing::Test {
 protected:
  void make(int nodes, std::function<void(server::NodeConfig&)> tune = {}) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("chorus-it-" + std::string(info->name()) + "-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    tools::LocalClusterOptions o;
    o.nodes = nodes;
    o.dir = dir_.string();
    o.base_port = pick_base_port(nodes);
    ASSERT_NE(o.base_port, 0) << "no free ports";
    o.chorusd = CHORUSD_PATH;
    o.tune = [tune](server::NodeConfig& c) {
      c.raft.snapshot_trailing_entries = 100;
      if (tune) tune(c);
    };
    cluster_ = std::make_unique<tools::LocalCluster>(o);
    ASSERT_TRUE(cluster_->write_configs().is_ok());
    ASSERT_TRUE(cluster_->start_all().is_ok());
    // Every node follows the leader and knows the keyspace table (until
    // then a node answers -TRYAGAIN), as `chorus up` waits for.
    auto a = cluster_->wait_for_agreement(15s);
    ASSERT_TRUE(a.agreed()) << "no leader that every node follows; logs in " << dir_;
  }

  void TearDown() override {
    if (cluster_) cluster_->stop_all();
    if (!HasFailure() && !dir_.empty()) std::filesystem::remove_all(dir_);
  }

  tools::LocalCluster& c() { return *cluster_; }

  Client connect(int k, std::chrono::milliseconds timeout = 2000ms) {
    const auto& ep = c().config(k).listen.client;
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    Client cl(redisConnectWithTimeout(ep.host.c_str(), ep.port, tv));
    if (cl && cl->err == 0) redisSetTimeout(cl.get(), tv);
    return cl;
  }

  // Runs a command; nullptr on a connection error.
  static Reply cmd(redisContext* cl, const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    return Reply(static_cast<redisReply*>(
        redisCommandArgv(cl, static_cast<int>(args.size()), argv.data(), lens.data())));
  }
  static std::string str(const Reply& r) {
    if (!r) return "<no reply>";
    switch (r->type) {
      case REDIS_REPLY_STRING:
      case REDIS_REPLY_STATUS:
      case REDIS_REPLY_ERROR:
        return std::string(r->str, r->len);
      case REDIS_REPLY_INTEGER:
        return std::to_string(r->integer);
      case REDIS_REPLY_NIL:
        return "<nil>";
      default:
        return "<array>";
    }
  }

  // Retries a write until it is acknowledged (or the deadline): after a
  // failover a command may get -TRYAGAIN while the new leader is elected.
  bool write_until_ok(int k, const std::string& key, const std::string& value,
                      std::chrono::milliseconds limit = 10000ms) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
      auto cl = connect(k);
      if (cl && cl->err == 0) {
        auto r = cmd(cl.get(), {"SET", key, value});
        if (r && r->type == REDIS_REPLY_STATUS && str(r) == "OK") return true;
      }
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }

  // The field `name` of a CHORUS.KEYSPACE INFO reply ("" when absent).
  static std::string info_field(redisContext* cl, const std::string& keyspace,
                                const std::string& name) {
    auto r = cmd(cl, {"CHORUS.KEYSPACE", "INFO", keyspace});
    if (!r || r->type != REDIS_REPLY_ARRAY) return std::string();
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      if (std::string(r->element[i]->str, r->element[i]->len) == name)
        return std::string(r->element[i + 1]->str, r->element[i + 1]->len);
    }
    return std::string();
  }

  // The primary of `keyspace` as node `asked` sees it once one is appointed
  // (0 if none within `within`), other than `not_this`.
  int primary_of(int asked, const std::string& keyspace, int not_this,
                 std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (std::chrono::steady_clock::now() < deadline) {
      auto cl = connect(asked);
      if (cl && cl->err == 0) {
        const std::string leader = info_field(cl.get(), keyspace, "leader");
        if (!leader.empty() && leader != "0" && std::stoi(leader) != not_this)
          return std::stoi(leader);
      }
      std::this_thread::sleep_for(50ms);
    }
    return 0;
  }

  // GET `key` on node k as a follower read (CHORUS.CONSISTENCY follower), on
  // a fresh connection: the node may still be starting ("<not up>").
  std::string follower_read(int k, const std::string& key) {
    auto cl = connect(k, 5000ms);
    if (!cl || cl->err != 0 || str(cmd(cl.get(), {"CHORUS.CONSISTENCY", "follower"})) != "OK")
      return "<not up>";
    return str(cmd(cl.get(), {"GET", key}));
  }

  // Runs a shell command; returns its exit status and fills *output.
  static int run(const std::string& command, std::string* output = nullptr) {
    FILE* p = popen((command + " 2>&1").c_str(), "r");
    if (!p) return -1;
    std::string out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int rc = pclose(p);
    if (output) *output = out;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  }

  std::filesystem::path dir_;
  std::unique_ptr<tools::LocalCluster> cluster_;
};

}  // namespace chorus::tests
