#include "bench/args.h"

#include <cctype>
#include <charconv>
#include <cstdlib>

namespace chorus::bench {
namespace {

// The drivers that exist but are compiled in only with -DCHORUS_BENCH_PEERS=ON.
constexpr std::string_view kPeerDrivers[] = {"etcd", "zookeeper"};
constexpr std::string_view kPeerDriversHint = "configure with -DCHORUS_BENCH_PEERS=ON";

std::string joined_names(const DriverRegistry& registry) {
  std::string out;
  for (const auto& n : registry.names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool is_peer_driver(std::string_view name) {
  for (std::string_view p : kPeerDrivers) {
    if (p == name) return true;
  }
  return false;
}

// The --help footer: every driver with its summary and --driver-opt keys,
// and the peer drivers this binary lacks.
std::string drivers_help(const DriverRegistry& registry) {
  std::string out = "Drivers (--driver NAME) and their options (--driver-opt KEY=VALUE):\n";
  for (const auto& name : registry.names()) {
    const DriverInfo* info = registry.find(name);
    out += "  " + name + std::string(name.size() < 12 ? 12 - name.size() : 1, ' ') + info->summary +
           "\n";
    for (const auto& [key, what] : info->params) {
      out += "      " + key + std::string(key.size() < 14 ? 14 - key.size() : 1, ' ') + what + "\n";
    }
  }
  std::string missing;
  for (std::string_view p : kPeerDrivers) {
    if (registry.find(p) == nullptr) missing += (missing.empty() ? "" : ", ") + std::string(p);
  }
  if (!missing.empty()) {
    out += "Not built in: " + missing + " (" + std::string(kPeerDriversHint) + ").\n";
  }
  return out;
}

// True if `s` is all decimal digits (and not empty).
bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

Status apply_warmup(std::string_view w, RunOptions* run) {
  if (w.ends_with("ops")) w.remove_suffix(3);
  if (all_digits(w)) {
    uint64_t n = 0;
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), n);
    if (ec != std::errc() || end != w.data() + w.size()) {
      return Status::invalid_argument("--warmup: operation count out of range");
    }
    run->warmup_ops = n;
    return Status::ok();
  }
  auto d = parse_duration(w);
  if (!d.is_ok()) return Status::invalid_argument("--warmup: " + d.status().message());
  run->warmup = *d;
  return Status::ok();
}

Status apply_driver(const BenchArgs& a, const DriverRegistry& registry, BenchConfig* c) {
  const DriverInfo* info = registry.find(a.driver);
  if (info == nullptr) {
    if (is_peer_driver(a.driver)) {
      return Status::invalid_argument("--driver '" + a.driver + "' is not built in; " +
                                      std::string(kPeerDriversHint) +
                                      " (built in: " + joined_names(registry) + ")");
    }
    return Status::invalid_argument("--driver '" + a.driver +
                                    "' is unknown (built in: " + joined_names(registry) + ")");
  }
  c->driver = a.driver;
  CHORUS_ASSIGN_OR_RETURN(c->driver_options.endpoints, parse_endpoints(a.endpoints));
  if (a.connect_to == "first") {
    c->driver_options.policy = EndpointPolicy::kFirst;
  } else if (a.connect_to == "round-robin") {
    c->driver_options.policy = EndpointPolicy::kRoundRobin;
  } else {
    return Status::invalid_argument("--connect-to must be first or round-robin");
  }
  auto timeout = parse_duration(a.timeout);
  if (!timeout.is_ok()) return Status::invalid_argument("--timeout: " + timeout.status().message());
  c->driver_options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*timeout);
  if (c->driver_options.timeout.count() < 1) {
    return Status::invalid_argument("--timeout must be at least 1ms");
  }
  for (const auto& kv : a.driver_opts) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::invalid_argument("--driver-opt '" + kv + "': expected key=value");
    }
    c->driver_options.params[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  CHORUS_RETURN_IF_ERROR(registry.check_params(*info, c->driver_options));
  auto probe = info->make(c->driver_options, 0);  // no I/O: validates the driver's options
  if (!probe.is_ok()) return Status::invalid_argument(probe.status().message());
  return validate(c->run, (*probe)->pipeline_depth_max());
}

Status apply_workload(const BenchArgs& a, BenchConfig* c) {
  auto kind = parse_workload(a.workload);
  if (!kind) return Status::invalid_argument("--workload must be set, get or mixed");
  auto dist = parse_distribution(a.distribution);
  if (!dist) return Status::invalid_argument("--distribution must be uniform or zipfian");
  WorkloadSpec& w = c->workload;
  w.kind = *kind;
  w.distribution = *dist;
  w.keys = a.keys;
  w.key_size = a.key_size;
  w.value_size = a.value_size;
  w.read_ratio = a.read_ratio;
  w.zipf_theta = a.zipf_theta;
  w.seed = a.seed;
  return validate(w);
}

Status apply_run(const BenchArgs& a, BenchConfig* c) {
  RunOptions& r = c->run;
  r.clients = a.clients;
  r.pipeline = a.pipeline;
  r.ops = a.ops;
  if (!a.duration.empty() && a.ops > 0) {
    return Status::invalid_argument("give exactly one of --ops and --duration");
  }
  if (a.ops == 0) {
    auto d = parse_duration(a.duration.empty() ? "10s" : a.duration);
    if (!d.is_ok()) return Status::invalid_argument("--duration: " + d.status().message());
    if (d->count() == 0) return Status::invalid_argument("--duration must be more than 0");
    r.duration = *d;
  }
  CHORUS_RETURN_IF_ERROR(apply_warmup(a.warmup, &r));
  if (a.preload && a.no_preload) {
    return Status::invalid_argument("--preload and --no-preload contradict each other");
  }
  c->preload = a.preload || (!a.no_preload && c->workload.kind != WorkloadKind::kSet);
  if (a.preload_clients < 1 || a.preload_clients > kClientsMax) {
    return Status::invalid_argument("--preload-clients must be 1.." + std::to_string(kClientsMax));
  }
  c->preload_options.clients = a.preload_clients;
  r.progress_out = a.quiet ? nullptr : stderr;
  c->preload_options.progress_out = r.progress_out;
  return Status::ok();
}

}  // namespace

Result<std::chrono::nanoseconds> parse_duration(std::string_view s) {
  double scale = 1e9;  // bare number: seconds
  if (s.ends_with("ms")) {
    scale = 1e6;
    s.remove_suffix(2);
  } else if (s.ends_with("us")) {
    scale = 1e3;
    s.remove_suffix(2);
  } else if (s.ends_with("s")) {
    s.remove_suffix(1);
  } else if (s.ends_with("m")) {
    scale = 60e9;
    s.remove_suffix(1);
  }
  const std::string text(s);
  char* end = nullptr;
  const double v = text.empty() ? -1 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !(v >= 0)) {
    return Status::invalid_argument("'" + text + "' is not a duration (e.g. 500ms, 10s, 2m)");
  }
  const double ns = v * scale;
  if (ns > std::chrono::duration<double, std::nano>(kDurationMax).count()) {
    return Status::invalid_argument("a duration may be at most 24h");
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(ns));
}

Result<BenchConfig> validate_bench_args(const BenchArgs& a, const DriverRegistry& registry) {
  BenchConfig c;
  CHORUS_RETURN_IF_ERROR(apply_workload(a, &c));
  CHORUS_RETURN_IF_ERROR(apply_run(a, &c));
  CHORUS_RETURN_IF_ERROR(apply_driver(a, registry, &c));  // last: checks the run's pipeline
  c.label = a.label.empty() ? a.driver : a.label;
  c.json = a.json;
  c.quiet = a.quiet;
  return c;
}

void add_bench_options(CLI::App& cmd, BenchArgs& a, const DriverRegistry& registry) {
  cmd.add_option("--driver", a.driver, "Client driver: " + joined_names(registry))
      ->capture_default_str();
  cmd.add_option("--endpoints", a.endpoints, "host:port[,host:port...] of the system under test")
      ->capture_default_str();
  cmd.add_option("--connect-to", a.connect_to,
                 "first: every client to the first endpoint; round-robin: client i to endpoint i%n")
      ->capture_default_str();
  cmd.add_option("--timeout", a.timeout, "Connect and per-call timeout")->capture_default_str();
  cmd.add_option("--driver-opt", a.driver_opts, "Driver-specific key=value (repeatable)");
  cmd.add_option("--workload", a.workload, "set, get or mixed")->capture_default_str();
  cmd.add_option("--clients,-c", a.clients, "Concurrent clients (connections)")
      ->capture_default_str();
  cmd.add_option("--pipeline,-P", a.pipeline, "Operations in flight per client")
      ->capture_default_str();
  cmd.add_option("--ops,-n", a.ops, "Measured operations in total (instead of --duration)");
  cmd.add_option("--duration", a.duration, "Measured time, e.g. 10s (default 10s)");
  cmd.add_option("--warmup", a.warmup, "Uncounted warm-up: a duration (2s) or operations (5000)")
      ->capture_default_str();
  cmd.add_option("--keys", a.keys, "Key space size")->capture_default_str();
  cmd.add_option("--key-size", a.key_size, "Key length in bytes")->capture_default_str();
  cmd.add_option("--value-size,-d", a.value_size, "Value length in bytes")->capture_default_str();
  cmd.add_option("--read-ratio", a.read_ratio, "Share of reads in the mixed workload")
      ->capture_default_str();
  cmd.add_option("--distribution", a.distribution, "Key choice: uniform or zipfian")
      ->capture_default_str();
  cmd.add_option("--zipf-theta", a.zipf_theta, "Zipfian skew (0 < theta < 1)")
      ->capture_default_str();
  cmd.add_option("--seed", a.seed, "Seed of the key and operation choices")->capture_default_str();
  cmd.add_flag("--preload", a.preload, "Write the whole key space first (default for get, mixed)");
  cmd.add_flag("--no-preload", a.no_preload, "Do not write the key space first");
  cmd.add_option("--preload-clients", a.preload_clients, "Connections used to preload")
      ->capture_default_str();
  cmd.add_option("--label", a.label, "Name of the system in the report (default: the driver)");
  cmd.add_flag("--json", a.json, "Print one JSON object on stdout (the table goes to stderr)");
  cmd.add_flag("--quiet,-q", a.quiet, "No progress lines (nor the table, with --json)");
  cmd.footer(drivers_help(registry));
}

Result<BenchConfig> parse_bench_args(const std::vector<std::string>& argv,
                                     const DriverRegistry& registry) {
  auto args = std::make_unique<BenchArgs>();
  CLI::App app{"chorus bench"};
  add_bench_options(app, *args, registry);
  std::vector<std::string> reversed(argv.rbegin(), argv.rend());  // CLI11 wants them reversed
  try {
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return Status::invalid_argument(e.what());
  }
  return validate_bench_args(*args, registry);
}

}  // namespace chorus::bench
