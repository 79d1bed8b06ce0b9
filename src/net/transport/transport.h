// Transport: the TCP connections between the nodes of a cluster, carrying
// the messages of every replication group and every engine (Raft today) as
// framed protobuf envelopes (docs/formats/wire.md).
//
// What it is. One Transport per node. It listens on the node's peer address
// and keeps exactly ONE TCP connection per pair of nodes, shared by all the
// groups the two nodes have in common: the node with the lower id dials the
// higher one, and the accepting side learns who dialled from the handshake.
// Outgoing connections are bound to this node's own listen IP before
// connecting, so when every node lives on its own loopback address
// (127.0.0.11, 127.0.0.12, ...) firewall rules between addresses partition
// the cluster.
//
// What it knows. The envelope only (envelope.h, peer_message.h): group_id,
// from, to and which kind of body. Engine bodies are produced and checked by
// each engine's codec (src/net/codec/), and groups are the receiver's to
// route; the transport passes both through untouched.
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
// is not connected the message is dropped (engines retransmit); if its queue
// exceeds max_queued_bytes_per_peer the oldest frames are dropped. Every drop
// is counted in the peer's stats. A queue belongs to one connection: frames
// still queued when it breaks are dropped.
//
// Snapshots. A message with a snapshot attached (OutgoingMessage::snapshot)
// is always streamed as SnapshotChunk frames (snapshot_stream.h), the first
// carrying the message itself: a small snapshot is one chunk, a large one
// many, so there is one path. The bytes come from the SnapshotRef or, when
// it has none, from config.snapshot_opener (e.g. the snapshot file). Chunks
// are produced lazily, one per socket write, so other messages interleave
// with a large snapshot instead of waiting behind it. The receiver
// reassembles a transfer (up to max_snapshot_bytes) and delivers the message
// with its bytes. Restart, not resume: a transfer broken by a disconnect is
// abandoned on both sides, and the engine's retry sends it again from offset
// 0. A newer snapshot to the same peer replaces an unfinished transfer,
// unless it is the same one (byte-equal message, same meta), which continues.
//
// Receiving. Frames are decoded (frame.h) and parsed, and the envelope is
// checked: `from` must be the handshake's peer, `to` this node, the body one
// this version knows, a snapshot chunk must follow the chunk rules. Any
// violation — bad frame, bad protobuf, bad envelope, or a message the
// receiver refuses — closes that connection with a logged reason. Messages
// go to the receiver on the io_context thread, in the order the peer sent
// them — except a snapshot, delivered when its last chunk arrives, after
// messages sent while it streamed (engines tolerate reordering).
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

#include "base/endpoint.h"
#include "base/ids.h"
#include "base/status.h"
#include "net/transport/frame.h"
#include "net/transport/peer_message.h"
#include "net/transport/snapshot_stream.h"

namespace asio {
class io_context;
}  // namespace asio

namespace spdlog {
class logger;
}  // namespace spdlog

namespace chorus::net {

// The newest and oldest peer protocol versions this build speaks. Version 2
// is the engine-agnostic envelope; version 3 adds progress queries
// (PeerMessage.progress); version 4 the Multi-Paxos body (PeerMessage.paxos)
// and the primary-backup refusal REFUSAL_LOG_ENDS. An older node would
// answer those by closing the connection (or, sending the old refusal for
// both meanings, bring back the seed-4344 resend storm), so the handshake
// refuses it instead: a cluster does not mix versions (docs/formats/wire.md,
// "Versions").
inline constexpr uint32_t kProtocolVersion = 4;
inline constexpr uint32_t kMinProtocolVersion = 4;
// Handshake.magic: the bytes "CHRW" as a little-endian fixed32.
inline constexpr uint32_t kWireMagic = 0x57524843;

struct TransportConfig {
  NodeId self;
  std::string cluster_id;  // 1..200 printable ASCII characters; peers must present the same
  // Where this node listens, and the address its outgoing connections are
  // bound to (unless it is the unspecified address 0.0.0.0 / ::). The host
  // must be a numeric IP: the transport binds and dials without a resolver.
  // Port 0 picks a free port: see Transport::listen_endpoint().
  Endpoint listen;
  // Every other member of the cluster, at numeric IPs. An entry for `self`
  // is ignored.
  std::map<NodeId, Endpoint> peers;

  // Limits. Every one is checked where input enters.
  uint32_t max_frame_bytes = kDefaultMaxFrameBytes;  // both directions, after the handshake
  size_t max_queued_bytes_per_peer = 64u << 20;      // >= max_frame_bytes
  size_t max_messages_per_write = 256;               // frames per gathered write, >= 1
  size_t max_write_bytes = 4u << 20;                 // bytes per write (one frame may exceed)
  uint32_t snapshot_chunk_bytes = 1u << 20;          // <= max_frame_bytes - kChunkEnvelopeBytes
  uint64_t max_snapshot_bytes = 1ull << 30;  // reassembly bound (in memory) per incoming transfer
  size_t max_pending_handshakes = 64;        // inbound connections not yet identified
  uint32_t connect_timeout_ms = 1000;        // a dropped SYN must not stall a dial
  uint32_t handshake_timeout_ms = 2000;
  uint32_t reconnect_backoff_min_ms = 20;
  uint32_t reconnect_backoff_max_ms = 1000;

  // Seed for the reconnect jitter (0: from std::random_device).
  uint64_t jitter_seed = 0;
  // Supplies the bytes of snapshots sent without them (SnapshotRef::data null).
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
  uint64_t messages_sent = 0;      // messages fully written (one with a snapshot counts once)
  uint64_t messages_received = 0;  // messages delivered to the receiver
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
                                        // (including messages the receiver refused)
};

class Transport {
 public:
  // Takes each message that arrives. OK: taken (including a message the
  // receiver chooses to drop, e.g. for a group this node does not host). An
  // error means the peer sent what a correct peer never sends (the engine's
  // codec refused the body): the connection is closed with that reason and
  // counted in protocol_errors, as for a bad envelope.
  using Receiver = std::function<Status(IncomingMessage)>;

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

  // Sets m.message's from and to and queues it, with its snapshot if any,
  // for m.to (see the class comment). Messages to unknown nodes, to self, or
  // sent while not started are dropped.
  // Precondition (asserted): m.message has an engine body.
  void send(OutgoingMessage m);

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
