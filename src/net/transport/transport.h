// Transport: the TCP connections between the nodes of a cluster, carrying
// Raft messages as framed protobuf (docs/formats/wire.md).
//
// What it is. One Transport per node. It listens on the node's peer address
// and keeps exactly ONE TCP connection per pair of nodes: the node with the
// lower id dials the higher one, and the accepting side learns who dialled
// from the handshake. Outgoing connections are bound to this node's own
// listen IP before connecting, so when every node lives on its own loopback
// address (127.0.0.11, 127.0.0.12, ...) firewall rules between addresses
// partition the cluster.
//
// Handshake. Each side first sends a Handshake (magic, protocol versions,
// cluster id, node id, whom it believes it reached), then a HandshakeReply
// with its verdict on the other's. A wrong cluster id, an unknown node id, a
// node dialling the wrong way, a wrong peer at a configured address or no
// common protocol version is refused: one log line with the reason on each
// side, and the connection is closed. Nothing else happens; the transport
// keeps running.
//
// Sending. send() never blocks and never fails: the message is encoded into
// a frame and queued for its peer. Frames are written coalesced — up to
// max_messages_per_write frames (max_write_bytes) in one gathered socket
// write — and pipelined (no waiting for anything from the peer). If the peer
// is not connected the message is dropped (Raft retransmits); if its queue
// exceeds max_queued_bytes_per_peer the oldest frames are dropped. Every drop
// is counted in the peer's stats. A queue belongs to one connection: frames
// still queued when it breaks are dropped.
//
// Snapshots. An InstallSnapshot larger than snapshot_chunk_bytes (or whose
// bytes are null: they come from config.snapshot_opener, e.g. the snapshot
// file) is streamed as SnapshotChunk frames, produced lazily one chunk per
// socket write, so heartbeats and appends interleave with a large snapshot
// instead of waiting behind it. The receiver reassembles a transfer (up to
// max_snapshot_bytes) and delivers one InstallSnapshot. Restart, not resume:
// a transfer broken by a disconnect is abandoned on both sides, and the Raft
// leader's retry sends it again from offset 0. A newer InstallSnapshot to the
// same peer replaces an unfinished transfer, unless it is the same snapshot
// (meta and term), which continues.
//
// Receiving. Frames are decoded (frame.h), parsed, converted and validated
// (raft_codec.h): `to` must be this node and `from` the handshake's peer.
// Any violation — bad frame, bad protobuf, invalid message — closes that
// connection with a logged reason. Valid messages go to the receiver
// callback, on the io_context thread, in the order the peer sent them —
// except a streamed snapshot, delivered when its last chunk arrives, after
// messages sent while it streamed (Raft tolerates reordering).
//
// Reconnecting. The dialling side retries with exponential backoff and
// jitter (reconnect_backoff_min_ms doubling up to reconnect_backoff_max_ms),
// after connect errors, handshake failures, EOF and protocol errors. Connects
// and disconnects are logged once per state change, not once per retry.
//
// Threading. Everything runs on the caller's io_context, which must be run by
// exactly one thread; every method must be called from that thread (or before
// the io_context runs). The receiver is called from that thread only.
//
// Lifetime. stop() (also done by the destructor) closes the listener and all
// connections; no callback runs after it. Pending asynchronous operations
// keep the internal state alive until the io_context has run them (or is
// destroyed), so destroying a Transport while the io_context lives is safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "core/common/types.h"
#include "core/raft/messages.h"
#include "net/transport/frame.h"

namespace asio {
class io_context;
}  // namespace asio

namespace spdlog {
class logger;
}  // namespace spdlog

namespace chorus::net {

// The newest and oldest peer protocol versions this build speaks.
inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr uint32_t kMinProtocolVersion = 1;
// Handshake.magic: the bytes "CHRW" as a little-endian fixed32.
inline constexpr uint32_t kWireMagic = 0x57524843;

// A numeric IP address and a port, e.g. 127.0.0.11:7101 or [::1]:7101.
struct Endpoint {
  std::string ip;
  uint16_t port = 0;

  // "127.0.0.11:7101", "[::1]:7101".
  std::string to_string() const;
  // Parses the form to_string() produces; the IP must be numeric.
  static Result<Endpoint> parse(std::string_view text);
  bool operator==(const Endpoint&) const = default;
};

// The bytes of a snapshot, piece by piece (e.g. a storage::SnapshotReader).
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // Replaces *chunk with the next piece (any size > 0); false at the end.
  virtual Result<bool> next(std::string* chunk) = 0;
};
// Opens the snapshot `meta` names; used for an InstallSnapshot whose
// SnapshotRef::data is null. Called on the io_context thread, and the
// source is read there too (one chunk per socket write).
using SnapshotOpener =
    std::function<Result<std::unique_ptr<SnapshotSource>>(const core::SnapshotMeta& meta)>;

struct TransportConfig {
  NodeId self;
  std::string cluster_id;  // 1..200 printable ASCII characters; peers must present the same
  // Where this node listens, and the address its outgoing connections are
  // bound to (unless it is the unspecified address 0.0.0.0 / ::). Port 0
  // picks a free port: see Transport::listen_endpoint().
  Endpoint listen;
  // Every other member of the cluster. An entry for `self` is ignored.
  std::map<NodeId, Endpoint> peers;

  // Limits. Every one is checked where input enters.
  uint32_t max_frame_bytes = kDefaultMaxFrameBytes;  // both directions, after the handshake
  size_t max_queued_bytes_per_peer = 64u << 20;      // >= max_frame_bytes
  size_t max_messages_per_write = 256;               // frames per gathered write, >= 1
  size_t max_write_bytes = 4u << 20;                 // bytes per write (one frame may exceed)
  uint32_t snapshot_chunk_bytes = 1u << 20;          // <= max_frame_bytes - 4 KiB
  uint64_t max_snapshot_bytes = 1ull << 30;  // reassembly bound (in memory) per incoming transfer
  size_t max_pending_handshakes = 64;        // inbound connections not yet identified
  uint32_t connect_timeout_ms = 1000;        // a dropped SYN must not stall a dial
  uint32_t handshake_timeout_ms = 2000;
  uint32_t reconnect_backoff_min_ms = 20;
  uint32_t reconnect_backoff_max_ms = 1000;

  // Seed for the reconnect jitter (0: from std::random_device).
  uint64_t jitter_seed = 0;
  // Supplies snapshot bytes for InstallSnapshot messages without data.
  SnapshotOpener snapshot_opener;
  // Where to log (nullptr: spdlog's default logger).
  std::shared_ptr<spdlog::logger> logger;

  Status validate() const;
};

struct PeerStats {
  NodeId id;
  bool connected = false;  // handshake completed, connection up
  // "127.0.0.11:40312": the other end of the current connection, "" if none.
  std::string remote_address;
  uint64_t bytes_sent = 0;  // socket bytes after the handshake, frame headers included
  uint64_t bytes_received = 0;
  uint64_t messages_sent = 0;      // Raft messages fully written (a streamed snapshot counts once)
  uint64_t messages_received = 0;  // Raft messages delivered to the receiver
  uint64_t messages_dropped = 0;   // not connected, queue overflow, too large, broken connection
  uint64_t writes = 0;             // gathered socket writes
  uint64_t connects = 0;           // handshakes completed
  uint64_t disconnects = 0;
  uint64_t snapshot_chunks_sent = 0;
  uint64_t snapshot_chunks_received = 0;
  uint64_t snapshots_sent = 0;      // streamed transfers completed
  uint64_t snapshots_received = 0;  // streamed transfers reassembled and delivered
  size_t queued_bytes = 0;          // now
};

struct TransportStats {
  std::vector<PeerStats> peers;  // ordered by id
  uint64_t connections_accepted = 0;
  uint64_t handshakes_refused = 0;      // we refused the other side
  uint64_t handshakes_rejected = 0;     // the other side refused us
  uint64_t handshakes_failed = 0;       // timeout, EOF or a bad frame during the handshake
  uint64_t connections_over_limit = 0;  // closed at once: too many pending handshakes
  uint64_t protocol_errors = 0;         // established connections closed for bad input
};

class Transport {
 public:
  using Receiver = std::function<void(raft::Message)>;

  // Precondition: config.validate() is OK (asserted).
  Transport(asio::io_context& io, TransportConfig config);
  ~Transport();  // stop()
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // Where delivered messages go. Set it before start(); may be changed later.
  void set_receiver(Receiver receiver);

  // Binds and listens, then starts dialling the peers with higher ids.
  // Fails (kIoError) if the listen address cannot be bound.
  Status start();

  // Closes the listener and every connection and cancels every timer. No
  // receiver call happens after stop() returns. Idempotent; final.
  void stop();

  // Queues m for m.to (see the class comment). Messages to unknown nodes,
  // to self, or sent while not started are dropped.
  void send(raft::Message m);

  // Adds a peer or changes its address. A changed address takes effect at
  // the next (re)connection.
  void set_peer(NodeId id, Endpoint endpoint);

  // The bound listen address (the real port when config.listen.port is 0).
  Endpoint listen_endpoint() const;

  PeerStats peer_stats(NodeId id) const;
  TransportStats stats() const;

  class Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace chorus::net
