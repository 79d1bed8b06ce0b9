// `chorus nemesis`: fault injection on a real local cluster with a checked
// history (nemesis.h describes a run; docs/reliability.md shows how to use it
// and what it measured).
//
// Exit codes: 0 clean verdict (with --expect-violation: a violation was
// found); 1 a violation, a failure (a node crashed on its own, no leader
// after healing) or an inconclusive check; 2 bad arguments; 3 the run could
// not start; 77 not run (--require-partitions, and iptables cannot be used
// here); 130 interrupted (Ctrl-C), after cleaning up.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/assert.h"
#include "check/linearizability.h"
#include "nemesis.h"
#include "nemesis_analysis.h"
#include "nemesis_runner.h"
#include "server/commands.h"

namespace chorus::tools {
namespace {

using namespace nemesis;

std::atomic<bool> g_interrupted{false};
void on_signal(int) {
  g_interrupted = true;
}

struct NemesisArgs {
  int nodes = 3;
  std::string duration = "60s";
  std::string faults = "kill,pause,partition,restart";
  std::string workload = "register";
  int clients = 10;
  int keys = 8;
  uint64_t seed = 0;
  std::string dir;
  bool keep = false;
  std::string chorusd;
  int rate = 100;
  int ops_per_key = 0;
  bool json = false;
  bool quiet = false;
  bool expect_violation = false;
  bool no_check_quorum = false;
  std::string consistency = "linearizable";
  bool lease_reads = false;  // the older spelling of --consistency lease
  bool require_partitions = false;
  std::string strategy = "raft";
};

// "60s", "10m", "500ms", "1h"; a bare number is seconds.
std::optional<std::chrono::milliseconds> parse_duration(const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (...) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  double ms = 0;
  if (unit.empty() || unit == "s") {
    ms = v * 1000;
  } else if (unit == "ms") {
    ms = v;
  } else if (unit == "m" || unit == "min") {
    ms = v * 60'000;
  } else if (unit == "h") {
    ms = v * 3'600'000;
  } else {
    return std::nullopt;
  }
  if (ms <= 0 || ms > 24 * 3'600'000.0) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

Options options_from(const NemesisArgs& a) {
  Options o;
  o.nodes = a.nodes;
  auto d = parse_duration(a.duration);
  if (!d) throw CLI::ValidationError("--duration", "expected e.g. 60s, 10m, 500ms (at most 24h)");
  o.duration = *d;
  std::string bad;
  auto faults = parse_fault_list(a.faults, &bad);
  if (!faults) {
    throw CLI::ValidationError(
        "--faults", fmt::format("unknown fault '{}' ({}, all, none)", bad, fault_kind_names()));
  }
  o.faults = std::move(*faults);
  o.workload = a.workload == "append" ? WorkloadKind::kAppend : WorkloadKind::kRegister;
  o.clients = a.clients;
  o.keys = a.keys;
  o.seed =
      a.seed != 0
          ? a.seed
          : static_cast<uint64_t>(std::chrono::system_clock::now().time_since_epoch().count()) %
                1'000'000'000;
  o.dir = a.dir;
  o.keep = a.keep;
  o.chorusd = a.chorusd;
  o.rate_per_client = a.rate;
  o.ops_per_key = a.ops_per_key;
  o.check_quorum = !a.no_check_quorum;
  auto consistency = parse_consistency(a.lease_reads ? "lease" : a.consistency);
  if (!consistency) throw CLI::ValidationError("--consistency", "linearizable, lease or follower");
  o.consistency = *consistency;
  if (o.consistency == Consistency::kLease && !o.check_quorum) {
    throw CLI::ValidationError("--consistency",
                               "lease needs raft.check_quorum (raft.lease_reads requires it): drop "
                               "--no-check-quorum");
  }
  o.require_partitions = a.require_partitions;
  o.strategy = a.strategy;
  if (o.strategy == "async" && o.workload != WorkloadKind::kRegister) {
    // Lost writes are matched by (key, value); an append's reads hold many.
    throw CLI::ValidationError("--strategy", "async is checked with --workload register only");
  }
  if (o.strategy != "raft" && o.strategy != "paxos" && !o.check_quorum) {
    throw CLI::ValidationError("--strategy", "primary-backup keyspaces need raft.check_quorum");
  }
  return o;
}

// ---------------------------------------------------------------------------
// Analysis of a finished run

struct Analysis {
  OpCounts counts;
  Availability avail;
  std::vector<std::optional<double>> unavail_ms;  // parallel to the faults
  std::vector<Spread> by_kind, by_shape;
  bool searched = false;  // the general search ran (see analyze())
  size_t keys = 0;
  size_t keys_out_of_budget = 0;  // the general search gave no verdict
  uint64_t steps = 0;
  std::optional<check::CheckResult> violation;  // the first key that is not linearizable
  std::optional<AppendCheck> append;
  std::optional<FollowerReadCheck> follower;  // --consistency follower
  // Writes removed before the check because a node reported them lost
  // (async): acknowledged ones among them, and reads of their values removed.
  uint64_t lost_acked_removed = 0, lost_other_removed = 0, lost_reads_removed = 0;
  // Reported writes kept because the history shows they survived (a
  // report names one copy of a write; a retried copy may have committed).
  uint64_t lost_kept = 0, keys_with_lost_kept = 0;
  // sync-all or semi-sync: a node reported an acknowledged write lost.
  bool loss_promise_broken = false;
  bool violated = false;
  bool failed = false;  // problems: crashes, no leader, unreadable keys
  bool inconclusive = false;
  // A linearizability violation found while a node reported a loss only as
  // a range of positions (the range may hold the writes that explain it).
  bool unexplained_by_range = false;
  std::string verdict;
};

// The general linearizability search, one key at a time (each key has its own
// step budget and frees its memory before the next).
void check_keys(const check::History& h, Analysis* a) {
  std::map<std::string, std::vector<check::Operation>> by_key;
  for (const auto& op : h) by_key[op.key].push_back(op);
  check::CheckOptions opts;
  for (const auto& [key, ops] : by_key) {
    ++a->keys;
    check::CheckResult r = check::check_partition<check::KvRegisterModel>(ops, opts);
    a->steps += r.steps;
    if (r.verdict == check::Verdict::kUnknown) ++a->keys_out_of_budget;
    if ((r.verdict == check::Verdict::kViolation || r.verdict == check::Verdict::kMalformed) &&
        !a->violation) {
      a->violation = std::move(r);
    }
  }
}

// check_keys() for a strategy whose nodes report lost writes: each key is
// checked with some subset of its reported writes removed (reports may
// over-count: check_key_with_losses()); the removal counts are of the
// subsets that passed.
void check_keys_with_losses(const check::History& h,
                            const std::set<std::pair<std::string, std::string>>& lost,
                            Analysis* a) {
  std::map<std::string, std::vector<check::Operation>> by_key;
  for (const auto& op : h) by_key[op.key].push_back(op);
  a->lost_acked_removed = a->lost_other_removed = a->lost_reads_removed = 0;
  for (const auto& [key, ops] : by_key) {
    ++a->keys;
    LossyKeyCheck c = check_key_with_losses(ops, lost);
    a->steps += c.steps;
    a->lost_acked_removed += c.removed.acknowledged;
    a->lost_other_removed += c.removed.other;
    a->lost_reads_removed += c.removed.reads;
    a->lost_kept += c.kept;
    if (c.kept > 0) ++a->keys_with_lost_kept;
    check::CheckResult& r = c.result;
    if (c.undecided) {  // a violation only if no untried subset explains it
      ++a->keys_out_of_budget;
      continue;
    }
    if (r.verdict == check::Verdict::kUnknown) ++a->keys_out_of_budget;
    if ((r.verdict == check::Verdict::kViolation || r.verdict == check::Verdict::kMalformed) &&
        !a->violation) {
      a->violation = std::move(r);
    }
  }
}

// The history without the workload's reads: what must be linearizable when
// the clients read from followers (the writes, and the final reads, which go
// through the leader with a read barrier).
check::History without_follower_reads(const RunResult& r) {
  CHORUS_ASSERT(r.workload_ops <= r.history.size());
  check::History h;
  h.reserve(r.history.size());
  for (size_t i = 0; i < r.history.size(); ++i) {
    if (i < r.workload_ops && r.history[i].kind == check::OpKind::kGet) continue;
    h.push_back(r.history[i]);
  }
  return h;
}

Analysis analyze(const Options& o, const RunResult& r) {
  Analysis a;
  a.counts = count_ops(r.history);
  a.avail = availability(r.history, r.faults, r.workload_end_us);
  a.unavail_ms = unavailability_ms(r.history, r.faults);
  a.by_kind = unavailability_spread(r.faults, a.unavail_ms, false);
  a.by_shape = unavailability_spread(r.faults, a.unavail_ms, true);
  const bool follower = o.consistency == Consistency::kFollower;
  check::History writes_and_finals;
  if (follower) {
    a.follower =
        check_follower_reads(std::span(r.history.data(), r.workload_ops), o.workload, r.finals);
    writes_and_finals = without_follower_reads(r);
  }
  // Only async may lose acknowledged writes; for the others a report of one
  // is itself a broken promise.
  const bool lossy = o.strategy == "async";
  a.loss_promise_broken = !lossy && r.lost_reports > 0;
  check::History without_lost;
  if (lossy && !r.lost_writes.empty()) {
    LostWritesRemoved removed;
    without_lost =
        without_lost_writes(follower ? writes_and_finals : r.history, r.lost_writes, &removed);
    a.lost_acked_removed = removed.acknowledged;
    a.lost_other_removed = removed.other;
    a.lost_reads_removed = removed.reads;
  }
  const check::History& linearizable = lossy && !r.lost_writes.empty() ? without_lost
                                       : follower                      ? writes_and_finals
                                                                       : r.history;
  // Appends without the reads that prune it send the general search through
  // every order of concurrent appends (over 15 GB in one 60 s run); the list
  // check is complete for them, so it decides alone.
  a.searched = !(follower && o.workload == WorkloadKind::kAppend);
  if (a.searched && lossy && !r.lost_writes.empty()) {
    check_keys_with_losses(follower ? writes_and_finals : r.history, r.lost_writes, &a);
  } else if (a.searched) {
    check_keys(linearizable, &a);
  }
  if (o.workload == WorkloadKind::kAppend) a.append = check_appends(linearizable, r.finals);
  // A dropped range of positions names no write, so the writes it lost are
  // still in the history: a violation the range may explain is not proof.
  a.unexplained_by_range = a.violation.has_value() && lossy && r.lost_ranges > 0;
  a.violated = (a.violation.has_value() && !a.unexplained_by_range) || a.loss_promise_broken ||
               (a.append && a.append->violation) || (a.follower && a.follower->violation) ||
               !r.divergence.empty();
  a.failed = !r.problems.empty();
  // For appends the list check is complete, so a key the search could not
  // finish is still decided; for registers it is not.
  a.inconclusive = a.keys_out_of_budget > 0 && !a.append;
  // A dropped range of positions names no write: which were lost is unknown.
  a.inconclusive = a.inconclusive || (lossy && r.lost_ranges > 0);
  a.verdict = a.violated       ? "VIOLATION"
              : a.failed       ? "FAILED"
              : a.inconclusive ? "INCONCLUSIVE"
              : follower       ? "writes linearizable, follower reads valid"
              : lossy && r.lost_reports > 0
                  ? "linearizable once the writes reported lost are removed"
                  : "linearizable";
  return a;
}

// ---------------------------------------------------------------------------
// Reports

void print_violation(const RunResult& r, const Analysis& a) {
  auto show_window = [&](const std::vector<check::Operation>& window) {
    if (window.empty()) return;
    int64_t from = window.front().invoke_us, to = window.front().complete_us;
    for (const auto& op : window) to = std::max(to, op.complete_us);
    std::printf("faults around that window (%.3fs .. %.3fs, +-5 s):\n%s", from / 1e6, to / 1e6,
                faults_around(r.faults, from, to, 5'000'000).c_str());
  };
  if (a.violation) {
    std::printf("\n%s\n", a.violation->report.c_str());
    show_window(a.violation->window);
  }
  if (a.append && a.append->violation) {
    std::printf("\nlist-append check:\n");
    for (const auto& p : a.append->problems) std::printf("  %s\n", p.c_str());
    for (const auto& op : a.append->window) std::printf("    %s\n", check::describe(op).c_str());
    show_window(a.append->window);
  }
  if (a.follower && a.follower->violation) {
    std::printf("\nfollower-read check:\n");
    for (const auto& p : a.follower->problems) std::printf("  %s\n", p.c_str());
    for (const auto& op : a.follower->window) std::printf("    %s\n", check::describe(op).c_str());
    show_window(a.follower->window);
  }
  for (const auto& d : r.divergence) std::printf("replicas diverge: %s\n", d.c_str());
}

void print_unavailability(const Analysis& a) {
  std::printf("unavailability (fault injected -> next acknowledged write), median / max:\n");
  for (const auto* group : {&a.by_kind, &a.by_shape}) {
    for (const auto& s : *group) {
      std::printf("  %-28s %4zu faults  %8.0f ms  %8.0f ms%s\n", s.label.c_str(), s.faults,
                  s.median_ms, s.max_ms,
                  s.without_write
                      ? fmt::format("  ({} with no write after)", s.without_write).c_str()
                      : "");
    }
    if (group == &a.by_kind && !a.by_shape.empty()) std::printf("  by shape:\n");
  }
}

// The faults after which writes stalled longest, worst first.
void print_worst_faults(const RunResult& r, const Analysis& a, size_t n) {
  std::vector<size_t> order;
  for (size_t i = 0; i < r.faults.size(); ++i) order.push_back(i);
  auto ms = [&](size_t i) { return a.unavail_ms[i].value_or(1e18); };
  std::sort(order.begin(), order.end(), [&](size_t x, size_t y) { return ms(x) > ms(y); });
  std::printf("longest unavailability:\n");
  for (size_t i = 0; i < order.size() && i < n; ++i) {
    const FaultEvent& f = r.faults[order[i]];
    const auto& u = a.unavail_ms[order[i]];
    std::printf("  %9.3fs  %8s  %s (held %.1f s)\n", f.start_us / 1e6,
                u ? fmt::format("{:.0f} ms", *u).c_str() : "no write", f.what.c_str(),
                (f.end_us - f.start_us) / 1e6);
  }
}

void print_summary(const Options& o, const RunResult& r, const Analysis& a) {
  std::printf("\noperations: %llu (ok %llu, failed %llu, unknown %llu; %llu reads, %llu writes)\n",
              (unsigned long long)a.counts.total, (unsigned long long)a.counts.ok,
              (unsigned long long)a.counts.failed, (unsigned long long)a.counts.unknown,
              (unsigned long long)a.counts.reads, (unsigned long long)a.counts.writes);
  std::string kinds;
  for (const auto& s : a.by_kind)
    kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", s.label, s.faults);
  std::printf("faults injected: %zu (%s)\n", r.faults.size(),
              kinds.empty() ? "none" : kinds.c_str());
  if (!r.partition_note.empty()) std::printf("  %s\n", r.partition_note.c_str());
  std::printf(
      "availability: %.1f%% of %llu operations invoked while a fault was active succeeded "
      "(%.1f%% of all)\n",
      a.avail.percent_during_faults(), (unsigned long long)a.avail.during_faults,
      a.avail.percent_total());
  if (!r.faults.empty()) {
    print_unavailability(a);
    print_worst_faults(r, a, 5);
  }
  size_t shown = 0;
  for (const auto& [what, n] : r.errors) {
    if (shown++ < 6) std::printf("  not ok: %-60s %llu\n", what.c_str(), (unsigned long long)n);
  }
  if (a.searched) {
    std::printf("checker: %zu keys, %llu search steps%s\n", a.keys, (unsigned long long)a.steps,
                a.keys_out_of_budget
                    ? fmt::format(", {} keys out of budget", a.keys_out_of_budget).c_str()
                    : "");
  } else {
    std::printf(
        "checker: general search not run (appends without reads: the list check decides)\n");
  }
  if (a.append) {
    std::printf(
        "list-append check: %zu keys, %llu acknowledged appends, %llu appends in the final reads, "
        "%s\n",
        a.append->keys, (unsigned long long)a.append->acked_appends,
        (unsigned long long)a.append->appends_in_final, a.append->violation ? "VIOLATION" : "ok");
  }
  if (a.follower) {
    const FollowerReadCheck& f = *a.follower;
    std::printf(
        "follower-read check: %llu reads, %llu stale (%.2f%%; allowed in this mode)%s, %s\n",
        (unsigned long long)f.reads, (unsigned long long)f.stale,
        f.reads ? 100.0 * static_cast<double>(f.stale) / static_cast<double>(f.reads) : 0.0,
        f.unchecked ? fmt::format(", {} without a final read to check", f.unchecked).c_str() : "",
        f.violation ? "VIOLATION" : "ok");
  }
  if (o.strategy != "raft") {
    std::printf(
        "acknowledged writes reported lost by the nodes: %llu (%llu ranges of positions; %llu "
        "entries reported in doubt); removed before the check: %llu acknowledged writes, %llu "
        "other writes, %llu reads of their values\n",
        (unsigned long long)r.lost_reports, (unsigned long long)r.lost_ranges,
        (unsigned long long)r.in_doubt_reports, (unsigned long long)a.lost_acked_removed,
        (unsigned long long)a.lost_other_removed, (unsigned long long)a.lost_reads_removed);
    if (a.lost_kept > 0) {
      std::printf(
          "kept %llu reported writes on %llu keys: the history needs them (a report names one "
          "copy of a write; a forwarded write offered again to the next primary survives)\n",
          (unsigned long long)a.lost_kept, (unsigned long long)a.keys_with_lost_kept);
    }
  }
  if (a.loss_promise_broken) {
    std::printf(
        "VIOLATION: %s promises no acknowledged write is lost, and the nodes reported %llu\n",
        o.strategy.c_str(), (unsigned long long)r.lost_reports);
  }
  for (const auto& p : r.problems) std::printf("problem: %s\n", p.c_str());
  if (a.violated) print_violation(r, a);
  if (a.unexplained_by_range) {
    std::printf(
        "not decided: the history is not linearizable without the named losses, and %llu "
        "loss report(s) name only a range of positions, which may hold the missing writes\n",
        (unsigned long long)r.lost_ranges);
    if (a.violation) std::printf("%s\n", a.violation->report.c_str());
  }
  std::printf("verdict: %s (seed %llu, %s workload, %s reads, data in %s)\n", a.verdict.c_str(),
              (unsigned long long)o.seed, std::string(workload_name(o.workload)).c_str(),
              std::string(server::consistency_name(o.consistency)).c_str(), r.dir.c_str());
}

std::string json_summary(const Options& o, const RunResult& r, const Analysis& a) {
  nlohmann::json unavail = nlohmann::json::object();
  for (const auto* group : {&a.by_kind, &a.by_shape}) {
    for (const auto& s : *group) {
      unavail[s.label] = {{"faults", s.faults},
                          {"median_ms", s.median_ms},
                          {"max_ms", s.max_ms},
                          {"without_write", s.without_write}};
    }
  }
  nlohmann::json j{{"seed", o.seed},
                   {"nodes", o.nodes},
                   {"strategy", o.strategy},
                   {"lost",
                    {{"reports", r.lost_reports},
                     {"ranges", r.lost_ranges},
                     {"acknowledged_removed", a.lost_acked_removed},
                     {"reads_removed", a.lost_reads_removed},
                     {"kept", a.lost_kept}}},
                   {"workload", std::string(workload_name(o.workload))},
                   {"consistency", std::string(server::consistency_name(o.consistency))},
                   {"duration_s", o.duration.count() / 1000.0},
                   {"clients", o.clients},
                   {"ops",
                    {{"total", a.counts.total},
                     {"ok", a.counts.ok},
                     {"failed", a.counts.failed},
                     {"unknown", a.counts.unknown}}},
                   {"faults", r.faults.size()},
                   {"partitions_skipped", !r.partition_note.empty()},
                   {"availability_during_faults_pct", a.avail.percent_during_faults()},
                   {"availability_total_pct", a.avail.percent_total()},
                   {"unavailability", unavail},
                   {"keys", a.keys},
                   {"problems", r.problems},
                   {"verdict", a.verdict}};
  nlohmann::json by_kind = nlohmann::json::object();
  for (const auto& s : a.by_kind) by_kind[s.label] = s.faults;
  j["faults_by_kind"] = by_kind;
  if (a.follower) {
    j["follower_reads"] = {{"reads", a.follower->reads},
                           {"stale", a.follower->stale},
                           {"unchecked", a.follower->unchecked}};
  }
  return j.dump();
}

// ---------------------------------------------------------------------------

int run_nemesis(const NemesisArgs& args) {
  const Options o = options_from(args);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);  // hiredis writes to sockets a killed node closed
  std::string faults;
  for (FaultKind k : o.faults)
    faults += fmt::format("{}{}", faults.empty() ? "" : ",", fault_kind_name(k));
  std::printf(
      "nemesis: seed %llu, %d nodes, strategy %s, %s workload, %s reads, %d clients, %.0f s, "
      "faults %s\n",
      (unsigned long long)o.seed, o.nodes, o.strategy.c_str(),
      std::string(workload_name(o.workload)).c_str(),
      std::string(server::consistency_name(o.consistency)).c_str(), o.clients,
      o.duration.count() / 1000.0, faults.empty() ? "none" : faults.c_str());
  std::fflush(stdout);
  auto r = nemesis::run(o, g_interrupted, args.quiet);
  if (!r.is_ok()) {
    std::fprintf(stderr, "nemesis: %s\n", r.status().to_string().c_str());
    return 3;
  }
  if (r->skipped) {
    std::printf("nemesis: not run: this check needs partitions (%s)\n", r->partition_note.c_str());
    return 77;
  }
  if (r->interrupted) {
    std::printf(
        "nemesis: interrupted; every node stopped and every firewall rule removed (data in %s)\n",
        r->dir.c_str());
    return 130;
  }
  const Analysis a = analyze(o, *r);
  print_summary(o, *r, a);
  if (args.json) std::printf("%s\n", json_summary(o, *r, a).c_str());
  const bool clean = !a.violated && !a.failed && !a.inconclusive;
  if (!clean) {
    // The whole history next to the nodes' logs, one operation per line, for
    // whoever investigates the run (chorus nemesis prints only a window).
    std::ofstream out(r->dir + "/history.txt");
    for (const auto& op : r->history) {
      out << fmt::format("{:>10} {:>10} ", op.invoke_us, op.complete_us) << check::describe(op)
          << "\n";
    }
    std::printf("history: %s/history.txt (%zu operations; %zu are the final reads)\n",
                r->dir.c_str(), r->history.size(), r->history.size() - r->workload_ops);
  }
  std::error_code ec;
  if (clean && !o.keep && o.dir.empty()) std::filesystem::remove_all(r->dir, ec);
  if (args.expect_violation) return a.violated ? 0 : 1;
  return clean ? 0 : 1;
}

}  // namespace

void add_nemesis_command(CLI::App& app) {
  auto args = std::make_shared<NemesisArgs>();
  CLI::App* cmd = app.add_subcommand(
      "nemesis",
      "Inject faults (kill -9, SIGSTOP, partitions, restarts) into a real local cluster under "
      "load and check the history for linearizability");
  cmd->add_option("--nodes", args->nodes, "Cluster size")
      ->check(CLI::Range(3, 7))
      ->capture_default_str();
  cmd->add_option("--duration", args->duration, "How long the workload runs (60s, 10m...)")
      ->capture_default_str();
  cmd->add_option("--faults", args->faults,
                  fmt::format("Comma list: {} (or all, none)", fault_kind_names()))
      ->capture_default_str();
  cmd->add_option("--workload", args->workload, "register (GET/SET/CAS) or append (APPEND/GET)")
      ->check(CLI::IsMember({"register", "append"}))
      ->capture_default_str();
  cmd->add_option("--clients", args->clients, "Concurrent clients")
      ->check(CLI::Range(1, 200))
      ->capture_default_str();
  cmd->add_option("--keys", args->keys, "Keys in use at a time")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--seed", args->seed,
                  "Seed of the fault schedule and the workload (default: from the clock)");
  cmd->add_option("--dir", args->dir,
                  "Directory for the nodes' data and logs (default: a temporary one)");
  cmd->add_flag("--keep", args->keep, "Keep the data directory after a clean run");
  cmd->add_option("--chorusd", args->chorusd,
                  "The chorusd binary to test (default: next to chorus)");
  cmd->add_option("--rate", args->rate, "Operations per second per client (0: unthrottled)")
      ->check(CLI::Range(0, 100000))
      ->capture_default_str();
  cmd->add_option("--ops-per-key", args->ops_per_key,
                  "Move to a fresh key after this many operations (appends)")
      ->check(CLI::Range(0, 10'000'000));
  cmd->add_flag(
      "--no-check-quorum", args->no_check_quorum,
      "Run the nodes with raft.check_quorum = false (a partitioned leader keeps its role)");
  CLI::Option* consistency =
      cmd->add_option("--consistency", args->consistency,
                      "Every client's read mode (CHORUS.CONSISTENCY); lease also runs the nodes "
                      "with raft.lease_reads = true; follower reads are checked for what they "
                      "promise, not for linearizability")
          ->check(CLI::IsMember({"linearizable", "lease", "follower"}))
          ->capture_default_str();
  cmd->add_flag("--lease-reads", args->lease_reads, "The same as --consistency lease")
      ->excludes(consistency);
  cmd->add_flag(
      "--require-partitions", args->require_partitions,
      "Exit 77 without running if partitions are impossible here (for tests that need them)");
  cmd->add_option("--strategy", args->strategy,
                  "Replication of the keys under test: raft (the default keyspace), or a keyspace "
                  "of paxos, sync-all, semi-sync or async created for them (async: the writes the "
                  "nodes report lost are removed before the check)")
      ->check(CLI::IsMember({"raft", "paxos", "sync-all", "semi-sync", "async"}))
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "Also print a JSON summary line");
  cmd->add_flag("--quiet", args->quiet, "Do not print each fault as it happens");
  cmd->add_flag("--expect-violation", args->expect_violation,
                "Exit 0 only if a violation is found (for testing planted bugs)");
  cmd->callback([args] {
    if (int rc = run_nemesis(*args); rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace chorus::tools
