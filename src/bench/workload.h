// Workloads of the load generator: which operation comes next, on which key,
// with which value.
//
// Key space: keys 0..keys-1. Key i is "key:" followed by i in decimal,
// zero-padded so that the whole key is exactly key_size bytes
// ("key:000000000042" for i = 42, key_size 16). Preloading writes every key.
//
// Workloads: `set` (every operation writes), `get` (every operation reads; the
// key space is preloaded first, so reads find their keys), `mixed` (each
// operation reads with probability read_ratio, else writes).
//
// Key choice: uniform over the key space, or zipfian (YCSB's
// ZipfianGenerator, Gray et al. "Quickly generating billion-record synthetic
// databases", theta 0.99 by default): rank r is drawn with probability
// proportional to 1/(r+1)^theta and rank r is key r, so key 0 is the hottest.
// (YCSB's "scrambled" variant hashes ranks over the key space; for a store
// whose keys all live in one replication group the placement does not matter.)
//
// Values: value_size bytes cut from a per-client buffer of random printable
// bytes, at an offset that advances with every write, so consecutive values
// differ but producing one costs nothing.
//
// A Workload is immutable once built and shared by every client thread; each
// client owns an OpGenerator, seeded from (seed, client index), so a run's
// sequence of operations per client is a pure function of the seed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/prng.h"
#include "base/status.h"
#include "bench/driver.h"

namespace chorus::bench {

enum class WorkloadKind { kSet, kGet, kMixed };
enum class KeyDistribution { kUniform, kZipfian };

std::string_view workload_name(WorkloadKind k);
std::optional<WorkloadKind> parse_workload(std::string_view s);
std::string_view distribution_name(KeyDistribution d);
std::optional<KeyDistribution> parse_distribution(std::string_view s);

inline constexpr std::string_view kKeyPrefix = "key:";
inline constexpr uint64_t kKeysMax = 100'000'000;  // zipfian setup is O(keys)
inline constexpr int kKeySizeMax = 1024;
inline constexpr int kValueSizeMax = 1 << 20;

struct WorkloadSpec {
  WorkloadKind kind = WorkloadKind::kSet;
  uint64_t keys = 100'000;
  int key_size = 16;
  int value_size = 256;
  double read_ratio = 0.9;  // kMixed only
  KeyDistribution distribution = KeyDistribution::kUniform;
  double zipf_theta = 0.99;  // kZipfian only
  uint64_t seed = 1;
};

// InvalidArgument naming the field if a value is out of range (including a
// key_size too small for the "key:" prefix plus the digits of keys-1).
Status validate(const WorkloadSpec& spec);

// The smallest key_size that can spell every key of a `keys`-key space.
int key_size_min(uint64_t keys);
// Writes key `index` (< keys) of `key_size` bytes into *out (reusing its capacity).
void format_key(uint64_t index, int key_size, std::string* out);

// YCSB's ZipfianGenerator over [0, items). Immutable after construction
// (O(items) to compute zeta); sample() may be called from many threads, each
// with its own Prng.
class Zipfian {
 public:
  // Preconditions: items >= 1, 0 < theta < 1.
  Zipfian(uint64_t items, double theta);
  uint64_t sample(Prng& prng) const;
  // The probability of rank 0 (1/zeta(items, theta)), for tests.
  double top_probability() const { return 1.0 / zeta_n_; }

 private:
  uint64_t items_;
  double theta_;
  double alpha_;   // 1 / (1 - theta)
  double zeta_n_;  // sum_{i=1..items} 1/i^theta
  double eta_;
  double half_pow_theta_;  // 0.5^theta
};

class Workload {
 public:
  // Precondition: validate(spec) is OK.
  explicit Workload(const WorkloadSpec& spec);
  const WorkloadSpec& spec() const { return spec_; }
  // A key index drawn from the configured distribution.
  uint64_t sample_key(Prng& prng) const;

 private:
  WorkloadSpec spec_;
  std::optional<Zipfian> zipf_;
};

// One client's stream of operations. Not thread-safe; one per client.
class OpGenerator {
 public:
  OpGenerator(const Workload& workload, int client);
  // The next operation. Its key is written to *key_buffer and its value (for
  // a write) points into this generator: both stay valid until *key_buffer
  // is reused and for the lifetime of the generator, respectively.
  Op next(std::string* key_buffer);
  // A write of key `index` (preloading).
  Op write_of(uint64_t index, std::string* key_buffer);

 private:
  std::string_view next_value();

  const Workload& workload_;
  Prng prng_;
  std::string value_pool_;  // value_size + kValueOffsets random printable bytes
  uint64_t writes_ = 0;
};

}  // namespace chorus::bench
