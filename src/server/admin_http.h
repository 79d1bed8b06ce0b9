// The admin HTTP endpoint: what operators and monitoring see of a node.
//
//   GET /         a live dashboard page (inline HTML + JS, no external assets)
//                 that polls /status every second
//   GET /status   JSON from the owner's status callback (fields: see "The /status document")
//   GET /metrics  the metrics registry, Prometheus text format 0.0.4
//   GET /healthz  200 "ok" when the health callback says healthy, else 503 and the reason
//   anything else 404 {"error":"not found","path":...}
//
// Threads. AdminServer runs cpp-httplib on its own threads: one accept thread
// plus a small worker pool (AdminServerOptions::worker_threads). The callbacks
// are therefore called on those threads, concurrently with the owner's event
// loop and with each other. The owner must never let them touch event-loop
// state; the intended pattern is StatusPublisher: the event loop publishes an
// immutable snapshot (say every tick, or every 100 ms) and the callbacks only
// load the latest one. The metrics registry is itself safe to render from any
// thread (metrics.h).
//
// Lifecycle. start() binds synchronously (so "address in use" is reported to
// the caller) and returns once the server accepts connections. stop() is
// idempotent, closes the listening socket and joins every thread; a client
// holding an idle keep-alive connection delays it by at most the keep-alive
// timeout (1 s). The destructor calls stop(). start() may be called once.
//
// Limits: request bodies are refused beyond 64 KiB (only GETs are served);
// read and write timeouts are 5 s; the worker pool is fixed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "base/status.h"
#include "server/metrics.h"

namespace chorus::server {

struct Health {
  bool healthy = true;
  std::string reason;  // why not healthy; shown in the 503 body
};

// ---- The /status document -------------------------------------------------------
//
// The owner produces the JSON (server::status_json()). The dashboard reads
// these fields and shows "–" for any that is missing; the whole document is
// also shown raw, so extra fields are visible without changing the page:
//
//   {"node_id":1, "cluster_id":"chorus", "role":"leader", "term":3,
//    "leader":1,                       // 0: no known leader
//    "commit_index":10, "applied_index":10, "first_index":1, "last_index":12,
//    "snapshot_index":0, "healthy":true, "error":"",
//    "peers":[{"id":2, "address":"127.0.0.12:7101", "connected":true,
//              "match_index":12, "next_index":13, "lag":0}]}   // leader-only fields may be absent
//
// A paxos keyspace's group adds "ballot":"3.1" (round.node of the promised
// ballot; its "term" is that ballot packed, round << 16 | node), and its
// commit_index is the chosen prefix.

// A latest-value cell shared by one writer thread and any number of readers:
// the writer publishes an immutable snapshot, readers load a shared_ptr to
// the latest one and may keep it as long as they like. The mutex guards only
// a shared_ptr copy or swap (never the building or freeing of a snapshot), so
// the event loop never waits on an HTTP request. (std::atomic<std::shared_ptr>
// would say the same, but libstdc++ 12 implements it with an internal
// spinlock that ThreadSanitizer does not understand.)
class StatusPublisher {
 public:
  StatusPublisher() = default;
  StatusPublisher(const StatusPublisher&) = delete;
  StatusPublisher& operator=(const StatusPublisher&) = delete;

  // Owner's thread.
  void publish(std::string status_json);
  void publish_health(Health h);

  // Any thread. nullptr before the first publish.
  std::shared_ptr<const std::string> status() const;
  std::shared_ptr<const Health> health() const;

  // Callbacks for AdminServerOptions. The publisher must outlive the server.
  // Before the first publish: status is {"role":"starting"} and health is
  // unhealthy with reason "starting".
  std::function<std::string()> status_callback() const;
  std::function<Health()> health_callback() const;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const std::string> status_;  // guarded by mu_
  std::shared_ptr<const Health> health_;       // guarded by mu_
};

// ---- The server ---------------------------------------------------------------------

struct AdminServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0: any free port; see AdminServer::port()
  // Called on a server thread for GET /status; returns a JSON document. Unset: 503.
  std::function<std::string()> status_json;
  // Called on a server thread for GET /healthz. Unset: always healthy.
  std::function<Health()> health;
  // Rendered for GET /metrics; must outlive the server. Null: an empty body.
  const metrics::Registry* metrics = nullptr;
  size_t worker_threads = 2;
};

class AdminServer {
 public:
  explicit AdminServer(AdminServerOptions options);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Binds host:port and starts serving. IoError naming the address when the
  // bind fails (in use, not a local address).
  Status start();
  // Stops accepting, waits for in-flight requests, joins the threads. Idempotent.
  void stop();
  // The bound port (the chosen one when options.port was 0). Valid after start().
  uint16_t port() const;
  bool running() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The dashboard page served at GET /.
std::string_view dashboard_html();

}  // namespace chorus::server
