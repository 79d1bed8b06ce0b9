// The nemesis's clients: hiredis connections that run a workload against the
// cluster and record every operation (check::Operation) with its invoke and
// complete times and what the client learned.
//
// What a reply means (record_reply): a write is
//  - kOk when the server acknowledged it;
//  - kFail only when the server says it was refused before being proposed:
//    any "-TRYAGAIN ..." (the host, host/replica_host.h, gives TRYAGAIN only
//    to a write it never proposed nor forwarded);
//  - kUnknown otherwise: a timeout or lost connection, "-UNCERTAIN ..." (a
//    write proposed and then lost sight of: timed out, refused on a retry,
//    shutdown), "-ERR ...", a fail-stopped node.
// A read that did not return a value is kFail (it had no effect either way).
// After a timeout or a lost connection the client reconnects, to the next
// node: the old connection's reply stream can no longer be trusted. A
// refusal naming the node that serves (redirect_to) sends it there.
//
// Keys rotate (KeyRing): slot s uses key "<prefix><s>.<g>", and moves to
// generation g+1 after ops_per_key operations (register) or appends (append).
// That bounds each value's length and each key's history, which keeps the
// checker's search (and its memory, which holds states) small.
//
// Thread-safety: Workload's methods are called from one thread; it runs one
// thread per client, which share only the KeyRing (atomics) and their own
// per-client records until stop() joins them.
#pragma once

#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "check/history.h"
#include "nemesis.h"
#include "server/config.h"

namespace chorus::tools::nemesis {

// A reply, independent of hiredis.
struct Reply {
  enum class Type : uint8_t { kNone, kStatus, kString, kInteger, kNil, kError, kOther };
  Type type = Type::kNone;  // kNone: no reply (timeout, connection lost)
  std::string text;         // status, bulk string or error text
  long long integer = 0;
};

// Sets op.status and its outputs from what the server answered (see above).
void record_reply(check::Operation& op, const Reply& r);
// For a write that got `error`: did the server say it never took effect?
bool definitely_not_applied(std::string_view error);
// The node a refusal names as the one that takes the request ("-TRYAGAIN
// this node is not the leader; node 3 is: ..." from a replica that does
// not forward: a Paxos acceptor, a primary-backup backup asked to read);
// nullopt for any other reply.
std::optional<int> redirect_to(std::string_view error);

// One hiredis connection with connect and command timeouts.
class Connection {
 public:
  Connection() = default;
  Connection(const Endpoint& ep, std::chrono::milliseconds connect_timeout,
             std::chrono::milliseconds op_timeout);
  bool ok() const { return ctx_ != nullptr; }
  // Reply::Type::kNone on a timeout or connection error; the connection is
  // then closed (ok() turns false).
  Reply command(const std::vector<std::string>& args);

 private:
  struct Free {
    void operator()(redisContext* c) const { redisFree(c); }
  };
  std::unique_ptr<redisContext, Free> ctx_;
};

class KeyRing {
 public:
  KeyRing(std::string prefix, int slots, uint64_t ops_per_key);
  // The key for an operation on `slot`; a counted operation consumes one of
  // the key's ops_per_key tickets.
  std::string key(int slot, bool counted);
  // Every key used so far, by slot then generation.
  std::vector<std::string> all_keys() const;

 private:
  std::string prefix_;
  uint64_t ops_per_key_;
  std::vector<std::atomic<uint64_t>> tickets_;
};

struct WorkloadOptions {
  WorkloadKind kind = WorkloadKind::kRegister;
  int clients = 10;
  int keys = 8;
  int rate_per_client = 100;
  int ops_per_key = 0;  // 0: the workload's default
  std::chrono::milliseconds op_timeout{6'000};
  uint64_t seed = 1;
  // Sent on every new connection before the workload (e.g. CHORUS.CONSISTENCY
  // lease); each must answer +OK.
  std::vector<std::vector<std::string>> session_setup;
  std::vector<Endpoint> nodes;  // client endpoints, node 1 first
  // Move to the node a refusal names (a strategy whose other replicas
  // neither forward writes nor serve linearizable reads: paxos). Off for
  // the others, so that their forwarding paths keep the load they had.
  bool follow_refusals = false;
  std::chrono::steady_clock::time_point t0;
};

class Workload {
 public:
  explicit Workload(WorkloadOptions o);
  ~Workload();  // stop()
  Workload(const Workload&) = delete;
  Workload& operator=(const Workload&) = delete;

  void start();
  // Asks every client to stop and joins them (each finishes its current
  // operation: at most op_timeout).
  void stop();
  // After stop(): every operation of every client, ids assigned, by invoke time.
  check::History history() const;
  std::vector<std::string> keys() const { return ring_.all_keys(); }
  uint64_t ops_done() const { return ops_done_.load(); }
  // After stop(): why operations did not succeed ("TRYAGAIN no leader",
  // "no reply (timeout or connection lost)"...), with counts.
  std::map<std::string, uint64_t> error_counts() const;

 private:
  struct ClientState;
  void client_main(int c);
  check::Operation next_op(ClientState& st);
  static std::vector<std::string> command_for(const check::Operation& op);

  WorkloadOptions o_;
  KeyRing ring_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ops_done_{0};
  std::vector<std::thread> threads_;
  std::vector<check::History> per_client_;               // written only by its own thread
  std::vector<std::map<std::string, uint64_t>> errors_;  // likewise
};

int64_t micros_since(std::chrono::steady_clock::time_point t0);

}  // namespace chorus::tools::nemesis
