// ClientServer: the RESP (Redis protocol) front end of a node.
//
// One coroutine per connection on the node's event loop. Input is parsed by
// the pure codec (src/net/resp) with the configured limits, checked before
// anything is allocated; each command is planned by the command layer
// (commands.h) and executed in order:
//  - immediate replies (PING, CLIENT, INFO...) are answered at once;
//  - writes go to the replication group of their keys' keyspace (node.h);
//    a write whose keys span keyspaces is refused (-CROSSKEYSPACE), never
//    partly applied. They carry the connection's session id and the next
//    sequence number and complete when the local replica applies them
//    (exactly once, even if the node re-proposes after a leader change);
//  - reads wait for the connection's consistency mode (ReadIndex by default)
//    on every group their keys belong to (every group for SCAN and DBSIZE),
//    then read them all as one state (routed_state.h);
//  - CHORUS.KEYSPACE runs on the node's metadata group;
//  - WAIT and CHORUS.POLL read the groups' status (write_progress.h) and,
//    where this node does not lead a group, ask its leader (progress_queries.h);
//    every completed write leaves its token (keyspace, term, index) in the
//    session, which CHORUS.TOKEN prints and WAIT waits for.
// Errors say what happened (error_for): -TRYAGAIN only when the command
// certainly did not take effect (no leader, a limit reached before it was
// proposed); -UNCERTAIN when a write was proposed and then lost sight of (a
// timeout, a refusal on a retry, a shutdown): it may or may not have been
// applied, and a client must not blindly retry a non-idempotent command.
// Replies leave in command order; many pipelined replies go out in one write.
// A protocol error gets "-ERR Protocol error: ..." and the connection is
// closed; the server keeps running.
//
// Threading: everything runs on the node's event loop thread.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/status.h"
#include "net/resp/resp_parser.h"
#include "server/commands.h"
#include "server/node.h"
#include "server/write_progress.h"

namespace chorus::server {

struct ClientServerOptions {
  net::resp::Limits limits;
  uint64_t max_clients = 10000;
  bool lease_reads_enabled = false;
  // WAIT with timeout 0 (or longer) waits at most this long (limits.request_timeout_ms).
  uint64_t wait_timeout_max_ms = 5000;
  // How often a blocked WAIT looks at the groups' status again.
  uint64_t wait_poll_interval_ms = 10;
  // The replicas a connection without writes reports to WAIT on a node that
  // does not lead the default group: the configured voters but this one.
  uint64_t replicas_configured = 0;
  // Called once per executed command with its metric name and outcome ("ok"/"error").
  std::function<void(std::string_view command, std::string_view result)> on_command;
};

class ClientServer {
 public:
  ClientServer(asio::io_context& io, Node& node, uint64_t node_id, ClientServerOptions opts);
  // Binds and starts accepting. Error names the address (e.g. port in use).
  Status start(const std::string& host, uint16_t port);
  void stop();
  uint16_t port() const { return port_; }
  uint64_t connected_clients() const { return clients_; }

 private:
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(asio::ip::tcp::socket socket);
  asio::awaitable<bool> execute(const std::vector<std::string>& args, Session& session,
                                uint64_t& seq, std::string& out);
  asio::awaitable<Result<host::WriteAck>> replicate(ReplicaGroup& group, kvpb::Command cmd);
  asio::awaitable<Status> read_barrier(ReplicaGroup& group, Consistency c);
  asio::awaitable<void> execute_write(WriteOp& w, Session& session, uint64_t& seq, std::string& out,
                                      bool& ok);
  asio::awaitable<void> execute_read(ReadOp& r, Session& session, std::string& out, bool& ok);
  asio::awaitable<void> execute_keyspace(KeyspaceOp& k, std::string& out, bool& ok);
  using Clock = std::chrono::steady_clock;
  asio::awaitable<void> execute_wait(const WaitOp& w, Session& session, std::string& out);
  asio::awaitable<void> execute_poll(const PollOp& p, std::string& out, bool& ok);
  // The replicas holding every write in `writes` (the minimum over them),
  // asking each group's leader in turn when this node does not lead it.
  asio::awaitable<uint64_t> replicas_holding(const std::vector<WriteToken>& writes,
                                             Session& session, Clock::time_point deadline);
  // One write's progress: this node's view, with its group's leader's
  // (ProgressQueries, with_leader_view) when this node does not lead the
  // group; the query waits until `deadline` at most.
  asio::awaitable<WriteProgress> progress_of(ReplicaGroup& g, const WriteToken& t,
                                             Clock::time_point deadline);
  // The group a token names; nullptr for an unknown keyspace.
  ReplicaGroup* group_of_keyspace(std::string_view name);
  ServerView view(bool with_status) const;
  uint64_t new_session_id();

  asio::io_context& io_;
  Node& node_;
  uint64_t node_id_;
  ClientServerOptions opts_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  uint64_t clients_ = 0;
  uint64_t session_base_ = 0;
  uint64_t session_counter_ = 0;
  int64_t started_ms_ = 0;
  bool stopped_ = false;
};

// The RESP error line for a failed request ("TRYAGAIN no leader", "UNCERTAIN
// request timed out; ..."), without "-" and CRLF.
std::string error_for(const Status& st);

}  // namespace chorus::server
