// Histogram: a log-linear latency histogram (HdrHistogram's layout) with
// fixed memory and a bounded relative error.
//
// Layout. Values are nanoseconds. Values below kSubBuckets (128 ns) get one
// bucket each, so they are exact. Above that, every power-of-two range
// [2^b, 2^(b+1)) is split into kSubBuckets equal linear buckets of width
// 2^(b-7). A bucket's width is therefore at most 1/128 of any value in it:
// percentile() reports the bucket's midpoint, so its error is at most
// 1/256 ≈ 0.4% of the true value (and never outside [min, max]).
// Values above kValueMaxNs (60 s) are counted in the top bucket; min(), max()
// and mean() are exact (max() reports the true value even above 60 s).
//
// Memory: kBucketCount (3,808) 64-bit counters ≈ 30 KiB, allocated once in
// the constructor; record() never allocates.
//
// Not thread-safe: each load-generator thread owns one, and the runner
// merges them after the threads are joined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace chorus::bench {

class Histogram {
 public:
  static constexpr int kSubBucketBits = 7;
  static constexpr uint64_t kSubBuckets = uint64_t{1} << kSubBucketBits;  // per power of two
  static constexpr uint64_t kValueMaxNs = 60'000'000'000;                 // 60 s
  // Buckets up to and including the one holding kValueMaxNs.
  static const size_t kBucketCount;

  Histogram();

  // Counts one observation of `value_ns`.
  void record(uint64_t value_ns) { record_n(value_ns, 1); }
  void record_n(uint64_t value_ns, uint64_t n);
  // Adds every observation of `other` to this one.
  void merge(const Histogram& other);
  void reset();

  uint64_t count() const { return count_; }
  // 0 when empty.
  uint64_t min_ns() const { return count_ ? min_ns_ : 0; }
  uint64_t max_ns() const { return max_ns_; }
  double mean_ns() const { return count_ ? sum_ns_ / static_cast<double>(count_) : 0; }
  // The value at percentile `p` (0..100; clamped): the smallest recorded value
  // v such that at least p% of observations are <= v, up to the bucket
  // precision. percentile(0) == min_ns(), percentile(100) == max_ns(); 0 when
  // empty.
  uint64_t percentile(double p) const;

  // Bucket math, public for the tests. Precondition of bucket_lower_ns: i < kBucketCount.
  static size_t bucket_index(uint64_t value_ns);
  static uint64_t bucket_lower_ns(size_t i);
  static uint64_t bucket_width_ns(size_t i);

 private:
  std::vector<uint64_t> counts_;  // kBucketCount entries
  uint64_t count_ = 0;            // Invariant: == sum of counts_
  uint64_t min_ns_ = UINT64_MAX;  // meaningful only when count_ > 0
  uint64_t max_ns_ = 0;
  double sum_ns_ = 0;  // a double: 2^64 ns is only ~585 years of summed latency
};

}  // namespace chorus::bench
