// Tests for the metrics registry: the exact exposition text, histogram
// buckets, label escaping, the series bound, and concurrent update + render.
#include "server/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <limits>
#include <thread>

namespace chorus::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsExposition, CounterGaugeAndLabeledCounterExactly) {
  Registry reg;
  Counter& proposals = reg.counter("chorus_raft_proposals_total", "Proposals accepted.");
  Gauge& term = reg.gauge("chorus_raft_term", "Current term.");
  CounterFamily& cmds = reg.counter_family(
      "chorus_client_commands_total", "Client commands by name and result.", {"command", "result"});
  proposals.inc();
  proposals.inc(41);
  term.set(7);
  cmds.with({"set", "ok"}).inc(3);
  cmds.with({"get", "ok"}).inc();
  cmds.with({"set", "err"}).inc(2);
  EXPECT_EQ(reg.render_prometheus(),
            "# HELP chorus_raft_proposals_total Proposals accepted.\n"
            "# TYPE chorus_raft_proposals_total counter\n"
            "chorus_raft_proposals_total 42\n"
            "# HELP chorus_raft_term Current term.\n"
            "# TYPE chorus_raft_term gauge\n"
            "chorus_raft_term 7\n"
            "# HELP chorus_client_commands_total Client commands by name and result.\n"
            "# TYPE chorus_client_commands_total counter\n"
            "chorus_client_commands_total{command=\"get\",result=\"ok\"} 1\n"
            "chorus_client_commands_total{command=\"set\",result=\"err\"} 2\n"
            "chorus_client_commands_total{command=\"set\",result=\"ok\"} 3\n");
}

TEST(MetricsExposition, UnlabeledMetricsRenderZeroFromTheStart) {
  Registry reg;
  reg.counter("a_total", "A.");
  reg.gauge("b", "B.");
  reg.gauge_family("c", "C.", {"peer"});  // no series yet: header only
  EXPECT_EQ(reg.render_prometheus(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n"
            "# HELP b B.\n# TYPE b gauge\nb 0\n"
            "# HELP c C.\n# TYPE c gauge\n");
}

TEST(MetricsExposition, GaugeValuesFormatting) {
  Registry reg;
  GaugeFamily& g = reg.gauge_family("g", "G.", {"k"});
  g.with({"a"}).set(0.25);
  g.with({"b"}).set(-3);
  g.with({"c"}).set(1e-7);
  g.with({"d"}).set(std::numeric_limits<double>::infinity());
  g.with({"e"}).set(std::numeric_limits<double>::quiet_NaN());
  Gauge& f = g.with({"f"});
  f.inc();
  f.inc();
  f.dec();
  f.add(0.5);
  EXPECT_EQ(reg.render_prometheus(),
            "# HELP g G.\n# TYPE g gauge\n"
            "g{k=\"a\"} 0.25\n"
            "g{k=\"b\"} -3\n"
            "g{k=\"c\"} 1e-07\n"
            "g{k=\"d\"} +Inf\n"
            "g{k=\"e\"} NaN\n"
            "g{k=\"f\"} 1.5\n");
}

TEST(MetricsHistogram, CumulativeBucketsSumAndCount) {
  Registry reg;
  Histogram& h =
      reg.histogram("chorus_wal_fsync_seconds", "WAL fsync latency.", {0.001, 0.01, 0.1});
  h.observe(0.0005);  // le 0.001
  h.observe(0.001);   // le 0.001: buckets are "less than or equal"
  h.observe(0.005);   // le 0.01
  h.observe(0.5);     // +Inf only
  h.observe(std::numeric_limits<double>::quiet_NaN());  // ignored
  EXPECT_EQ(reg.render_prometheus(),
            "# HELP chorus_wal_fsync_seconds WAL fsync latency.\n"
            "# TYPE chorus_wal_fsync_seconds histogram\n"
            "chorus_wal_fsync_seconds_bucket{le=\"0.001\"} 2\n"
            "chorus_wal_fsync_seconds_bucket{le=\"0.01\"} 3\n"
            "chorus_wal_fsync_seconds_bucket{le=\"0.1\"} 3\n"
            "chorus_wal_fsync_seconds_bucket{le=\"+Inf\"} 4\n"
            "chorus_wal_fsync_seconds_sum 0.5065\n"
            "chorus_wal_fsync_seconds_count 4\n");
  Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 3, 3, 4}));
  EXPECT_EQ(s.count, 4u);
}

TEST(MetricsHistogram, LabeledHistogramPutsLeLast) {
  Registry reg;
  HistogramFamily& f =
      reg.histogram_family("chorus_append_batch_entries", "Entries per append.", {"peer"}, {1, 8});
  f.with({"2"}).observe(3);
  EXPECT_EQ(reg.render_prometheus(),
            "# HELP chorus_append_batch_entries Entries per append.\n"
            "# TYPE chorus_append_batch_entries histogram\n"
            "chorus_append_batch_entries_bucket{peer=\"2\",le=\"1\"} 0\n"
            "chorus_append_batch_entries_bucket{peer=\"2\",le=\"8\"} 1\n"
            "chorus_append_batch_entries_bucket{peer=\"2\",le=\"+Inf\"} 1\n"
            "chorus_append_batch_entries_sum{peer=\"2\"} 3\n"
            "chorus_append_batch_entries_count{peer=\"2\"} 1\n");
}

TEST(MetricsHistogram, BucketHelpers) {
  EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
  EXPECT_EQ(linear_buckets(0, 5, 3), (std::vector<double>{0, 5, 10}));
  EXPECT_EQ(latency_seconds_buckets().front(), 0.00005);
  EXPECT_EQ(batch_size_buckets().back(), 32768);
  Registry reg;
  reg.histogram("x_seconds", "X.", latency_seconds_buckets());  // valid bounds
}

TEST(MetricsLabels, ValuesAreEscapedAndHelpToo) {
  Registry reg;
  CounterFamily& f = reg.counter_family("e_total", "Help with \\ and\nnewline.", {"v"});
  f.with({"a\"b\\c\nd"}).inc();
  EXPECT_EQ(reg.render_prometheus(),
            "# HELP e_total Help with \\\\ and\\nnewline.\n"
            "# TYPE e_total counter\n"
            "e_total{v=\"a\\\"b\\\\c\\nd\"} 1\n");
}

TEST(MetricsLabels, LongValuesAreTruncated) {
  Registry reg;
  CounterFamily& f = reg.counter_family("t_total", "T.", {"v"});
  std::string long_value(1000, 'x');
  f.with({long_value}).inc();
  f.with({long_value + "y"}).inc();  // same truncated value: same series
  EXPECT_EQ(f.series_count(), 1u);
  EXPECT_THAT(reg.render_prometheus(),
              HasSubstr("t_total{v=\"" + std::string(kMaxLabelValueBytes, 'x') + "\"} 2\n"));
}

TEST(MetricsLabels, LookupByStringVectorFindsTheSameSeries) {
  Registry reg;
  CounterFamily& f = reg.counter_family("s_total", "S.", {"a", "b"});
  Counter& c1 = f.with({"x", "y"});
  Counter& c2 = f.with(std::vector<std::string>{"x", "y"});
  EXPECT_EQ(&c1, &c2);
}

TEST(MetricsCardinality, BeyondMaxSeriesIsDroppedAndCounted) {
  Registry reg;
  CounterFamily& f = reg.counter_family("c_total", "C.", {"command"}, /*max_series=*/2);
  f.with({"get"}).inc();
  f.with({"set"}).inc();
  f.with({"evil1"}).inc(100);  // refused: goes to the hidden overflow series
  f.with({"evil2"}).inc(100);
  f.with({"get"}).inc();  // existing series still work
  EXPECT_EQ(f.series_count(), 2u);
  EXPECT_EQ(f.dropped(), 2u);
  std::string text = reg.render_prometheus();
  EXPECT_THAT(text, Not(HasSubstr("evil")));
  EXPECT_THAT(text, HasSubstr("c_total{command=\"get\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE chorus_metrics_dropped_series_total counter\n"
                              "chorus_metrics_dropped_series_total{metric=\"c_total\"} 2\n"));
}

TEST(MetricsRegistry, SameDefinitionReturnsTheSameMetric) {
  Registry reg;
  Counter& a = reg.counter("x_total", "X.");
  Counter& b = reg.counter("x_total", "X.");
  EXPECT_EQ(&a, &b);
  HistogramFamily& h1 = reg.histogram_family("h", "H.", {"p"}, {1, 2});
  HistogramFamily& h2 = reg.histogram_family("h", "H.", {"p"}, {1, 2});
  EXPECT_EQ(&h1, &h2);
  EXPECT_EQ(h1.series_count(), 0u);
}

TEST(MetricsRegistry, NameValidation) {
  EXPECT_TRUE(is_valid_metric_name("chorus_raft_term"));
  EXPECT_TRUE(is_valid_metric_name("ns:sub_metric"));
  EXPECT_TRUE(is_valid_metric_name("_x"));
  EXPECT_FALSE(is_valid_metric_name(""));
  EXPECT_FALSE(is_valid_metric_name("1abc"));
  EXPECT_FALSE(is_valid_metric_name("has-dash"));
  EXPECT_FALSE(is_valid_metric_name("has space"));
  EXPECT_TRUE(is_valid_label_name("command"));
  EXPECT_FALSE(is_valid_label_name("__reserved"));
  EXPECT_FALSE(is_valid_label_name("a:b"));
  EXPECT_FALSE(is_valid_label_name("9a"));
}

using MetricsRegistryDeathTest = ::testing::Test;

TEST(MetricsRegistryDeathTest, BadDefinitionsAreBugs) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH({ Registry().counter("bad-name_total", "B."); }, "invalid metric name");
  EXPECT_DEATH({ Registry().counter("no_suffix", "B."); }, "_total");
  EXPECT_DEATH({ Registry().gauge_family("g", "G.", {"__x"}); }, "invalid label name");
  EXPECT_DEATH({ Registry().histogram_family("h", "H.", {"le"}, {1}); }, "reserve the label le");
  EXPECT_DEATH({ Registry().histogram("h", "H.", {2, 1}); }, "increase strictly");
  EXPECT_DEATH(
      {
        Registry r;
        r.counter("x_total", "X.");
        r.gauge("x_total", "X.");
      },
      "registered twice");
  EXPECT_DEATH(
      {
        Registry r;
        r.counter_family("y_total", "Y.", {"a"}).with({"1", "2"});
      },
      "label value count");
}

// Updates on one thread (the event loop), renders on another (the admin
// thread), new series created while rendering. Run under TSan to check the
// design; here it checks that nothing is lost.
TEST(MetricsConcurrency, IncrementAndRenderFromTwoThreads) {
  Registry reg;
  Counter& c = reg.counter("ops_total", "Ops.");
  Gauge& g = reg.gauge("level", "Level.");
  Histogram& h = reg.histogram("lat_seconds", "Lat.", {0.1, 1});
  CounterFamily& f = reg.counter_family("cmd_total", "Cmd.", {"command"}, 50);
  constexpr int kOps = 100000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < kOps; ++i) {
      c.inc();
      g.set(i);
      h.observe((i % 3) * 0.5);
      f.with({std::to_string(i % 100)}).inc();  // 100 label values, 50 allowed
    }
    done = true;
  });
  size_t renders = 0;
  while (!done.load()) {
    std::string text = reg.render_prometheus();
    EXPECT_THAT(text, HasSubstr("# TYPE ops_total counter\n"));
    ++renders;
  }
  writer.join();
  EXPECT_GT(renders, 0u);
  EXPECT_EQ(c.value(), static_cast<uint64_t>(kOps));
  Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, static_cast<uint64_t>(kOps));
  EXPECT_EQ(f.series_count(), 50u);
  EXPECT_EQ(f.dropped(), static_cast<uint64_t>(kOps / 2));
  EXPECT_THAT(reg.render_prometheus(), HasSubstr("ops_total 100000\n"));
}

}  // namespace
}  // namespace chorus::metrics
