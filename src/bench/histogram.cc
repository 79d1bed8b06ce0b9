#include "bench/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "base/assert.h"

namespace chorus::bench {

const size_t Histogram::kBucketCount = Histogram::bucket_index(Histogram::kValueMaxNs) + 1;

size_t Histogram::bucket_index(uint64_t value_ns) {
  value_ns = std::min(value_ns, kValueMaxNs);
  if (value_ns < kSubBuckets) return static_cast<size_t>(value_ns);
  // msb >= kSubBucketBits; the top kSubBucketBits+1 bits select the bucket.
  const int msb = std::bit_width(value_ns) - 1;
  const int shift = msb - kSubBucketBits;
  const uint64_t sub = (value_ns >> shift) - kSubBuckets;  // 0..kSubBuckets-1
  return static_cast<size_t>(kSubBuckets * static_cast<uint64_t>(shift + 1) + sub);
}

uint64_t Histogram::bucket_lower_ns(size_t i) {
  if (i < kSubBuckets) return i;
  const uint64_t shift = i / kSubBuckets - 1;
  const uint64_t sub = i % kSubBuckets;
  return (kSubBuckets + sub) << shift;
}

uint64_t Histogram::bucket_width_ns(size_t i) {
  if (i < kSubBuckets) return 1;
  return uint64_t{1} << (i / kSubBuckets - 1);
}

Histogram::Histogram() : counts_(kBucketCount, 0) {}

void Histogram::record_n(uint64_t value_ns, uint64_t n) {
  if (n == 0) return;
  counts_[bucket_index(value_ns)] += n;
  count_ += n;
  min_ns_ = std::min(min_ns_, value_ns);
  max_ns_ = std::max(max_ns_, value_ns);
  sum_ns_ += static_cast<double>(value_ns) * static_cast<double>(n);
}

void Histogram::merge(const Histogram& other) {
  CHORUS_ASSERT(counts_.size() == other.counts_.size());
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  min_ns_ = std::min(min_ns_, other.min_ns_);
  max_ns_ = std::max(max_ns_, other.max_ns_);
  sum_ns_ += other.sum_ns_;
}

void Histogram::reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = 0;
  min_ns_ = UINT64_MAX;
  max_ns_ = 0;
  sum_ns_ = 0;
}

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  if (p == 0) return min_ns();
  if (p == 100) return max_ns_;
  // The rank of the wanted observation, 1-based: ceil(p% of count). The
  // tolerance keeps 99.9% of 1000 at rank 999 despite binary fractions.
  const double exact = p * static_cast<double>(count_) / 100.0;
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(exact - exact * 1e-12)));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t mid = bucket_lower_ns(i) + bucket_width_ns(i) / 2;
      return std::clamp(mid, min_ns(), max_ns_);
    }
  }
  return max_ns_;  // unreachable: seen reaches count_ >= rank
}

}  // namespace chorus::bench
