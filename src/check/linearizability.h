// Linearizability checker: could the operations of a concurrent history have
// taken effect one at a time, each at some instant between its invocation and
// its completion, in an order the sequential model accepts (Herlihy & Wing)?
//
// What it checks
//   check_linearizable() splits the history by key and checks each key on its
//   own against KvRegisterModel (one register per key). The split is exact:
//   linearizability is compositional (Herlihy & Wing's locality) and no
//   operation touches two keys. check_partition<M>() checks a list of
//   operations against any Model M, unsplit.
//
// Input rules (history.h)
//   - kFail operations are ignored: they did not take effect.
//   - kOk operations took effect exactly once, inside [invoke_us, complete_us],
//     with their recorded outputs. Intervals are closed: operations that share
//     an endpoint count as concurrent, so equal timestamps never cause a report.
//   - kUnknown operations complete at +infinity: each may take effect once, at
//     any instant after invoke_us, or never, and its outputs are ignored. An
//     unknown read has no effect, so it is dropped. An unknown cas swaps if
//     placed where it matches ("it did not happen" is never placing it).
//   - A kOk operation with complete_us < invoke_us: verdict kMalformed.
//   Operations that must take effect are "required"; the others "optional".
//
// Algorithm: Wing & Gong's search with Lowe's memoization, as in Porcupine
//   Every operation becomes a call event and, if required, a return event,
//   sorted by time (calls first on ties) into a doubly linked list. A
//   depth-first search (iterative: an explicit stack) scans the calls before
//   the earliest remaining return event, the candidates: it tries to step the
//   model with one; if legal and the configuration (set of linearized
//   operations, new state) is new, the operation is linearized (its events
//   unlinked) and the scan restarts. When no candidate is left, the earliest
//   return event belongs to an operation that had to take effect by then and
//   could not: the search backtracks. It succeeds when every required
//   operation is linearized and fails when nothing is left to undo.
//   The seen set stores each configuration exactly (the bitset compactly: a
//   count of leading all-ones words, then the non-zero words), indexed by an
//   incremental Zobrist hash and an interned state id: no false hits.
//   Reductions on top, each sound (the comment where it is applied says why):
//   - a legal read (Model::is_read_only) that changes nothing is linearized
//     at once, with no alternative tried (partial-order reduction);
//   - a configuration is covered by a finished one with the same required
//     operations and state and a subset of its optional ones (subsumption);
//   - an optional operation is never placed where it changes nothing, nor
//     while an earlier identical one is pending (symmetry), and a blind write
//     (Model::is_blind_write) is never placed right after an optional one;
//   - Model::abstract() merges values no operation can observe, so that
//     unobserved unknown writes become identical.
//
// Local refutation
//   Proving a violation the direct way means exhausting every configuration
//   up to the failing operation, and pending unknown writes can make those
//   astronomically many. So the search runs in chunks (refute_chunk_steps);
//   when a chunk got no further in the history, the checker tries the
//   windows ending at the operation it is stuck on (below): one that fails
//   from any state proves the violation. Attempts at the same operation get
//   doubling budgets, so they cost about what the main search does.
//
// Complexity
//   Deciding linearizability is NP-complete (Gibbons & Korach): the worst case
//   is exponential in the number of mutually concurrent operations. On
//   histories from real workloads the search is near linear: 10,000 ops of 8
//   clients on one key take ~10 steps per operation. Each step is O(1) plus a
//   model step and a hash lookup. Memory is one seen entry (~60-100 bytes) per
//   configuration entered, plus each distinct state once. The hard cases are
//   many concurrent appends on one key observed only by later reads (every
//   order is a distinct state) and many pending unknown writes when the
//   history is not linearizable. CheckOptions::max_steps bounds time and
//   memory; running out gives kUnknown, never a guess.
//
// The window reported for a violation
//   1. The failing operation F: the search never got past F's return event in
//      any branch, while it did linearize, in some branch, everything that
//      returned before. So the history as observed when F completed is not
//      linearizable, and as observed at any earlier return it is.
//   2. P: the required operations that returned by then; the operations
//      invoked by then that were still running (they must produce their
//      recorded outputs if they take effect) or unknown are optional.
//   3. Front trimming. A cut keeps P's required operations that completed
//      from some point on (F among them); earlier ones that overlap a kept one
//      become optional (they may have taken effect inside the window or
//      before it), the rest are dropped. Soundness: in any linearization,
//      every dropped operation precedes every kept required one, so the kept
//      ones are linearizable from the state reached at that point. Hence if
//      the window fails from Model::any() (which over-approximates every
//      state), the history is not linearizable, whatever came before.
//   4. Probes go from the cut that keeps only F towards earlier cuts at
//      doubling distances, then binary search: the reported window is the
//      latest cut shown to fail within max_window_steps. Every reported
//      window was verified to fail; it is the shortest among the cuts probed,
//      not necessarily the shortest subsequence of the history that fails.
//      Without any(), or if no probe fails, the window is P from the initial
//      state. All unknown operations invoked before F completed stay in every
//      window, since they may take effect inside it; they are marked '?'.
//
// Thread-safety: none needed: pure functions of their arguments, no globals.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "check/history.h"

namespace chorus::check {

// A sequential specification. The state is a value: copyable, comparable with
// ==, and hashed by M::hash (equal states must hash equally).
//   initial()        the state before the first operation.
//   step(s, op)      the state after op took effect in s, or nullopt if op
//                    could not have produced its outputs in s. For a kUnknown
//                    op, outputs are unconstrained.
//   is_read_only(op) wherever op is legal, it leaves the state unchanged (a
//                    read; a cas that reported failure). One exception is
//                    allowed: from a state derived from any(), a read may
//                    narrow the state down. The checker drops such ops when
//                    they are unknown or still running, and linearizes them
//                    as soon as they are legal and change nothing.
//   describe(s)      one line for reports.
template <class M>
concept Model = std::copyable<typename M::State> && std::equality_comparable<typename M::State> &&
    requires(const typename M::State& s, const Operation& op) {
  { M::initial() } -> std::same_as<typename M::State>;
  { M::step(s, op) } -> std::same_as<std::optional<typename M::State>>;
  { M::hash(s) } -> std::same_as<uint64_t>;
  { M::is_read_only(op) } -> std::same_as<bool>;
  { M::describe(s) } -> std::same_as<std::string>;
};

// Optional: a state standing for "any state", used to trim the violation
// window and to refute locally. Invariant: step(any(), op) allows at least
// every outcome that step(s, op) allows for some concrete s (it may allow
// more), and so on for the states reached from any().
template <class M>
concept ModelWithAnyState = Model<M> && requires {
  { M::any() } -> std::same_as<typename M::State>;
};

// Optional: is_blind_write(op) says op is legal in every state and its result
// does not depend on the state (a put). It lets the search skip placing op
// right after an optional op, whose effect it would erase.
template <class M>
concept ModelWithBlindWrites = Model<M> && requires(const Operation& op) {
  { M::is_blind_write(op) } -> std::same_as<bool>;
};

// Optional: abstract(ops, first) may rewrite the inputs of ops[first..] (ops
// is a partition or a window) into a coarser form with exactly the same
// linearizations of ops, e.g. give every value no op can ever observe one
// placeholder. Ops that become identical are then interchangeable, which the
// search exploits. Reports always show the original ops.
template <class M>
concept ModelWithAbstraction = Model<M> && requires(std::span<Operation> ops, size_t first) {
  { M::abstract(ops, first) } -> std::same_as<void>;
};

// One register per key; the checker feeds it the operations of one key.
//   get:    legal iff found/output equal the state (unknown: always, no change)
//   put:    state = value
//   cas:    matches = key present && value == expected.
//           ok true  -> legal iff matches; state = value
//           ok false -> legal iff !matches; no change
//           unknown  -> state = matches ? value : unchanged
//   append: state = (state or "") + value; always legal
class KvRegisterModel {
 public:
  struct State {
    enum class Kind : uint8_t {
      kAbsent,
      kPresent,    // the key holds `value`
      kAny,        // any state, absent included (any())
      kAnySuffix,  // the key holds some value that ends with `value` (any() + appends)
    };
    Kind kind = Kind::kAbsent;
    std::string value;  // Invariant: empty if kind is kAbsent or kAny.
    bool operator==(const State&) const = default;
  };

  static State initial() { return {}; }
  // From any(), a read learns the value, put and cas-true set it, appends
  // build a known suffix; a cas-false keeps what is known (it only excludes
  // one value: an over-approximation, as Model allows).
  static State any() { return {State::Kind::kAny, {}}; }
  static std::optional<State> step(const State& s, const Operation& op);
  static uint64_t hash(const State& s);
  // A get, or a completed cas that reported false (legal only if it did not match).
  static bool is_read_only(const Operation& op) {
    return op.kind == OpKind::kGet ||
           (op.kind == OpKind::kCas && op.status == OpStatus::kOk && !op.cas_ok);
  }
  static bool is_blind_write(const Operation& op) { return op.kind == OpKind::kPut; }
  // A value written by a put or cas is observable if some read output or cas
  // expected value starts with it (appends extend values). Unobservable ones
  // are all replaced by one placeholder that no observable string starts
  // with: every read and cas compares the same way against either, so the
  // linearizations are unchanged.
  static void abstract(std::span<Operation> ops, size_t first);
  static std::string describe(const State& s);
};

struct CheckOptions {
  // Search steps allowed for the verdict, summed over all keys and including
  // local refutation. A step is one move of the search (try a call, or undo
  // one). Roughly 10-40M steps per second; memory grows by at most ~100 bytes
  // per step.
  uint64_t max_steps = 20'000'000;
  // Trim the window of a violation the main search found (see the class
  // comment), with its own budget over all trimming searches. Off: the window
  // is P, from the initial state.
  bool minimize_window = true;
  uint64_t max_window_steps = 2'000'000;
  // The verdict search runs in chunks of this many steps. After a chunk that
  // got no further in the history, it tries to refute locally (see "Local
  // refutation"), at most about as many steps as it has spent searching.
  uint64_t refute_chunk_steps = 100'000;
};

enum class Verdict : uint8_t {
  kOk,         // linearizable
  kViolation,  // not linearizable; see key, window, report
  kUnknown,    // max_steps ran out before a verdict
  kMalformed,  // an operation completed before it was invoked
};
std::string_view verdict_name(Verdict v);

struct KeyResult {
  std::string key;
  Verdict verdict = Verdict::kOk;
  size_t ops = 0;      // operations searched (failed ops and unknown reads dropped)
  uint64_t steps = 0;  // search steps spent on the verdict for this key
};

struct CheckResult {
  Verdict verdict = Verdict::kOk;
  // kViolation/kMalformed: the key concerned; kUnknown: the first key that ran out.
  std::string key;
  // kViolation: the window (see the class comment), sorted by invoke_us.
  // kMalformed: the offending operation.
  std::vector<Operation> window;
  // Parallel to window: true for an op that may or may not take effect in it
  // (unknown, still running when the failing op completed, or overlapping the
  // window's start); false for one that must.
  std::vector<bool> window_optional;
  // kViolation: the window starts from any state (it fails whatever happened
  // before it); false: from the initial state.
  bool window_from_any_state = false;
  // kViolation: id of the operation that could not be linearized (in window).
  std::optional<uint64_t> failed_op_id;
  // Multi-line, for humans: verdict, key, window one op per line, failing op.
  std::string report;
  uint64_t steps = 0;         // verdict steps over all keys, local refutation included
  uint64_t window_steps = 0;  // steps spent trimming the window after the verdict
  // Per key, in key order. Checking stops at the first violation or malformed
  // key; keys after it are absent. Keys after the budget ran out are kUnknown.
  std::vector<KeyResult> keys;
};

// Checks h against one KvRegisterModel per key.
CheckResult check_linearizable(const History& h, const CheckOptions& opts = {});

namespace detail {

// The search works on interned state ids so that it is compiled once; this is
// the model seen through ids.
class ErasedModel {
 public:
  static constexpr uint32_t kIllegal = UINT32_MAX;
  virtual ~ErasedModel() = default;
  virtual uint32_t initial() = 0;
  virtual std::optional<uint32_t> any() = 0;  // nullopt: the model has no any()
  // The id of the state after op, or kIllegal.
  virtual uint32_t step(uint32_t state, const Operation& op) = 0;
  virtual bool is_read_only(const Operation& op) const = 0;
  virtual bool is_blind_write(const Operation& op) const = 0;
  virtual void abstract(std::span<Operation> ops, size_t first) const = 0;
  virtual std::string describe(uint32_t state) const = 0;
};

template <Model M>
class InternedModel final : public ErasedModel {
 public:
  uint32_t initial() override { return intern(M::initial()); }
  std::optional<uint32_t> any() override {
    if constexpr (ModelWithAnyState<M>) {
      return intern(M::any());
    } else {
      return std::nullopt;
    }
  }
  uint32_t step(uint32_t state, const Operation& op) override {
    std::optional<typename M::State> next = M::step(states_[state], op);
    if (!next) return kIllegal;
    // A read usually keeps the state: skip hashing it then. (Not always: a
    // read from any() learns the value.)
    if (M::is_read_only(op) && *next == states_[state]) return state;
    return intern(std::move(*next));
  }
  bool is_read_only(const Operation& op) const override { return M::is_read_only(op); }
  bool is_blind_write(const Operation& op) const override {
    if constexpr (ModelWithBlindWrites<M>) {
      return M::is_blind_write(op);
    } else {
      return false;
    }
  }
  void abstract(std::span<Operation> ops, size_t first) const override {
    if constexpr (ModelWithAbstraction<M>) M::abstract(ops, first);
  }
  std::string describe(uint32_t state) const override { return M::describe(states_[state]); }

 private:
  uint32_t intern(typename M::State s) {
    uint64_t h = M::hash(s);
    auto [first, last] = ids_by_hash_.equal_range(h);
    for (auto it = first; it != last; ++it) {
      if (states_[it->second] == s) return it->second;
    }
    auto id = static_cast<uint32_t>(states_.size());
    states_.push_back(std::move(s));
    ids_by_hash_.emplace(h, id);
    return id;
  }

  std::vector<typename M::State> states_;  // Invariant: pairwise distinct.
  std::unordered_multimap<uint64_t, uint32_t> ids_by_hash_;
};

// Checks ops (all of one partition) against model; `key` only labels the result.
CheckResult check_partition(std::span<const Operation* const> ops, ErasedModel& model,
                            const CheckOptions& opts, std::string_view key);

}  // namespace detail

// Checks ops against model M as one partition (no split by key).
template <Model M>
CheckResult check_partition(std::span<const Operation> ops, const CheckOptions& opts = {}) {
  std::vector<const Operation*> ptrs;
  ptrs.reserve(ops.size());
  for (const Operation& op : ops) ptrs.push_back(&op);
  detail::InternedModel<M> model;
  return detail::check_partition(ptrs, model, opts, ops.empty() ? "" : ops.front().key);
}

}  // namespace chorus::check
