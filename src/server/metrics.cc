#include "server/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "base/assert.h"

namespace chorus::metrics {
namespace {

bool is_name_char(char ch, bool first, bool allow_colon) {
  if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_') return true;
  if (allow_colon && ch == ':') return true;
  return !first && ch >= '0' && ch <= '9';
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view type_name(detail::Type t) {
  switch (t) {
    case detail::Type::kCounter:
      return "counter";
    case detail::Type::kGauge:
      return "gauge";
    case detail::Type::kHistogram:
      return "histogram";
  }
  CHORUS_UNREACHABLE();
}

void check_bounds(const std::vector<double>& b) {
  CHORUS_ASSERT_MSG(!b.empty() && b.size() <= kMaxBuckets, "histogram: 1..kMaxBuckets bounds");
  for (size_t i = 0; i < b.size(); ++i) {
    CHORUS_ASSERT_MSG(std::isfinite(b[i]), "histogram: bounds must be finite");
    CHORUS_ASSERT_MSG(i == 0 || b[i - 1] < b[i], "histogram: bounds must increase strictly");
  }
}

// Truncates to at most n bytes without cutting a UTF-8 sequence in half.
std::string_view truncate_utf8(std::string_view s, size_t n) {
  if (s.size() <= n) return s;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

}  // namespace

bool is_valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, /*allow_colon=*/true)) return false;
  }
  return true;
}

bool is_valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if (!is_name_char(name[i], i == 0, /*allow_colon=*/false)) return false;
  }
  return true;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  CHORUS_ASSERT(ec == std::errc());
  return std::string(buf, end);
}

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char ch : v) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '"') {
      out += "\\\"";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char ch : v) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

// ---- Histogram ----------------------------------------------------------------

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  check_bounds(bounds_);
  buckets_ = std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1);
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // Prometheus buckets are "less than or equal": the first bound >= v.
  size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = total;
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> exponential_buckets(double start, double factor, size_t count) {
  CHORUS_ASSERT(start > 0 && factor > 1 && count >= 1 && count <= kMaxBuckets);
  std::vector<double> b;
  double x = start;
  for (size_t i = 0; i < count; ++i, x *= factor) b.push_back(x);
  return b;
}

std::vector<double> linear_buckets(double start, double width, size_t count) {
  CHORUS_ASSERT(width > 0 && count >= 1 && count <= kMaxBuckets);
  std::vector<double> b;
  for (size_t i = 0; i < count; ++i) b.push_back(start + width * static_cast<double>(i));
  return b;
}

std::vector<double> latency_seconds_buckets() {
  return exponential_buckets(0.00005, 2, 17);
}

std::vector<double> batch_size_buckets() {
  return exponential_buckets(1, 2, 16);
}

// ---- Families ------------------------------------------------------------------

namespace detail {

FamilyBase::FamilyBase(Type type, std::string name, std::string help,
                       std::vector<std::string> label_names, size_t max_series)
    : type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      max_series_(max_series) {
  CHORUS_ASSERT_MSG(is_valid_metric_name(name_), "metrics: invalid metric name");
  CHORUS_ASSERT_MSG(type_ != Type::kCounter || ends_with(name_, "_total"),
                    "metrics: counter names end in _total");
  CHORUS_ASSERT_MSG(label_names_.size() <= kMaxLabels, "metrics: too many labels");
  CHORUS_ASSERT_MSG(max_series_ >= 1, "metrics: max_series must be >= 1");
  for (size_t i = 0; i < label_names_.size(); ++i) {
    CHORUS_ASSERT_MSG(is_valid_label_name(label_names_[i]), "metrics: invalid label name");
    CHORUS_ASSERT_MSG(type_ != Type::kHistogram || label_names_[i] != "le",
                      "metrics: histograms reserve the label le");
    for (size_t j = 0; j < i; ++j) {
      CHORUS_ASSERT_MSG(label_names_[i] != label_names_[j], "metrics: duplicate label name");
    }
  }
}

std::string FamilyBase::label_prefix(const std::vector<std::string>& values) const {
  if (values.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += label_names_[i];
    out += "=\"";
    out += escape_label_value(values[i]);
    out += '"';
  }
  return out;
}

void FamilyBase::render_header(std::string* out) const {
  *out += "# HELP ";
  *out += name_;
  *out += ' ';
  *out += escape_help(help_);
  *out += "\n# TYPE ";
  *out += name_;
  *out += ' ';
  *out += type_name(type_);
  *out += '\n';
}

std::vector<std::string_view> FamilyBase::checked(std::span<const std::string_view> values) const {
  CHORUS_ASSERT_MSG(values.size() == label_names_.size(),
                    "metrics: label value count differs from label names");
  std::vector<std::string_view> out;
  out.reserve(values.size());
  for (std::string_view v : values) out.push_back(truncate_utf8(v, kMaxLabelValueBytes));
  return out;
}

}  // namespace detail

template <class M>
Family<M>::Family(detail::Type type, std::string name, std::string help,
                  std::vector<std::string> label_names, size_t max_series,
                  std::vector<double> upper_bounds)
    : FamilyBase(type, std::move(name), std::move(help), std::move(label_names), max_series),
      bounds_(std::move(upper_bounds)) {
  overflow_ = make();
}

template <class M>
std::unique_ptr<M> Family<M>::make() const {
  if constexpr (std::is_same_v<M, Histogram>) {
    return std::make_unique<Histogram>(bounds_);
  } else {
    return std::make_unique<M>();
  }
}

template <class M>
M& Family<M>::with(std::span<const std::string_view> values) {
  std::vector<std::string_view> key = checked(values);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = series_.find(key);
  if (it != series_.end()) return *it->second;
  if (series_.size() >= max_series_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return *overflow_;
  }
  std::vector<std::string> owned(key.begin(), key.end());
  auto [pos, inserted] = series_.emplace(std::move(owned), make());
  (void)inserted;
  return *pos->second;
}

template <class M>
M& Family<M>::with(const std::vector<std::string>& values) {
  std::vector<std::string_view> views(values.begin(), values.end());
  return with(std::span<const std::string_view>(views));
}

template <class M>
size_t Family<M>::series_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return series_.size();
}

template <class M>
void Family<M>::render(std::string* out) const {
  render_header(out);
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, m] : series_) {
    std::string labels = label_prefix(values);
    if constexpr (std::is_same_v<M, Histogram>) {
      Histogram::Snapshot s = m->snapshot();
      std::string open = labels.empty() ? "{" : labels + ",";
      for (size_t i = 0; i < s.cumulative.size(); ++i) {
        std::string le = i < bounds_.size() ? format_value(bounds_[i]) : "+Inf";
        *out += name_ + "_bucket" + open + "le=\"" + le + "\"} " + std::to_string(s.cumulative[i]) +
                "\n";
      }
      std::string close = labels.empty() ? "" : labels + "}";
      *out += name_ + "_sum" + close + " " + format_value(s.sum) + "\n";
      *out += name_ + "_count" + close + " " + std::to_string(s.count) + "\n";
    } else {
      std::string close = labels.empty() ? "" : labels + "}";
      if constexpr (std::is_same_v<M, Counter>) {
        *out += name_ + close + " " + std::to_string(m->value()) + "\n";
      } else {
        *out += name_ + close + " " + format_value(m->value()) + "\n";
      }
    }
  }
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

// ---- Registry -----------------------------------------------------------------------

template <class M>
Family<M>& Registry::family(detail::Type type, std::string_view name, std::string_view help,
                            std::vector<std::string> label_names, size_t max_series,
                            std::vector<double> upper_bounds) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) {
    if (f->name() != name) continue;
    auto* same = dynamic_cast<Family<M>*>(f.get());
    CHORUS_ASSERT_MSG(same != nullptr && f->type() == type && f->label_names() == label_names,
                      "metrics: name registered twice with different definitions");
    if constexpr (std::is_same_v<M, Histogram>) {
      CHORUS_ASSERT_MSG(same->upper_bounds() == upper_bounds,
                        "metrics: histogram registered twice with different buckets");
    }
    return *same;
  }
  auto f = std::make_unique<Family<M>>(type, std::string(name), std::string(help),
                                       std::move(label_names), max_series, std::move(upper_bounds));
  Family<M>& ref = *f;
  families_.push_back(std::move(f));
  return ref;
}

Counter& Registry::counter(std::string_view name, std::string_view help) {
  return counter_family(name, help, {}, 1).with({});
}

Gauge& Registry::gauge(std::string_view name, std::string_view help) {
  return gauge_family(name, help, {}, 1).with({});
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::vector<double> upper_bounds) {
  return histogram_family(name, help, {}, std::move(upper_bounds), 1).with({});
}

CounterFamily& Registry::counter_family(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names, size_t max_series) {
  return family<Counter>(detail::Type::kCounter, name, help, std::move(label_names), max_series,
                         {});
}

GaugeFamily& Registry::gauge_family(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names, size_t max_series) {
  return family<Gauge>(detail::Type::kGauge, name, help, std::move(label_names), max_series, {});
}

HistogramFamily& Registry::histogram_family(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names,
                                            std::vector<double> upper_bounds, size_t max_series) {
  check_bounds(upper_bounds);
  return family<Histogram>(detail::Type::kHistogram, name, help, std::move(label_names), max_series,
                           std::move(upper_bounds));
}

std::string Registry::render_prometheus() const {
  std::string out;
  std::vector<std::pair<std::string, uint64_t>> dropped;
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& f : families_) {
    f->render(&out);
    if (uint64_t d = f->dropped(); d > 0) dropped.emplace_back(f->name(), d);
  }
  if (!dropped.empty()) {
    out +=
        "# HELP chorus_metrics_dropped_series_total Label sets refused because the metric "
        "had its maximum number of series.\n"
        "# TYPE chorus_metrics_dropped_series_total counter\n";
    for (const auto& [name, d] : dropped) {
      out += "chorus_metrics_dropped_series_total{metric=\"" + name + "\"} " + std::to_string(d) +
             "\n";
    }
  }
  return out;
}

}  // namespace chorus::metrics
