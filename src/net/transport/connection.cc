// Transport connections (transport_impl.h): accepting and dialling, the
// handshake, the read loop, and the coalesced socket writes.
#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "net/transport/envelope.h"
#include "net/transport/transport_impl.h"

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

auto redirect(std::error_code& ec) {
  return asio::redirect_error(asio::use_awaitable, ec);
}

std::string endpoint_text(const tcp::endpoint& ep) {
  return Endpoint{ep.address().to_string(), ep.port()}.to_string();
}

}  // namespace

// ---- Lifecycle ------------------------------------------------------------------

Transport::Impl::ConnPtr Transport::Impl::new_connection(tcp::socket s, bool outbound) {
  auto conn = std::make_shared<Connection>(std::move(s), outbound, next_conn_id_++,
                                           cfg_.max_snapshot_bytes);
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
    // Frames not yet on the wire are lost with the connection (engines retransmit).
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
  conn->reassembler.abandon();
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
  const tcp::endpoint remote(asio::ip::make_address(p.endpoint.host, ec), p.endpoint.port);
  if (ec) {
    log_dial_failure(p, fmt::format("bad address '{}'", p.endpoint.host));
    co_return false;
  }
  ConnPtr conn = new_connection(tcp::socket(io_), /*outbound=*/true);
  conn->peer = p.id;
  conn->remote = p.endpoint.to_string();
  conn->socket.open(remote.protocol(), ec);
  // Bound to our own listen IP, so rules between node addresses partition us.
  const auto own = asio::ip::make_address(cfg_.listen.host);
  if (!ec && !own.is_unspecified()) conn->socket.bind(tcp::endpoint(own, 0), ec);
  if (ec) {
    close(conn, ec.message());
    log_dial_failure(
        p, fmt::format("cannot bind an outgoing socket to {}: {}", cfg_.listen.host, ec.message()));
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
  Status st = co_await write_raw(conn, encode_frame(my_handshake(*conn)));
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
  co_return co_await exchange_replies(conn, theirs.protocol_version());
}

// Sends our acceptance of the other side's handshake and reads its verdict on ours.
awaitable<bool> Transport::Impl::exchange_replies(ConnPtr conn, uint32_t their_version) {
  wirepb::HandshakeReply reply;
  reply.set_accepted(true);
  reply.set_protocol_version(std::min(their_version, kProtocolVersion));
  Status st = co_await write_raw(conn, encode_frame(reply));
  std::string payload;
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
  const Status st = co_await write_raw(conn, encode_frame(reply));
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

// ---- Reading ----------------------------------------------------------------------

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

// ---- Writing ----------------------------------------------------------------------

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
  Connection& c = *conn;
  CHORUS_ASSERT(c.inflight.empty());
  c.buffers.clear();
  c.inflight_messages = take_queued_frames(c);
  c.inflight_chunks = 0;
  c.inflight_snapshot_done = false;
  if (c.outgoing) take_snapshot_chunk(c, peers_.at(c.peer));
  if (c.inflight.empty()) return;
  for (const std::string& f : c.inflight) c.buffers.emplace_back(f.data(), f.size());
  c.writing = true;
  asio::async_write(c.socket, c.buffers,
                    [self = shared_from_this(), conn](std::error_code ec, size_t n) {
                      self->on_written(conn, ec, n);
                    });
}

// Moves queued frames into the next write, within its limits; returns how many.
size_t Transport::Impl::take_queued_frames(Connection& c) {
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
  return c.inflight.size();
}

// Adds the next chunk of the outgoing snapshot to the next write.
void Transport::Impl::take_snapshot_chunk(Connection& c, Peer& p) {
  OutgoingTransfer& o = *c.outgoing;
  Result<wirepb::PeerMessage> chunk = o.next_chunk();
  if (!chunk.is_ok()) {
    log_->error("transport[{}]: snapshot {}/{} of group {} to node {} abandoned: {}",
                cfg_.self.value(), o.meta().index.value(), o.meta().term.value(), o.group().value(),
                p.id.value(), chunk.status().to_string());
    c.outgoing.reset();
    drop(p, 1);
    return;
  }
  c.inflight.push_back(encode_frame(*chunk));
  c.inflight_chunks = 1;
  if (o.done()) {
    c.outgoing.reset();
    ++c.inflight_messages;
    c.inflight_snapshot_done = true;
  }
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

}  // namespace chorus::net
