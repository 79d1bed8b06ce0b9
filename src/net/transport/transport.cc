// The Transport's core (transport.h, transport_impl.h): setup and teardown,
// sending, receiving, stats and the config. Connections — accepting,
// dialling, the handshake, reading and writing sockets — are in
// connection.cc; snapshot chunking and reassembly in snapshot_stream.cc.
#include "net/transport/transport.h"

#include <algorithm>
#include <random>
#include <utility>

#include <fmt/format.h>

#include "net/transport/envelope.h"
#include "net/transport/transport_impl.h"

namespace chorus::net {

using asio::ip::tcp;

std::string printable(std::string_view text) {
  std::string out;
  for (char ch : text.substr(0, kMaxPeerTextBytes)) {
    out += (ch >= 0x20 && ch < 0x7f) ? ch : '?';
  }
  if (text.size() > kMaxPeerTextBytes) out += "...";
  return out;
}

Transport::Impl::Impl(asio::io_context& io, TransportConfig cfg)
    : io_(io),
      cfg_(std::move(cfg)),
      log_(cfg_.logger ? cfg_.logger : spdlog::default_logger()),
      acceptor_(io),
      accept_pause_(io),
      rng_(cfg_.jitter_seed != 0 ? cfg_.jitter_seed : std::random_device{}()) {
  for (const auto& [id, ep] : cfg_.peers) add_peer(id, ep);
}

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
  const tcp::endpoint ep(asio::ip::make_address(cfg_.listen.host, ec), cfg_.listen.port);
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
  bound_ = Endpoint{cfg_.listen.host, local.port()};
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

// ---- Receiving ----------------------------------------------------------------

Status Transport::Impl::handle_frame(const ConnPtr& conn, std::string_view payload) {
  wirepb::PeerMessage m;
  if (!m.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return Status::corruption("unparseable PeerMessage");
  }
  CHORUS_RETURN_IF_ERROR(check_envelope(m, conn->peer, cfg_.self));
  Peer& p = peers_.at(conn->peer);
  if (m.has_snapshot_chunk()) return handle_chunk(*conn, p, std::move(m));
  return deliver(p, IncomingMessage{conn->peer, std::move(m), nullptr});
}

Status Transport::Impl::handle_chunk(Connection& conn, Peer& p, wirepb::PeerMessage m) {
  ++p.stats.snapshot_chunks_received;
  const GroupId group(m.group_id());
  CHORUS_ASSIGN_OR_RETURN(SnapshotReassembler::Outcome out, conn.reassembler.add(std::move(m)));
  if (out.refused) {
    // The connection stays (heartbeats matter more); the rest of the transfer is ignored.
    ++p.stats.messages_dropped;
    log_->warn(
        "transport[{}]: refusing a snapshot of group {} from node {}: over max_snapshot_bytes {}",
        cfg_.self.value(), group.value(), p.id.value(), cfg_.max_snapshot_bytes);
  }
  if (!out.complete) return Status::ok();
  ++p.stats.snapshots_received;
  return deliver(p, std::move(*out.complete));
}

Status Transport::Impl::deliver(Peer& p, IncomingMessage m) {
  CHORUS_ASSERT(m.from == p.id && m.message.from() == p.id.value());
  CHORUS_ASSERT(is_engine_body(m.message.body_case()));
  ++p.stats.messages_received;
  // A copy of the pointer: the receiver may replace itself or stop us.
  const std::shared_ptr<const Receiver> receiver = receiver_;
  if (!receiver || stopped_) return Status::ok();
  Status st = (*receiver)(std::move(m));
  if (st.is_ok()) return st;
  return Status(st.code(), "the receiver refused a message: " + st.message());
}

// ---- Sending --------------------------------------------------------------------

void Transport::Impl::send(OutgoingMessage m) {
  CHORUS_ASSERT_MSG(is_engine_body(m.message.body_case()), "send() needs an engine body");
  if (!started_ || stopped_) return;
  auto it = peers_.find(m.to);
  if (it == peers_.end()) return;  // unknown, or self (never in peers_)
  Peer& p = it->second;
  if (!p.conn) {
    drop(p, 1);  // not connected: engines retransmit
    return;
  }
  m.message.set_from(cfg_.self.value());
  m.message.set_to(m.to.value());
  if (m.snapshot) {
    start_snapshot(p, std::move(m));
    return;
  }
  const size_t bytes = m.message.ByteSizeLong();
  if (bytes > cfg_.max_frame_bytes) {
    drop_too_large(p, m.message, bytes, cfg_.max_frame_bytes);
    return;
  }
  enqueue(p, encode_frame(m.message));
}

void Transport::Impl::drop_too_large(Peer& p, const wirepb::PeerMessage& m, size_t bytes,
                                     size_t limit) {
  drop(p, 1);
  if (p.too_large_logged) return;
  p.too_large_logged = true;
  log_->warn(
      "transport[{}]: dropping a {} message of group {} to node {}: {} bytes exceed {} "
      "(logged once)",
      cfg_.self.value(), body_name(m.body_case()), m.group_id(), p.id.value(), bytes, limit);
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

void Transport::Impl::start_snapshot(Peer& p, OutgoingMessage m) {
  Connection& c = *p.conn;
  const core::SnapshotMeta meta = m.snapshot->meta;
  if (c.outgoing && c.outgoing->sends(m.message, meta)) {
    return;  // the engine retried a transfer still under way: let it finish
  }
  if (c.outgoing) drop(p, 1);  // superseded by a newer snapshot
  c.outgoing.reset();
  const size_t header_bytes = m.message.ByteSizeLong();
  if (header_bytes > kMaxSnapshotHeaderBytes) {
    drop_too_large(p, m.message, header_bytes, kMaxSnapshotHeaderBytes);
    return;
  }
  Result<std::unique_ptr<SnapshotSource>> source = open_snapshot(m);
  if (!source.is_ok()) {
    drop(p, 1);
    log_->error("transport[{}]: cannot send snapshot {}/{} of group {} to node {}: {}",
                cfg_.self.value(), meta.index.value(), meta.term.value(), m.message.group_id(),
                p.id.value(), source.status().to_string());
    return;
  }
  c.outgoing.emplace(c.next_transfer_id++, std::move(m.message), *m.snapshot,
                     std::move(source).value(), cfg_.snapshot_chunk_bytes);
  const std::optional<uint64_t> total = c.outgoing->total_bytes();
  log_->info("transport[{}]: streaming snapshot {}/{} of group {} ({} bytes) to node {}",
             cfg_.self.value(), meta.index.value(), meta.term.value(), c.outgoing->group().value(),
             total ? fmt::format("{}", *total) : std::string("?"), p.id.value());
  schedule_flush(p.conn);
}

// Where the bytes of m's snapshot come from: nullptr when they are in memory,
// otherwise a source from config.snapshot_opener.
Result<std::unique_ptr<SnapshotSource>> Transport::Impl::open_snapshot(const OutgoingMessage& m) {
  if (m.snapshot->data) return std::unique_ptr<SnapshotSource>();
  if (!cfg_.snapshot_opener) return Status::not_found("no snapshot_opener configured");
  Result<std::unique_ptr<SnapshotSource>> source =
      cfg_.snapshot_opener(GroupId(m.message.group_id()), m.snapshot->meta);
  if (source.is_ok() && !source.value()) return Status::not_found("the opener returned no source");
  return source;
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

// ---- Config and the public wrapper ----------------------------------------------

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
  if (!ip_ok(listen.host)) {
    return bad(fmt::format("listen host '{}' is not a numeric IP", listen.host));
  }
  for (const auto& [id, ep] : peers) {
    if (id == kNoNode) return bad("peer id 0");
    if (!ip_ok(ep.host)) {
      return bad(fmt::format("peer {} host '{}' is not a numeric IP", id.value(), ep.host));
    }
  }
  if (max_frame_bytes < kHandshakeMaxFrameBytes) return bad("max_frame_bytes below 64 KiB");
  if (snapshot_chunk_bytes == 0 || snapshot_chunk_bytes > max_frame_bytes - kChunkEnvelopeBytes) {
    return bad(fmt::format("snapshot_chunk_bytes must be in [1, max_frame_bytes - {}]",
                           kChunkEnvelopeBytes));
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
void Transport::send(OutgoingMessage m) {
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
