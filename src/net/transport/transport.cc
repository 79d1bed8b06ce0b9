#include "net/transport/transport.h"

#include <algorithm>
#include <deque>
#include <exception>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <asio.hpp>

#include "base/prng.h"
#include "chorus/wire.pb.h"
#include "net/transport/raft_codec.h"

namespace chorus::net {
namespace {

using asio::awaitable;
using asio::ip::tcp;

constexpr size_t kReadBytes = 64u << 10;  // one read_some
// After refusing a handshake: how long to wait for the other side to close,
// so our reply is not lost to a reset caused by its unread bytes.
constexpr uint32_t kRefusalLingerMs = 500;
// Pause after a failed accept (e.g. out of file descriptors) before retrying.
constexpr uint32_t kAcceptErrorPauseMs = 100;
// Distinct remote addresses whose last refusal is remembered (log dedup).
constexpr size_t kMaxRememberedRefusals = 256;
// Reassembly buffers are reserved up to this size from the announced total;
// beyond it they grow as chunks arrive (an announced size is not proof).
constexpr uint64_t kMaxSnapshotReserveBytes = 64u << 20;
// Longest piece of text from a peer (cluster id, refusal reason) that is logged.
constexpr size_t kMaxPeerTextBytes = 200;
// Headroom for the envelope of a snapshot chunk frame (config validation).
constexpr uint32_t kChunkEnvelopeBytes = 4096;

auto redirect(std::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

void rethrow_if_failed(std::exception_ptr e) {
  if (e) std::rethrow_exception(e);
}

// Serializes msg into a frame. Precondition: msg.ByteSizeLong() fits a frame.
std::string frame_of(const google::protobuf::MessageLite& msg) {
  const size_t size = msg.ByteSizeLong();
  std::string frame(kFrameHeaderBytes + size, '\0');
  msg.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(frame.data() + kFrameHeaderBytes));
  write_frame_header(std::string_view(frame).substr(kFrameHeaderBytes), frame.data());
  return frame;
}

// Text from the other side, made safe for one log line: printable ASCII
// only, at most kMaxPeerTextBytes.
std::string printable(std::string_view text) {
  std::string out;
  for (char ch : text.substr(0, kMaxPeerTextBytes)) {
    out += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  }
  if (text.size() > kMaxPeerTextBytes) out += "...";
  return out;
}

std::string endpoint_text(const tcp::endpoint& ep) {
  return Endpoint{ep.address().to_string(), ep.port()}.to_string();
}

// An outgoing snapshot streamed as SnapshotChunk frames, one per write.
struct OutgoingSnapshot {
  uint64_t transfer_id = 0;
  NodeId from;
  NodeId to;
  Term term;
  core::SnapshotMeta meta;
  std::shared_ptr<const std::string> data;  // either the bytes...
  std::unique_ptr<SnapshotSource> source;   // ...or where to read them
  std::string pending;                      // source: last piece read
  size_t pending_pos = 0;                   // Invariant: pending_pos <= pending.size()
  bool source_done = false;
  uint64_t offset = 0;  // bytes already framed
};

// A snapshot being reassembled from chunks.
struct IncomingSnapshot {
  uint64_t transfer_id = 0;
  core::SnapshotMeta meta;
  Term term;
  std::string bytes;      // Invariant: bytes.size() <= max_snapshot_bytes
  bool rejected = false;  // over the limit: later chunks are ignored
};

// One TCP connection, in either direction. Owned by shared_ptr: the coroutine
// serving it and every pending completion handler hold a reference.
struct Connection {
  Connection(tcp::socket s, bool out, uint64_t conn_id)
      : id(conn_id), outbound(out), socket(std::move(s)), deadline(socket.get_executor()) {}

  const uint64_t id;
  const bool outbound;
  tcp::socket socket;
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
  std::optional<OutgoingSnapshot> outgoing;
  uint64_t next_transfer_id = 1;
  bool flush_posted = false;
  bool writing = false;
  std::vector<std::string> inflight;  // frames of the write in progress
  std::vector<asio::const_buffer> buffers;
  uint64_t inflight_messages = 0;  // Raft messages the write in progress completes
  uint64_t inflight_chunks = 0;
  bool inflight_snapshot_done = false;  // it carries the last chunk of a transfer

  // Receiving.
  std::optional<IncomingSnapshot> incoming;
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

}  // namespace

class Transport::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, TransportConfig cfg)
      : io_(io),
        cfg_(std::move(cfg)),
        log_(cfg_.logger ? cfg_.logger : spdlog::default_logger()),
        acceptor_(io),
        accept_pause_(io),
        rng_(cfg_.jitter_seed != 0 ? cfg_.jitter_seed : std::random_device{}()) {
    for (const auto& [id, ep] : cfg_.peers) add_peer(id, ep);
  }

  Status start();
  void stop();
  void send(raft::Message m);
  void set_peer(NodeId id, Endpoint ep);
  void set_receiver(Receiver r) {
    receiver_ = r ? std::make_shared<const Receiver>(std::move(r)) : nullptr;
  }
  Endpoint listen_endpoint() const { return bound_; }
  PeerStats peer_stats(NodeId id) const;
  TransportStats stats() const;

 private:
  using ConnPtr = std::shared_ptr<Connection>;

  Peer& add_peer(NodeId id, Endpoint ep);
  void spawn_dialer(Peer& p);
  ConnPtr new_connection(tcp::socket s, bool outbound);

  // Coroutines. Each takes `self` so the Impl outlives it.
  awaitable<void> accept_loop(std::shared_ptr<Impl> self);
  awaitable<void> dial_loop(std::shared_ptr<Impl> self, NodeId id);
  awaitable<bool> dial_once(Peer& p);
  awaitable<bool> serve(std::shared_ptr<Impl> self, ConnPtr conn);
  awaitable<bool> handshake(ConnPtr conn);
  awaitable<void> refuse(ConnPtr conn, std::string reason);
  awaitable<Status> write_raw(ConnPtr conn, std::string frame);
  awaitable<Status> read_frame(ConnPtr conn, std::string* payload);
  awaitable<void> read_loop(ConnPtr conn);

  // Handshake helpers.
  wirepb::Handshake my_handshake(const Connection& conn) const;
  std::string check_handshake(const Connection& conn, const wirepb::Handshake& h) const;
  void handshake_failed(const Connection& conn, const std::string& reason);
  void establish(const ConnPtr& conn);
  // By value: callers pass references such as Peer::conn, which close() resets.
  void close(ConnPtr conn, const std::string& reason);
  void arm_deadline(const ConnPtr& conn, uint32_t ms);

  // Receiving.
  Status handle_frame(const ConnPtr& conn, std::string_view payload);
  Status handle_chunk(const ConnPtr& conn, const wirepb::PeerMessage& pm);
  void deliver(Peer& p, raft::Message m);

  // Sending.
  void enqueue(Peer& p, std::string frame);
  void start_snapshot(Peer& p, raft::Message m);
  void schedule_flush(const ConnPtr& conn);
  void maybe_write(const ConnPtr& conn);
  Result<std::string> next_chunk_frame(OutgoingSnapshot& o, bool* last) const;
  void on_written(const ConnPtr& conn, std::error_code ec, size_t bytes);
  void drop(Peer& p, uint64_t n) { p.stats.messages_dropped += n; }

  void log_dial_failure(Peer& p, const std::string& reason);
  bool first_inbound_refusal(const std::string& remote, const std::string& reason);
  uint32_t jittered(uint32_t ms) { return static_cast<uint32_t>(rng_.uniform(ms / 2, ms)); }

  asio::io_context& io_;
  const TransportConfig cfg_;
  std::shared_ptr<spdlog::logger> log_;
  tcp::acceptor acceptor_;
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

// ---- Setup and teardown -------------------------------------------------------

Peer& Transport::Impl::add_peer(NodeId id, Endpoint ep) {
  Peer& p = peers_[id];
  p.id = id;
  p.endpoint = std::move(ep);
  p.stats.id = id;
  p.backoff_ms = cfg_.reconnect_backoff_min_ms;
  return p;
}

void Transport::Impl::set_peer(NodeId id, Endpoint ep) {
  if (id == cfg_.self || id == kNoNode) return;
  auto it = peers_.find(id);
  if (it != peers_.end()) {
    it->second.endpoint = std::move(ep);
    return;
  }
  Peer& p = add_peer(id, std::move(ep));
  if (started_ && !stopped_) spawn_dialer(p);
}

Status Transport::Impl::start() {
  CHORUS_ASSERT(!started_ && !stopped_);
  std::error_code ec;
  const tcp::endpoint ep(asio::ip::make_address(cfg_.listen.ip, ec), cfg_.listen.port);
  if (!ec) acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    std::error_code ignored;
    acceptor_.close(ignored);
    return Status::io_error(fmt::format("peer transport: cannot listen on {}: {}",
                                        cfg_.listen.to_string(), ec.message()));
  }
  const tcp::endpoint local = acceptor_.local_endpoint(ec);
  bound_ = Endpoint{cfg_.listen.ip, local.port()};
  started_ = true;
  log_->info("transport[{}]: listening on {} (cluster '{}')", cfg_.self.value(), bound_.to_string(),
             cfg_.cluster_id);
  auto self = shared_from_this();
  asio::co_spawn(io_, accept_loop(self), rethrow_if_failed);
  for (auto& [id, p] : peers_) spawn_dialer(p);
  return Status::ok();
}

void Transport::Impl::spawn_dialer(Peer& p) {
  // The lower id dials; the higher one waits to be dialled.
  if (!(cfg_.self < p.id) || p.dial_loop_running) return;
  p.dial_loop_running = true;
  p.redial = std::make_unique<asio::steady_timer>(io_);
  asio::co_spawn(io_, dial_loop(shared_from_this(), p.id), rethrow_if_failed);
}

void Transport::Impl::stop() {
  if (stopped_) return;
  stopped_ = true;
  receiver_.reset();
  std::error_code ignored;
  acceptor_.close(ignored);
  accept_pause_.cancel();
  for (auto& [id, p] : peers_) {
    if (p.redial) p.redial->cancel();
  }
  const std::set<ConnPtr> open = conns_;
  for (const ConnPtr& c : open) close(c, "transport stopped");
  if (started_) log_->info("transport[{}]: stopped", cfg_.self.value());
}

Transport::Impl::ConnPtr Transport::Impl::new_connection(tcp::socket s, bool outbound) {
  auto conn = std::make_shared<Connection>(std::move(s), outbound, next_conn_id_++);
  conns_.insert(conn);
  return conn;
}

void Transport::Impl::arm_deadline(const ConnPtr& conn, uint32_t ms) {
  conn->deadline.expires_after(std::chrono::milliseconds(ms));
  conn->deadline.async_wait([conn](std::error_code ec) {
    if (ec || conn->closed) return;
    conn->timed_out = true;
    std::error_code ignored;
    conn->socket.close(ignored);  // the pending operation fails; its owner closes properly
  });
}

void Transport::Impl::close(ConnPtr conn, const std::string& reason) {
  if (conn->closed) return;
  conn->closed = true;
  conn->deadline.cancel();
  std::error_code ignored;
  conn->socket.close(ignored);
  conns_.erase(conn);
  if (conn->counted_pending) {
    conn->counted_pending = false;
    --pending_inbound_;
  }
  if (conn->established) {
    Peer& p = peers_.at(conn->peer);
    // Frames not yet on the wire are lost with the connection (Raft retransmits).
    drop(p, conn->queue.size() + (conn->outgoing ? 1 : 0) +
                (conn->writing ? conn->inflight_messages : 0));
    if (p.conn == conn) {
      p.conn.reset();
      ++p.stats.disconnects;
      p.stats.remote_address.clear();
      if (!stopped_) {
        log_->info("transport[{}]: disconnected from node {} ({}): {}", cfg_.self.value(),
                   p.id.value(), conn->remote, reason);
      }
    }
  }
  conn->queue.clear();
  conn->queued_bytes = 0;
  conn->outgoing.reset();
  conn->incoming.reset();
}

// ---- Connecting -----------------------------------------------------------------

awaitable<void> Transport::Impl::accept_loop(std::shared_ptr<Impl> self) {
  while (!stopped_) {
    tcp::socket s(io_);
    std::error_code ec;
    co_await acceptor_.async_accept(s, redirect(ec));
    if (stopped_) co_return;
    if (ec) {
      log_->warn("transport[{}]: accept failed: {}", cfg_.self.value(), ec.message());
      accept_pause_.expires_after(std::chrono::milliseconds(kAcceptErrorPauseMs));
      co_await accept_pause_.async_wait(redirect(ec));
      continue;
    }
    ++counters_.connections_accepted;
    if (pending_inbound_ >= cfg_.max_pending_handshakes) {
      ++counters_.connections_over_limit;
      s.close(ec);
      continue;
    }
    ConnPtr conn = new_connection(std::move(s), /*outbound=*/false);
    conn->counted_pending = true;
    ++pending_inbound_;
    asio::co_spawn(io_, serve(self, conn),
                   [](std::exception_ptr e, bool) { rethrow_if_failed(e); });
  }
}

awaitable<void> Transport::Impl::dial_loop(std::shared_ptr<Impl> self, NodeId id) {
  Peer& p = peers_.at(id);
  while (!stopped_) {
    const bool established = co_await dial_once(p);
    if (stopped_) break;
    // A connection that got through the handshake resets the backoff.
    if (established) p.backoff_ms = cfg_.reconnect_backoff_min_ms;
    p.redial->expires_after(std::chrono::milliseconds(jittered(p.backoff_ms)));
    if (!established) p.backoff_ms = std::min(p.backoff_ms * 2, cfg_.reconnect_backoff_max_ms);
    std::error_code ec;
    co_await p.redial->async_wait(redirect(ec));
  }
  p.dial_loop_running = false;
  (void)self;
}

awaitable<bool> Transport::Impl::dial_once(Peer& p) {
  std::error_code ec;
  const tcp::endpoint remote(asio::ip::make_address(p.endpoint.ip, ec), p.endpoint.port);
  if (ec) {
    log_dial_failure(p, fmt::format("bad address '{}'", p.endpoint.ip));
    co_return false;
  }
  ConnPtr conn = new_connection(tcp::socket(io_), /*outbound=*/true);
  conn->peer = p.id;
  conn->remote = p.endpoint.to_string();
  conn->socket.open(remote.protocol(), ec);
  // Bound to our own listen IP, so rules between node addresses partition us.
  const auto own = asio::ip::make_address(cfg_.listen.ip);
  if (!ec && !own.is_unspecified()) conn->socket.bind(tcp::endpoint(own, 0), ec);
  if (ec) {
    close(conn, ec.message());
    log_dial_failure(
        p, fmt::format("cannot bind an outgoing socket to {}: {}", cfg_.listen.ip, ec.message()));
    co_return false;
  }
  arm_deadline(conn, cfg_.connect_timeout_ms);
  co_await conn->socket.async_connect(remote, redirect(ec));
  if (ec || stopped_) {
    const std::string why = conn->timed_out ? "connect timed out" : ec.message();
    close(conn, why);
    if (!stopped_) log_dial_failure(p, fmt::format("connect to {}: {}", conn->remote, why));
    co_return false;
  }
  co_return co_await serve(shared_from_this(), conn);
}

void Transport::Impl::log_dial_failure(Peer& p, const std::string& reason) {
  if (p.down_reason_logged == reason) return;  // once per state, not per retry
  p.down_reason_logged = reason;
  log_->warn("transport[{}]: node {} unreachable: {} (retrying with backoff)", cfg_.self.value(),
             p.id.value(), reason);
}

// Inbound handshake trouble is logged once per remote IP and reason: a
// misconfigured node retrying every second must not fill the log. `reason`
// must not contain the remote port, which changes with every attempt.
bool Transport::Impl::first_inbound_refusal(const std::string& remote, const std::string& reason) {
  const std::string ip = remote.substr(0, remote.rfind(':'));
  if (inbound_refusals_logged_.size() >= kMaxRememberedRefusals) inbound_refusals_logged_.clear();
  auto [it, inserted] = inbound_refusals_logged_.try_emplace(ip, reason);
  if (!inserted && it->second == reason) return false;
  it->second = reason;
  return true;
}

// Runs one connection from TCP connect/accept to close. Returns true if the
// handshake succeeded and the connection ended without a protocol error (the
// dialler then resets its backoff).
awaitable<bool> Transport::Impl::serve(std::shared_ptr<Impl> self, ConnPtr conn) {
  std::error_code ec;
  conn->socket.set_option(tcp::no_delay(true), ec);  // we coalesce ourselves
  if (!conn->outbound) {
    const auto ep = conn->socket.remote_endpoint(ec);
    conn->remote = ec ? std::string("?") : endpoint_text(ep);
  }
  arm_deadline(conn, cfg_.handshake_timeout_ms);
  const bool ok = co_await handshake(conn);
  if (!ok || stopped_ || conn->closed) {
    close(conn, "handshake failed");
    co_return false;
  }
  establish(conn);
  co_await read_loop(conn);
  (void)self;
  // A peer that talks nonsense is retried with growing backoff, like one that is down.
  co_return !conn->protocol_error;
}

wirepb::Handshake Transport::Impl::my_handshake(const Connection& conn) const {
  wirepb::Handshake h;
  h.set_magic(kWireMagic);
  h.set_protocol_version(kProtocolVersion);
  h.set_min_protocol_version(kMinProtocolVersion);
  h.set_cluster_id(cfg_.cluster_id);
  h.set_node_id(cfg_.self.value());
  h.set_peer_node_id(conn.outbound ? conn.peer.value() : 0);
  h.set_listen_address(bound_.to_string());
  return h;
}

// The reason to refuse h, or "" to accept it.
std::string Transport::Impl::check_handshake(const Connection& conn,
                                             const wirepb::Handshake& h) const {
  if (h.magic() != kWireMagic) return fmt::format("not a Chorus peer (magic {:#x})", h.magic());
  if (h.cluster_id() != cfg_.cluster_id) {
    return fmt::format("cluster id '{}' is not ours ('{}')", printable(h.cluster_id()),
                       cfg_.cluster_id);
  }
  const uint32_t common = std::min(h.protocol_version(), kProtocolVersion);
  if (common < std::max(h.min_protocol_version(), kMinProtocolVersion) || common == 0) {
    return fmt::format("no common protocol version (it speaks {}..{}, we speak {}..{})",
                       h.min_protocol_version(), h.protocol_version(), kMinProtocolVersion,
                       kProtocolVersion);
  }
  const NodeId id(h.node_id());
  if (id == cfg_.self) return fmt::format("node id {} is our own", id.value());
  if (peers_.find(id) == peers_.end()) return fmt::format("unknown node id {}", id.value());
  if (conn.outbound) {
    if (id != conn.peer) {
      return fmt::format("expected node {} at {}, found node {}", conn.peer.value(), conn.remote,
                         id.value());
    }
    return "";
  }
  if (cfg_.self < id) {
    return fmt::format("node {} must not dial node {}: the lower id dials", id.value(),
                       cfg_.self.value());
  }
  if (h.peer_node_id() != cfg_.self.value()) {
    return fmt::format("it dialled node {}, this is node {}", h.peer_node_id(), cfg_.self.value());
  }
  return "";
}

awaitable<bool> Transport::Impl::handshake(ConnPtr conn) {
  Status st = co_await write_raw(conn, frame_of(my_handshake(*conn)));
  std::string payload;
  if (st.is_ok()) st = co_await read_frame(conn, &payload);
  if (!st.is_ok()) {
    handshake_failed(*conn, st.message());
    co_return false;
  }
  wirepb::Handshake theirs;
  std::string reason = theirs.ParseFromString(payload) ? check_handshake(*conn, theirs)
                                                       : "not a Chorus peer (bad handshake)";
  if (!reason.empty()) {
    co_await refuse(conn, std::move(reason));
    co_return false;
  }
  if (!conn->outbound) conn->peer = NodeId(theirs.node_id());
  wirepb::HandshakeReply reply;
  reply.set_accepted(true);
  reply.set_protocol_version(std::min(theirs.protocol_version(), kProtocolVersion));
  st = co_await write_raw(conn, frame_of(reply));
  if (st.is_ok()) st = co_await read_frame(conn, &payload);
  wirepb::HandshakeReply their_reply;
  if (st.is_ok() && !their_reply.ParseFromString(payload)) st = Status::corruption("bad reply");
  if (!st.is_ok()) {
    handshake_failed(*conn, st.message());
    co_return false;
  }
  if (!their_reply.accepted()) {
    ++counters_.handshakes_rejected;
    const std::string why = "refused by it: " + printable(their_reply.reason());
    if (conn->outbound) {
      log_dial_failure(peers_.at(conn->peer), why);
    } else if (first_inbound_refusal(conn->remote, why)) {
      log_->warn("transport[{}]: node {} ({}) {}", cfg_.self.value(), conn->peer.value(),
                 conn->remote, why);
    }
    co_return false;
  }
  conn->decoder.set_max_frame_bytes(cfg_.max_frame_bytes);
  co_return true;
}

void Transport::Impl::handshake_failed(const Connection& conn, const std::string& reason) {
  ++counters_.handshakes_failed;
  if (stopped_) return;
  const std::string why = conn.timed_out ? std::string("timed out") : reason;
  if (conn.outbound) {
    log_dial_failure(peers_.at(conn.peer), "handshake failed: " + why);
  } else if (first_inbound_refusal(conn.remote, why)) {
    log_->warn("transport[{}]: handshake with {} failed: {}", cfg_.self.value(), conn.remote, why);
  }
}

// Tells the other side why, then waits briefly for it to close first.
awaitable<void> Transport::Impl::refuse(ConnPtr conn, std::string reason) {
  ++counters_.handshakes_refused;
  if (conn->outbound) {
    log_dial_failure(peers_.at(conn->peer), "refused it: " + reason);
  } else if (first_inbound_refusal(conn->remote, reason)) {
    log_->warn("transport[{}]: refused connection from {}: {}", cfg_.self.value(), conn->remote,
               reason);
  }
  wirepb::HandshakeReply reply;
  reply.set_accepted(false);
  reply.set_reason(reason);
  const Status st = co_await write_raw(conn, frame_of(reply));
  if (!st.is_ok() || conn->closed) co_return;
  std::error_code ec;
  conn->socket.shutdown(tcp::socket::shutdown_send, ec);
  arm_deadline(conn, kRefusalLingerMs);
  char scratch[4096];
  while (!ec && !conn->closed) {
    co_await conn->socket.async_read_some(asio::buffer(scratch), redirect(ec));
  }
}

awaitable<Status> Transport::Impl::write_raw(ConnPtr conn, std::string frame) {
  std::error_code ec;
  co_await asio::async_write(conn->socket, asio::buffer(frame), redirect(ec));
  if (ec) co_return Status::io_error(conn->timed_out ? "timed out" : ec.message());
  co_return Status::ok();
}

// Reads until the decoder yields one payload (copied into *payload).
awaitable<Status> Transport::Impl::read_frame(ConnPtr conn, std::string* payload) {
  for (;;) {
    auto r = conn->decoder.next();
    if (!r.is_ok()) co_return r.status();
    if (r->has_value()) {
      payload->assign(**r);
      co_return Status::ok();
    }
    std::error_code ec;
    const std::span<char> buf = conn->decoder.prepare(kReadBytes);
    const size_t n =
        co_await conn->socket.async_read_some(asio::buffer(buf.data(), buf.size()), redirect(ec));
    if (ec) {
      co_return Status::io_error(conn->timed_out          ? "timed out"
                                 : ec == asio::error::eof ? "closed by the other side"
                                                          : ec.message());
    }
    conn->decoder.commit(n);
  }
}

void Transport::Impl::establish(const ConnPtr& conn) {
  conn->deadline.cancel();
  if (conn->counted_pending) {
    conn->counted_pending = false;
    --pending_inbound_;
  }
  Peer& p = peers_.at(conn->peer);
  // One connection per pair: a newer one (e.g. the peer restarted before we
  // noticed the old one die) replaces the old.
  if (p.conn) close(p.conn, "replaced by a new connection");
  conn->established = true;
  p.conn = conn;
  ++p.stats.connects;
  p.stats.remote_address = conn->remote;
  p.down_reason_logged.clear();
  inbound_refusals_logged_.erase(conn->remote.substr(0, conn->remote.rfind(':')));
  log_->info("transport[{}]: connected to node {} ({}, {})", cfg_.self.value(), p.id.value(),
             conn->remote, conn->outbound ? "outbound" : "inbound");
}

// ---- Receiving ----------------------------------------------------------------

awaitable<void> Transport::Impl::read_loop(ConnPtr conn) {
  std::error_code ec;
  while (!conn->closed && !stopped_) {
    // Frames already buffered (some may have come with the handshake reply).
    for (;;) {
      auto r = conn->decoder.next();
      Status st = r.is_ok() ? Status::ok() : r.status();
      if (st.is_ok() && !r->has_value()) break;
      if (st.is_ok()) st = handle_frame(conn, **r);
      if (!st.is_ok()) {
        ++counters_.protocol_errors;
        conn->protocol_error = true;
        log_->warn("transport[{}]: closing connection to node {} ({}): {}", cfg_.self.value(),
                   conn->peer.value(), conn->remote, st.message());
        close(conn, "protocol error");
        co_return;
      }
      if (conn->closed || stopped_) co_return;
    }
    const std::span<char> buf = conn->decoder.prepare(kReadBytes);
    const size_t n =
        co_await conn->socket.async_read_some(asio::buffer(buf.data(), buf.size()), redirect(ec));
    if (ec) break;
    conn->decoder.commit(n);
    peers_.at(conn->peer).stats.bytes_received += n;
  }
  close(conn, ec == asio::error::eof ? "closed by the other side" : ec.message());
}

Status Transport::Impl::handle_frame(const ConnPtr& conn, std::string_view payload) {
  wirepb::PeerMessage pm;
  if (!pm.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Status::corruption("unparseable PeerMessage");
  }
  if (pm.group_id() != 0) return Status::corruption(fmt::format("unknown group {}", pm.group_id()));
  if (pm.from() != conn->peer.value() || pm.to() != cfg_.self.value()) {
    return Status::corruption(fmt::format("message {}->{} on the connection between {} and {}",
                                          pm.from(), pm.to(), conn->peer.value(),
                                          cfg_.self.value()));
  }
  if (pm.has_snapshot_chunk()) return handle_chunk(conn, pm);
  auto m = decode_peer_message(pm);
  if (!m.is_ok()) return m.status();
  deliver(peers_.at(conn->peer), std::move(m).value());
  return Status::ok();
}

Status Transport::Impl::handle_chunk(const ConnPtr& conn, const wirepb::PeerMessage& pm) {
  CHORUS_RETURN_IF_ERROR(validate_snapshot_chunk(pm));
  const wirepb::SnapshotChunk& c = pm.snapshot_chunk();
  const core::SnapshotMeta meta{LogIndex(c.meta().index()), Term(c.meta().term())};
  Peer& p = peers_.at(conn->peer);
  ++p.stats.snapshot_chunks_received;
  std::optional<IncomingSnapshot>& in = conn->incoming;
  if (c.offset() == 0) {
    // A new transfer; an unfinished older one is abandoned (its sender gave up on it).
    in.emplace(IncomingSnapshot{c.transfer_id(), meta, Term(pm.term()), {}, false});
    if (c.total_bytes() <= cfg_.max_snapshot_bytes) {
      in->bytes.reserve(std::min<uint64_t>(c.total_bytes(), kMaxSnapshotReserveBytes));
    }
  } else if (!in || in->transfer_id != c.transfer_id() ||
             (!in->rejected && in->bytes.size() != c.offset())) {
    return Status::corruption(fmt::format("snapshot chunk of transfer {} at offset {} out of order",
                                          c.transfer_id(), c.offset()));
  }
  if (in->meta != meta || in->term != Term(pm.term())) {
    return Status::corruption("snapshot chunk changes meta or term within a transfer");
  }
  if (in->rejected) {
    if (c.last()) in.reset();
    return Status::ok();
  }
  const uint64_t end = c.offset() + c.data().size();
  if (end > cfg_.max_snapshot_bytes || c.total_bytes() > cfg_.max_snapshot_bytes) {
    // Keep the connection (heartbeats matter more); ignore the rest of this transfer.
    log_->warn("transport[{}]: refusing snapshot {}/{} from node {}: over max_snapshot_bytes {}",
               cfg_.self.value(), meta.index.value(), meta.term.value(), p.id.value(),
               cfg_.max_snapshot_bytes);
    in->rejected = true;
    std::string().swap(in->bytes);
    ++p.stats.messages_dropped;
    if (c.last()) in.reset();
    return Status::ok();
  }
  in->bytes.append(c.data());
  if (!c.last()) return Status::ok();
  raft::Message m{NodeId(pm.from()), NodeId(pm.to()), in->term,
                  raft::InstallSnapshot{core::SnapshotRef{
                      meta, std::make_shared<const std::string>(std::move(in->bytes))}}};
  in.reset();
  ++p.stats.snapshots_received;
  deliver(p, std::move(m));
  return Status::ok();
}

void Transport::Impl::deliver(Peer& p, raft::Message m) {
  ++p.stats.messages_received;
  // A copy of the pointer: the receiver may replace itself or stop us.
  const std::shared_ptr<const Receiver> receiver = receiver_;
  if (receiver && !stopped_) (*receiver)(std::move(m));
}

// ---- Sending --------------------------------------------------------------------

void Transport::Impl::send(raft::Message m) {
  if (!started_ || stopped_) return;
  auto it = peers_.find(m.to);
  if (it == peers_.end() || m.to == cfg_.self) return;
  Peer& p = it->second;
  if (!p.conn) {
    drop(p, 1);  // not connected: Raft retransmits
    return;
  }
  if (const auto* is = std::get_if<raft::InstallSnapshot>(&m.body)) {
    if (!is->snapshot.data || is->snapshot.data->size() > cfg_.snapshot_chunk_bytes) {
      start_snapshot(p, std::move(m));
      return;
    }
  }
  wirepb::PeerMessage pm;
  encode_peer_message(m, &pm);
  if (pm.ByteSizeLong() > cfg_.max_frame_bytes) {
    drop(p, 1);
    if (!p.too_large_logged) {
      p.too_large_logged = true;
      log_->warn("transport[{}]: dropping {}: {} bytes exceed max_frame_bytes {} (logged once)",
                 cfg_.self.value(), raft::describe(m), pm.ByteSizeLong(), cfg_.max_frame_bytes);
    }
    return;
  }
  enqueue(p, frame_of(pm));
}

void Transport::Impl::enqueue(Peer& p, std::string frame) {
  Connection& c = *p.conn;
  c.queued_bytes += frame.size();
  c.queue.push_back(std::move(frame));
  // Over the bound: the oldest frames go first (the newest state matters most).
  while (c.queued_bytes > cfg_.max_queued_bytes_per_peer && c.queue.size() > 1) {
    c.queued_bytes -= c.queue.front().size();
    c.queue.pop_front();
    drop(p, 1);
  }
  schedule_flush(p.conn);
}

void Transport::Impl::start_snapshot(Peer& p, raft::Message m) {
  Connection& c = *p.conn;
  core::SnapshotRef& snap = std::get<raft::InstallSnapshot>(m.body).snapshot;
  if (c.outgoing && c.outgoing->meta == snap.meta && c.outgoing->term == m.term) {
    return;  // the Raft core retried a transfer still under way: let it finish
  }
  if (c.outgoing) drop(p, 1);  // superseded by a newer snapshot
  c.outgoing.reset();
  OutgoingSnapshot o;
  o.transfer_id = c.next_transfer_id++;
  o.from = m.from;
  o.to = m.to;
  o.term = m.term;
  o.meta = snap.meta;
  o.data = snap.data;
  if (!o.data) {
    Result<std::unique_ptr<SnapshotSource>> src =
        cfg_.snapshot_opener ? cfg_.snapshot_opener(snap.meta)
                             : Result<std::unique_ptr<SnapshotSource>>(
                                   Status::not_found("no snapshot_opener configured"));
    if (!src.is_ok() || !src.value()) {
      drop(p, 1);
      log_->error("transport[{}]: cannot send snapshot {}/{} to node {}: {}", cfg_.self.value(),
                  snap.meta.index.value(), snap.meta.term.value(), p.id.value(),
                  src.is_ok() ? "no source" : src.status().to_string());
      return;
    }
    o.source = std::move(src).value();
  }
  log_->info("transport[{}]: streaming snapshot {}/{} ({} bytes) to node {}", cfg_.self.value(),
             snap.meta.index.value(), snap.meta.term.value(),
             o.data ? fmt::format("{}", o.data->size()) : std::string("?"), p.id.value());
  c.outgoing = std::move(o);
  schedule_flush(p.conn);
}

// Writes are started from a posted handler, so every send() of one event-loop
// turn (e.g. all messages of one Ready) goes into the same socket write.
void Transport::Impl::schedule_flush(const ConnPtr& conn) {
  if (conn->flush_posted || conn->writing) return;
  conn->flush_posted = true;
  asio::post(io_, [self = shared_from_this(), conn] {
    conn->flush_posted = false;
    if (!self->stopped_) self->maybe_write(conn);
  });
}

void Transport::Impl::maybe_write(const ConnPtr& conn) {
  if (conn->closed || !conn->established || conn->writing) return;
  Peer& p = peers_.at(conn->peer);
  Connection& c = *conn;
  c.inflight.clear();
  c.buffers.clear();
  // One slot is kept for a snapshot chunk, so a snapshot interleaves with
  // other traffic instead of holding it back.
  size_t max_frames = cfg_.max_messages_per_write;
  if (c.outgoing && max_frames > 1) --max_frames;
  size_t bytes = 0;
  while (!c.queue.empty() && c.inflight.size() < max_frames &&
         (c.inflight.empty() || bytes + c.queue.front().size() <= cfg_.max_write_bytes)) {
    bytes += c.queue.front().size();
    c.queued_bytes -= c.queue.front().size();
    c.inflight.push_back(std::move(c.queue.front()));
    c.queue.pop_front();
  }
  c.inflight_messages = c.inflight.size();
  c.inflight_chunks = 0;
  c.inflight_snapshot_done = false;
  if (c.outgoing) {
    bool last = false;
    Result<std::string> chunk = next_chunk_frame(*c.outgoing, &last);
    if (!chunk.is_ok()) {
      log_->error("transport[{}]: snapshot {}/{} to node {} abandoned: {}", cfg_.self.value(),
                  c.outgoing->meta.index.value(), c.outgoing->meta.term.value(), p.id.value(),
                  chunk.status().to_string());
      c.outgoing.reset();
      drop(p, 1);
    } else {
      c.inflight.push_back(std::move(chunk).value());
      c.inflight_chunks = 1;
      if (last) {
        c.outgoing.reset();
        ++c.inflight_messages;
        c.inflight_snapshot_done = true;
      }
    }
  }
  if (c.inflight.empty()) return;
  for (const std::string& f : c.inflight) c.buffers.emplace_back(f.data(), f.size());
  c.writing = true;
  asio::async_write(c.socket, c.buffers,
                    [self = shared_from_this(), conn](std::error_code ec, size_t n) {
                      self->on_written(conn, ec, n);
                    });
}

Result<std::string> Transport::Impl::next_chunk_frame(OutgoingSnapshot& o, bool* last) const {
  wirepb::PeerMessage pm;
  pm.set_from(o.from.value());
  pm.set_to(o.to.value());
  pm.set_term(o.term.value());
  wirepb::SnapshotChunk* c = pm.mutable_snapshot_chunk();
  c->set_transfer_id(o.transfer_id);
  c->mutable_meta()->set_index(o.meta.index.value());
  c->mutable_meta()->set_term(o.meta.term.value());
  c->set_offset(o.offset);
  const size_t limit = cfg_.snapshot_chunk_bytes;
  if (o.data) {
    c->set_total_bytes(o.data->size());
    const size_t n = std::min<size_t>(limit, o.data->size() - o.offset);
    c->set_data(o.data->data() + o.offset, n);
    *last = o.offset + n == o.data->size();
  } else {
    std::string* out = c->mutable_data();
    while (out->size() < limit || (o.pending_pos == o.pending.size() && !o.source_done)) {
      if (o.pending_pos == o.pending.size() && !o.source_done) {
        // Read ahead one piece at the end of a chunk, to know whether it is the last.
        Result<bool> more = o.source->next(&o.pending);
        if (!more.is_ok()) return more.status();
        o.pending_pos = 0;
        if (!*more) {
          o.pending.clear();
          o.source_done = true;
        } else if (o.pending.empty()) {
          return Status::invalid_argument("snapshot source returned an empty piece");
        }
        continue;
      }
      const size_t n = std::min(limit - out->size(), o.pending.size() - o.pending_pos);
      if (n == 0) break;
      out->append(o.pending, o.pending_pos, n);
      o.pending_pos += n;
    }
    *last = o.source_done && o.pending_pos == o.pending.size();
  }
  if (*last) c->set_last(true);
  o.offset += c->data().size();
  return frame_of(pm);
}

void Transport::Impl::on_written(const ConnPtr& conn, std::error_code ec, size_t bytes) {
  conn->writing = false;
  if (conn->closed || stopped_) {
    conn->inflight.clear();  // counted as dropped by close()
    conn->buffers.clear();
    return;
  }
  if (ec) {
    close(conn, "write failed: " + ec.message());
    return;
  }
  Peer& p = peers_.at(conn->peer);
  p.stats.bytes_sent += bytes;
  p.stats.messages_sent += conn->inflight_messages;
  p.stats.snapshot_chunks_sent += conn->inflight_chunks;
  if (conn->inflight_snapshot_done) ++p.stats.snapshots_sent;
  ++p.stats.writes;
  conn->inflight.clear();
  conn->buffers.clear();
  conn->inflight_messages = 0;
  maybe_write(conn);
}

// ---- Stats ----------------------------------------------------------------------

PeerStats Transport::Impl::peer_stats(NodeId id) const {
  auto it = peers_.find(id);
  PeerStats s;
  s.id = id;
  if (it == peers_.end()) return s;
  s = it->second.stats;
  s.connected = it->second.conn != nullptr;
  s.queued_bytes = s.connected ? it->second.conn->queued_bytes : 0;
  return s;
}

TransportStats Transport::Impl::stats() const {
  TransportStats s = counters_;
  s.peers.clear();
  for (const auto& [id, p] : peers_) s.peers.push_back(peer_stats(id));
  return s;
}

// ---- Endpoint, config and the public wrapper ----------------------------------

std::string Endpoint::to_string() const {
  if (ip.find(':') != std::string::npos) return fmt::format("[{}]:{}", ip, port);
  return fmt::format("{}:{}", ip, port);
}

Result<Endpoint> Endpoint::parse(std::string_view text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return Status::invalid_argument(fmt::format("'{}': expected ip:port", text));
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  uint32_t port = 0;
  if (port_text.empty() || port_text.size() > 5) {
    return Status::invalid_argument(fmt::format("'{}': bad port", text));
  }
  for (char ch : port_text) {
    if (ch < '0' || ch > '9') return Status::invalid_argument(fmt::format("'{}': bad port", text));
    port = port * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (port > 65535) return Status::invalid_argument(fmt::format("'{}': port out of range", text));
  std::error_code ec;
  const auto addr = asio::ip::make_address(std::string(host), ec);
  if (ec) return Status::invalid_argument(fmt::format("'{}': not a numeric IP address", text));
  return Endpoint{addr.to_string(), static_cast<uint16_t>(port)};
}

Status TransportConfig::validate() const {
  auto bad = [](std::string m) { return Status::invalid_argument("transport config: " + m); };
  auto ip_ok = [](const std::string& ip) {
    std::error_code ec;
    asio::ip::make_address(ip, ec);
    return !ec;
  };
  if (self == kNoNode) return bad("self must be a nonzero node id");
  if (cluster_id.empty() || cluster_id.size() > kMaxPeerTextBytes ||
      printable(cluster_id) != cluster_id) {
    return bad("cluster_id must be 1 to 200 printable ASCII characters");
  }
  if (!ip_ok(listen.ip)) return bad(fmt::format("listen ip '{}' is not a numeric IP", listen.ip));
  for (const auto& [id, ep] : peers) {
    if (id == kNoNode) return bad("peer id 0");
    if (!ip_ok(ep.ip)) return bad(fmt::format("peer {} ip '{}' is not numeric", id.value(), ep.ip));
  }
  if (max_frame_bytes < kHandshakeMaxFrameBytes) return bad("max_frame_bytes below 64 KiB");
  if (snapshot_chunk_bytes == 0 || snapshot_chunk_bytes > max_frame_bytes - kChunkEnvelopeBytes) {
    return bad("snapshot_chunk_bytes must be in [1, max_frame_bytes - 4096]");
  }
  if (max_queued_bytes_per_peer < max_frame_bytes) {
    return bad("max_queued_bytes_per_peer must be >= max_frame_bytes");
  }
  if (max_messages_per_write == 0 || max_write_bytes == 0) return bad("write limits must be > 0");
  if (max_pending_handshakes == 0) return bad("max_pending_handshakes must be > 0");
  if (connect_timeout_ms == 0 || handshake_timeout_ms == 0) return bad("timeouts must be > 0");
  if (reconnect_backoff_min_ms == 0 || reconnect_backoff_min_ms > reconnect_backoff_max_ms) {
    return bad("need 0 < reconnect_backoff_min_ms <= reconnect_backoff_max_ms");
  }
  return Status::ok();
}

Transport::Transport(asio::io_context& io, TransportConfig config) {
  const Status st = config.validate();
  CHORUS_ASSERT_MSG(st.is_ok(), st.message().c_str());
  config.peers.erase(config.self);
  impl_ = std::make_shared<Impl>(io, std::move(config));
}

Transport::~Transport() {
  impl_->stop();
}

void Transport::set_receiver(Receiver receiver) {
  impl_->set_receiver(std::move(receiver));
}
Status Transport::start() {
  return impl_->start();
}
void Transport::stop() {
  impl_->stop();
}
void Transport::send(raft::Message m) {
  impl_->send(std::move(m));
}
void Transport::set_peer(NodeId id, Endpoint endpoint) {
  impl_->set_peer(id, std::move(endpoint));
}
Endpoint Transport::listen_endpoint() const {
  return impl_->listen_endpoint();
}
PeerStats Transport::peer_stats(NodeId id) const {
  return impl_->peer_stats(id);
}
TransportStats Transport::stats() const {
  return impl_->stats();
}

}  // namespace chorus::net
