// A small metrics registry rendered in the Prometheus text exposition format
// (version 0.0.4): counters, gauges and fixed-bucket histograms, each optionally
// split by labels.
//
//   metrics::Registry reg;
//   auto& cmds = reg.counter_family("chorus_client_commands_total",
//                                   "Client commands by name and result.", {"command", "result"});
//   metrics::Counter& set_ok = cmds.with({"set", "ok"});  // look up once, keep the reference
//   set_ok.inc();
//   auto& fsync = reg.histogram("chorus_wal_fsync_seconds", "WAL fsync latency.",
//                               metrics::latency_seconds_buckets());
//   fsync.observe(0.0021);
//   std::string text = reg.render_prometheus();  // for GET /metrics
//
// Threads. Updates (inc, set, observe) come from the event loop; the admin
// HTTP thread renders. Every value is a std::atomic updated with relaxed
// ordering, so an update is a single uncontended atomic add and never blocks.
// Creating a family or a new label set takes a mutex, which render also takes
// while it walks the series; hot paths should look a series up once and keep
// the reference (references stay valid for the registry's lifetime). A
// rendered histogram is not an atomic snapshot of all of its fields: it may
// miss an observe() that runs concurrently, but its _count always equals its
// +Inf bucket (both are derived from the same bucket reads).
//
// Limits. A family holds at most max_series label sets (default
// kDefaultMaxSeries): beyond that, with() returns a shared overflow series
// that is never rendered, and the refusal is counted in
// chorus_metrics_dropped_series_total{metric="NAME"} (rendered once anything
// was dropped). Label values longer than kMaxLabelValueBytes are truncated.
//
// Names. Metric names match [a-zA-Z_:][a-zA-Z0-9_:]*, counter names end in
// _total, label names match [a-zA-Z_][a-zA-Z0-9_]* and do not start with "__";
// histograms may not use the label "le". Metric names are fixed strings in
// code, so a bad name is a bug: it fails a CHORUS_ASSERT at registration.
// Registering a name again with the same type, labels and buckets returns the
// existing family; with a different definition it is a bug (asserted).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::metrics {

inline constexpr size_t kDefaultMaxSeries = 256;
inline constexpr size_t kMaxLabels = 8;
inline constexpr size_t kMaxLabelValueBytes = 128;
inline constexpr size_t kMaxBuckets = 64;

bool is_valid_metric_name(std::string_view name);
bool is_valid_label_name(std::string_view name);

// A monotonically increasing count.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

// A value that goes up and down (role, term, queue length, lag).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void add(double d) { value_.fetch_add(d, std::memory_order_relaxed); }
  void inc() { add(1); }
  void dec() { add(-1); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted in fixed buckets. Bucket i counts values v with
// upper_bounds[i-1] < v <= upper_bounds[i]; the implicit last bucket (+Inf)
// counts the rest. NaN observations are ignored.
class Histogram {
 public:
  // Precondition: 1..kMaxBuckets finite, strictly increasing bounds (asserted).
  explicit Histogram(std::vector<double> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // per upper bound, then +Inf; non-decreasing
    double sum = 0;
    uint64_t count = 0;  // == cumulative.back()
  };
  Snapshot snapshot() const;
  const std::vector<double>& upper_bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1, not cumulative
  std::atomic<double> sum_{0};
};

// Bucket helpers. exponential: start, start*factor, ... (count bounds).
std::vector<double> exponential_buckets(double start, double factor, size_t count);
std::vector<double> linear_buckets(double start, double width, size_t count);
// 50 us .. ~3.3 s, doubling: fsync, append round trips, request latency.
std::vector<double> latency_seconds_buckets();
// 1 .. 32768, doubling: entries per append, commands per batch.
std::vector<double> batch_size_buckets();

namespace detail {

// Orders label-value tuples; transparent so that a lookup by string_views
// does not allocate.
struct LabelsLess {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(),
        [](std::string_view x, std::string_view y) { return x < y; });
  }
};

enum class Type { kCounter, kGauge, kHistogram };

class FamilyBase {
 public:
  FamilyBase(Type type, std::string name, std::string help, std::vector<std::string> label_names,
             size_t max_series);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  Type type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  // Label sets refused because the family was full.
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Appends # HELP, # TYPE and every series.
  virtual void render(std::string* out) const = 0;

 protected:
  // "{a=\"x\",b=\"y\"" without the closing brace, or "" when there are no labels.
  std::string label_prefix(const std::vector<std::string>& values) const;
  void render_header(std::string* out) const;
  // Truncates over-long values; asserts the count matches label_names.
  std::vector<std::string_view> checked(std::span<const std::string_view> values) const;

  const Type type_;
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const size_t max_series_;
  mutable std::mutex mu_;  // guards the series maps of the derived families
  std::atomic<uint64_t> dropped_{0};
};

}  // namespace detail

// One metric name with a fixed set of label names; one series per label-value tuple.
template <class M>
class Family : public detail::FamilyBase {
 public:
  // The series for these label values (in label_names order), created on first use.
  M& with(std::span<const std::string_view> values);
  M& with(std::initializer_list<std::string_view> values) {
    return with(std::span<const std::string_view>(values.begin(), values.size()));
  }
  M& with(const std::vector<std::string>& values);
  size_t series_count() const;
  // Histogram families: the bucket bounds every series uses. Empty otherwise.
  const std::vector<double>& upper_bounds() const { return bounds_; }

  void render(std::string* out) const override;

  // Use Registry to create families.
  Family(detail::Type type, std::string name, std::string help,
         std::vector<std::string> label_names, size_t max_series, std::vector<double> upper_bounds);

 private:
  std::unique_ptr<M> make() const;

  const std::vector<double> bounds_;  // histograms only
  std::map<std::vector<std::string>, std::unique_ptr<M>, detail::LabelsLess> series_;
  std::unique_ptr<M> overflow_;  // handed out once the family is full; never rendered
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Owns every metric of a process (or of a test). Not copyable or movable.
class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Unlabeled metrics: one series, rendered from the start (at 0).
  Counter& counter(std::string_view name, std::string_view help);
  Gauge& gauge(std::string_view name, std::string_view help);
  Histogram& histogram(std::string_view name, std::string_view help,
                       std::vector<double> upper_bounds);

  // Labeled families: a series appears when with() first sees its label values.
  CounterFamily& counter_family(std::string_view name, std::string_view help,
                                std::vector<std::string> label_names,
                                size_t max_series = kDefaultMaxSeries);
  GaugeFamily& gauge_family(std::string_view name, std::string_view help,
                            std::vector<std::string> label_names,
                            size_t max_series = kDefaultMaxSeries);
  HistogramFamily& histogram_family(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names,
                                    std::vector<double> upper_bounds,
                                    size_t max_series = kDefaultMaxSeries);

  // Prometheus text format 0.0.4. Families in registration order, series in
  // label-value order. Safe to call from any thread.
  std::string render_prometheus() const;

 private:
  template <class M>
  Family<M>& family(detail::Type type, std::string_view name, std::string_view help,
                    std::vector<std::string> label_names, size_t max_series,
                    std::vector<double> upper_bounds);

  mutable std::mutex mu_;  // guards families_ (the vector, not the families)
  std::vector<std::unique_ptr<detail::FamilyBase>> families_;
};

// Exposition helpers, public for tests and for other exporters.
// A sample value: integers without a decimal point, shortest round-trip
// otherwise, "+Inf", "-Inf", "NaN".
std::string format_value(double v);
// Label value escaping: \ -> \\, " -> \", newline -> \n.
std::string escape_label_value(std::string_view v);
// HELP text escaping: \ -> \\, newline -> \n.
std::string escape_help(std::string_view v);

}  // namespace chorus::metrics
