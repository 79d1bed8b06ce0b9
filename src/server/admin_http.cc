#include "server/admin_http.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <httplib.h>

#include <nlohmann/json.hpp>

namespace chorus::server {
namespace {

constexpr size_t kMaxRequestBodyBytes = 64 << 10;
constexpr time_t kKeepAliveTimeoutSec = 1;  // bounds how long stop() waits for idle clients
constexpr time_t kIoTimeoutSec = 5;
constexpr auto kStartTimeout = std::chrono::seconds(5);

constexpr const char* kJson = "application/json";
constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kPrometheus = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kHtml = "text/html; charset=utf-8";

std::string error_json(std::string_view error, std::string_view path) {
  nlohmann::json j = {{"error", error}, {"path", path}};
  // Paths come from the client: replace invalid UTF-8 instead of throwing.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// SO_REUSEADDR (restart while old connections sit in TIME_WAIT) but not
// cpp-httplib's default SO_REUSEPORT, which would let a second node bind the
// same admin port silently.
void admin_socket_options(int sock) {
  int yes = 1;
  setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
}

}  // namespace

// ---- StatusPublisher ----------------------------------------------------------

void StatusPublisher::publish(std::string status_json) {
  auto next = std::make_shared<const std::string>(std::move(status_json));
  {
    std::lock_guard<std::mutex> lock(mu_);
    status_.swap(next);
  }
  // The previous snapshot (now in `next`) is freed here, outside the lock.
}

void StatusPublisher::publish_health(Health h) {
  auto next = std::make_shared<const Health>(std::move(h));
  std::lock_guard<std::mutex> lock(mu_);
  health_.swap(next);
}

std::shared_ptr<const std::string> StatusPublisher::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_;
}

std::shared_ptr<const Health> StatusPublisher::health() const {
  std::lock_guard<std::mutex> lock(mu_);
  return health_;
}

std::function<std::string()> StatusPublisher::status_callback() const {
  return [this] {
    std::shared_ptr<const std::string> s = status();
    return s ? *s : std::string(R"({"role":"starting"})");
  };
}

std::function<Health()> StatusPublisher::health_callback() const {
  return [this] {
    std::shared_ptr<const Health> h = health();
    return h ? *h : Health{false, "starting"};
  };
}

// ---- AdminServer ------------------------------------------------------------------

struct AdminServer::Impl {
  AdminServerOptions options;
  httplib::Server server;
  std::thread thread;
  int port = 0;
  bool started = false;

  void install_handlers();
};

void AdminServer::Impl::install_handlers() {
  server.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(std::string(dashboard_html()), kHtml);
  });
  server.Get("/status", [this](const httplib::Request& req, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    if (!options.status_json) {
      res.status = 503;
      res.set_content(error_json("status not available", req.path), kJson);
      return;
    }
    res.set_content(options.status_json(), kJson);
  });
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(options.metrics ? options.metrics->render_prometheus() : std::string(),
                    kPrometheus);
  });
  server.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    Health h = options.health ? options.health() : Health{};
    if (h.healthy) {
      res.set_content("ok", kText);
    } else {
      res.status = 503;
      res.set_content(h.reason.empty() ? std::string("unhealthy") : h.reason, kText);
    }
  });
  // Unmatched routes (and any error without a body): a JSON error.
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    const char* what = res.status == 404 ? "not found" : "bad request";
    res.set_content(error_json(what, req.path), kJson);
  });
  server.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "internal error";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what += ": ";
          what += e.what();
        } catch (...) {
        }
        res.status = 500;
        res.set_content(error_json(what, req.path), kJson);
      });
}

AdminServer::AdminServer(AdminServerOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
}

AdminServer::~AdminServer() {
  stop();
}

Status AdminServer::start() {
  Impl& m = *impl_;
  CHORUS_ASSERT_MSG(!m.started, "AdminServer::start() called twice");
  m.started = true;
  size_t workers = std::max<size_t>(1, m.options.worker_threads);
  m.server.new_task_queue = [workers] { return new httplib::ThreadPool(workers); };
  m.server.set_socket_options(admin_socket_options);
  // Headers and body go out in separate writes: without TCP_NODELAY, Nagle
  // plus the client's delayed ACK add ~40 ms to every keep-alive request.
  m.server.set_tcp_nodelay(true);
  m.server.set_keep_alive_timeout(kKeepAliveTimeoutSec);
  m.server.set_read_timeout(kIoTimeoutSec, 0);
  m.server.set_write_timeout(kIoTimeoutSec, 0);
  m.server.set_payload_max_length(kMaxRequestBodyBytes);
  m.install_handlers();

  errno = 0;
  if (m.options.port == 0) {
    m.port = m.server.bind_to_any_port(m.options.host);
  } else {
    m.port = m.server.bind_to_port(m.options.host, m.options.port) ? m.options.port : -1;
  }
  if (m.port <= 0) {
    int err = errno;
    std::string msg =
        "admin http: cannot listen on " + m.options.host + ":" + std::to_string(m.options.port);
    msg += err != 0 ? std::string(": ") + std::strerror(err)
                    : std::string(": cannot resolve or bind this address");
    m.port = 0;
    return Status::io_error(std::move(msg));
  }
  m.thread = std::thread([&m] { m.server.listen_after_bind(); });
  // httplib's stop() is a no-op until listen_after_bind() has marked the
  // server running, so wait for that before returning: stop() must always work.
  auto deadline = std::chrono::steady_clock::now() + kStartTimeout;
  while (!m.server.is_running()) {
    if (std::chrono::steady_clock::now() > deadline) {
      CHORUS_ASSERT_MSG(false, "admin http: server thread did not start");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return Status::ok();
}

void AdminServer::stop() {
  Impl& m = *impl_;
  if (!m.thread.joinable()) return;
  m.server.stop();
  m.thread.join();
}

uint16_t AdminServer::port() const {
  return static_cast<uint16_t>(impl_->port);
}

bool AdminServer::running() const {
  return impl_->thread.joinable() && impl_->server.is_running();
}

// ---- Dashboard ------------------------------------------------------------------------

std::string_view dashboard_html() {
  static constexpr std::string_view kPage = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Chorus node</title>
<style>
  :root { --bg:#fafafa; --fg:#1d1d1f; --muted:#6b6b70; --line:#e2e2e6; --ok:#1a7f37; --warn:#9a6700; --bad:#cf222e; }
  * { box-sizing: border-box; }
  body { margin: 0; padding: 24px; background: var(--bg); color: var(--fg);
         font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  .sub { color: var(--muted); margin-bottom: 20px; }
  .cards { display: flex; flex-wrap: wrap; gap: 12px; margin-bottom: 24px; }
  .card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 120px; }
  .card .k { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
  .card .v { font-size: 20px; font-variant-numeric: tabular-nums; }
  table { border-collapse: collapse; background: #fff; border: 1px solid var(--line); min-width: 480px; }
  th, td { padding: 6px 12px; border-bottom: 1px solid var(--line); text-align: left; font-variant-numeric: tabular-nums; }
  th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; }
  .ok { color: var(--ok); } .warn { color: var(--warn); } .bad { color: var(--bad); }
  #banner { display: none; padding: 8px 12px; margin-bottom: 16px; border-radius: 6px; background: #ffebe9; color: var(--bad); }
  details { margin-top: 24px; } pre { background: #fff; border: 1px solid var(--line); padding: 12px; overflow: auto; }
  a { color: inherit; }
</style>
</head>
<body>
<h1>Chorus node <span id="node">–</span></h1>
<div class="sub">cluster <span id="cluster">–</span> · updated <span id="updated">never</span> ·
  <a href="/metrics">metrics</a> · <a href="/healthz">healthz</a> · <a href="/status">status JSON</a></div>
<div id="banner"></div>
<div class="cards">
  <div class="card"><div class="k">role</div><div class="v" id="role">–</div></div>
  <div class="card"><div class="k">term</div><div class="v" id="term">–</div></div>
  <div class="card"><div class="k">leader</div><div class="v" id="leader">–</div></div>
  <div class="card"><div class="k">commit index</div><div class="v" id="commit">–</div></div>
  <div class="card"><div class="k">applied index</div><div class="v" id="applied">–</div></div>
  <div class="card"><div class="k">last index</div><div class="v" id="last">–</div></div>
</div>
<h2 style="font-size:16px">Peers</h2>
<table>
  <thead><tr><th>id</th><th>address</th><th>connected</th><th>match index</th><th>next index</th><th>lag</th></tr></thead>
  <tbody id="peers"><tr><td colspan="6">–</td></tr></tbody>
</table>
<h2 style="font-size:16px">Keyspaces</h2>
<table>
  <thead><tr><th>keyspace</th><th>prefix</th><th>strategy</th><th>role here</th><th>leader / primary</th><th>term / epoch / ballot</th><th>commit</th><th>applied</th><th>replicas (lag)</th><th>manager</th></tr></thead>
  <tbody id="keyspaces"><tr><td colspan="10">–</td></tr></tbody>
</table>
<details><summary>raw status</summary><pre id="raw"></pre></details>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const show = (v) => (v === null || v === undefined) ? "–" : String(v);
function setText(id, v, cls) { const e = $(id); e.textContent = show(v); e.className = "v " + (cls || ""); }
function roleClass(r) { return r === "leader" ? "ok" : (r === "follower" ? "" : "warn"); }
function cell(row, v, cls) { const td = document.createElement("td"); td.textContent = show(v); if (cls) td.className = cls; row.appendChild(td); }
function render(s) {
  $("node").textContent = show(s.node_id);
  $("cluster").textContent = show(s.cluster_id);
  setText("role", s.role, roleClass(s.role));
  setText("term", s.term);
  const noLeader = s.leader === 0 || s.leader === null || s.leader === undefined;
  setText("leader", noLeader ? "none" : s.leader, noLeader ? "bad" : "");
  setText("commit", s.commit_index);
  setText("applied", s.applied_index);
  setText("last", s.last_index);
  const body = $("peers");
  body.replaceChildren();
  for (const p of (Array.isArray(s.peers) ? s.peers : [])) {
    const row = document.createElement("tr");
    cell(row, p.id);
    cell(row, p.address);
    const known = typeof p.connected === "boolean";
    cell(row, known ? (p.connected ? "yes" : "no") : null, known ? (p.connected ? "ok" : "bad") : "");
    cell(row, p.match_index);
    cell(row, p.next_index);
    const lag = p.lag;
    cell(row, lag, (lag === null || lag === undefined) ? "" : (lag === 0 ? "ok" : (lag < 1000 ? "warn" : "bad")));
    body.appendChild(row);
  }
  if (!body.children.length) { const row = document.createElement("tr"); cell(row, "no peers"); row.firstChild.colSpan = 6; body.appendChild(row); }
  const ks = $("keyspaces");
  ks.replaceChildren();
  for (const k of (Array.isArray(s.keyspaces) ? s.keyspaces : [])) {
    const g = k.group || {};
    const row = document.createElement("tr");
    cell(row, k.name);
    cell(row, k.prefix === "" ? "(everything else)" : k.prefix);
    cell(row, k.strategy);
    cell(row, g.role, roleClass(g.role));
    const none = g.leader === 0 || g.leader === undefined || g.leader === null;
    cell(row, none ? "none" : "n" + g.leader, none ? "bad" : "");
    cell(row, g.ballot !== undefined ? "ballot " + g.ballot : g.term);  // paxos: round.node
    cell(row, g.commit_index);
    cell(row, g.applied_index);
    const peers = Array.isArray(g.peers) ? g.peers : [];
    const worst = peers.reduce((m, p) => Math.max(m, p.lag || 0), 0);
    cell(row, peers.length ? peers.map((p) => "n" + p.id + " (" + p.lag + ")").join(", ") : "–",
         peers.length ? (worst === 0 ? "ok" : (worst < 1000 ? "warn" : "bad")) : "");
    const m = k.manager;
    cell(row, m ? m.phase + ": " + m.reason : "", m && m.phase !== "serving" ? "warn" : "");
    ks.appendChild(row);
  }
  if (!ks.children.length) { const row = document.createElement("tr"); cell(row, "no keyspaces"); row.firstChild.colSpan = 10; ks.appendChild(row); }
  $("raw").textContent = JSON.stringify(s, null, 2);
  return s.healthy === false ? "node unhealthy: " + show(s.error) : "";
}
async function poll() {
  try {
    const r = await fetch("/status", { cache: "no-store" });
    if (!r.ok) throw new Error("HTTP " + r.status);
    const problem = render(await r.json());
    $("banner").textContent = problem;
    $("banner").style.display = problem ? "block" : "none";
    $("updated").textContent = new Date().toLocaleTimeString();
  } catch (e) {
    $("banner").textContent = "cannot reach this node: " + e.message;
    $("banner").style.display = "block";
  } finally {
    setTimeout(poll, 1000);
  }
}
poll();
</script>
</body>
</html>
)HTML";
  return kPage;
}

}  // namespace chorus::server
