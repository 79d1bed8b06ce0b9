// KvRegisterModel: the sequential model (one register per key) each key is checked against.
#include <algorithm>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/assert.h"
#include "check/linearizability.h"

namespace chorus::check {

// ---------------------------------------------------------------------------
// KvRegisterModel

namespace {

using KvState = KvRegisterModel::State;

// step() from kAny or kAnySuffix: every outcome some concrete state in the
// set allows, as one state (over-approximating where one cannot be exact).
std::optional<KvState> step_from_unknown(const KvState& s, const Operation& op) {
  using Kind = KvState::Kind;
  const bool unknown = op.status == OpStatus::kUnknown;
  // Whether a concrete state in s could hold v.
  auto may_hold = [&](std::string_view v) { return s.kind == Kind::kAny || v.ends_with(s.value); };
  switch (op.kind) {
    case OpKind::kGet:
      if (unknown) return s;
      if (!op.found) return s.kind == Kind::kAny ? std::optional<KvState>(KvState{}) : std::nullopt;
      if (!may_hold(op.output)) return std::nullopt;
      return KvState{Kind::kPresent, op.output};
    case OpKind::kPut:
      return KvState{Kind::kPresent, op.value};
    case OpKind::kCas:
      // Swapped (or unknown, and it may have): the state was `expected`. An
      // unknown cas that did not swap is the op never taking effect.
      if ((unknown || op.cas_ok) && may_hold(op.expected)) return KvState{Kind::kPresent, op.value};
      if (unknown || op.cas_ok) return std::nullopt;
      return s;
    case OpKind::kAppend:
      return KvState{Kind::kAnySuffix, s.value + op.value};
  }
  CHORUS_UNREACHABLE();
}

}  // namespace

std::optional<KvRegisterModel::State> KvRegisterModel::step(const State& s, const Operation& op) {
  using Kind = State::Kind;
  if (s.kind == Kind::kAny || s.kind == Kind::kAnySuffix) return step_from_unknown(s, op);
  const bool unknown = op.status == OpStatus::kUnknown;
  switch (op.kind) {
    case OpKind::kGet:
      if (unknown) return s;
      if (op.found != (s.kind == Kind::kPresent)) return std::nullopt;
      if (op.found && op.output != s.value) return std::nullopt;
      return s;
    case OpKind::kPut:
      return State{Kind::kPresent, op.value};
    case OpKind::kCas: {
      // history.h: a missing key never matches.
      const bool matches = s.kind == Kind::kPresent && s.value == op.expected;
      if (unknown) return matches ? State{Kind::kPresent, op.value} : s;
      if (op.cas_ok != matches) return std::nullopt;
      return matches ? State{Kind::kPresent, op.value} : s;
    }
    case OpKind::kAppend:
      return State{Kind::kPresent, s.value + op.value};
  }
  CHORUS_UNREACHABLE();
}

namespace {
// Stands for every value no op can observe. Chosen unlikely to be observed;
// abstract() checks that it is not.
constexpr std::string_view kUnobserved = "\x01unobserved";
}  // namespace

void KvRegisterModel::abstract(std::span<Operation> ops, size_t first) {
  std::vector<std::string_view> observed;
  for (const Operation& op : ops) {
    if (op.kind == OpKind::kGet && op.status == OpStatus::kOk && op.found)
      observed.push_back(op.output);
    if (op.kind == OpKind::kCas) observed.push_back(op.expected);
  }
  std::sort(observed.begin(), observed.end());
  // Whether some observed string starts with v: the first one >= v does if any does.
  auto observable = [&](std::string_view v) {
    auto it = std::lower_bound(observed.begin(), observed.end(), v);
    return it != observed.end() && it->starts_with(v);
  };
  if (observable(kUnobserved)) return;
  for (Operation& op : ops.subspan(first)) {
    if ((op.kind == OpKind::kPut || op.kind == OpKind::kCas) && !observable(op.value)) {
      op.value = std::string(kUnobserved);
    }
  }
}

uint64_t KvRegisterModel::hash(const State& s) {
  return std::hash<std::string_view>{}(s.value) * 3 + static_cast<uint64_t>(s.kind);
}

std::string KvRegisterModel::describe(const State& s) {
  switch (s.kind) {
    case State::Kind::kAbsent:
      return "nil";
    case State::Kind::kPresent:
      if (s.value.starts_with(kUnobserved)) {
        const std::string_view rest = std::string_view(s.value).substr(kUnobserved.size());
        return "<a value nobody reads>" + (rest.empty() ? "" : "+" + describe_value(rest));
      }
      return describe_value(s.value);
    case State::Kind::kAny:
      return "<any>";
    case State::Kind::kAnySuffix:
      return "<any>" + describe_value(s.value);
  }
  CHORUS_UNREACHABLE();
}

}  // namespace chorus::check
