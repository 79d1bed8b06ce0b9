// What the peer transport (transport.h) carries, as an engine's codec sees
// it: a wire envelope (PeerMessage, proto/chorus/wire.proto) holding one
// engine's message, and the snapshot bytes that travel with it, if any.
//
// Who fills what:
//  - the engine's codec (e.g. src/net/codec/raft_codec.h) fills group_id and
//    one engine body of `message` (e.g. `raft`), and `snapshot` when the
//    message stands for a snapshot (Raft's InstallSnapshot);
//  - the transport sets message.from (itself) and message.to (= `to`), and
//    streams the snapshot's bytes as SnapshotChunk frames behind it;
//  - the receiver gets `message` as sent (group_id, from, to, body) with the
//    reassembled bytes in `snapshot_data`.
//
// Header-only on purpose: codecs use these types without linking the
// transport (and Asio).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/ids.h"
#include "chorus/wire.pb.h"
#include "core/common/types.h"

namespace chorus::net {

struct OutgoingMessage {
  NodeId to;
  // group_id and an engine body (never a snapshot_chunk); from and to are
  // set by the transport.
  wirepb::PeerMessage message;
  // When set, the snapshot travels with the message: snapshot->data, or when
  // that is null, the bytes TransportConfig::snapshot_opener returns for
  // (message.group_id, snapshot->meta).
  std::optional<core::SnapshotRef> snapshot;
};

struct IncomingMessage {
  NodeId from;  // == message.from(): the node the connection's handshake identified
  // group_id, from, to (this node) and an engine body, as the sender passed
  // them; nothing inside the body is checked yet (that is the codec's job).
  wirepb::PeerMessage message;
  // Non-null exactly when the sender attached a snapshot to the message.
  std::shared_ptr<const std::string> snapshot_data;
};

}  // namespace chorus::net
