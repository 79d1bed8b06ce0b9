#include "nemesis_runner.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "base/assert.h"
#include "base/prng.h"
#include "local_cluster.h"
#include "nemesis_firewall.h"
#include "nemesis_workload.h"
#include "server/commands.h"

namespace chorus::tools::nemesis {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// After healing, stale requests may still be pending inside a node that was
// paused (they sat in its socket buffers); the server gives up on a request 5 s
// after it read it. The final reads wait this long after healing so that
// nothing from the workload is still in flight when they run.
constexpr auto kSettleAfterHeal = 6s;

// Sleeps `d`, waking every 50 ms to poll `interrupted`. False if interrupted.
bool nap(std::chrono::milliseconds d, const std::atomic<bool>& interrupted) {
  const auto until = Clock::now() + d;
  while (!interrupted) {
    const auto now = Clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<Clock::duration>(50ms, until - now));
  }
  return false;
}

std::string node_host(int k) {
  return fmt::format("127.0.0.{}", 10 + k);
}

bool port_free(const std::string& host, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = inet_addr(host.c_str());
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// A base port whose client, peer and admin ports (base+k-1, +100, +1000) are
// free on every node address. All of them stay below 32768, where Linux's
// ephemeral range starts: a node restarted after kill -9 must get its ports
// back, and an outgoing connection from the same address could otherwise take
// one of them meanwhile.
uint16_t pick_base_port(int nodes, uint64_t seed) {
  Prng prng(seed ^ (static_cast<uint64_t>(getpid()) << 20) ^
            static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  for (int attempt = 0; attempt < 200; ++attempt) {
    const auto base = static_cast<uint16_t>(20000 + prng.uniform(0, 1099) * 10);
    bool ok = true;
    for (int k = 1; k <= nodes && ok; ++k) {
      for (int off : {0, 100, 1000})
        ok = ok && port_free(node_host(k), static_cast<uint16_t>(base + off + k - 1));
    }
    if (ok) return base;
  }
  return 0;
}

std::string log_tail(const std::string& path, size_t lines) {
  std::ifstream in(path);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (last.size() > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "      " + l + "\n";
  return out;
}

std::string names(const std::vector<int>& nodes) {
  std::string s;
  for (int k : nodes) s += fmt::format("{}n{}", s.empty() ? "" : " ", k);
  return s;
}

// Stops every node it guards when it goes out of scope (also on unwinding).
struct ClusterGuard {
  LocalCluster& cluster;
  ~ClusterGuard() { cluster.stop_all(); }
};

// ---------------------------------------------------------------------------
// FaultInjector: injects and heals one fault at a time on the cluster.

class FaultInjector {
 public:
  // `deaf_after`: how long a deaf stall keeps the node deaf after SIGCONT
  // (stall()); `interrupted` cuts that short.
  FaultInjector(LocalCluster& c, Firewall* fw, uint64_t seed, Clock::time_point t0, bool quiet,
                std::chrono::milliseconds deaf_after, const std::atomic<bool>& interrupted)
      : c_(c),
        fw_(fw),
        prng_(seed),
        t0_(t0),
        quiet_(quiet),
        deaf_after_(deaf_after),
        interrupted_(interrupted) {}

  // `hold`: how long the fault will be held (named in a stall's description).
  FaultEvent inject(FaultKind k, std::chrono::milliseconds hold);
  void heal(FaultEvent& ev, std::vector<std::string>* problems);
  // SIGCONT every paused node, start every killed one, flush the firewall.
  void heal_everything(std::vector<std::string>* problems);
  // Nodes that exited without being killed: reported and restarted.
  void check_nodes(std::vector<std::string>* problems);
  Prng& prng() { return prng_; }

 private:
  struct Target {
    int node;
    bool leader;
  };
  std::optional<int> leader() const;
  Target pick(double p_leader);
  std::vector<int> shuffled();
  std::vector<int> all_but(int node) const;
  FaultEvent kill();
  FaultEvent pause();
  FaultEvent stall(std::chrono::milliseconds hold);
  FaultEvent partition();
  FaultEvent restart();
  // Drops traffic from every node of a to every node of b (and back if both_ways).
  void cut(const std::vector<int>& a, const std::vector<int>& b, bool both_ways);
  void say(const FaultEvent& ev, bool healed) const;

  LocalCluster& c_;
  Firewall* fw_;
  Prng prng_;
  Clock::time_point t0_;
  bool quiet_;
  std::chrono::milliseconds deaf_after_;
  const std::atomic<bool>& interrupted_;
  std::set<int> killed_, paused_;
  std::vector<int> current_;  // the nodes the active fault acts on
  bool deaf_ = false;         // the active stall also drops the peers' traffic to the node
};

std::optional<int> FaultInjector::leader() const {
  std::optional<int> best;
  uint64_t best_term = 0;
  for (int k = 1; k <= c_.size(); ++k) {
    if (killed_.contains(k) || paused_.contains(k)) continue;
    auto s = c_.status(k, 300ms);
    if (s.is_ok() && s->role == "leader" && (!best || s->term > best_term)) {
      best = k;
      best_term = s->term;
    }
  }
  return best;
}

FaultInjector::Target FaultInjector::pick(double p_leader) {
  auto l = leader();
  if (l && prng_.chance(p_leader)) return {*l, true};
  std::vector<int> others;
  for (int k = 1; k <= c_.size(); ++k) {
    if (k != l.value_or(0)) others.push_back(k);
  }
  return {others[prng_.uniform(0, others.size() - 1)], false};
}

std::vector<int> FaultInjector::all_but(int node) const {
  std::vector<int> v;
  for (int k = 1; k <= c_.size(); ++k) {
    if (k != node) v.push_back(k);
  }
  return v;
}

std::vector<int> FaultInjector::shuffled() {
  std::vector<int> v;
  for (int k = 1; k <= c_.size(); ++k) v.push_back(k);
  for (size_t i = v.size() - 1; i > 0; --i) std::swap(v[i], v[prng_.uniform(0, i)]);
  return v;
}

FaultEvent FaultInjector::inject(FaultKind k, std::chrono::milliseconds hold) {
  FaultEvent ev;
  switch (k) {
    case FaultKind::kKill:
      ev = kill();
      break;
    case FaultKind::kPause:
      ev = pause();
      break;
    case FaultKind::kStall:
      ev = stall(hold);
      break;
    case FaultKind::kPartition:
      ev = partition();
      break;
    case FaultKind::kRestart:
      ev = restart();
      break;
  }
  ev.kind = k;
  say(ev, false);
  return ev;
}

FaultEvent FaultInjector::kill() {
  const Target t = pick(0.6);
  FaultEvent ev;
  ev.shape = t.leader ? "kill-leader" : "kill-follower";
  ev.what = fmt::format("kill -9 n{}{}", t.node, t.leader ? " (leader)" : "");
  (void)c_.signal(t.node, SIGKILL);
  ev.start_us = micros_since(t0_);
  killed_.insert(t.node);
  current_ = {t.node};
  return ev;
}

FaultEvent FaultInjector::pause() {
  const Target t = pick(0.5);
  FaultEvent ev;
  ev.shape = t.leader ? "pause-leader" : "pause-follower";
  ev.what = fmt::format("SIGSTOP n{}{}", t.node, t.leader ? " (leader)" : "");
  (void)c_.signal(t.node, SIGSTOP);
  ev.start_us = micros_since(t0_);
  paused_.insert(t.node);
  current_ = {t.node};
  return ev;
}

// A stall is a pause too short for the node to be replaced for long: it
// targets the leader more often than pause does, since only a leader's lease
// can go stale while it is stopped.
//
// Deaf stalls. On one machine the new leader's messages are already in the
// stalled node's socket buffers when it resumes, and its first loop turn
// hands them over before it reads any request sent after a write of the new
// leader completed: it is deposed before its lease could be misused. Across a
// real network those messages can take longer than the lease. So when the
// firewall is available, half the stalls also drop the peers' traffic to the
// node, from the stop until deaf_after_ (a lease's length) after SIGCONT: the
// resumed node must decide alone whether its lease still holds.
FaultEvent FaultInjector::stall(std::chrono::milliseconds hold) {
  const Target t = pick(0.75);
  deaf_ = fw_ != nullptr && prng_.chance(0.5);
  FaultEvent ev;
  ev.shape = fmt::format("stall-{}{}", t.leader ? "leader" : "follower", deaf_ ? "-deaf" : "");
  ev.what = fmt::format(
      "stall n{}{}: SIGSTOP for {} ms{}", t.node, t.leader ? " (leader)" : "", hold.count(),
      deaf_ ? fmt::format(", deaf to its peers until {} ms after SIGCONT", deaf_after_.count())
            : "");
  (void)c_.signal(t.node, SIGSTOP);
  ev.start_us = micros_since(t0_);
  if (deaf_) cut(all_but(t.node), {t.node}, false);
  paused_.insert(t.node);
  current_ = {t.node};
  return ev;
}

FaultEvent FaultInjector::partition() {
  const int n = c_.size();
  const auto l = leader();
  const int lead = l.value_or(static_cast<int>(prng_.uniform(1, static_cast<uint64_t>(n))));
  std::vector<int> rest;
  for (int k = 1; k <= n; ++k) {
    if (k != lead) rest.push_back(k);
  }
  FaultEvent ev;
  switch (prng_.uniform(0, 3)) {
    case 0: {  // the leader alone
      cut({lead}, rest, true);
      ev.shape = "partition-isolate-leader";
      ev.what = fmt::format("partition: n{} (leader) | {}", lead, names(rest));
      break;
    }
    case 1: {  // a random minority / majority split
      auto v = shuffled();
      const auto minority =
          static_cast<size_t>(prng_.uniform(1, static_cast<uint64_t>((n - 1) / 2)));
      std::vector<int> a(v.begin(), v.begin() + static_cast<long>(minority)),
          b(v.begin() + static_cast<long>(minority), v.end());
      cut(a, b, true);
      ev.shape = "partition-majority-minority";
      ev.what = fmt::format("partition: {} | {} (leader was n{})", names(a), names(b), lead);
      break;
    }
    case 2: {  // a bridge: one node sees both sides, which do not see each other
      auto v = shuffled();
      const int bridge = v.back();
      v.pop_back();
      std::vector<int> a(v.begin(), v.begin() + static_cast<long>(v.size() / 2)),
          b(v.begin() + static_cast<long>(v.size() / 2), v.end());
      cut(a, b, true);
      ev.shape = "partition-bridge";
      ev.what = fmt::format("partition: {} | {} with bridge n{} (leader was n{})", names(a),
                            names(b), bridge, lead);
      break;
    }
    default: {  // one-way loss around the leader
      const bool outgoing = prng_.chance(0.5);
      if (outgoing) {
        cut({lead}, rest, false);
      } else {
        cut(rest, {lead}, false);
      }
      ev.shape = "partition-one-way";
      ev.what = fmt::format("one-way partition: n{} (leader) {} {}", lead,
                            outgoing ? "cannot send to" : "cannot hear from", names(rest));
      break;
    }
  }
  ev.start_us = micros_since(t0_);
  current_.clear();
  return ev;
}

FaultEvent FaultInjector::restart() {
  FaultEvent ev;
  std::vector<int> nodes;
  if (prng_.chance(0.3)) {
    for (int k = 1; k <= c_.size(); ++k) nodes.push_back(k);
    ev.shape = "restart-all";
    ev.what = "crash-restart of every node (kill -9, start)";
  } else {
    const Target t = pick(0.5);
    nodes = {t.node};
    ev.shape = t.leader ? "restart-leader" : "restart-follower";
    ev.what =
        fmt::format("crash-restart n{}{} (kill -9, start)", t.node, t.leader ? " (leader)" : "");
  }
  for (int k : nodes) (void)c_.signal(k, SIGKILL);
  ev.start_us = micros_since(t0_);
  for (int k : nodes) {
    (void)c_.stop(k, 2s);  // reaps it
    killed_.insert(k);     // until heal() starts it (right away)
  }
  current_ = nodes;
  return ev;
}

void FaultInjector::cut(const std::vector<int>& a, const std::vector<int>& b, bool both_ways) {
  if (fw_ == nullptr) return;
  std::vector<Firewall::Link> links;
  for (int x : a) {
    for (int y : b) {
      links.push_back({c_.config(x).listen.peer, c_.config(y).listen.peer});
      if (both_ways) links.push_back({c_.config(y).listen.peer, c_.config(x).listen.peer});
    }
  }
  if (Status st = fw_->drop(links); !st.is_ok()) {
    std::fprintf(stderr, "nemesis: %s\n", st.to_string().c_str());
  }
}

void FaultInjector::heal(FaultEvent& ev, std::vector<std::string>* problems) {
  switch (ev.kind) {
    case FaultKind::kKill:
    case FaultKind::kRestart:
      for (int k : current_) {
        if (Status st = c_.start(k); !st.is_ok()) {
          problems->push_back(fmt::format("could not restart n{}: {}", k, st.to_string()));
        }
        killed_.erase(k);
      }
      break;
    case FaultKind::kPause:
    case FaultKind::kStall:
      for (int k : current_) {
        (void)c_.signal(k, SIGCONT);
        paused_.erase(k);
      }
      if (deaf_) {
        CHORUS_ASSERT(fw_ != nullptr);  // stall() makes a stall deaf only with a firewall
        nap(deaf_after_, interrupted_);
        if (Status st = fw_->heal(); !st.is_ok()) problems->push_back(st.to_string());
        deaf_ = false;
      }
      break;
    case FaultKind::kPartition:
      if (fw_) {
        if (Status st = fw_->heal(); !st.is_ok()) problems->push_back(st.to_string());
      }
      break;
  }
  current_.clear();
  ev.end_us = micros_since(t0_);
  say(ev, true);
}

void FaultInjector::heal_everything(std::vector<std::string>* problems) {
  for (int k : paused_) (void)c_.signal(k, SIGCONT);
  paused_.clear();
  for (int k : killed_) {
    if (Status st = c_.start(k); !st.is_ok()) {
      problems->push_back(fmt::format("could not restart n{}: {}", k, st.to_string()));
    }
  }
  killed_.clear();
  current_.clear();
  deaf_ = false;
  if (fw_) (void)fw_->heal();
}

void FaultInjector::check_nodes(std::vector<std::string>* problems) {
  for (int k = 1; k <= c_.size(); ++k) {
    if (killed_.contains(k) || c_.running(k)) continue;
    problems->push_back(fmt::format(
        "n{} exited on its own at {:.3f}s; the end of {}/chorusd.log:\n{}", k,
        micros_since(t0_) / 1e6, c_.node_dir(k), log_tail(c_.node_dir(k) + "/chorusd.log", 8)));
    if (!quiet_)
      std::printf("[%9.3fs] n%d exited on its own: restarting it\n", micros_since(t0_) / 1e6, k);
    (void)c_.stop(k, 1s);
    (void)c_.start(k);
  }
}

void FaultInjector::say(const FaultEvent& ev, bool healed) const {
  if (quiet_) return;
  const int64_t at = healed ? ev.end_us : ev.start_us;
  std::printf("[%9.3fs] %s%s\n", at / 1e6, healed ? "healed: " : "", ev.what.c_str());
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// The run, step by step

Result<std::string> make_dir(const Options& o) {
  std::error_code ec;
  if (!o.dir.empty()) {
    if (fs::exists(o.dir, ec) && !fs::is_empty(o.dir, ec)) {
      return Status::invalid_argument(fmt::format("--dir {} exists and is not empty", o.dir));
    }
    fs::create_directories(o.dir, ec);
    if (ec) return Status::io_error(fmt::format("cannot create {}: {}", o.dir, ec.message()));
    return fs::absolute(o.dir).string();
  }
  std::string tmpl = (fs::temp_directory_path(ec) / "chorus-nemesis-XXXXXX").string();
  if (mkdtemp(tmpl.data()) == nullptr)
    return Status::io_error("cannot create a temporary directory");
  return tmpl;
}

// The firewall when partitions or stalls (some of them deaf) are asked for
// and it can be used; otherwise drops kPartition from *kinds and says why in
// *note.
std::unique_ptr<Firewall> open_firewall(std::vector<FaultKind>* kinds, std::string* note) {
  auto has = [kinds](FaultKind k) { return std::find(kinds->begin(), kinds->end(), k); };
  const bool stalls = has(FaultKind::kStall) != kinds->end();
  if (has(FaultKind::kPartition) == kinds->end() && !stalls) return nullptr;
  if (int stale = Firewall::remove_stale_chains(); stale > 0) {
    std::printf("nemesis: removed %d iptables chain(s) left by nemesis runs that died\n", stale);
  }
  std::string why;
  auto fw = Firewall::open(&why);
  if (!fw) {
    if (auto it = has(FaultKind::kPartition); it != kinds->end()) kinds->erase(it);
    *note = fmt::format("partitions{} skipped: {}", stalls ? " and deaf stalls" : "", why);
    std::printf("nemesis: %s\n", note->c_str());
  }
  return fw;
}

LocalClusterOptions cluster_options(const Options& o, const std::string& dir, uint16_t base) {
  LocalClusterOptions c;
  c.nodes = o.nodes;
  c.dir = dir;
  c.base_port = base;
  c.ip_per_node = true;
  c.chorusd = o.chorusd;
  const bool lease = o.consistency == Consistency::kLease;
  c.tune = [check_quorum = o.check_quorum, lease](server::NodeConfig& cfg) {
    cfg.raft.check_quorum = check_quorum;
    cfg.raft.lease_reads = lease;
    // Snapshots often enough that a node down for a few seconds catches up
    // through a streamed snapshot, not only through the log.
    cfg.raft.snapshot_every_entries = 2000;
    cfg.raft.snapshot_trailing_entries = 500;
  };
  return c;
}

WorkloadOptions workload_options(const Options& o, const LocalCluster& c, Clock::time_point t0) {
  WorkloadOptions w;
  w.kind = o.workload;
  w.clients = o.clients;
  w.keys = o.keys;
  w.rate_per_client = o.rate_per_client;
  w.ops_per_key = o.ops_per_key;
  w.op_timeout = o.op_timeout;
  w.seed = o.seed;
  w.session_setup.push_back(
      {"CHORUS.CONSISTENCY", std::string(server::consistency_name(o.consistency))});
  for (int k = 1; k <= c.size(); ++k) w.nodes.push_back(c.config(k).listen.client);
  w.follow_refusals = o.strategy == "paxos";
  w.t0 = t0;
  return w;
}

std::chrono::milliseconds draw(Prng& prng, std::chrono::milliseconds lo,
                               std::chrono::milliseconds hi) {
  return std::chrono::milliseconds(prng.uniform(static_cast<uint64_t>(lo.count()),
                                                static_cast<uint64_t>(std::max(lo, hi).count())));
}

// How long a fault of this kind is held: a restart not at all (it heals at
// once), a stall within the stall range, the others within hold_min..max.
std::chrono::milliseconds hold_for(FaultKind kind, const Options& o, const StallRange& stall,
                                   Prng& prng) {
  switch (kind) {
    case FaultKind::kRestart:
      return 0ms;
    case FaultKind::kStall:
      return draw(prng, stall.min, stall.max);
    default:
      return draw(prng, o.hold_min, o.hold_max);
  }
}

// Quiet gap, one fault, heal; again until too little time is left for a
// whole cycle. The rest of the duration runs fault-free.
void fault_loop(const Options& o, const std::vector<FaultKind>& kinds, FaultInjector& inj,
                const Workload& w, Clock::time_point t0, const std::atomic<bool>& interrupted,
                bool quiet, RunResult* r) {
  const auto end = t0 + o.duration;
  auto next_progress = t0 + 30s;
  Prng& prng = inj.prng();
  while (!interrupted && !kinds.empty()) {
    const auto gap = draw(prng, o.quiet_min, o.quiet_max);
    const FaultKind kind = kinds[prng.uniform(0, kinds.size() - 1)];
    const auto hold = hold_for(kind, o, r->stall, prng);
    if (Clock::now() + gap + hold + 1s > end) break;
    if (!nap(gap, interrupted)) break;
    inj.check_nodes(&r->problems);
    FaultEvent ev = inj.inject(kind, hold);
    nap(hold, interrupted);
    inj.heal(ev, &r->problems);
    r->faults.push_back(std::move(ev));
    if (!quiet && Clock::now() >= next_progress) {
      std::printf("[%9.3fs] %llu operations so far\n", micros_since(t0) / 1e6,
                  static_cast<unsigned long long>(w.ops_done()));
      next_progress += 30s;
    }
  }
  if (Clock::now() < end)
    nap(std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()), interrupted);
}

// Reads every key through the leader (retrying elsewhere), recording each
// attempt as an operation of client `client`.
void final_reads(const LocalCluster& c, const std::vector<std::string>& keys, int leader,
                 uint64_t client, Clock::time_point t0, check::History* ops, RunResult* r) {
  const auto deadline = Clock::now() + 60s;
  int target = leader;
  Connection conn;
  for (const auto& key : keys) {
    for (bool done = false; !done;) {
      if (Clock::now() > deadline) {
        r->problems.push_back(fmt::format("no final read of key {} within 60 s", key));
        break;
      }
      if (!conn.ok()) conn = Connection(c.config(target).listen.client, 500ms, 6s);
      check::Operation op;
      op.client = client;
      op.key = key;
      op.invoke_us = micros_since(t0);
      const Reply reply = conn.command({"GET", key});
      op.complete_us = micros_since(t0);
      record_reply(op, reply);
      done = op.status == check::OpStatus::kOk;
      if (done) r->finals[key] = op.found ? std::optional<std::string>(op.output) : std::nullopt;
      ops->push_back(std::move(op));
      if (!done) {
        // Another node next (a primary-backup keyspace's backups refuse
        // linearizable reads, naming the primary).
        conn = Connection();
        target = target % c.size() + 1;
        std::this_thread::sleep_for(100ms);
      }
    }
  }
}

// Waits until node k has applied `target` (or 20 s pass).
bool caught_up(const LocalCluster& c, int k, uint64_t target) {
  const auto deadline = Clock::now() + 20s;
  while (Clock::now() < deadline) {
    auto s = c.status(k, 500ms);
    if (s.is_ok() && s->applied_index >= target) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Every node, once caught up, must hold exactly the final values (read
// locally: CHORUS.CONSISTENCY follower) and report itself healthy.
void check_replicas(const LocalCluster& c, int leader, bool keyspace, RunResult* r) {
  auto ls = c.status(leader, 1s);
  if (!ls.is_ok()) {
    r->problems.push_back(fmt::format("leader n{} stopped answering /status", leader));
    return;
  }
  for (int k = 1; k <= c.size(); ++k) {
    if (!caught_up(c, k, ls->commit_index)) {
      r->problems.push_back(
          fmt::format("n{} did not catch up to index {} within 20 s", k, ls->commit_index));
      continue;
    }
    auto s = c.status(k, 1s);
    if (s.is_ok() && !s->healthy)
      r->problems.push_back(fmt::format("n{} is unhealthy: {}", k, s->error));
    Connection conn(c.config(k).listen.client, 1s, 5s);
    if (conn.command({"CHORUS.CONSISTENCY", "follower"}).text != "OK") {
      r->problems.push_back(fmt::format("n{}: CHORUS.CONSISTENCY follower failed", k));
      continue;
    }
    // The default group's commit index says nothing of a keyspace's: there,
    // give each replica up to 20 s to converge on the final values.
    const auto converge_by = Clock::now() + (keyspace ? 20s : 0s);
    for (bool all_same = false; keyspace && !all_same && Clock::now() < converge_by;) {
      all_same = true;
      for (const auto& [key, value] : r->finals) {
        const Reply got = conn.command({"GET", key});
        all_same = all_same && (value ? got.type == Reply::Type::kString && got.text == *value
                                      : got.type == Reply::Type::kNil);
      }
      if (!all_same) std::this_thread::sleep_for(200ms);
    }
    for (const auto& [key, value] : r->finals) {
      const Reply got = conn.command({"GET", key});
      const bool same = value ? got.type == Reply::Type::kString && got.text == *value
                              : got.type == Reply::Type::kNil;
      if (!same && r->divergence.size() < 20) {
        r->divergence.push_back(
            fmt::format("n{} holds {} for key {}, the final read through the leader {}", k,
                        got.type == Reply::Type::kString ? check::describe_value(got.text)
                                                         : std::string("no value"),
                        key, value ? check::describe_value(*value) : std::string("no value")));
      }
    }
  }
}

// After the workload: heal, wait for a leader and for requests to settle,
// read every key, compare the replicas.
void finish(LocalCluster& c, FaultInjector& inj, const Workload& w, int clients, bool keyspace,
            Clock::time_point t0, const std::atomic<bool>& interrupted, RunResult* r) {
  inj.heal_everything(&r->problems);
  const auto healed_at = Clock::now();
  inj.check_nodes(&r->problems);
  auto leader = c.wait_for_leader(30s);
  if (!leader) {
    r->problems.push_back("no leader within 30 s after healing everything");
    return;
  }
  if (!nap(std::chrono::duration_cast<std::chrono::milliseconds>(healed_at + kSettleAfterHeal -
                                                                 Clock::now()),
           interrupted)) {
    return;
  }
  leader = c.wait_for_leader(10s);
  if (!leader) {
    r->problems.push_back("the leader was lost while the cluster settled");
    return;
  }
  check::History finals;
  final_reads(c, w.keys(), *leader, static_cast<uint64_t>(clients + 1), t0, &finals, r);
  r->history.insert(r->history.end(), finals.begin(), finals.end());
  for (size_t i = 0; i < r->history.size(); ++i) r->history[i].id = i + 1;
  check_replicas(c, *leader, keyspace, r);
}

// The keyspace "nemesis" of o.strategy for the workload's keys (every key
// starts with "r", or "a" for the append workload), and a primary for it.
Status create_keyspace(const LocalCluster& c, const Options& o) {
  const std::string prefix = o.workload == WorkloadKind::kAppend ? "a" : "r";
  const auto deadline = Clock::now() + 20s;
  std::string last;
  bool created = false;
  while (Clock::now() < deadline) {
    auto leader = c.wait_for_leader(5s);
    if (!leader) continue;
    Connection conn(c.config(*leader).listen.client, 500ms, 6s);
    if (!created) {
      last = conn.command({"CHORUS.KEYSPACE", "CREATE", "nemesis", "PREFIX", prefix, "STRATEGY",
                           o.strategy})
                 .text;
      created = last == "OK" || last.find("exists") != std::string::npos;
    }
    if (created) {
      // A primary is appointed (CHORUS.KEYSPACE INFO answers an array; a
      // SET through any node succeeds once one serves, or, for paxos, is
      // refused naming the proposer).
      const Reply set = conn.command({"SET", prefix + "-ready", "1"});
      if (set.text == "OK") return Status::ok();
      if (auto to = redirect_to(set.text); to && *to <= c.size()) {
        Connection hinted(c.config(*to).listen.client, 500ms, 6s);
        if (hinted.command({"SET", prefix + "-ready", "1"}).text == "OK") return Status::ok();
      }
      last = set.text;
    }
    std::this_thread::sleep_for(100ms);
  }
  return Status::unavailable(
      fmt::format("keyspace for strategy {} not serving within 20 s ({})", o.strategy, last));
}

// Every node's report of the writes it dropped from the "nemesis" keyspace
// (server/node.h, lost-writes.log: one JSON object per line).
void collect_lost_writes(const LocalCluster& c, RunResult* r) {
  for (int k = 1; k <= c.size(); ++k) {
    std::ifstream in(c.config(k).data_dir + "/lost-writes.log");
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || j.value("keyspace", "") != "nemesis") continue;
      const std::string kind = j.value("kind", "");
      if (kind == "in-doubt") ++r->in_doubt_reports;
      if (kind != "lost-acknowledged") continue;
      ++r->lost_reports;
      if (j.contains("positions")) {
        ++r->lost_ranges;
      } else if (j.contains("key") && j.contains("value")) {
        r->lost_writes.emplace(j["key"].get<std::string>(), j["value"].get<std::string>());
      }
    }
  }
}

}  // namespace

Result<RunResult> run(const Options& o, const std::atomic<bool>& interrupted, bool quiet) {
  RunResult r;
  r.seed = o.seed;
  CHORUS_ASSIGN_OR_RETURN(r.dir, make_dir(o));
  std::vector<FaultKind> kinds = o.faults;
  std::unique_ptr<Firewall> fw = open_firewall(&kinds, &r.partition_note);
  if (o.require_partitions && !r.partition_note.empty()) {
    r.skipped = true;
    return r;
  }
  const uint16_t base = o.base_port != 0 ? o.base_port : pick_base_port(o.nodes, o.seed);
  if (base == 0) return Status::unavailable("no free ports on 127.0.0.11..");
  LocalCluster cluster(cluster_options(o, r.dir, base));
  ClusterGuard guard{cluster};
  CHORUS_RETURN_IF_ERROR(cluster.write_configs());
  CHORUS_RETURN_IF_ERROR(cluster.start_all());
  if (!cluster.wait_for_leader(20s)) {
    return Status::unavailable(
        fmt::format("no leader elected within 20 s; logs in {}/n*/chorusd.log", r.dir));
  }
  r.cluster_note =
      fmt::format("{} nodes on {}..{}, client ports {}..{}, strategy {}", o.nodes, node_host(1),
                  node_host(o.nodes), base, base + o.nodes - 1, o.strategy);
  const server::RaftSection& raft = cluster.config(1).raft;
  r.stall = stall_range(raft.tick_ms, raft.election_timeout_ticks);
  if (!quiet && std::find(kinds.begin(), kinds.end(), FaultKind::kStall) != kinds.end()) {
    const uint32_t timeout_ms = raft.tick_ms * raft.election_timeout_ticks;
    std::printf("nemesis: stalls last %lld-%lld ms (election timeout %u-%u ms)\n",
                static_cast<long long>(r.stall.min.count()),
                static_cast<long long>(r.stall.max.count()), timeout_ms, 2 * timeout_ms);
    std::fflush(stdout);
  }
  const bool keyspace = o.strategy != "raft";
  if (keyspace) CHORUS_RETURN_IF_ERROR(create_keyspace(cluster, o));
  const auto t0 = Clock::now();
  Workload w(workload_options(o, cluster, t0));
  FaultInjector inj(cluster, fw.get(), o.seed, t0, quiet,
                    std::chrono::milliseconds(raft.tick_ms * raft.lease_ticks), interrupted);
  w.start();
  fault_loop(o, kinds, inj, w, t0, interrupted, quiet, &r);
  w.stop();
  r.workload_end_us = micros_since(t0);
  r.history = w.history();
  r.workload_ops = r.history.size();
  r.errors = w.error_counts();
  if (!interrupted) finish(cluster, inj, w, o.clients, keyspace, t0, interrupted, &r);
  inj.heal_everything(&r.problems);
  r.interrupted = interrupted;
  cluster.stop_all();
  if (keyspace) collect_lost_writes(cluster, &r);
  if (fw) fw->teardown();
  return r;
}

}  // namespace chorus::tools::nemesis
