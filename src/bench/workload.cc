#include "bench/workload.h"

#include <cmath>
#include <cstdio>

#include "base/assert.h"

namespace chorus::bench {
namespace {

// Distinct value offsets into the value pool (so distinct consecutive values).
constexpr uint64_t kValueOffsets = 251;  // prime: cycles do not line up with pipeline depths

int digits(uint64_t v) {
  int n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

double zeta(uint64_t n, double theta) {
  double sum = 0;
  for (uint64_t i = 1; i <= n; ++i) sum += 1.0 / std::pow(static_cast<double>(i), theta);
  return sum;
}

}  // namespace

std::string_view workload_name(WorkloadKind k) {
  switch (k) {
    case WorkloadKind::kSet:
      return "set";
    case WorkloadKind::kGet:
      return "get";
    case WorkloadKind::kMixed:
      return "mixed";
  }
  return "?";
}

std::optional<WorkloadKind> parse_workload(std::string_view s) {
  for (auto k : {WorkloadKind::kSet, WorkloadKind::kGet, WorkloadKind::kMixed}) {
    if (workload_name(k) == s) return k;
  }
  return std::nullopt;
}

std::string_view distribution_name(KeyDistribution d) {
  return d == KeyDistribution::kUniform ? "uniform" : "zipfian";
}

std::optional<KeyDistribution> parse_distribution(std::string_view s) {
  if (s == "uniform") return KeyDistribution::kUniform;
  if (s == "zipfian") return KeyDistribution::kZipfian;
  return std::nullopt;
}

int key_size_min(uint64_t keys) {
  return static_cast<int>(kKeyPrefix.size()) + digits(keys == 0 ? 0 : keys - 1);
}

Status validate(const WorkloadSpec& s) {
  if (s.keys < 1 || s.keys > kKeysMax) {
    return Status::invalid_argument("--keys must be 1.." + std::to_string(kKeysMax));
  }
  if (s.key_size < key_size_min(s.keys) || s.key_size > kKeySizeMax) {
    return Status::invalid_argument("--key-size must be " + std::to_string(key_size_min(s.keys)) +
                                    ".." + std::to_string(kKeySizeMax) + " for " +
                                    std::to_string(s.keys) + " keys");
  }
  if (s.value_size < 0 || s.value_size > kValueSizeMax) {
    return Status::invalid_argument("--value-size must be 0.." + std::to_string(kValueSizeMax));
  }
  if (!(s.read_ratio >= 0 && s.read_ratio <= 1)) {
    return Status::invalid_argument("--read-ratio must be between 0 and 1");
  }
  if (!(s.zipf_theta > 0 && s.zipf_theta < 1)) {
    return Status::invalid_argument("--zipf-theta must be strictly between 0 and 1");
  }
  return Status::ok();
}

void format_key(uint64_t index, int key_size, std::string* out) {
  char digits_buf[24];
  const int n =
      std::snprintf(digits_buf, sizeof digits_buf, "%llu", static_cast<unsigned long long>(index));
  const int pad = key_size - static_cast<int>(kKeyPrefix.size()) - n;
  CHORUS_ASSERT(pad >= 0);
  out->assign(kKeyPrefix);
  out->append(static_cast<size_t>(pad), '0');
  out->append(digits_buf, static_cast<size_t>(n));
}

Zipfian::Zipfian(uint64_t items, double theta) : items_(items), theta_(theta) {
  CHORUS_ASSERT(items >= 1 && theta > 0 && theta < 1);
  alpha_ = 1.0 / (1.0 - theta);
  zeta_n_ = zeta(items, theta);
  half_pow_theta_ = std::pow(0.5, theta);
  const double zeta2 = zeta(2, theta);
  // eta is only used for ranks >= 2, i.e. when items > 2 (zeta_n_ > zeta2).
  eta_ = items > 2
             ? (1 - std::pow(2.0 / static_cast<double>(items), 1 - theta)) / (1 - zeta2 / zeta_n_)
             : 0;
}

uint64_t Zipfian::sample(Prng& prng) const {
  const double u = prng.real();
  const double uz = u * zeta_n_;
  if (uz < 1.0) return 0;
  if (uz < 1.0 + half_pow_theta_) return std::min<uint64_t>(1, items_ - 1);
  const double r = static_cast<double>(items_) * std::pow(eta_ * u - eta_ + 1, alpha_);
  return std::min(static_cast<uint64_t>(r), items_ - 1);
}

Workload::Workload(const WorkloadSpec& spec) : spec_(spec) {
  CHORUS_ASSERT(validate(spec).is_ok());
  if (spec.distribution == KeyDistribution::kZipfian) zipf_.emplace(spec.keys, spec.zipf_theta);
}

uint64_t Workload::sample_key(Prng& prng) const {
  if (zipf_) return zipf_->sample(prng);
  return prng.uniform(0, spec_.keys - 1);
}

OpGenerator::OpGenerator(const Workload& workload, int client)
    : workload_(workload),
      prng_(workload.spec().seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(client) + 1) {
  const size_t pool = static_cast<size_t>(workload.spec().value_size) + kValueOffsets;
  value_pool_.resize(pool);
  for (char& c : value_pool_) c = static_cast<char>('a' + prng_.uniform(0, 25));
}

std::string_view OpGenerator::next_value() {
  const size_t offset = static_cast<size_t>(writes_++ % kValueOffsets);
  return std::string_view(value_pool_)
      .substr(offset, static_cast<size_t>(workload_.spec().value_size));
}

Op OpGenerator::next(std::string* key_buffer) {
  const WorkloadSpec& s = workload_.spec();
  bool read = s.kind == WorkloadKind::kGet;
  if (s.kind == WorkloadKind::kMixed) read = prng_.chance(s.read_ratio);
  format_key(workload_.sample_key(prng_), s.key_size, key_buffer);
  if (read) return Op{OpType::kGet, *key_buffer, {}};
  return Op{OpType::kSet, *key_buffer, next_value()};
}

Op OpGenerator::write_of(uint64_t index, std::string* key_buffer) {
  format_key(index, workload_.spec().key_size, key_buffer);
  return Op{OpType::kSet, *key_buffer, next_value()};
}

}  // namespace chorus::bench
