// The linearizability checker: the search, violation windows and reports, the per-key driver.
#include "check/linearizability.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "base/assert.h"
#include "base/prng.h"
#include "check/linearizability_sets.h"

namespace chorus::check {

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "linearizable";
    case Verdict::kViolation:
      return "not linearizable";
    case Verdict::kUnknown:
      return "unknown";
    case Verdict::kMalformed:
      return "malformed history";
  }
  CHORUS_UNREACHABLE();
}

namespace {

using detail::ErasedModel;
using detail::LinearizedSet;
using detail::SeenSet;

// How many distinct states the report lists for the failing operation.
constexpr size_t kStuckStatesMax = 4;
// How many window operations the report prints (the window field has all).
constexpr size_t kReportOpsMax = 100;
constexpr uint32_t kNoTwin = UINT32_MAX;
// Fixed seed for the Zobrist keys: hashing only affects speed, never the
// verdict, but a fixed seed keeps step counts reproducible.
constexpr uint64_t kZobristSeed = 0x6c696e6561726973;
// Each window probe gets at most 1/kWindowProbesMin of the trimming budget.
constexpr uint64_t kWindowProbesMin = 8;

// ---------------------------------------------------------------------------
// The search (see the header comment for the algorithm).

struct SearchOp {
  const Operation* op;        // what the search sees (inputs possibly abstracted)
  const Operation* original;  // the history's op, for reports
  // Has a return event and must be linearized. Otherwise optional: no return
  // event, linearized at most once, at any point after its call.
  bool required;
};

// Ops for a Search, with inputs abstracted by the model (see Model's
// abstract()). Move-only: ops point into storage.
struct SearchList {
  SearchList() = default;
  SearchList(SearchList&&) = default;
  SearchList& operator=(SearchList&&) = default;
  SearchList(const SearchList&) = delete;
  SearchList& operator=(const SearchList&) = delete;

  std::vector<Operation> storage;  // the abstracted copies
  std::vector<SearchOp> ops;       // required ops first; op points into storage
};

// `picked` lists required ops first; their `op` is ignored. Only the inputs of
// picked[first..] are abstracted.
SearchList abstracted(std::span<const SearchOp> picked, const ErasedModel& model, size_t first) {
  SearchList list;
  list.storage.reserve(picked.size());
  for (const SearchOp& p : picked) list.storage.push_back(*p.original);
  model.abstract(list.storage, first);
  for (size_t i = 0; i < picked.size(); ++i) {
    list.ops.push_back({&list.storage[i], picked[i].original, picked[i].required});
  }
  return list;
}

enum class SearchOutcome { kLinearizable, kNotLinearizable, kOutOfSteps };

// Where optional ops' calls are scanned.
enum class OptionalOrder {
  kInCallOrder,  // among the required ops' calls, by invoke time
  kLast,         // after all required calls before the earliest deadline
};

// The events as two doubly linked lists over node numbers that follow time
// order: the main list (calls and returns of required ops, and the calls of
// optional ones if kInCallOrder) and the optional list (the calls of optional
// ops if kLast). Nodes 0 and 1 are their heads, 2..E+1 the events, E+2 and
// E+3 their tails. Unlinking a call also unlinks its return ("lift");
// relinking restores both in reverse order.
class EventList {
 public:
  static constexpr int32_t kMainHead = 0;
  static constexpr int32_t kOptionalHead = 1;

  EventList(std::span<const SearchOp> ops, OptionalOrder order) {
    struct Event {
      int64_t time_us;
      bool is_return;  // calls sort first on equal times: closed intervals
      uint32_t op;
    };
    std::vector<Event> events;
    events.reserve(2 * ops.size());
    for (uint32_t i = 0; i < ops.size(); ++i) {
      events.push_back({ops[i].op->invoke_us, false, i});
      if (ops[i].required) events.push_back({ops[i].op->complete_us, true, i});
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      return std::tie(a.time_us, a.is_return, a.op) < std::tie(b.time_us, b.is_return, b.op);
    });
    const auto count = static_cast<int32_t>(events.size());
    optional_tail_ = count + 3;
    next_.assign(count + 4, 0);
    prev_.assign(count + 4, 0);
    match_.assign(count + 4, 0);
    op_.assign(count + 4, 0);
    is_return_.assign(count + 4, false);
    int32_t last[2] = {kMainHead, kOptionalHead};
    std::vector<int32_t> return_node(ops.size(), 0);
    for (int32_t k = 0; k < count; ++k) {
      const int32_t node = k + 2;
      op_[node] = events[k].op;
      is_return_[node] = events[k].is_return;
      if (is_return_[node]) return_node[op_[node]] = node;
      int32_t& tail = last[!ops[op_[node]].required && order == OptionalOrder::kLast ? 1 : 0];
      append(tail, node);
      tail = node;
    }
    append(last[0], count + 2);
    append(last[1], optional_tail_);
    for (int32_t node = 2; node < count + 2; ++node) {
      if (!is_return_[node]) match_[node] = return_node[op_[node]];
    }
  }

  int32_t next(int32_t node) const { return next_[node]; }
  // The optional list's tail: greater than every other node.
  int32_t optional_tail() const { return optional_tail_; }
  uint32_t op(int32_t node) const { return op_[node]; }
  bool is_return(int32_t node) const { return is_return_[node]; }

  void lift(int32_t call) {
    unlink(call);
    if (match_[call] != 0) unlink(match_[call]);
  }
  void unlift(int32_t call) {
    if (match_[call] != 0) relink(match_[call]);
    relink(call);
  }

 private:
  void append(int32_t after, int32_t node) {
    next_[after] = node;
    prev_[node] = after;
  }
  void unlink(int32_t n) {
    next_[prev_[n]] = next_[n];
    prev_[next_[n]] = prev_[n];
  }
  void relink(int32_t n) {
    next_[prev_[n]] = n;
    prev_[next_[n]] = n;
  }

  int32_t optional_tail_ = 0;
  std::vector<int32_t> next_, prev_;
  std::vector<int32_t> match_;  // call node -> its return node; 0 if optional
  std::vector<uint32_t> op_;
  std::vector<bool> is_return_;
};

// One depth-first search over a list of ops, resumable: run() may stop when
// its step allowance is spent and be called again.
//
// At each configuration the scan tries the calls before the earliest
// remaining return event (the candidates, in any order: the verdict does not
// depend on it). `order` only changes when optional ops are tried.
class Search {
 public:
  // Precondition: ops lists every required op before every optional one.
  Search(std::span<const SearchOp> ops, ErasedModel& model, uint32_t initial_state,
         OptionalOrder order)
      : ops_(ops),
        model_(model),
        required_count_(
            static_cast<size_t>(std::partition_point(ops.begin(), ops.end(),
                                                     [](const SearchOp& o) { return o.required; }) -
                                ops.begin())),
        list_(ops, order),
        zobrist_(zobrist_keys(ops.size())),
        required_(required_count_, zobrist_),
        optional_(ops.size() - required_count_, std::span(zobrist_).subspan(required_count_)),
        twin_before_(find_twins(ops, required_count_)),
        state_(initial_state),
        node_(list_.next(EventList::kMainHead)),
        required_left_(required_count_) {
    CHORUS_ASSERT(std::none_of(ops.begin() + static_cast<std::ptrdiff_t>(required_count_),
                               ops.end(), [](const SearchOp& o) { return o.required; }));
  }

  // Runs at most max_more_steps more steps.
  SearchOutcome run(uint64_t max_more_steps) {
    for (uint64_t n = 0; required_left_ > 0; ++n) {
      if (n == max_more_steps) return SearchOutcome::kOutOfSteps;
      ++steps_;
      if (!scan() && !backtrack()) {
        CHORUS_ASSERT(stuck_node_ != 0);
        return SearchOutcome::kNotLinearizable;
      }
    }
    return SearchOutcome::kLinearizable;
  }

  uint64_t steps() const { return steps_; }
  // The op whose return event is the latest any branch was stuck at (after
  // kNotLinearizable: the one no branch got past), and up to kStuckStatesMax
  // distinct states the search held there.
  std::optional<size_t> furthest_stuck_op() const {
    if (stuck_node_ == 0) return std::nullopt;
    return list_.op(stuck_node_);
  }
  const std::vector<uint32_t>& stuck_states() const { return stuck_states_; }

 private:
  struct Frame {
    int32_t call;           // the call node that was linearized
    uint32_t state_before;  // the state to restore when it is undone
    uint32_t entry;         // the SeenSet entry of the configuration it entered
    int32_t bound;          // the scan's bound_ then
    // A read that was legal there: the configuration below succeeds iff the
    // one with the read does, so its other moves need not be tried.
    bool forced;
  };

  // For each optional op (by index - required_count), the latest optional op
  // invoked before it with identical inputs, outputs and status, or kNoTwin.
  static std::vector<uint32_t> find_twins(std::span<const SearchOp> ops, size_t required_count) {
    std::vector<uint32_t> order(ops.size() - required_count);
    for (uint32_t k = 0; k < order.size(); ++k) order[k] = k;
    auto op = [&](uint32_t k) -> const Operation& { return *ops[required_count + k].op; };
    std::stable_sort(order.begin(), order.end(),
                     [&](uint32_t a, uint32_t b) { return op(a).invoke_us < op(b).invoke_us; });
    auto fields = [&](uint32_t k) {
      const Operation& o = op(k);
      return std::tie(o.kind, o.status, o.value, o.expected, o.found, o.output, o.cas_ok);
    };
    std::map<decltype(fields(0)), uint32_t> latest;
    std::vector<uint32_t> twin(order.size(), kNoTwin);
    for (uint32_t k : order) {
      auto [it, inserted] = latest.try_emplace(fields(k), k);
      if (!inserted) twin[k] = std::exchange(it->second, k);
    }
    return twin;
  }

  static std::vector<uint64_t> zobrist_keys(size_t n) {
    std::vector<uint64_t> keys(n);
    Prng prng(kZobristSeed);
    for (uint64_t& k : keys) k = prng.next_u64();
    return keys;
  }

  // One step of the scan at node_. False if this configuration is exhausted.
  bool scan() {
    if (bound_ == 0) {
      // A required op is left, so its return event lies ahead of every call we scan.
      CHORUS_ASSERT(node_ < list_.optional_tail() - 1);
      if (list_.is_return(node_)) {
        bound_ = node_;  // the earliest deadline: now the optional calls before it
        node_ = list_.next(EventList::kOptionalHead);
        return true;
      }
    } else if (node_ > bound_) {
      note_stuck();  // that op had to take effect by now and could not
      return false;
    }
    const uint32_t i = list_.op(node_);
    const SearchOp& o = ops_[i];
    // Symmetry: two identical optional ops are interchangeable once both are
    // invoked (this one is, so its earlier twin is too). Use them in order.
    if (!o.required && twin_before_[i - required_count_] != kNoTwin &&
        !optional_.test(twin_before_[i - required_count_])) {
      node_ = list_.next(node_);
      return true;
    }
    // Right after an optional op, a blind write would erase its effect: the
    // configuration reached is dominated by placing the write one move
    // earlier, without the optional op (same ops required, same state, fewer
    // optional ops used), which the search tries from there. This stops chains
    // of pending unknown writes from multiplying.
    if (!stack_.empty() && !ops_[list_.op(stack_.back().call)].required &&
        model_.is_blind_write(*o.op)) {
      node_ = list_.next(node_);
      return true;
    }
    const uint32_t next_state = model_.step(state_, *o.op);
    // An optional op that changes nothing is better left pending: it keeps its
    // chance to take effect later.
    if (next_state == ErasedModel::kIllegal || (next_state == state_ && !o.required)) {
      node_ = list_.next(node_);
      return true;
    }
    // Partial-order reduction: a read that is legal here can be moved to this
    // point in any linearization from here: it was invoked, every op that had
    // to precede it is linearized, it leaves the state unchanged wherever it is
    // legal, and moving it earlier constrains no other op. So this
    // configuration succeeds iff the one with the read linearized does, and no
    // other move needs to be tried. (A write that happens to change nothing
    // here does not qualify: placed later it could.)
    const bool forced = next_state == state_ && model_.is_read_only(*o.op);
    set(i);
    const uint32_t entry = seen_.insert(required_, optional_, next_state);
    if (entry == SeenSet::kCovered) {
      clear(i);
      node_ = list_.next(node_);
      return !forced;  // forced: that configuration failed, so this one does
    }
    stack_.push_back({node_, state_, entry, bound_, forced});
    state_ = next_state;
    list_.lift(node_);
    if (o.required) --required_left_;
    node_ = list_.next(EventList::kMainHead);
    bound_ = 0;
    return true;
  }

  // Undoes linearizations up to and including the latest unforced one and
  // resumes the scan after it. False when none is left: not linearizable.
  bool backtrack() {
    while (!stack_.empty()) {
      const Frame top = stack_.back();
      stack_.pop_back();
      seen_.finish(top.entry);
      const uint32_t i = list_.op(top.call);
      clear(i);
      state_ = top.state_before;
      list_.unlift(top.call);
      if (ops_[i].required) ++required_left_;
      if (!top.forced) {
        node_ = list_.next(top.call);
        bound_ = top.bound;
        return true;
      }
    }
    return false;
  }

  void note_stuck() {
    if (bound_ > stuck_node_) {
      stuck_node_ = bound_;
      stuck_states_.clear();
    }
    if (bound_ == stuck_node_ && stuck_states_.size() < kStuckStatesMax &&
        std::find(stuck_states_.begin(), stuck_states_.end(), state_) == stuck_states_.end()) {
      stuck_states_.push_back(state_);
    }
  }

  void set(uint32_t i) {
    if (i < required_count_) {
      required_.set(i);
    } else {
      optional_.set(i - required_count_);
    }
  }
  void clear(uint32_t i) {
    if (i < required_count_) {
      required_.clear(i);
    } else {
      optional_.clear(i - required_count_);
    }
  }

  std::span<const SearchOp> ops_;
  ErasedModel& model_;
  const size_t required_count_;  // ops_[0, required_count_) are required
  EventList list_;
  const std::vector<uint64_t> zobrist_;
  LinearizedSet required_;  // bit i: ops_[i]
  LinearizedSet optional_;  // bit i: ops_[required_count_ + i]
  const std::vector<uint32_t> twin_before_;
  SeenSet seen_;
  std::vector<Frame> stack_;

  uint32_t state_;
  int32_t node_;       // the next node to scan
  int32_t bound_ = 0;  // 0: scanning the main list; else the optional calls before this return
  size_t required_left_;
  uint64_t steps_ = 0;
  int32_t stuck_node_ = 0;  // the latest return event any branch was stuck at
  std::vector<uint32_t> stuck_states_;
};

// ---------------------------------------------------------------------------
// Violation window (see the header comment, "The window reported").

struct Window {
  SearchList list;
  bool from_any_state = false;
};

// (completion, index) orders required ops exactly like their return events.
bool returns_before(std::span<const SearchOp> ops, size_t a, size_t b) {
  return std::tie(ops[a].op->complete_us, a) < std::tie(ops[b].op->complete_us, b);
}

// The windows that end at one failing op F, and the search for the shortest
// one that fails from any state.
class WindowFinder {
 public:
  WindowFinder(std::span<const SearchOp> ops, size_t failed, ErasedModel& model)
      : ops_(ops), model_(model) {
    const Operation& f = *ops[failed].op;
    // P: the required ops that returned by F's return event; the ops invoked
    // before it that may have taken effect by then are optional.
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].required && (i == failed || returns_before(ops, i, failed))) {
        done_.push_back(i);
      } else if (ops[i].op->invoke_us <= f.complete_us && !model.is_read_only(*ops[i].op)) {
        running_.push_back({nullptr, ops[i].original, false});
      }
    }
    std::sort(done_.begin(), done_.end(),
              [&](size_t a, size_t b) { return returns_before(ops, a, b); });
    CHORUS_ASSERT(!done_.empty() && done_.back() == failed);
  }

  // Cut at done_[cut]: the ops completed from there on must take effect; the
  // earlier ones that overlap them become optional; the rest are dropped.
  // Cut 0 is all of P, from the initial state.
  Window window(size_t cut) const {
    std::vector<SearchOp> picked;
    int64_t first_invoke_us = INT64_MAX;
    for (size_t k = cut; k < done_.size(); ++k) {
      picked.push_back({nullptr, ops_[done_[k]].original, true});
      first_invoke_us = std::min(first_invoke_us, ops_[done_[k]].op->invoke_us);
    }
    for (size_t k = 0; k < cut; ++k) {
      const Operation& op = *ops_[done_[k]].original;
      if (op.complete_us >= first_invoke_us && !model_.is_read_only(op)) {
        picked.push_back({nullptr, &op, false});
      }
    }
    picked.insert(picked.end(), running_.begin(), running_.end());
    // Abstracted again: within a window, many more values go unobserved.
    return Window{abstracted(picked, model_, 0), cut > 0};
  }

  // The latest cut > 0 whose window fails from state `any`, spending at most
  // `budget` steps in all. Probes go from the cut that keeps only F towards
  // earlier cuts at doubling distances until a window fails, then binary
  // search between it and the nearest later probe. A probe that runs out of
  // steps counts as "not shown to fail", and gets at most budget /
  // kWindowProbesMin: what makes a window expensive to refute is mostly its
  // optional ops, not its length, so one hard probe must not end the search.
  std::optional<size_t> latest_failing_cut(uint32_t any, uint64_t budget) {
    const uint64_t probe_budget = std::max<uint64_t>(budget / kWindowProbesMin, 1);
    const size_t n = done_.size();
    size_t passing = n;  // the nearest probed cut after `failing`
    size_t failing = 0;
    for (size_t stride = 1; stride < n && spent_ < budget; stride *= 2) {
      if (fails(n - stride, any, std::min(probe_budget, budget - spent_))) {
        failing = n - stride;
        break;
      }
      passing = n - stride;
    }
    if (failing == 0) return std::nullopt;
    while (passing - failing > 1 && spent_ < budget) {
      const size_t mid = failing + (passing - failing) / 2;
      if (fails(mid, any, std::min(probe_budget, budget - spent_))) {
        failing = mid;
      } else {
        passing = mid;
      }
    }
    return failing;
  }

  uint64_t spent() const { return spent_; }

 private:
  bool fails(size_t cut, uint32_t any, uint64_t max_steps) {
    const Window w = window(cut);
    Search search(w.list.ops, model_, any, OptionalOrder::kLast);
    const SearchOutcome outcome = search.run(max_steps);
    spent_ += search.steps();
    return outcome == SearchOutcome::kNotLinearizable;
  }

  std::span<const SearchOp> ops_;
  ErasedModel& model_;
  std::vector<size_t> done_;       // indices into ops_, by return event
  std::vector<SearchOp> running_;  // optional in every window
  uint64_t spent_ = 0;
};

std::string window_report(std::string_view key, std::span<const SearchOp> ops, bool from_any_state,
                          const Operation& failed, const std::vector<std::string>& states) {
  std::string out = fmt::format("not linearizable: key {}\n", describe_value(key));
  out += fmt::format("no linearization gets past the completion of #{} {}\n", failed.id,
                     describe(failed));
  if (!states.empty()) {
    out += "state(s) the search held when it had to have taken effect:";
    for (const std::string& s : states) out += " " + s;
    out += '\n';
  }
  // Unknown ops invoked before the window starts are summarized on one line.
  int64_t start_us = INT64_MAX;
  for (const SearchOp& o : ops) {
    if (o.required) start_us = std::min(start_us, o.original->invoke_us);
  }
  auto early_unknown = [&](const SearchOp& o) {
    return o.original->status == OpStatus::kUnknown && o.original->invoke_us < start_us;
  };
  std::vector<const SearchOp*> listed;
  std::vector<uint64_t> early_ids;
  for (const SearchOp& o : ops) {
    if (early_unknown(o)) {
      early_ids.push_back(o.original->id);
    } else {
      listed.push_back(&o);
    }
  }
  const auto required = std::count_if(ops.begin(), ops.end(), [](auto& o) { return o.required; });
  out += fmt::format(
      "window: {} ops that must take effect, from {}, plus {} that may ('?': unknown, still "
      "running "
      "then, or overlapping the window's start); '*' = cannot be linearized\n",
      required, from_any_state ? "any state (whatever happened before)" : "the initial state",
      ops.size() - static_cast<size_t>(required));
  if (!early_ids.empty()) {
    out += fmt::format("  ? {} unknown ops invoked earlier, which may take effect in the window:",
                       early_ids.size());
    for (size_t k = 0; k < std::min(early_ids.size(), kReportOpsMax / 4); ++k) {
      out += fmt::format(" #{}", early_ids[k]);
    }
    out += early_ids.size() > kReportOpsMax / 4 ? " ...\n" : "\n";
  }
  for (size_t k = 0; k < listed.size(); ++k) {
    if (listed.size() > kReportOpsMax && k == kReportOpsMax / 2) {
      out += fmt::format("  ... {} ops omitted ...\n", listed.size() - kReportOpsMax);
      k = listed.size() - kReportOpsMax / 2;
    }
    const Operation& op = *listed[k]->original;
    const char mark = &op == &failed ? '*' : (listed[k]->required ? ' ' : '?');
    out += fmt::format("  {} #{} {}\n", mark, op.id, describe(op));
  }
  return out;
}

// Fills the violation fields of `result` for failing op `failed`.
void report_violation(CheckResult& result, std::span<const SearchOp> ops, size_t failed, Window w,
                      const std::vector<uint32_t>& stuck_states, ErasedModel& model) {
  result.verdict = Verdict::kViolation;
  result.failed_op_id = ops[failed].original->id;
  std::vector<SearchOp>& window_ops = w.list.ops;
  std::sort(window_ops.begin(), window_ops.end(), [](const SearchOp& a, const SearchOp& b) {
    return std::tie(a.op->invoke_us, a.op->id) < std::tie(b.op->invoke_us, b.op->id);
  });
  for (const SearchOp& o : window_ops) {
    result.window.push_back(*o.original);
    result.window_optional.push_back(!o.required);
  }
  result.window_from_any_state = w.from_any_state;
  std::vector<std::string> states;
  for (uint32_t s : stuck_states) states.push_back(model.describe(s));
  result.report =
      window_report(result.key, window_ops, w.from_any_state, *ops[failed].original, states);
}

// Runs the search for one partition's verdict. When it makes no progress past
// its furthest deadline F for a whole chunk of steps, it tries to refute
// locally: a window ending at F that fails from any state proves the history
// non-linearizable without exhausting every configuration before F (which
// pending unknown writes can make astronomically many). The n-th attempt at
// the same F gets refute_chunk_steps << n steps, once the main search has spent
// as many since the previous attempt: refuting costs about what searching does.
void decide(CheckResult& result, std::span<const SearchOp> ops, ErasedModel& model,
            const CheckOptions& opts) {
  Search search(ops, model, model.initial(), OptionalOrder::kInCallOrder);
  const std::optional<uint32_t> any = model.any();
  uint64_t refute_steps = 0;
  std::optional<size_t> stuck_at;
  uint64_t attempt_budget = 0, next_attempt_steps = 0;
  for (;;) {
    const uint64_t left = opts.max_steps - search.steps() - refute_steps;
    const SearchOutcome outcome = search.run(std::min(left, opts.refute_chunk_steps));
    result.steps = search.steps() + refute_steps;
    if (outcome == SearchOutcome::kLinearizable) {
      result.verdict = Verdict::kOk;
      return;
    }
    if (outcome == SearchOutcome::kNotLinearizable) {
      const size_t failed = *search.furthest_stuck_op();
      WindowFinder finder(ops, failed, model);
      std::optional<size_t> cut;
      if (opts.minimize_window && any) cut = finder.latest_failing_cut(*any, opts.max_window_steps);
      result.window_steps = finder.spent();
      report_violation(result, ops, failed, finder.window(cut.value_or(0)), search.stuck_states(),
                       model);
      return;
    }
    if (result.steps >= opts.max_steps) {
      result.verdict = Verdict::kUnknown;
      return;
    }
    const std::optional<size_t> stuck = search.furthest_stuck_op();
    if (stuck != stuck_at) {  // progress: start a new schedule
      stuck_at = stuck;
      attempt_budget = opts.refute_chunk_steps;
      next_attempt_steps = search.steps() + opts.refute_chunk_steps;
      continue;
    }
    if (!any || !stuck || search.steps() < next_attempt_steps) continue;
    WindowFinder finder(ops, *stuck, model);
    const std::optional<size_t> cut =
        finder.latest_failing_cut(*any, std::min(attempt_budget, opts.max_steps - result.steps));
    refute_steps += finder.spent();
    result.steps = search.steps() + refute_steps;
    if (cut) {
      report_violation(result, ops, *stuck, finder.window(opts.minimize_window ? *cut : 0),
                       search.stuck_states(), model);
      return;
    }
    attempt_budget *= 2;
    next_attempt_steps = search.steps() + attempt_budget;
  }
}

KeyResult key_result(std::string_view key, Verdict v, size_t ops, uint64_t steps) {
  return KeyResult{std::string(key), v, ops, steps};
}

}  // namespace

// ---------------------------------------------------------------------------

namespace detail {

CheckResult check_partition(std::span<const Operation* const> ops, ErasedModel& model,
                            const CheckOptions& opts, std::string_view key) {
  CheckResult result;
  result.key = std::string(key);
  std::vector<SearchOp> picked;
  for (const Operation* op : ops) {
    if (op->status == OpStatus::kFail) continue;
    if (op->status == OpStatus::kUnknown && model.is_read_only(*op)) continue;
    if (op->status == OpStatus::kOk && op->complete_us < op->invoke_us) {
      result.verdict = Verdict::kMalformed;
      result.window = {*op};
      result.window_optional = {false};
      result.report =
          fmt::format("malformed history: key {}: #{} completes before it is invoked: {}\n",
                      describe_value(key), op->id, describe(*op));
      result.keys.push_back(key_result(key, Verdict::kMalformed, 0, 0));
      return result;
    }
    picked.push_back({nullptr, op, op->status == OpStatus::kOk});
  }
  // Bit order: required ops by invoke time, then optional ones. The linearized
  // set is then mostly a prefix of ones, which the seen set stores compactly.
  std::stable_sort(picked.begin(), picked.end(), [](const SearchOp& a, const SearchOp& b) {
    return std::make_tuple(!a.required, a.original->invoke_us) <
           std::make_tuple(!b.required, b.original->invoke_us);
  });
  // Only optional ops: the states the search reports stay readable.
  const auto optional =
      std::find_if(picked.begin(), picked.end(), [](auto& o) { return !o.required; });
  const SearchList list = abstracted(picked, model, static_cast<size_t>(optional - picked.begin()));
  const std::vector<SearchOp>& search_ops = list.ops;

  decide(result, search_ops, model, opts);
  if (result.verdict == Verdict::kOk) {
    result.report = fmt::format("linearizable: key {}: {} ops, {} steps\n", describe_value(key),
                                search_ops.size(), result.steps);
  } else if (result.verdict == Verdict::kUnknown) {
    result.report = fmt::format("unknown: key {}: search budget ran out after {} steps ({} ops)\n",
                                describe_value(key), result.steps, search_ops.size());
  }
  result.keys.push_back(key_result(key, result.verdict, search_ops.size(), result.steps));
  return result;
}

}  // namespace detail

CheckResult check_linearizable(const History& h, const CheckOptions& opts) {
  std::vector<const Operation*> ops;
  ops.reserve(h.size());
  for (const Operation& op : h) ops.push_back(&op);
  std::stable_sort(ops.begin(), ops.end(),
                   [](const Operation* a, const Operation* b) { return a->key < b->key; });

  CheckResult result;
  uint64_t remaining = opts.max_steps;
  size_t unknown_keys = 0;
  for (size_t begin = 0; begin < ops.size();) {
    size_t end = begin;
    while (end < ops.size() && ops[end]->key == ops[begin]->key) ++end;
    const std::string& key = ops[begin]->key;
    detail::InternedModel<KvRegisterModel> model;  // fresh per key: small state ids
    CheckOptions key_opts = opts;
    key_opts.max_steps = remaining;
    CheckResult r =
        detail::check_partition(std::span(ops).subspan(begin, end - begin), model, key_opts, key);
    remaining -= r.steps;
    result.steps += r.steps;
    result.window_steps += r.window_steps;
    result.keys.push_back(r.keys.front());
    if (r.verdict == Verdict::kViolation || r.verdict == Verdict::kMalformed) {
      r.steps = result.steps;
      r.window_steps = result.window_steps;
      r.keys = std::move(result.keys);
      return r;
    }
    if (r.verdict == Verdict::kUnknown && unknown_keys++ == 0) {
      result.verdict = Verdict::kUnknown;
      result.key = key;
    }
    begin = end;
  }
  if (result.verdict == Verdict::kUnknown) {
    result.report = fmt::format(
        "unknown: the search budget (max_steps={}) ran out on {} of {} keys, first on key {}\n",
        opts.max_steps, unknown_keys, result.keys.size(), describe_value(result.key));
  } else {
    result.report = fmt::format("linearizable: {} keys, {} ops, {} steps\n", result.keys.size(),
                                h.size(), result.steps);
  }
  return result;
}

}  // namespace chorus::check
