// The peer transport's view of a PeerMessage (proto/chorus/wire.proto): the
// envelope only. Pure: no I/O.
//
// The transport routes and checks the envelope — who sent it, to whom, which
// kind of body — and passes group_id and the engine body through without
// reading them: engine bodies are their codecs' business (src/net/codec/),
// groups the receiver's. Adding an engine means adding its body case to
// is_engine_body() and body_name(), nothing else here.
#pragma once

#include <string>
#include <string_view>

#include "base/ids.h"
#include "base/status.h"
#include "chorus/wire.pb.h"

namespace chorus::net {

// True for the body cases a group's message holds: an engine's (raft,
// paxos, primary), the primary-backup configuration manager's (manager) or a
// node's question about one write of the group (progress). What
// Transport::send() accepts and what a snapshot's header message may hold.
bool is_engine_body(wirepb::PeerMessage::BodyCase body);

// "raft", "paxos", "primary", "manager", "progress", "snapshot chunk", "no body": for logs.
std::string_view body_name(wirepb::PeerMessage::BodyCase body);

// Checks a received envelope on the connection between this node (`self`)
// and `peer`: from == peer, to == self, and a body this version knows (an
// engine body or a snapshot chunk; a body from a newer version parses as
// "not set"). kCorruption naming what is wrong otherwise.
Status check_envelope(const wirepb::PeerMessage& m, NodeId peer, NodeId self);

// The frame (frame.h) holding m serialized.
// Precondition: m.ByteSizeLong() <= UINT32_MAX.
std::string encode_frame(const google::protobuf::MessageLite& m);

}  // namespace chorus::net
