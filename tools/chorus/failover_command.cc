// `chorus bench-failover`: how long a 3-node cluster is unavailable for
// writes after its leader is killed with SIGKILL. Each trial kills the
// leader, then measures the time until a write is acknowledged by a survivor
// (a follower waits for the new leader and forwards), restarts the killed
// node and waits for it to catch up. Prints every trial and the median/max.
//
// --strategy S (paxos, sync-all, semi-sync, async): the same for a keyspace of
// that strategy (prefix "fo:"): the node killed is its primary (paxos: its
// leader, the distinguished proposer), and the time runs
// until its new primary acknowledges a write. While the primary is killed a
// writer is writing distinct keys to it; afterwards every write it saw
// acknowledged is read back from the new primary, and the ones missing are
// the acknowledged writes lost by that failover (async may lose some; the
// others must lose none). A sync-all primary is restarted at once after the
// kill: with on_replica_failure = block no write is acknowledged while a
// member is down, so its number is the time until a crash-restarted
// primary's successor acknowledges a write. --option NAME=VALUE (repeatable)
// passes keyspace options to CREATE; with on_replica_failure=reconfigure the
// sync-all primary is not restarted at once (the manager drops it).
#include <hiredis/hiredis.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "local_cluster.h"
#include "nemesis_workload.h"

namespace chorus::tools {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct FailoverArgs {
  std::string strategy = "raft";
  int trials = 20;
  std::string dir = "/tmp/chorus-failover";
  int base_port = 27001;
  bool json = false;
  bool keep = false;                 // leave the directory (node logs) for inspection
  std::vector<std::string> options;  // NAME=VALUE, keyspace options for CREATE
};

using nemesis::Connection;

Connection connect(const Endpoint& ep) {
  return Connection(ep, std::chrono::milliseconds(200), std::chrono::milliseconds(3000));
}

// The reply to `args` as text: a status, string or error ("" for none).
std::string call(Connection& c, const std::vector<std::string>& args, bool* status = nullptr) {
  const nemesis::Reply r = c.command(args);
  if (status) *status = r.type == nemesis::Reply::Type::kStatus;
  return r.text;
}

bool write_once(const Endpoint& ep, const std::string& key) {
  auto c = connect(ep);
  if (!c.ok()) return false;
  bool ok = false;
  call(c, {"SET", key, "x"}, &ok);
  return ok;
}

// A field of CHORUS.KEYSPACE INFO fo asked of `ep` ("" if unavailable).
std::string info(const Endpoint& ep, const std::string& field) {
  std::unique_ptr<redisContext, decltype(&redisFree)> c(
      redisConnectWithTimeout(ep.host.c_str(), ep.port, timeval{0, 200000}), redisFree);
  if (!c || c->err) return "";
  redisSetTimeout(c.get(), timeval{3, 0});
  auto* r = static_cast<redisReply*>(redisCommand(c.get(), "CHORUS.KEYSPACE INFO fo"));
  std::string out;
  if (r != nullptr && r->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
      if (std::string(r->element[i]->str, r->element[i]->len) == field)
        out.assign(r->element[i + 1]->str, r->element[i + 1]->len);
    }
  }
  if (r) freeReplyObject(r);
  return out;
}

// The keyspace's primary as some live node other than `not_this` sees it.
std::optional<int> primary_of(const LocalCluster& c, int not_this,
                              std::chrono::milliseconds within) {
  const auto deadline = Clock::now() + within;
  while (Clock::now() < deadline) {
    for (int k = 1; k <= 3; ++k) {
      if (k == not_this) continue;
      const std::string p = info(c.config(k).listen.client, "leader");
      if (!p.empty() && p != "0" && std::stoi(p) != not_this) return std::stoi(p);
    }
    std::this_thread::sleep_for(20ms);
  }
  return std::nullopt;
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
  const bool keyspace = a.strategy != "raft";
  if (keyspace) {
    auto l = c.wait_for_leader(10s);
    auto conn = l ? connect(c.config(*l).listen.client) : Connection();
    std::vector<std::string> create{
        "CHORUS.KEYSPACE", "CREATE", "fo", "PREFIX", "fo:", "STRATEGY", a.strategy};
    for (const auto& o : a.options) {
      const size_t eq = o.find('=');
      create.push_back(o.substr(0, eq));
      create.push_back(eq == std::string::npos ? "" : o.substr(eq + 1));
    }
    const std::string r = conn.ok() ? call(conn, create) : "no leader";
    if (r != "OK") {
      std::fprintf(stderr, "creating the keyspace: %s\n", r.c_str());
      c.stop_all();
      return 1;
    }
  }
  std::vector<double> ms;
  uint64_t lost_total = 0;
  uint64_t acked_total = 0;
  for (int t = 1; t <= a.trials; ++t) {
    auto leader = keyspace ? primary_of(c, 0, 10s) : c.wait_for_leader(10s);
    if (!leader) {
      std::fprintf(stderr, "trial %d: no leader\n", t);
      c.stop_all();
      return 1;
    }
    const std::string prefix = keyspace ? "fo:" : "";
    // Warm: a write through the leader, every node caught up.
    write_once(c.config(*leader).listen.client, prefix + "warm");
    for (int k = 1; keyspace && k <= 3; ++k) {
      for (int i = 0; i < 200; ++i) {
        const std::string applied = info(c.config(k).listen.client, "applied_index");
        const std::string commit = info(c.config(*leader).listen.client, "commit_index");
        if (!applied.empty() && !commit.empty() && std::stoull(applied) >= std::stoull(commit))
          break;
        std::this_thread::sleep_for(10ms);
      }
    }
    for (int k = 1; !keyspace && k <= 3; ++k) {
      for (int i = 0; i < 200 && !caught_up(c, k, *leader); ++i) std::this_thread::sleep_for(10ms);
    }
    const int killed = *leader;
    // A writer on the doomed primary: what it saw acknowledged must survive
    // (or be lost, for async, and then counted).
    std::vector<std::string> acked;
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      auto w = connect(c.config(killed).listen.client);
      for (int i = 0; w.ok() && !stop; ++i) {
        const std::string key = fmt::format("{}w:{}:{}", prefix, t, i);
        bool ok = false;
        call(w, {"SET", key, "v"}, &ok);
        if (!ok) break;
        acked.push_back(key);
      }
    });
    std::this_thread::sleep_for(100ms);
    const auto t0 = Clock::now();
    (void)c.signal(killed, SIGKILL);
    stop = true;
    writer.join();
    // Sync-all (on_replica_failure = block) acknowledges nothing while a
    // member is down: its trial is a crash and an immediate restart.
    const bool restart_at_once =
        a.strategy == "sync-all" && std::find(a.options.begin(), a.options.end(),
                                              "on_replica_failure=reconfigure") == a.options.end();
    if (restart_at_once) {
      (void)c.stop(killed);  // reap
      (void)c.start(killed);
    }
    bool ok = false;
    for (int attempt = 0; !ok && Clock::now() - t0 < 10s; ++attempt) {
      const int k = (killed + attempt % 2) % 3 + 1;  // the two survivors in turn
      ok = write_once(c.config(k).listen.client, fmt::format("{}failover-{}", prefix, t));
    }
    const double took = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (!ok) {
      std::fprintf(stderr, "trial %d: no write acknowledged within 10s\n", t);
      c.stop_all();
      return 1;
    }
    ms.push_back(took);
    // Read back what the writer saw acknowledged, from whoever leads now.
    uint64_t lost = 0;
    auto now_leader = keyspace ? primary_of(c, killed, 10s) : c.wait_for_leader(10s);
    auto r = now_leader ? connect(c.config(*now_leader).listen.client) : Connection();
    for (const auto& key : acked) {
      if (!r.ok() || call(r, {"GET", key}) != "v") ++lost;
    }
    lost_total += lost;
    acked_total += acked.size();
    std::printf(
        "trial %2d: killed n%d, next acknowledged write after %.1f ms; acknowledged writes lost "
        "%llu of %zu\n",
        t, killed, took, static_cast<unsigned long long>(lost), acked.size());
    std::fflush(stdout);
    if (!restart_at_once) {
      (void)c.stop(killed);  // reap
      (void)c.start(killed);
    }
    auto l2 = c.wait_for_leader(10s);
    for (int i = 0; !keyspace && i < 500 && l2 && !caught_up(c, killed, *l2); ++i)
      std::this_thread::sleep_for(10ms);
    if (keyspace) std::this_thread::sleep_for(1s);  // the restarted node catches up as a backup
  }
  c.stop_all();
  std::sort(ms.begin(), ms.end());
  const double median =
      ms.size() % 2 ? ms[ms.size() / 2] : (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]) / 2;
  std::printf(
      "%s failover over %zu trials: median %.1f ms, min %.1f ms, max %.1f ms; acknowledged writes "
      "lost %llu of %llu\n",
      a.strategy.c_str(), ms.size(), median, ms.front(), ms.back(),
      static_cast<unsigned long long>(lost_total), static_cast<unsigned long long>(acked_total));
  if (a.json) {
    std::printf(
        "{\"strategy\":\"%s\",\"trials\":%zu,\"median_ms\":%.1f,\"min_ms\":%.1f,\"max_ms\":%.1f,"
        "\"lost\":%llu,\"acknowledged\":%llu}\n",
        a.strategy.c_str(), ms.size(), median, ms.front(), ms.back(),
        static_cast<unsigned long long>(lost_total), static_cast<unsigned long long>(acked_total));
  }
  if (a.keep) {
    std::printf("kept %s (node logs under it)\n", a.dir.c_str());
  } else {
    std::filesystem::remove_all(a.dir);
  }
  return 0;
}

}  // namespace

void add_failover_command(CLI::App& app) {
  auto args = std::make_shared<FailoverArgs>();
  CLI::App* cmd = app.add_subcommand("bench-failover",
                                     "Measure write unavailability after kill -9 of the leader");
  cmd->add_option("--strategy", args->strategy,
                  "raft (the default group), or a keyspace of paxos, sync-all, semi-sync or async")
      ->check(CLI::IsMember({"raft", "paxos", "sync-all", "semi-sync", "async"}))
      ->capture_default_str();
  cmd->add_option("--trials", args->trials, "Number of leader kills")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--dir", args->dir, "Scratch directory for the cluster (removed unless --keep)")
      ->capture_default_str();
  cmd->add_option("--base-port", args->base_port, "Client port of node 1")->capture_default_str();
  cmd->add_option("--option", args->options,
                  "Keyspace option NAME=VALUE for CREATE (repeatable), e.g. "
                  "on_replica_failure=reconfigure")
      ->check([](const std::string& s) {
        return s.find('=') == std::string::npos ? std::string("expected NAME=VALUE") : "";
      });
  cmd->add_flag("--json", args->json, "Also print a JSON summary line");
  cmd->add_flag("--keep", args->keep, "Keep the scratch directory and the nodes' logs afterwards");
  cmd->callback([args] {
    if (int rc = run_failover(*args); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace chorus::tools
