#include "nemesis_analysis.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>

#include "base/assert.h"
#include "server/commands.h"

namespace chorus::tools::nemesis {
namespace {

using check::Operation;
using check::OpKind;
using check::OpStatus;

// ",a,b,c" -> {"a", "b", "c"}; nullopt if it is not such a list.
std::optional<std::vector<std::string>> split_list(const std::string& v) {
  std::vector<std::string> out;
  if (v.empty()) return out;
  if (v[0] != ',') return std::nullopt;
  size_t start = 1;
  for (;;) {
    const size_t comma = v.find(',', start);
    out.push_back(v.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) return out;
    start = comma + 1;
  }
}

// Whether `read` is `final` cut at an element boundary.
bool is_list_prefix(const std::string& read, const std::string& final) {
  return final.compare(0, read.size(), read) == 0 &&
         (read.size() == final.size() || (read.size() < final.size() && final[read.size()] == ','));
}

// One operation of a key with its rank (see the header).
struct Ranked {
  const Operation* op;
  uint64_t rank;
  bool completed;  // has a known completion (kOk)
};

class KeyChecker {
 public:
  KeyChecker(AppendCheck& out, const std::string& key, const std::vector<const Operation*>& ops)
      : out_(out), key_(key), ops_(ops) {}

  void run(const std::string& final) {
    auto elements = split_list(final);
    if (!elements) {
      problem(fmt::format("key {}: the final value {} is not a comma list", key_,
                          check::describe_value(final)),
              {});
      return;
    }
    std::unordered_map<std::string, const Operation*> append_of;
    for (const Operation* op : ops_) {
      if (op->kind == OpKind::kAppend) append_of[op->value.substr(1)] = op;
    }
    std::unordered_map<std::string, size_t> position;  // 1-based
    for (size_t i = 0; i < elements->size(); ++i) {
      const std::string& e = (*elements)[i];
      if (!position.emplace(e, i + 1).second) {
        problem(fmt::format("key {}: {} appears twice in the final read", key_, e), {append_of[e]});
        continue;
      }
      auto it = append_of.find(e);
      if (it == append_of.end()) {
        problem(fmt::format("key {}: final read holds {}, which no client appended", key_, e), {});
      } else if (it->second->status == OpStatus::kFail) {
        problem(fmt::format("key {}: final read holds {}, whose append was refused", key_, e),
                {it->second});
      } else {
        ++out_.appends_in_final;
      }
    }
    check_acked(position);
    check_order(final, position);
  }

 private:
  void problem(std::string line, std::vector<const Operation*> ops) {
    out_.violation = true;
    if (out_.problems.size() < AppendCheck::kMaxProblems) out_.problems.push_back(std::move(line));
    if (out_.window.empty()) {
      for (const Operation* op : ops) {
        if (op) out_.window.push_back(*op);
      }
      std::sort(out_.window.begin(), out_.window.end(),
                [](const Operation& a, const Operation& b) { return a.invoke_us < b.invoke_us; });
    }
  }

  void check_acked(const std::unordered_map<std::string, size_t>& position) {
    for (const Operation* op : ops_) {
      if (op->kind != OpKind::kAppend || op->status != OpStatus::kOk) continue;
      ++out_.acked_appends;
      if (!position.contains(op->value.substr(1))) {
        problem(fmt::format("key {}: acknowledged append lost: {}", key_, check::describe(*op)),
                {op});
      }
    }
  }

  void check_order(const std::string& final,
                   const std::unordered_map<std::string, size_t>& position) {
    std::vector<Ranked> ranked;
    for (const Operation* op : ops_) {
      if (op->kind == OpKind::kGet && op->status == OpStatus::kOk) {
        const std::string v = op->found ? op->output : std::string();
        if (!is_list_prefix(v, final)) {
          problem(fmt::format("key {}: read is not a prefix of the final read {}: {}", key_,
                              check::describe_value(final), check::describe(*op)),
                  {op});
          continue;
        }
        const size_t p = static_cast<size_t>(std::count(v.begin(), v.end(), ','));
        ranked.push_back({op, 2 * p + 1, true});
      } else if (op->kind == OpKind::kAppend && op->status != OpStatus::kFail) {
        auto it = position.find(op->value.substr(1));
        if (it != position.end())
          ranked.push_back({op, 2 * it->second, op->status == OpStatus::kOk});
      }
    }
    sweep(ranked);
  }

  // Whenever X completed before Y was invoked, rank(X) <= rank(Y).
  void sweep(std::vector<Ranked>& ranked) {
    std::sort(ranked.begin(), ranked.end(),
              [](const Ranked& a, const Ranked& b) { return a.op->invoke_us < b.op->invoke_us; });
    std::vector<const Ranked*> by_complete;
    for (const auto& r : ranked) {
      if (r.completed) by_complete.push_back(&r);
    }
    std::sort(by_complete.begin(), by_complete.end(), [](const Ranked* a, const Ranked* b) {
      return a->op->complete_us < b->op->complete_us;
    });
    size_t next = 0;
    const Ranked* highest = nullptr;  // the highest rank among those completed so far
    for (const Ranked& y : ranked) {
      while (next < by_complete.size() && by_complete[next]->op->complete_us < y.op->invoke_us) {
        if (!highest || by_complete[next]->rank > highest->rank) highest = by_complete[next];
        ++next;
      }
      if (highest && highest->rank > y.rank) {
        problem(fmt::format("key {}: real-time order broken: {} completed before {} was invoked, "
                            "yet the final read orders it later",
                            key_, check::describe(*highest->op), check::describe(*y.op)),
                {highest->op, y.op});
        return;  // one per key: the rest would mostly repeat it
      }
    }
  }

  AppendCheck& out_;
  const std::string& key_;
  const std::vector<const Operation*>& ops_;
};

// ---------------------------------------------------------------------------
// Follower reads (see the header for the rules)

// Acknowledged writes of one key by invoke time, to ask: did one that was
// invoked after `after_us` complete before `before_us`?
class AckedWrites {
 public:
  void add(const Operation& op) { writes_.emplace_back(op.invoke_us, op.complete_us); }
  void seal() {
    std::sort(writes_.begin(), writes_.end());
    suffix_min_.assign(writes_.size() + 1, INT64_MAX);
    for (size_t i = writes_.size(); i-- > 0;)
      suffix_min_[i] = std::min(suffix_min_[i + 1], writes_[i].second);
  }
  bool completed_between(int64_t after_us, int64_t before_us) const {
    CHORUS_ASSERT(suffix_min_.size() == writes_.size() + 1);  // sealed
    const auto it =
        std::upper_bound(writes_.begin(), writes_.end(), std::make_pair(after_us, INT64_MAX));
    return suffix_min_[static_cast<size_t>(it - writes_.begin())] < before_us;
  }

 private:
  std::vector<std::pair<int64_t, int64_t>> writes_;  // (invoke, complete)
  std::vector<int64_t> suffix_min_;                  // min complete of writes_[i..]
};

class FollowerReads {
 public:
  explicit FollowerReads(FollowerReadCheck& out) : out_(out) {}

  void check_register_key(const std::string& key, const std::vector<const Operation*>& ops) {
    std::unordered_map<std::string, const Operation*> writer;  // value -> its SET or CAS
    AckedWrites acked;
    for (const Operation* op : ops) {
      if (op->kind != OpKind::kPut && op->kind != OpKind::kCas) continue;
      writer[op->value] = op;
      if (op->status == OpStatus::kOk && (op->kind == OpKind::kPut || op->cas_ok)) acked.add(*op);
    }
    acked.seal();
    for (const Operation* r : ops) {
      if (r->kind != OpKind::kGet || r->status != OpStatus::kOk) continue;
      ++out_.reads;
      // When the write of the value read was certainly done: absent is the
      // initial state, before every write; an unknown write never certainly.
      int64_t written_by_us = INT64_MIN;
      if (r->found) {
        auto it = writer.find(r->output);
        const Operation* w = it == writer.end() ? nullptr : it->second;
        if (!register_value_possible(key, *r, w)) continue;
        written_by_us = w->status == OpStatus::kOk ? w->complete_us : INT64_MAX;
      }
      if (written_by_us != INT64_MAX && acked.completed_between(written_by_us, r->invoke_us))
        ++out_.stale;
    }
  }

  void check_append_key(const std::string& key, const std::vector<const Operation*>& ops,
                        const std::string& final) {
    std::unordered_map<std::string, const Operation*> append_of;
    for (const Operation* op : ops) {
      if (op->kind == OpKind::kAppend) append_of[op->value.substr(1)] = op;
    }
    const std::vector<std::string> elements =
        split_list(final).value_or(std::vector<std::string>{});
    // acked_from[p]: the earliest completion of an acknowledged append at
    // position p or later (1-based; INT64_MAX: none).
    std::vector<int64_t> acked_from(elements.size() + 2, INT64_MAX);
    for (size_t i = elements.size(); i-- > 0;) {
      auto it = append_of.find(elements[i]);
      const bool acked = it != append_of.end() && it->second->status == OpStatus::kOk;
      acked_from[i + 1] = std::min(acked_from[i + 2], acked ? it->second->complete_us : INT64_MAX);
    }
    for (const Operation* r : ops) {
      if (r->kind != OpKind::kGet || r->status != OpStatus::kOk) continue;
      ++out_.reads;
      const std::string v = r->found ? r->output : std::string();
      if (!append_read_possible(key, *r, v, final, append_of)) continue;
      const auto p = static_cast<size_t>(std::count(v.begin(), v.end(), ','));
      if (acked_from[p + 1] < r->invoke_us) ++out_.stale;
    }
  }

 private:
  bool register_value_possible(const std::string& key, const Operation& r, const Operation* w) {
    if (w == nullptr) {
      problem(fmt::format("key {}: follower read returned a value no client wrote: {}", key,
                          check::describe(r)),
              {&r});
    } else if (w->status == OpStatus::kFail ||
               (w->kind == OpKind::kCas && !w->cas_ok && w->status == OpStatus::kOk)) {
      problem(fmt::format("key {}: follower read returned the value of a write that did not "
                          "take effect: {}",
                          key, check::describe(r)),
              {w, &r});
    } else if (w->invoke_us > r.complete_us) {
      problem(fmt::format("key {}: follower read returned a value written only after it "
                          "completed: {}",
                          key, check::describe(r)),
              {&r, w});
    } else {
      return true;
    }
    return false;
  }

  bool append_read_possible(const std::string& key, const Operation& r, const std::string& v,
                            const std::string& final,
                            const std::unordered_map<std::string, const Operation*>& append_of) {
    if (!is_list_prefix(v, final)) {
      problem(fmt::format("key {}: follower read is not a prefix of the final read {}: {}", key,
                          check::describe_value(final), check::describe(r)),
              {&r});
      return false;
    }
    for (const std::string& e : split_list(v).value_or(std::vector<std::string>{})) {
      auto it = append_of.find(e);
      if (it != append_of.end() && it->second->invoke_us > r.complete_us) {
        problem(fmt::format("key {}: follower read holds {}, appended only after it completed: {}",
                            key, e, check::describe(r)),
                {&r, it->second});
        return false;
      }
    }
    return true;
  }

  void problem(std::string line, std::vector<const Operation*> ops) {
    out_.violation = true;
    if (out_.problems.size() < FollowerReadCheck::kMaxProblems)
      out_.problems.push_back(std::move(line));
    if (out_.window.empty()) {
      for (const Operation* op : ops) out_.window.push_back(*op);
      std::sort(out_.window.begin(), out_.window.end(),
                [](const Operation& a, const Operation& b) { return a.invoke_us < b.invoke_us; });
    }
  }

  FollowerReadCheck& out_;
};

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

std::string_view fault_kind_name(FaultKind k) {
  switch (k) {
    case FaultKind::kKill:
      return "kill";
    case FaultKind::kPause:
      return "pause";
    case FaultKind::kStall:
      return "stall";
    case FaultKind::kPartition:
      return "partition";
    case FaultKind::kRestart:
      return "restart";
  }
  return "?";
}

std::optional<FaultKind> parse_fault_kind(std::string_view name) {
  for (FaultKind k : kAllFaultKinds) {
    if (fault_kind_name(k) == name) return k;
  }
  return std::nullopt;
}

std::optional<std::vector<FaultKind>> parse_fault_list(std::string_view list, std::string* bad) {
  std::vector<FaultKind> kinds;
  auto add = [&kinds](FaultKind k) {
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  };
  while (!list.empty()) {
    const size_t comma = list.find(',');
    const std::string_view name = list.substr(0, comma);
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (name == "all") {
      for (FaultKind k : kAllFaultKinds) add(k);
    } else if (auto k = parse_fault_kind(name)) {
      add(*k);
    } else if (!name.empty() && name != "none") {
      if (bad) *bad = std::string(name);
      return std::nullopt;
    }
  }
  return kinds;
}

std::string fault_kind_names() {
  std::string out;
  for (FaultKind k : kAllFaultKinds)
    out += fmt::format("{}{}", out.empty() ? "" : ", ", fault_kind_name(k));
  return out;
}

StallRange stall_range(uint32_t tick_ms, uint32_t election_timeout_ticks) {
  CHORUS_ASSERT(tick_ms > 0 && election_timeout_ticks > 0);
  const auto timeout = std::chrono::milliseconds(uint64_t{tick_ms} * election_timeout_ticks);
  return {timeout * 3 / 2, timeout * 6};
}

std::optional<Consistency> parse_consistency(std::string_view name) {
  for (Consistency c : {Consistency::kLinearizable, Consistency::kLease, Consistency::kFollower}) {
    if (server::consistency_name(c) == name) return c;
  }
  return std::nullopt;
}

std::string_view workload_name(WorkloadKind w) {
  return w == WorkloadKind::kAppend ? "append" : "register";
}

AppendCheck check_appends(const check::History& h,
                          const std::map<std::string, std::optional<std::string>>& finals) {
  std::map<std::string, std::vector<const Operation*>> by_key;
  for (const auto& op : h) by_key[op.key].push_back(&op);
  AppendCheck out;
  for (const auto& [key, ops] : by_key) {
    ++out.keys;
    auto f = finals.find(key);
    if (f == finals.end()) {
      ++out.keys_no_final;
      continue;
    }
    KeyChecker(out, key, ops).run(f->second.value_or(""));
  }
  return out;
}

FollowerReadCheck check_follower_reads(
    std::span<const check::Operation> ops, WorkloadKind workload,
    const std::map<std::string, std::optional<std::string>>& finals) {
  std::map<std::string, std::vector<const Operation*>> by_key;
  for (const auto& op : ops) by_key[op.key].push_back(&op);
  FollowerReadCheck out;
  FollowerReads reads(out);
  for (const auto& [key, key_ops] : by_key) {
    if (workload == WorkloadKind::kRegister) {
      reads.check_register_key(key, key_ops);
      continue;
    }
    auto f = finals.find(key);
    if (f == finals.end()) {
      out.unchecked += static_cast<uint64_t>(
          std::count_if(key_ops.begin(), key_ops.end(), [](const Operation* op) {
            return op->kind == OpKind::kGet && op->status == OpStatus::kOk;
          }));
      continue;
    }
    reads.check_append_key(key, key_ops, f->second.value_or(""));
  }
  CHORUS_ASSERT(out.stale <= out.reads);
  return out;
}

OpCounts count_ops(const check::History& h) {
  OpCounts c;
  for (const auto& op : h) {
    ++c.total;
    (op.kind == OpKind::kGet ? c.reads : c.writes) += 1;
    switch (op.status) {
      case OpStatus::kOk:
        ++c.ok;
        break;
      case OpStatus::kFail:
        ++c.failed;
        break;
      case OpStatus::kUnknown:
        ++c.unknown;
        break;
    }
  }
  return c;
}

double Availability::percent_during_faults() const {
  return during_faults
             ? 100.0 * static_cast<double>(ok_during_faults) / static_cast<double>(during_faults)
             : 100.0;
}
double Availability::percent_total() const {
  return total ? 100.0 * static_cast<double>(ok_total) / static_cast<double>(total) : 100.0;
}

Availability availability(const check::History& h, const std::vector<FaultEvent>& faults,
                          int64_t end_us) {
  std::vector<std::pair<int64_t, int64_t>> active;
  for (const auto& f : faults) active.emplace_back(f.start_us, f.end_us < 0 ? end_us : f.end_us);
  std::sort(active.begin(), active.end());
  Availability a;
  for (const auto& op : h) {
    const bool ok = op.status == OpStatus::kOk;
    ++a.total;
    a.ok_total += ok;
    // The last interval starting at or before the invocation.
    auto it =
        std::upper_bound(active.begin(), active.end(), std::make_pair(op.invoke_us, INT64_MAX));
    bool during = false;
    for (auto j = active.begin(); j != it && !during; ++j) during = op.invoke_us < j->second;
    if (during) {
      ++a.during_faults;
      a.ok_during_faults += ok;
    }
  }
  return a;
}

std::vector<std::optional<double>> unavailability_ms(const check::History& h,
                                                     const std::vector<FaultEvent>& faults) {
  std::vector<std::pair<int64_t, int64_t>> writes;  // (invoke, complete) of acknowledged writes
  for (const auto& op : h) {
    if (op.kind != OpKind::kGet && op.status == OpStatus::kOk) {
      writes.emplace_back(op.invoke_us, op.complete_us);
    }
  }
  std::sort(writes.begin(), writes.end());
  std::vector<int64_t> suffix_min(writes.size() + 1, INT64_MAX);
  for (size_t i = writes.size(); i-- > 0;) {
    suffix_min[i] = std::min(suffix_min[i + 1], writes[i].second);
  }
  std::vector<std::optional<double>> out;
  for (const auto& f : faults) {
    const auto it =
        std::lower_bound(writes.begin(), writes.end(), std::make_pair(f.start_us, INT64_MIN));
    const int64_t first = suffix_min[static_cast<size_t>(it - writes.begin())];
    if (first == INT64_MAX) {
      out.push_back(std::nullopt);
    } else {
      out.push_back(static_cast<double>(first - f.start_us) / 1000.0);
    }
  }
  return out;
}

std::vector<Spread> unavailability_spread(const std::vector<FaultEvent>& faults,
                                          const std::vector<std::optional<double>>& ms,
                                          bool by_shape) {
  std::vector<Spread> out;
  std::map<std::string, std::vector<double>> values;
  for (size_t i = 0; i < faults.size() && i < ms.size(); ++i) {
    const std::string label =
        by_shape ? faults[i].shape : std::string(fault_kind_name(faults[i].kind));
    auto it =
        std::find_if(out.begin(), out.end(), [&](const Spread& s) { return s.label == label; });
    if (it == out.end()) {
      out.push_back(Spread{label});
      it = out.end() - 1;
    }
    ++it->faults;
    if (ms[i]) {
      values[label].push_back(*ms[i]);
    } else {
      ++it->without_write;
    }
  }
  for (auto& s : out) {
    const auto& v = values[s.label];
    s.median_ms = median_of(v);
    s.max_ms = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  }
  return out;
}

std::string faults_around(const std::vector<FaultEvent>& faults, int64_t from_us, int64_t to_us,
                          int64_t margin_us) {
  std::string out;
  for (const auto& f : faults) {
    const int64_t end = f.end_us < 0 ? INT64_MAX : f.end_us;
    if (end < from_us - margin_us || f.start_us > to_us + margin_us) continue;
    const std::string until =
        f.end_us < 0 ? std::string("(active)") : fmt::format("{:.3f}s", f.end_us / 1e6);
    out += fmt::format("  {:>9.3f}s .. {:>9}  {}\n", f.start_us / 1e6, until, f.what);
  }
  return out.empty() ? "  (no fault within that time)\n" : out;
}

check::History without_lost_writes(const check::History& h,
                                   const std::set<std::pair<std::string, std::string>>& lost,
                                   LostWritesRemoved* removed) {
  // A write its client was told certainly failed is never excused: a read
  // of its value stays in the history (and is a violation).
  std::set<std::pair<std::string, std::string>> refused;
  for (const auto& op : h) {
    const bool write = op.kind == check::OpKind::kPut || op.kind == check::OpKind::kCas;
    if (write && op.status == check::OpStatus::kFail) refused.emplace(op.key, op.value);
  }
  check::History out;
  out.reserve(h.size());
  for (const auto& op : h) {
    const bool write = op.kind == check::OpKind::kPut || op.kind == check::OpKind::kCas;
    if (write && op.status != check::OpStatus::kFail && lost.contains({op.key, op.value})) {
      ++(op.status == check::OpStatus::kOk ? removed->acknowledged : removed->other);
      continue;
    }
    if (op.kind == check::OpKind::kGet && op.status == check::OpStatus::kOk && op.found &&
        lost.contains({op.key, op.output}) && !refused.contains({op.key, op.output})) {
      ++removed->reads;
      continue;
    }
    out.push_back(op);
  }
  return out;
}

LossyKeyCheck check_key_with_losses(std::span<const check::Operation> ops,
                                    const std::set<std::pair<std::string, std::string>>& lost,
                                    size_t max_tries) {
  // The reported writes this key's history holds (refused ones are never
  // removed, so keeping them changes nothing), and among them the ones a
  // history needs: the value a successful compare-and-set expected, the
  // swap itself not reported lost. Only those may be kept (keeping any
  // other cannot make a swap possible, and would only loosen the check).
  std::set<std::pair<std::string, std::string>> mine;
  for (const auto& op : ops) {
    const bool write = op.kind == check::OpKind::kPut || op.kind == check::OpKind::kCas;
    if (write && op.status != check::OpStatus::kFail && lost.contains({op.key, op.value}))
      mine.emplace(op.key, op.value);
  }
  std::set<std::pair<std::string, std::string>> needed;
  for (const auto& op : ops) {
    if (op.kind == check::OpKind::kCas && op.status == check::OpStatus::kOk && op.cas_ok &&
        mine.contains({op.key, op.expected}) && !lost.contains({op.key, op.value}))
      needed.emplace(op.key, op.expected);
  }
  const std::vector<std::pair<std::string, std::string>> candidates(needed.begin(), needed.end());
  const check::History all(ops.begin(), ops.end());
  LossyKeyCheck out;
  // Keep-sets of size 0, 1, 2, ...: the fewest refuted reports first.
  for (size_t k = 0; k <= candidates.size() && out.tries < max_tries; ++k) {
    std::vector<size_t> pick(k);
    for (size_t i = 0; i < k; ++i) pick[i] = i;
    while (out.tries < max_tries) {
      std::set<std::pair<std::string, std::string>> removed_set = mine;
      for (size_t i : pick) removed_set.erase(candidates[i]);
      LostWritesRemoved removed;
      const check::History h = without_lost_writes(all, removed_set, &removed);
      check::CheckResult r = check::check_partition<check::KvRegisterModel>(h);
      ++out.tries;
      out.steps += r.steps;
      // The first answer stands unless it is a violation another subset
      // may explain; a later subset counts only if it passes, and one the
      // search could not decide leaves the key undecided.
      if (r.verdict == check::Verdict::kUnknown && out.tries > 1) out.undecided = true;
      if (out.tries == 1 || r.verdict == check::Verdict::kOk) {
        const bool done = r.verdict != check::Verdict::kViolation;
        out.result = std::move(r);
        out.removed = removed;
        out.kept = k;
        if (done) return out;
      }
      // The next combination of k out of candidates.
      size_t i = k;
      while (i > 0 && pick[i - 1] == candidates.size() - k + i - 1) --i;
      if (i == 0) break;
      ++pick[i - 1];
      for (size_t j = i; j < k; ++j) pick[j] = pick[j - 1] + 1;
    }
  }
  out.kept = 0;
  // Subsets left untried: not proof either way.
  if (out.result.verdict == check::Verdict::kViolation && out.tries >= max_tries)
    out.undecided = true;
  return out;
}

}  // namespace chorus::tools::nemesis
