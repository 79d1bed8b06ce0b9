// report_soft_state(): the first step of an engine's ready().
#pragma once

#include <string>
#include <utility>

#include "core/common/types.h"

namespace chorus::core {

// Sets rd.soft_state (and its reason) when `now` differs from what the last
// Ready reported, then remembers `now`; the reason is consumed either way.
// Every engine's ready() starts with this.
template <class Rd>
void report_soft_state(Rd& rd, const SoftState& now, SoftState& prev, std::string& reason) {
  if (now != prev) {
    rd.soft_state = now;
    rd.soft_state_reason = std::move(reason);
  }
  reason.clear();
  prev = now;
}

}  // namespace chorus::core
