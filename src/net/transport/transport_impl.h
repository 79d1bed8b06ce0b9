// Inside the Transport (transport.h): the state of one connection and one
// peer, and the implementation class whose members are defined in
//   transport.cc   setup and teardown, sending, receiving, stats;
//   connection.cc  accepting, dialling, the handshake, the read loop and
//                  the socket writes.
// Included by those two files only.
#pragma once

#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>
#include <asio.hpp>

#include "base/prng.h"
#include "chorus/wire.pb.h"
#include "net/transport/frame.h"
#include "net/transport/snapshot_stream.h"
#include "net/transport/transport.h"

namespace chorus::net {

// Rethrows what a coroutine spawned with co_spawn threw: a bug, not an
// input error (those are Status values).
inline void rethrow_if_failed(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// Longest piece of text from a peer (cluster id, refusal reason) that is logged.
inline constexpr size_t kMaxPeerTextBytes = 200;

// Text from the other side, made safe for one log line: printable ASCII
// only, at most kMaxPeerTextBytes.
std::string printable(std::string_view text);

// One TCP connection, in either direction. Owned by shared_ptr: the coroutine
// serving it and every pending completion handler hold a reference.
struct Connection {
  Connection(asio::ip::tcp::socket s, bool out, uint64_t conn_id, uint64_t max_snapshot_bytes)
      : id(conn_id),
        outbound(out),
        socket(std::move(s)),
        deadline(socket.get_executor()),
        reassembler(max_snapshot_bytes) {}

  const uint64_t id;
  const bool outbound;
  asio::ip::tcp::socket socket;
  asio::steady_timer deadline;  // connect, handshake and refusal-linger timeouts
  FrameDecoder decoder{kHandshakeMaxFrameBytes};
  NodeId peer;                   // outbound: the node dialled; inbound: known after the handshake
  std::string remote;            // the other end, for logs and stats
  bool counted_pending = false;  // counts toward max_pending_handshakes
  bool established = false;
  bool closed = false;
  bool timed_out = false;

  // Sending. Invariant: queue and outgoing are empty unless established.
  std::deque<std::string> queue;  // encoded frames, oldest first
  size_t queued_bytes = 0;        // Invariant: sum of queue[i].size()
  std::optional<OutgoingTransfer> outgoing;
  uint64_t next_transfer_id = 1;
  bool flush_posted = false;
  bool writing = false;
  std::vector<std::string> inflight;  // frames of the write in progress
  std::vector<asio::const_buffer> buffers;
  uint64_t inflight_messages = 0;  // messages the write in progress completes
  uint64_t inflight_chunks = 0;
  bool inflight_snapshot_done = false;  // it carries the last chunk of a transfer

  // Receiving.
  SnapshotReassembler reassembler;
  bool protocol_error = false;  // closed for bad input from the other side
};

struct Peer {
  NodeId id;
  Endpoint endpoint;
  std::shared_ptr<Connection> conn;            // the established connection, if any
  std::unique_ptr<asio::steady_timer> redial;  // dialling side: backoff sleep
  bool dial_loop_running = false;
  uint32_t backoff_ms = 0;
  std::string down_reason_logged;  // dialling side: last failure logged (dedup)
  bool too_large_logged = false;
  PeerStats stats;
};

class Transport::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, TransportConfig cfg);

  Status start();
  void stop();
  void send(OutgoingMessage m);
  void set_peer(NodeId id, Endpoint ep);
  void set_receiver(Receiver r) {
    receiver_ = r ? std::make_shared<const Receiver>(std::move(r)) : nullptr;
  }
  Endpoint listen_endpoint() const { return bound_; }
  PeerStats peer_stats(NodeId id) const;
  TransportStats stats() const;

 private:
  using ConnPtr = std::shared_ptr<Connection>;
  template <class T>
  using awaitable = asio::awaitable<T>;  // for the declarations below

  // Setup (transport.cc).
  Peer& add_peer(NodeId id, Endpoint ep);
  void spawn_dialer(Peer& p);

  // Connections (connection.cc). Coroutines that take `self` keep the Impl alive.
  ConnPtr new_connection(asio::ip::tcp::socket s, bool outbound);
  // By value: callers pass references such as Peer::conn, which close() resets.
  void close(ConnPtr conn, const std::string& reason);
  void arm_deadline(const ConnPtr& conn, uint32_t ms);
  awaitable<void> accept_loop(std::shared_ptr<Impl> self);
  awaitable<void> dial_loop(std::shared_ptr<Impl> self, NodeId id);
  awaitable<bool> dial_once(Peer& p);
  awaitable<bool> serve(std::shared_ptr<Impl> self, ConnPtr conn);
  awaitable<bool> handshake(ConnPtr conn);
  awaitable<bool> exchange_replies(ConnPtr conn, uint32_t their_version);
  awaitable<void> refuse(ConnPtr conn, std::string reason);
  awaitable<Status> write_raw(ConnPtr conn, std::string frame);
  awaitable<Status> read_frame(ConnPtr conn, std::string* payload);
  awaitable<void> read_loop(ConnPtr conn);
  wirepb::Handshake my_handshake(const Connection& conn) const;
  std::string check_handshake(const Connection& conn, const wirepb::Handshake& h) const;
  void handshake_failed(const Connection& conn, const std::string& reason);
  void establish(const ConnPtr& conn);
  void log_dial_failure(Peer& p, const std::string& reason);
  bool first_inbound_refusal(const std::string& remote, const std::string& reason);

  // Receiving (transport.cc).
  Status handle_frame(const ConnPtr& conn, std::string_view payload);
  Status handle_chunk(Connection& conn, Peer& p, wirepb::PeerMessage m);
  Status deliver(Peer& p, IncomingMessage m);

  // Sending (transport.cc) and writing (connection.cc).
  void enqueue(Peer& p, std::string frame);
  void start_snapshot(Peer& p, OutgoingMessage m);
  Result<std::unique_ptr<SnapshotSource>> open_snapshot(const OutgoingMessage& m);
  void drop_too_large(Peer& p, const wirepb::PeerMessage& m, size_t bytes, size_t limit);
  void schedule_flush(const ConnPtr& conn);
  void maybe_write(const ConnPtr& conn);
  size_t take_queued_frames(Connection& c);
  void take_snapshot_chunk(Connection& c, Peer& p);
  void on_written(const ConnPtr& conn, std::error_code ec, size_t bytes);
  void drop(Peer& p, uint64_t n) { p.stats.messages_dropped += n; }

  uint32_t jittered(uint32_t ms) { return static_cast<uint32_t>(rng_.uniform(ms / 2, ms)); }

  asio::io_context& io_;
  const TransportConfig cfg_;
  std::shared_ptr<spdlog::logger> log_;
  asio::ip::tcp::acceptor acceptor_;
  asio::steady_timer accept_pause_;
  Endpoint bound_;
  std::shared_ptr<const Receiver> receiver_;
  std::map<NodeId, Peer> peers_;  // never erased: references stay valid
  std::set<ConnPtr> conns_;       // every open connection (stop() closes them)
  size_t pending_inbound_ = 0;    // Invariant: <= cfg_.max_pending_handshakes
  std::map<std::string, std::string> inbound_refusals_logged_;  // remote IP -> reason
  Prng rng_;
  uint64_t next_conn_id_ = 1;
  bool started_ = false;
  bool stopped_ = false;
  TransportStats counters_;  // the global counters; `peers` is unused here
};

}  // namespace chorus::net
