// Quorum math shared by every majority-based engine (etcd's quorum/ package).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/assert.h"

namespace chorus::core {

// Members needed for a majority of n voters. Precondition: n >= 1.
constexpr size_t majority(size_t n) {
  return n / 2 + 1;
}

// The largest value v such that a majority of `acked` values are >= v: the
// committed index given every voter's match index, or the read round every
// majority has confirmed. Precondition: !acked.empty().
template <class T>
T quorum_value(std::vector<T> acked) {
  CHORUS_ASSERT(!acked.empty());
  const size_t k = majority(acked.size()) - 1;
  std::nth_element(acked.begin(), acked.begin() + static_cast<std::ptrdiff_t>(k), acked.end(),
                   [](const T& a, const T& b) { return a > b; });
  return acked[k];
}

enum class VoteResult { kPending, kWon, kLost };

// Outcome of an election among n voters given the grants and rejections so far.
constexpr VoteResult tally(size_t voters, size_t granted, size_t rejected) {
  if (granted >= majority(voters)) return VoteResult::kWon;
  if (rejected > voters - majority(voters)) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace chorus::core
