// `chorus bench-failover`: how long a 3-node cluster is unavailable for
// writes after its leader is killed with SIGKILL. Each trial kills the
// leader, then measures the time until a write is acknowledged by a survivor
// (a follower waits for the new leader and forwards), restarts the killed
// node and waits for it to catch up. Prints every trial and the median/max.
#include <hiredis/hiredis.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "local_cluster.h"

namespace chorus::tools {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct FailoverArgs {
  int trials = 20;
  std::string dir = "/tmp/chorus-failover";
  int base_port = 27001;
  bool json = false;
};

bool write_once(const Endpoint& ep, const std::string& key) {
  timeval tv{3, 0};
  redisContext* c = redisConnectWithTimeout(ep.host.c_str(), ep.port, timeval{0, 200000});
  if (c == nullptr || c->err) {
    if (c) redisFree(c);
    return false;
  }
  redisSetTimeout(c, tv);
  auto* r = static_cast<redisReply*>(redisCommand(c, "SET %s x", key.c_str()));
  const bool ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
  if (r) freeReplyObject(r);
  redisFree(c);
  return ok;
}

bool caught_up(const LocalCluster& c, int k, int leader) {
  auto l = c.status(leader);
  auto s = c.status(k);
  return l.is_ok() && s.is_ok() && s->applied_index >= l->commit_index;
}

int run_failover(const FailoverArgs& a) {
  std::filesystem::remove_all(a.dir);
  LocalClusterOptions o;
  o.nodes = 3;
  o.dir = a.dir;
  o.base_port = static_cast<uint16_t>(a.base_port);
  LocalCluster c(o);
  if (Status st = c.write_configs(); !st.is_ok())
    return std::fprintf(stderr, "%s\n", st.to_string().c_str()), 1;
  if (Status st = c.start_all(); !st.is_ok())
    return std::fprintf(stderr, "%s\n", st.to_string().c_str()), 1;
  std::vector<double> ms;
  for (int t = 1; t <= a.trials; ++t) {
    auto leader = c.wait_for_leader(10s);
    if (!leader) {
      std::fprintf(stderr, "trial %d: no leader\n", t);
      c.stop_all();
      return 1;
    }
    // Warm: a write through the leader, every node caught up.
    write_once(c.config(*leader).listen.client, "warm");
    for (int k = 1; k <= 3; ++k) {
      for (int i = 0; i < 200 && !caught_up(c, k, *leader); ++i) std::this_thread::sleep_for(10ms);
    }
    const int killed = *leader;
    const auto t0 = Clock::now();
    (void)c.signal(killed, SIGKILL);
    bool ok = false;
    for (int attempt = 0; !ok && Clock::now() - t0 < 10s; ++attempt) {
      const int k = (killed + attempt % 2) % 3 + 1;  // the two survivors in turn
      ok = write_once(c.config(k).listen.client, fmt::format("failover-{}", t));
    }
    const double took = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!ok) {
      std::fprintf(stderr, "trial %d: no write acknowledged within 10s\n", t);
      c.stop_all();
      return 1;
    }
    ms.push_back(took);
    std::printf("trial %2d: killed n%d, next acknowledged write after %.1f ms\n", t, killed, took);
    std::fflush(stdout);
    (void)c.stop(killed);  // reap
    (void)c.start(killed);
    auto l2 = c.wait_for_leader(10s);
    for (int i = 0; i < 500 && l2 && !caught_up(c, killed, *l2); ++i)
      std::this_thread::sleep_for(10ms);
  }
  c.stop_all();
  std::sort(ms.begin(), ms.end());
  const double median =
      ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
  std::printf("failover over %zu trials: median %.1f ms, min %.1f ms, max %.1f ms\n", ms.size(),
              median, ms.front(), ms.back());
  if (a.json) {
    std::printf("{\"trials\":%zu,\"median_ms\":%.1f,\"min_ms\":%.1f,\"max_ms\":%.1f}\n", ms.size(),
                median, ms.front(), ms.back());
  }
  std::filesystem::remove_all(a.dir);
  return 0;
}

}  // namespace

void add_failover_command(CLI::App& app) {
  auto args = std::make_shared<FailoverArgs>();
  CLI::App* cmd = app.add_subcommand("bench-failover",
                                     "Measure write unavailability after kill -9 of the leader");
  cmd->add_option("--trials", args->trials, "Number of leader kills")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--dir", args->dir, "Scratch directory for the cluster (removed)")
      ->capture_default_str();
  cmd->add_option("--base-port", args->base_port, "Client port of node 1")->capture_default_str();
  cmd->add_flag("--json", args->json, "Also print a JSON summary line");
  cmd->callback([args] {
    if (int rc = run_failover(*args); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace chorus::tools
