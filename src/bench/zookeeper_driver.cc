// The `zookeeper` driver: ZooKeeper's C client (libzookeeper_mt), one
// session per client, connected to endpoint_for_client() only.
//
// Data model: key k is the znode <root>/<k, escaped> (zookeeper_path.h), a
// persistent znode whose data is the value. connect() creates root and its
// ancestors if they are missing (a concurrent creation is fine).
//   set(): setData(path, value, version -1). On NONODE: create(path, value,
//          open ACL, persistent); if another client created it in between
//          (NODEEXISTS), setData once more.
//   get(): getData(path), without a watch; NONODE is "not found". A plain
//          read: the member the session is connected to answers from its own
//          state (ZooKeeper's sequential consistency), there is no sync().
//
// Deadlines: every call uses the asynchronous API (zoo_aset, zoo_aget,
// zoo_acreate) and waits for the completion until the call's deadline,
// DriverOptions::timeout after it began, or after it opened a new session if
// it had to (one deadline for the wait for a reconnection and a set()'s
// setData + create + setData). The synchronous API has no per-call timeout:
// it waits until the reply comes or the library declares the connection
// lost. A completion that arrives after its call timed out is dropped (its
// Call record is kept until the handle is closed, see `abandoned_`).
// Getting the value out of a getData reply costs nothing here: the library
// has read the whole reply into its own buffer before the completion runs.
//
// Failures: the library reconnects a lost connection by itself (to the same
// member: one endpoint per handle, and the same session) and fails the
// requests in flight with CONNECTIONLOSS. A call made meanwhile first waits
// for the session to be connected again, within its timeout (else TimedOut),
// rather than send a request that would fail at once. An expired session (or
// a refused authentication) makes the handle useless: the call that sees it
// fails, and the next call opens a new session after kReconnectDelay.
//
// Driver options (--driver-opt):
//   root=/path  the parent znode of the keys (default /chorus-bench).
//
// The library's own log (stderr) is cut down to errors.
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "bench/driver.h"
#include "bench/zookeeper_path.h"

namespace chorus::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kReconnectDelay{50};
// The session timeout asked of the server, which clamps it to
// [2, 20] x tickTime (4s..40s with the default tickTime of 2s). The library
// declares the connection lost after 2/3 of it without hearing from the
// server, and reconnects.
constexpr std::chrono::milliseconds kSessionTimeout{10000};

// One asynchronous request: its completion runs on the library's completion
// thread.
struct Call {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;  // guarded by mu
  int rc = ZOK;       // guarded by mu
};

void finish(const void* data, int rc) {
  auto* c = static_cast<Call*>(const_cast<void*>(data));
  std::lock_guard lock(c->mu);
  c->done = true;
  c->rc = rc;
  c->cv.notify_all();  // under the lock: the waiter may reuse *c once it has seen `done`
}

void on_stat(int rc, const Stat*, const void* data) {
  finish(data, rc);
}
void on_data(int rc, const char*, int, const Stat*, const void* data) {
  finish(data, rc);
}
void on_string(int rc, const char*, const void* data) {
  finish(data, rc);
}

// The state of one session, as the library's watcher reports it.
struct Session {
  std::mutex mu;
  std::condition_variable cv;
  int state = 0;  // guarded by mu; 0: nothing reported yet
};

void on_session_event(zhandle_t*, int type, int state, const char*, void* context) {
  if (type != ZOO_SESSION_EVENT) return;
  auto* s = static_cast<Session*>(context);
  std::lock_guard lock(s->mu);
  s->state = state;
  s->cv.notify_all();
}

// A state after which the session's state changes no more unless the
// connection does (or never: expired, authentication failed).
bool settled(int state) {
  return state == ZOO_CONNECTED_STATE || state == ZOO_EXPIRED_SESSION_STATE ||
         state == ZOO_AUTH_FAILED_STATE;
}

// Codes after which the handle can no longer be used.
bool session_lost(int rc) {
  return rc == ZSESSIONEXPIRED || rc == ZINVALIDSTATE || rc == ZAUTHFAILED;
}

class ZooKeeperDriver final : public Driver {
 public:
  ZooKeeperDriver(Endpoint ep, std::chrono::milliseconds timeout, std::string root)
      : ep_(std::move(ep)), timeout_(timeout), root_(std::move(root)), path_(root_ + "/") {}
  ~ZooKeeperDriver() override { close(); }

  Status connect() override;
  Status set(std::string_view key, std::string_view value) override;
  Result<bool> get(std::string_view key) override;

 private:
  // Sends one request with `start(call)` (a zoo_a* function returning its
  // code) and waits for its completion until `deadline`. The ZooKeeper code
  // of the reply (or of `start`, if it could not send), or TimedOut.
  template <class Start>
  Result<int> call(const char* what, const std::string& path, Clock::time_point deadline,
                   Start start);
  void abandon(std::shared_ptr<Call> c);
  // Opens a new session if there is none or it was lost, then waits until
  // the session is connected. The deadline of the request to send next.
  Result<Clock::time_point> ready();
  // Waits until the session state is settled() or `deadline`; the state then.
  int wait_for_session(Clock::time_point deadline);
  Status create_root(Clock::time_point deadline);
  void close();
  // A Status for ZooKeeper code `rc`; marks the session lost if it is.
  Status failure(const char* what, std::string_view path, int rc);
  const std::string& path_of(std::string_view key) {
    path_.resize(root_.size() + 1);
    append_znode_name(key, &path_);
    return path_;
  }

  Endpoint ep_;
  std::chrono::milliseconds timeout_;
  std::string root_;
  std::string path_;  // root_ + "/" + the name of the current key
  // The watcher's context: outlives zh_ (replaced only after zookeeper_close).
  std::unique_ptr<Session> session_;
  zhandle_t* zh_ = nullptr;
  bool lost_ = false;  // the session expired: open a new one on the next call
  // Calls that timed out and whose completion may still run: kept alive
  // until zookeeper_close() has run every pending completion.
  std::vector<std::shared_ptr<Call>> abandoned_;
  std::shared_ptr<Call> spare_;  // a completed Call, reused by the next request
};

template <class Start>
Result<int> ZooKeeperDriver::call(const char* what, const std::string& path,
                                  Clock::time_point deadline, Start start) {
  std::shared_ptr<Call> c = spare_ != nullptr ? std::move(spare_) : std::make_shared<Call>();
  c->done = false;  // a spare has no completion pending: no lock needed
  const int sent = start(c.get());
  if (sent != ZOK) {
    // BADARGUMENTS and INVALIDSTATE are returned before the completion is
    // registered; after anything else it might still run.
    if (sent == ZBADARGUMENTS || sent == ZINVALIDSTATE) {
      spare_ = std::move(c);
    } else {
      abandon(std::move(c));
    }
    return sent;
  }
  std::unique_lock lock(c->mu);
  if (!c->cv.wait_until(lock, deadline, [&] { return c->done; })) {
    lock.unlock();
    abandon(std::move(c));
    return Status::timed_out(std::string("zookeeper ") + what + " " + path + " on " +
                             ep_.to_string() + ": timed out");
  }
  const int rc = c->rc;
  lock.unlock();
  spare_ = std::move(c);
  return rc;
}

void ZooKeeperDriver::abandon(std::shared_ptr<Call> c) {
  std::erase_if(abandoned_, [](const std::shared_ptr<Call>& a) {
    std::lock_guard lock(a->mu);
    return a->done;  // its completion has run and will not touch it again
  });
  abandoned_.push_back(std::move(c));
}

Status ZooKeeperDriver::failure(const char* what, std::string_view path, int rc) {
  if (session_lost(rc)) lost_ = true;
  std::string msg = std::string("zookeeper ") + what + " " + std::string(path) + " on " +
                    ep_.to_string() + ": " + zerror(rc);
  if (rc == ZOPERATIONTIMEOUT) return Status::timed_out(std::move(msg));
  if (rc == ZCONNECTIONLOSS || rc == ZCLOSING || rc == ZSESSIONMOVED || session_lost(rc)) {
    return Status::unavailable(std::move(msg));
  }
  return Status::aborted(std::move(msg));
}

void ZooKeeperDriver::close() {
  if (zh_ != nullptr) {
    zookeeper_close(zh_);  // runs the pending completions, joins the library's threads
    zh_ = nullptr;
  }
  abandoned_.clear();
  session_.reset();
  lost_ = false;
}

Status ZooKeeperDriver::connect() {
  static std::once_flag quiet;
  std::call_once(quiet, [] { zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR); });
  close();
  const Clock::time_point deadline = Clock::now() + timeout_;
  const std::string host = ep_.to_string();
  session_ = std::make_unique<Session>();
  errno = 0;
  zh_ = zookeeper_init(host.c_str(), on_session_event, static_cast<int>(kSessionTimeout.count()),
                       nullptr, session_.get(), 0);
  if (zh_ == nullptr) {
    return Status::io_error("zookeeper connect " + host + ": " +
                            (errno != 0 ? std::strerror(errno) : "zookeeper_init failed"));
  }
  const int state = wait_for_session(deadline);
  if (state != ZOO_CONNECTED_STATE) {
    close();
    if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
      return Status::unavailable(
          "zookeeper connect " + host + ": session " +
          (state == ZOO_AUTH_FAILED_STATE ? "authentication failed" : "expired"));
    }
    return Status::timed_out("zookeeper connect " + host + ": not connected within " +
                             std::to_string(timeout_.count()) + "ms");
  }
  return create_root(deadline);
}

Status ZooKeeperDriver::create_root(Clock::time_point deadline) {
  for (const std::string& p : znode_ancestors(root_)) {
    auto rc = call("create", p, deadline, [&](Call* c) {
      return zoo_acreate(zh_, p.c_str(), "", 0, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, on_string, c);
    });
    if (!rc.is_ok()) return rc.status();
    if (*rc != ZOK && *rc != ZNODEEXISTS) return failure("create", p, *rc);
  }
  return Status::ok();
}

int ZooKeeperDriver::wait_for_session(Clock::time_point deadline) {
  std::unique_lock lock(session_->mu);
  session_->cv.wait_until(lock, deadline, [&] { return settled(session_->state); });
  return session_->state;
}

Result<Clock::time_point> ZooKeeperDriver::ready() {
  if (zh_ == nullptr || lost_ || zoo_state(zh_) == ZOO_EXPIRED_SESSION_STATE ||
      zoo_state(zh_) == ZOO_AUTH_FAILED_STATE) {
    if (zh_ != nullptr) std::this_thread::sleep_for(kReconnectDelay);  // after a failure
    CHORUS_RETURN_IF_ERROR(connect());
  }
  const Clock::time_point deadline = Clock::now() + timeout_;
  // After a connection loss the library reconnects by itself, to the same
  // session: wait for that rather than send requests that it would fail at
  // once with CONNECTIONLOSS (a busy loop of errors while the server is down).
  const int state = wait_for_session(deadline);
  if (state == ZOO_CONNECTED_STATE) return deadline;
  if (settled(state)) {
    lost_ = true;
    return Status::unavailable(
        "zookeeper " + ep_.to_string() + ": session " +
        (state == ZOO_AUTH_FAILED_STATE ? "authentication failed" : "expired"));
  }
  return Status::timed_out("zookeeper " + ep_.to_string() + ": not reconnected within " +
                           std::to_string(timeout_.count()) + "ms");
}

Status ZooKeeperDriver::set(std::string_view key, std::string_view value) {
  CHORUS_ASSIGN_OR_RETURN(const Clock::time_point deadline, ready());
  const std::string& path = path_of(key);
  const int len = static_cast<int>(value.size());
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto rc = call("set", path, deadline, [&](Call* c) {
      return zoo_aset(zh_, path.c_str(), value.data(), len, -1, on_stat, c);
    });
    if (!rc.is_ok()) return rc.status();
    if (*rc == ZOK) return Status::ok();
    if (*rc != ZNONODE) return failure("set", path, *rc);
    rc = call("create", path, deadline, [&](Call* c) {
      return zoo_acreate(zh_, path.c_str(), value.data(), len, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT,
                         on_string, c);
    });
    if (!rc.is_ok()) return rc.status();
    if (*rc == ZOK) return Status::ok();
    if (*rc != ZNODEEXISTS) return failure("create", path, *rc);
    // Created by another client since our setData: set it again.
  }
  return Status::aborted("zookeeper set " + path + " on " + ep_.to_string() +
                         ": the znode keeps disappearing");
}

Result<bool> ZooKeeperDriver::get(std::string_view key) {
  CHORUS_ASSIGN_OR_RETURN(const Clock::time_point deadline, ready());
  const std::string& path = path_of(key);
  auto rc = call("get", path, deadline,
                 [&](Call* c) { return zoo_aget(zh_, path.c_str(), 0, on_data, c); });
  if (!rc.is_ok()) return rc.status();
  if (*rc == ZOK) return true;
  if (*rc == ZNONODE) return false;
  return failure("get", path, *rc);
}

Result<std::unique_ptr<Driver>> make_zookeeper_driver(const DriverOptions& opts, int client) {
  std::string root(kZnodeRootDefault);
  if (auto it = opts.params.find("root"); it != opts.params.end()) root = it->second;
  CHORUS_RETURN_IF_ERROR(check_znode_root(root));
  return std::unique_ptr<Driver>(
      new ZooKeeperDriver(endpoint_for_client(opts, client), opts.timeout, std::move(root)));
}

}  // namespace

void register_zookeeper_driver(DriverRegistry& registry) {
  registry.add(DriverInfo{
      .name = "zookeeper",
      .summary = "ZooKeeper C client: setData (create on first write), getData",
      .params = {{"root", "parent znode of the keys, created if missing (default " +
                              std::string(kZnodeRootDefault) + ")"}},
      .make = make_zookeeper_driver,
  });
}

}  // namespace chorus::bench
