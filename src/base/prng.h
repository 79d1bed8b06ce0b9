// A small, seeded, platform-independent pseudo-random generator
// (xoshiro256**, seeded through splitmix64).
//
// Every source of randomness in a protocol core or the simulator is a Prng
// passed in by the host, never a global generator: one seed gives one exact
// run on every machine. The distributions are written here rather than taken
// from <random>, whose distributions are implementation-defined and would make
// a seed replay differently under another standard library.
#pragma once

#include <cstdint>

namespace chorus {

class Prng {
 public:
  explicit Prng(uint64_t seed) { reseed(seed); }

  void reseed(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [lo, hi] (inclusive). Precondition: lo <= hi.
  uint64_t uniform(uint64_t lo, uint64_t hi);
  // Uniform in [0, 1).
  double real();
  // True with probability p (p <= 0 never, p >= 1 always).
  bool chance(double p) { return p > 0 && (p >= 1 || real() < p); }
  // A new, independent generator derived from this one (for per-node streams).
  Prng fork() { return Prng(next_u64()); }

 private:
  uint64_t s_[4] = {};
};

}  // namespace chorus
