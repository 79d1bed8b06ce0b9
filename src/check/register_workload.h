// A seeded generator of linearizable-by-construction histories, for the
// checker's tests and benchmark: clients issue one operation at a time against
// a simulated atomic store; each operation takes effect at an instant drawn
// inside its [invoke_us, complete_us] interval, and outputs are computed by
// applying the operations in the order of those instants. Unknown operations
// take effect with probability 1/2 (at their instant) and failed ones never.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "base/prng.h"
#include "check/history.h"

namespace chorus::check::testing {

struct RegisterWorkload {
  uint64_t seed = 1;
  size_t ops = 1000;
  size_t clients = 8;
  size_t keys = 1;
  // Kind mix; the rest are gets.
  double put_ratio = 0.35;
  double cas_ratio = 0.15;
  double append_ratio = 0.0;
  double unknown_ratio = 0.0;
  double fail_ratio = 0.0;
  uint64_t distinct_values = 5;  // put/cas values are drawn from [0, distinct_values)
  int64_t latency_max_us = 100;  // invoke -> effect and effect -> completion, each
  int64_t think_max_us = 20;     // a client's pause between operations
};

inline History generate_register_history(const RegisterWorkload& w) {
  Prng prng(w.seed);
  History h;
  h.reserve(w.ops);
  std::vector<int64_t> free_at_us(w.clients, 0);
  std::vector<std::pair<int64_t, size_t>> effects;  // (instant, index in h) of ops that take effect
  auto value = [&] { return std::to_string(prng.uniform(0, w.distinct_values - 1)); };
  for (size_t i = 0; i < w.ops; ++i) {
    const auto client = static_cast<size_t>(std::min_element(free_at_us.begin(), free_at_us.end()) -
                                            free_at_us.begin());
    Operation op;
    op.id = i + 1;
    op.client = client;
    op.key = "k" + std::to_string(prng.uniform(0, w.keys - 1));
    const double kind = prng.real();
    if (kind < w.put_ratio) {
      op.kind = OpKind::kPut;
      op.value = value();
    } else if (kind < w.put_ratio + w.cas_ratio) {
      op.kind = OpKind::kCas;
      op.expected = value();
      op.value = value();
    } else if (kind < w.put_ratio + w.cas_ratio + w.append_ratio) {
      op.kind = OpKind::kAppend;
      op.value = std::to_string(prng.uniform(0, 9));
    } else {
      op.kind = OpKind::kGet;
    }
    const auto think = static_cast<int64_t>(prng.uniform(0, w.think_max_us));
    const auto to_effect = static_cast<int64_t>(prng.uniform(0, w.latency_max_us));
    const auto to_complete = static_cast<int64_t>(prng.uniform(0, w.latency_max_us));
    op.invoke_us = free_at_us[client] + think;
    op.complete_us = op.invoke_us + to_effect + to_complete;
    const double fate = prng.real();
    bool takes_effect = true;
    if (fate < w.fail_ratio) {
      op.status = OpStatus::kFail;
      takes_effect = false;
    } else if (fate < w.fail_ratio + w.unknown_ratio) {
      op.status = OpStatus::kUnknown;
      takes_effect = prng.chance(0.5);
    }
    if (takes_effect) effects.emplace_back(op.invoke_us + to_effect, i);
    free_at_us[client] = op.complete_us + 1;
    h.push_back(std::move(op));
  }
  std::sort(effects.begin(), effects.end());
  std::map<std::string, std::optional<std::string>> store;
  for (const auto& [instant_us, i] : effects) {
    Operation& op = h[i];
    std::optional<std::string>& v = store[op.key];
    switch (op.kind) {
      case OpKind::kGet:
        op.found = v.has_value();
        op.output = v.value_or("");
        break;
      case OpKind::kPut:
        v = op.value;
        break;
      case OpKind::kCas:
        op.cas_ok = v.has_value() && *v == op.expected;
        if (op.cas_ok) v = op.value;
        break;
      case OpKind::kAppend:
        v = v.value_or("") + op.value;
        break;
    }
  }
  return h;
}

}  // namespace chorus::check::testing
