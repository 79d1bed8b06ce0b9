#include "bench/histogram.h"

#include <gtest/gtest.h>

#include <cmath>

#include "base/prng.h"

namespace chorus::bench {
namespace {

constexpr uint64_t kUs = 1000;

// |actual - expected| <= 1% of expected.
void expect_within_1pct(uint64_t actual, uint64_t expected) {
  EXPECT_LE(std::abs(static_cast<double>(actual) - static_cast<double>(expected)),
            0.01 * static_cast<double>(expected))
      << "actual " << actual << " expected " << expected;
}

TEST(HistogramTest, EmptyReportsZeros) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min_ns(), 0u);
  EXPECT_EQ(h.max_ns(), 0u);
  EXPECT_EQ(h.mean_ns(), 0.0);
  EXPECT_EQ(h.percentile(50), 0u);
}

TEST(HistogramTest, FixedMemoryCoversOneNanosecondToSixtySeconds) {
  EXPECT_EQ(Histogram::kBucketCount, 3808u);  // 30 KiB of counters
  EXPECT_EQ(Histogram::bucket_index(Histogram::kValueMaxNs), Histogram::kBucketCount - 1);
  EXPECT_EQ(Histogram::bucket_index(UINT64_MAX), Histogram::kBucketCount - 1);
}

TEST(HistogramTest, BucketsTileTheRangeWithRelativeWidthUnderOnePercent) {
  for (size_t i = 0; i + 1 < Histogram::kBucketCount; ++i) {
    const uint64_t lo = Histogram::bucket_lower_ns(i);
    const uint64_t width = Histogram::bucket_width_ns(i);
    ASSERT_EQ(lo + width, Histogram::bucket_lower_ns(i + 1)) << i;
    ASSERT_EQ(Histogram::bucket_index(lo), i);
    ASSERT_EQ(Histogram::bucket_index(lo + width - 1), i);
    if (lo >= 1000) {
      ASSERT_LE(static_cast<double>(width) / static_cast<double>(lo), 1.0 / 128) << i;
    }
  }
}

TEST(HistogramTest, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(1), 1u);
}

TEST(HistogramTest, UniformOneToThousandMicrosecondsPercentilesWithinOnePercent) {
  Histogram h;
  for (uint64_t v = 1; v <= 1000; ++v) h.record(v * kUs);
  EXPECT_EQ(h.count(), 1000u);
  EXPECT_EQ(h.min_ns(), 1 * kUs);
  EXPECT_EQ(h.max_ns(), 1000 * kUs);
  EXPECT_DOUBLE_EQ(h.mean_ns(), 500.5 * kUs);
  expect_within_1pct(h.percentile(50), 500 * kUs);
  expect_within_1pct(h.percentile(90), 900 * kUs);
  expect_within_1pct(h.percentile(99), 990 * kUs);
  expect_within_1pct(h.percentile(99.9), 999 * kUs);
  EXPECT_EQ(h.percentile(100), 1000 * kUs);
  EXPECT_EQ(h.percentile(0), 1 * kUs);
}

TEST(HistogramTest, EverySingleValueIsReportedWithinHalfAPercent) {
  Prng prng(7);
  for (int i = 0; i < 20000; ++i) {
    // Log-uniform from 1 us to 60 s.
    const auto v = static_cast<uint64_t>(1000.0 * std::pow(6e7, prng.real()));
    Histogram h;
    h.record(v / 2);  // min and max far away, so p50 is the bucket midpoint, not clamped
    h.record(v);
    h.record(100 * v);
    const uint64_t p = h.percentile(50);
    ASSERT_LE(std::abs(static_cast<double>(p) - static_cast<double>(v)),
              0.005 * static_cast<double>(v))
        << v;
  }
}

TEST(HistogramTest, BimodalTailIsSeparated) {
  Histogram h;
  h.record_n(100 * kUs, 990);
  h.record_n(50'000 * kUs, 10);  // 1% at 50 ms
  expect_within_1pct(h.percentile(50), 100 * kUs);
  expect_within_1pct(h.percentile(99), 100 * kUs);
  expect_within_1pct(h.percentile(99.1), 50'000 * kUs);
  EXPECT_EQ(h.max_ns(), 50'000 * kUs);
}

TEST(HistogramTest, MergeEqualsRecordingEverythingInOne) {
  Histogram a, b, all;
  Prng prng(3);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t v = prng.uniform(1, 5'000'000);
    (i % 3 == 0 ? a : b).record(v);
    all.record(v);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.min_ns(), all.min_ns());
  EXPECT_EQ(a.max_ns(), all.max_ns());
  EXPECT_DOUBLE_EQ(a.mean_ns(), all.mean_ns());
  for (double p : {1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99})
    EXPECT_EQ(a.percentile(p), all.percentile(p)) << p;
}

TEST(HistogramTest, MergingAnEmptyHistogramChangesNothing) {
  Histogram a, empty;
  a.record(5 * kUs);
  a.merge(empty);
  EXPECT_EQ(a.count(), 1u);
  EXPECT_EQ(a.min_ns(), 5 * kUs);
  empty.merge(a);
  EXPECT_EQ(empty.min_ns(), 5 * kUs);
}

TEST(HistogramTest, ValuesAboveSixtySecondsCountInTheTopBucketButKeepTheirMax) {
  Histogram h;
  h.record(1 * kUs);
  h.record(120'000'000'000);  // 2 minutes
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.max_ns(), 120'000'000'000u);
  EXPECT_EQ(h.percentile(100), 120'000'000'000u);
  EXPECT_GE(h.percentile(99), 59'000'000'000u);
}

TEST(HistogramTest, ResetForgetsEverything) {
  Histogram h;
  h.record(42);
  h.reset();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  h.record(7);
  EXPECT_EQ(h.min_ns(), 7u);
}

}  // namespace
}  // namespace chorus::bench
