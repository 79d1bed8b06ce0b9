#include "net/transport/envelope.h"

#include <fmt/format.h>

#include <limits>

#include "net/transport/frame.h"

namespace chorus::net {

bool is_engine_body(wirepb::PeerMessage::BodyCase body) {
  switch (body) {
    case wirepb::PeerMessage::kRaft:
    case wirepb::PeerMessage::kPaxos:
    case wirepb::PeerMessage::kPrimary:
    case wirepb::PeerMessage::kManager:
    case wirepb::PeerMessage::kProgress:
      return true;
    case wirepb::PeerMessage::kSnapshotChunk:
    case wirepb::PeerMessage::BODY_NOT_SET:
      return false;
  }
  return false;
}

std::string_view body_name(wirepb::PeerMessage::BodyCase body) {
  switch (body) {
    case wirepb::PeerMessage::kRaft:
      return "raft";
    case wirepb::PeerMessage::kPaxos:
      return "paxos";
    case wirepb::PeerMessage::kPrimary:
      return "primary";
    case wirepb::PeerMessage::kManager:
      return "manager";
    case wirepb::PeerMessage::kProgress:
      return "progress";
    case wirepb::PeerMessage::kSnapshotChunk:
      return "snapshot chunk";
    case wirepb::PeerMessage::BODY_NOT_SET:
      return "no body";
  }
  return "unknown body";
}

Status check_envelope(const wirepb::PeerMessage& m, NodeId peer, NodeId self) {
  if (m.from() != peer.value() || m.to() != self.value()) {
    return Status::corruption(fmt::format("message {}->{} on the connection between {} and {}",
                                          m.from(), m.to(), peer.value(), self.value()));
  }
  if (!is_engine_body(m.body_case()) && !m.has_snapshot_chunk()) {
    return Status::corruption("message without a body, or with a body this version does not know");
  }
  return Status::ok();
}

std::string encode_frame(const google::protobuf::MessageLite& m) {
  const size_t size = m.ByteSizeLong();
  CHORUS_ASSERT(size <= std::numeric_limits<uint32_t>::max());
  std::string frame(kFrameHeaderBytes + size, '\0');
  m.SerializeWithCachedSizesToArray(reinterpret_cast<uint8_t*>(frame.data() + kFrameHeaderBytes));
  write_frame_header(std::string_view(frame).substr(kFrameHeaderBytes), frame.data());
  return frame;
}

}  // namespace chorus::net
