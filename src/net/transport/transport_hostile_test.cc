// Transport tests on real sockets (transport_harness.h): handshakes that are
// refused and input a correct peer never sends. Each closes one connection
// with a logged reason; the transport keeps running.
#include "net/transport/transport.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "chorus/wire.pb.h"
#include "net/codec/raft_codec.h"
#include "net/codec/testing.h"
#include "net/transport/frame.h"
#include "net/transport/transport_harness.h"

namespace chorus::net {
namespace {

using namespace std::chrono_literals;
using namespace transport_testing;
using testing_messages::every_kind;
using testing_messages::expect_same;

// ---- Handshake ------------------------------------------------------------------

TEST(TransportTest, WrongClusterIdIsRefusedAndLoggedAndBothKeepRunning) {
  Harness h;
  h.add_node(1, nullptr, "cluster-a");
  h.add_node(2, nullptr, "cluster-b");
  h.introduce(2);
  ASSERT_TRUE(h.wait([&] {
    return h[1].t->stats().handshakes_refused > 0 && h[2].t->stats().handshakes_refused > 0;
  }));
  run_for(h.io, 300ms);  // several retries
  EXPECT_FALSE(h.connected(1, 2));
  EXPECT_NE(h[2].log().find("cluster id 'cluster-a' is not ours ('cluster-b')"), std::string::npos)
      << h[2].log();
  EXPECT_NE(h[1].log().find("cluster id 'cluster-b' is not ours ('cluster-a')"), std::string::npos)
      << h[1].log();
  // Logged once, not once per retry.
  EXPECT_GE(h[1].t->stats().handshakes_refused, 2u);
  const std::string log2 = h[2].log();
  EXPECT_EQ(log2.find("refused connection"), log2.rfind("refused connection")) << log2;

  // Both still serve their own clusters.
  h.add_node(3, nullptr, "cluster-a");
  h.add_node(4, nullptr, "cluster-b");
  h.introduce(3);
  h.introduce(4);
  ASSERT_TRUE(h.wait([&] {
    return h.connected(1, 3) && h.connected(3, 1) && h.connected(2, 4) && h.connected(4, 2);
  }));
  h[3].send(heartbeat(3, 1, 5));
  h[4].send(heartbeat(4, 2, 6));
  ASSERT_TRUE(h.wait([&] { return h[1].count("Heartbeat") == 1 && h[2].count("Heartbeat") == 1; }));
  EXPECT_FALSE(h.connected(1, 2));
  EXPECT_FALSE(h.connected(3, 4));
}

struct RefusalCase {
  const char* name;
  std::function<void(wirepb::Handshake&)> mutate;
  const char* reason;
};

TEST(TransportTest, BadHandshakesAreRefusedWithAReason) {
  Harness h;
  h.start(1, [](TransportConfig& c) {
    c.self = NodeId(2);
    c.peers = {{NodeId(1), Endpoint{ip_of(1), 1}}, {NodeId(3), Endpoint{ip_of(3), 1}}};
  });
  const std::vector<RefusalCase> cases = {
      {"bad magic", [](auto& m) { m.set_magic(0x12345678); }, "not a Chorus peer"},
      {"wrong cluster", [](auto& m) { m.set_cluster_id("other"); }, "cluster id 'other'"},
      {"hostile cluster id", [](auto& m) { m.set_cluster_id(std::string("a\nb\xff", 4)); },
       "cluster id 'a?b?' is not ours"},
      {"unknown node", [](auto& m) { m.set_node_id(9); }, "unknown node id 9"},
      {"own id", [](auto& m) { m.set_node_id(2); }, "is our own"},
      {"higher id dials", [](auto& m) { m.set_node_id(3); }, "the lower id dials"},
      {"dialled someone else", [](auto& m) { m.set_peer_node_id(5); }, "dialled node 5"},
      {"too new",
       [](auto& m) {
         m.set_protocol_version(kProtocolVersion + 5);
         m.set_min_protocol_version(kProtocolVersion + 1);
       },
       "no common protocol version"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawPeer raw(h[1].at);
    wirepb::Handshake hs = handshake_as(1, 2);
    c.mutate(hs);
    auto reply = raw_handshake(h, raw, hs);
    ASSERT_TRUE(reply.has_value());
    EXPECT_FALSE(reply->accepted());
    EXPECT_NE(reply->reason().find(c.reason), std::string::npos) << reply->reason();
    EXPECT_TRUE(h.wait([&] { return raw.poll_closed(); }));
  }
  EXPECT_EQ(h[1].t->stats().handshakes_refused, cases.size());
  // A good one is still accepted.
  RawPeer raw(h[1].at);
  auto reply = raw_handshake(h, raw, handshake_as(1, 2));
  ASSERT_TRUE(reply.has_value());
  EXPECT_TRUE(reply->accepted());
  EXPECT_TRUE(h.wait([&] { return h[1].t->peer_stats(NodeId(1)).connected; }));
}

TEST(TransportTest, SilentConnectionTimesOutAndPendingHandshakesAreBounded) {
  Harness h;
  h.start(1, [](TransportConfig& c) {
    c.handshake_timeout_ms = 200;
    c.max_pending_handshakes = 2;
  });
  RawPeer a(h[1].at), b(h[1].at);
  ASSERT_TRUE(h.wait([&] { return h[1].t->stats().connections_accepted == 2; }));
  RawPeer c(h[1].at);  // over the limit: closed at once
  ASSERT_TRUE(h.wait([&] { return c.poll_closed(); }, 1000ms));
  EXPECT_EQ(h[1].t->stats().connections_over_limit, 1u);
  ASSERT_TRUE(h.wait(
      [&] { return a.poll_closed() && b.poll_closed() && h[1].t->stats().handshakes_failed == 2; },
      3000ms));
  // Logged once for the address, not once per connection.
  const std::string log = h[1].log();
  EXPECT_NE(log.find("failed: timed out"), std::string::npos) << log;
  EXPECT_EQ(log.find("failed: timed out"), log.rfind("failed: timed out")) << log;
}

// ---- Hostile input --------------------------------------------------------------

TEST(TransportTest, OversizeFrameBeforeTheHandshakeClosesOnlyThatConnection) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  RawPeer raw(h[2].at);
  std::string header(kFrameHeaderBytes, '\0');
  const uint32_t huge = 0xfffffff0u;
  std::memcpy(header.data(), &huge, 4);
  raw.send_bytes(header);
  ASSERT_TRUE(h.wait([&] { return raw.poll_closed(); }));
  EXPECT_EQ(h[2].t->stats().handshakes_failed, 1u);
  EXPECT_NE(h[2].log().find("exceeds the limit"), std::string::npos) << h[2].log();
  // The real peers never noticed.
  h[1].send(heartbeat(1, 2, 1));
  ASSERT_TRUE(h.wait([&] { return h[2].count("Heartbeat") == 1; }));
  EXPECT_EQ(h[2].t->peer_stats(NodeId(1)).disconnects, 0u);
}

struct HostileCase {
  const char* name;
  std::function<std::string()> bytes;  // sent right after a valid handshake
  const char* log;
};

std::string framed(const wirepb::PeerMessage& pm) {
  std::string f;
  append_frame(pm.SerializeAsString(), &f);
  return f;
}

wirepb::PeerMessage peer_message(uint64_t from, uint64_t to) {
  wirepb::PeerMessage pm = encode_raft_message(heartbeat(from, to, 1), GroupId(0)).message;
  pm.set_from(from);  // as the transport would: send() stamps from and to
  pm.set_to(to);
  return pm;
}

// A snapshot chunk from node 1 to node 2 that carries `header` (if any).
wirepb::PeerMessage chunk_message(uint64_t offset, std::optional<wirepb::PeerMessage> header) {
  wirepb::PeerMessage pm;
  pm.set_from(1);
  pm.set_to(2);
  auto* c = pm.mutable_snapshot_chunk();
  c->set_transfer_id(4);
  c->set_offset(offset);
  c->set_data("x");
  if (header) *c->mutable_header() = std::move(*header);
  return pm;
}

std::vector<HostileCase> hostile_cases() {
  return {
      {"oversize frame",
       [] {
         std::string header(kFrameHeaderBytes, '\0');
         const uint32_t huge = kDefaultMaxFrameBytes + 1;
         std::memcpy(header.data(), &huge, 4);
         return header;
       },
       "exceeds the limit"},
      {"checksum mismatch",
       [] {
         std::string f = framed(peer_message(1, 2));
         f.back() ^= 1;
         return f;
       },
       "checksum mismatch"},
      {"not a protobuf",
       [] {
         std::string f;
         append_frame(std::string("\xff\xff\xff\xff\xff", 5), &f);
         return f;
       },
       "unparseable"},
      {"forged sender", [] { return framed(peer_message(3, 2)); },
       "message 3->2 on the connection"},
      {"not for us", [] { return framed(peer_message(1, 3)); }, "message 1->3 on the connection"},
      {"empty body",
       [] {
         auto pm = peer_message(1, 2);
         pm.clear_raft();
         return framed(pm);
       },
       "without a body"},
      {"body of a newer version",
       [] {
         auto pm = peer_message(1, 2);
         pm.clear_raft();
         std::string f;
         // Field 12 (the slot kept for ZAB), an empty message: unknown here.
         append_frame(pm.SerializeAsString() + std::string("\x62\x00", 2), &f);
         return f;
       },
       "a body this version does not know"},
      {"invalid raft message (refused by the receiver)",
       [] {
         OutgoingMessage out = encode_raft_message(every_kind(NodeId(1), NodeId(2))[4], GroupId(0));
         out.message.mutable_raft()->mutable_append_entries()->mutable_entries(1)->set_index(99);
         return framed(out.message);
       },
       "the receiver refused a message: bad peer message: AppendEntries entry index 99"},
      {"chunk out of order", [] { return framed(chunk_message(100, std::nullopt)); },
       "transfer 4 at offset 100 out of order"},
      {"first chunk without its header", [] { return framed(chunk_message(0, std::nullopt)); },
       "a chunk at offset 0 without a header"},
      {"later chunk with a header", [] { return framed(chunk_message(100, peer_message(1, 2))); },
       "a chunk at offset 100 with a header"},
      {"chunk whose header is a chunk",
       [] { return framed(chunk_message(0, chunk_message(0, peer_message(1, 2)))); },
       "its header holds snapshot chunk"},
      {"chunk whose header names another sender",
       [] { return framed(chunk_message(0, peer_message(3, 2))); }, "header of group 0 3->2"},
  };
}

TEST(TransportTest, BadEnvelopeClosesTheConnectionWithAReasonAndTheTransportKeepsRunning) {
  Harness h;
  h.start(1, [](TransportConfig& c) {
    c.self = NodeId(2);
    c.peers = {{NodeId(1), Endpoint{ip_of(1), 1}}};
  });
  const std::vector<HostileCase> cases = hostile_cases();
  uint64_t errors = 0;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    RawPeer raw(h[1].at);
    auto reply = raw_handshake(h, raw, handshake_as(1, 2));
    ASSERT_TRUE(reply.has_value());
    ASSERT_TRUE(reply->accepted());
    ASSERT_TRUE(h.wait([&] { return h[1].t->peer_stats(NodeId(1)).connected; }));
    raw.send_frame(peer_message(1, 2));  // one good message first
    raw.send_bytes(c.bytes());
    ASSERT_TRUE(h.wait([&] { return raw.poll_closed(); }));
    EXPECT_EQ(h[1].t->stats().protocol_errors, ++errors);
    EXPECT_NE(h[1].log().find("closing connection to node 1 (127.0.0.1:"), std::string::npos);
    EXPECT_NE(h[1].log().find(c.log), std::string::npos) << h[1].log();
    EXPECT_FALSE(h[1].t->peer_stats(NodeId(1)).connected);
  }
  EXPECT_EQ(h[1].count("Heartbeat"), cases.size());
  // Still running: a well-behaved connection is accepted and delivers.
  RawPeer raw(h[1].at);
  auto reply = raw_handshake(h, raw, handshake_as(1, 2));
  ASSERT_TRUE(reply.has_value() && reply->accepted());
  raw.send_frame(peer_message(1, 2));
  ASSERT_TRUE(h.wait([&] { return h[1].count("Heartbeat") == cases.size() + 1; }));
  EXPECT_FALSE(raw.poll_closed());
}

}  // namespace
}  // namespace chorus::net
