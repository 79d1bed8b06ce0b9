// Driver: the load generator's view of one client session of a store under
// test, and the registry that maps a driver name ("resp", later "etcd",
// "zookeeper") to a factory.
//
// Contract for a Driver implementation:
//   * One Driver is one session (one connection, or one library handle). It
//     is created, connected and used by a single client thread; it need not
//     be thread-safe. Drivers of different clients must not share mutable
//     state unless the client library itself is thread-safe.
//   * connect() is called once, before any operation. A later connection
//     loss is reported as an error by the operation that saw it; the driver
//     may reconnect on the next operation (the resp driver does).
//   * set() is an upsert: it must create a missing key. A system whose API
//     separates create from update (ZooKeeper) creates on the first miss.
//   * get() returns whether the key was found; a missing key is not an error.
//   * Every failure the store reports (-TRYAGAIN, a timeout, a refused
//     connection) is returned as a Status error, never thrown and never an
//     assertion: the runner counts errors and keeps going.
//   * Every call returns within DriverOptions::timeout (plus connect time).
//   * Pipelining is optional. A driver with pipeline_depth_max() > 1 accepts
//     up to that many send() calls before receive() returns their replies,
//     in send order: the runner issues send() P times, then receive() P
//     times, and times each reply from the batch's first send().
//
// Contract for a DriverFactory: it builds an unconnected Driver without I/O
// (the command line calls it once up front to validate --driver-opt values,
// so a bad value is an argument error, exit 2), given the options and the
// 0-based client index (see endpoint_for_client).
//
// Adding a driver (e.g. etcd): write src/bench/etcd_driver.cc with
// `void register_etcd_driver(DriverRegistry&)` calling add() with a
// DriverInfo, and call it from register_builtin_drivers() in drivers.cc
// under the build flag that compiles the file in (see the comment there).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/endpoint.h"
#include "base/status.h"

namespace chorus::bench {

// Parses "host:port[,host:port...]" (each as Endpoint::parse reads it: names,
// IPv4 or bracketed IPv6; at least one entry; ports 1..65535).
// InvalidArgument naming the bad entry otherwise.
Result<std::vector<Endpoint>> parse_endpoints(std::string_view list);

// Which endpoint each client connects to, for drivers that open one
// connection per client (resp). Drivers whose client library balances over
// every endpoint itself (etcd) may ignore it.
enum class EndpointPolicy {
  kFirst,       // every client to endpoints[0] (e.g. the leader or the primary)
  kRoundRobin,  // client i to endpoints[i % endpoints.size()]
};

struct DriverOptions {
  std::vector<Endpoint> endpoints;  // Invariant: not empty.
  EndpointPolicy policy = EndpointPolicy::kFirst;
  // Connect timeout and per-call timeout: a call blocked longer fails with TimedOut.
  std::chrono::milliseconds timeout{5000};
  // Driver-specific settings from `--driver-opt key=value`; the keys are
  // checked against DriverInfo::params before the factory sees them.
  std::map<std::string, std::string> params;
};

const Endpoint& endpoint_for_client(const DriverOptions& opts, int client);

enum class OpType { kSet, kGet };

// One operation. The views must stay valid until the operation's reply has
// been received.
struct Op {
  OpType type = OpType::kGet;
  std::string_view key;
  std::string_view value;  // kSet only
};

// The outcome of one pipelined operation.
struct Reply {
  Status status;       // not OK: the operation failed (counted as an error)
  bool found = false;  // kGet that succeeded: whether the key existed
};

class Driver {
 public:
  virtual ~Driver() = default;

  virtual Status connect() = 0;
  virtual Status set(std::string_view key, std::string_view value) = 0;
  // True: found; false: no such key.
  virtual Result<bool> get(std::string_view key) = 0;

  // Pipelining (optional): how many send()s may be outstanding; 1 = none.
  virtual int pipeline_depth_max() const { return 1; }
  // Queues an operation (may buffer without writing). Only called when
  // pipeline_depth_max() > 1 and fewer than that many replies are pending.
  virtual Status send(const Op& op);
  // Flushes what is queued and returns the oldest pending reply. Called
  // exactly once per send(), including sends that returned an error.
  virtual Reply receive();
};

using DriverFactory =
    std::function<Result<std::unique_ptr<Driver>>(const DriverOptions& opts, int client)>;

struct DriverInfo {
  std::string name;     // what --driver takes: "resp"
  std::string summary;  // one line for --help
  // Accepted --driver-opt keys, each with a one-line description.
  std::vector<std::pair<std::string, std::string>> params;
  DriverFactory make;
};

// Name -> DriverInfo. Filled once at start-up, read-only afterwards (safe to
// read from any thread then).
class DriverRegistry {
 public:
  // A duplicate name is a programming error (asserted).
  void add(DriverInfo info);
  const DriverInfo* find(std::string_view name) const;
  std::vector<std::string> names() const;
  // InvalidArgument if `opts.params` holds a key the driver does not accept.
  Status check_params(const DriverInfo& info, const DriverOptions& opts) const;

 private:
  std::vector<DriverInfo> drivers_;
};

// Every driver compiled into this binary (drivers.cc). Built on first use.
const DriverRegistry& builtin_drivers();
void register_builtin_drivers(DriverRegistry& registry);

}  // namespace chorus::bench
