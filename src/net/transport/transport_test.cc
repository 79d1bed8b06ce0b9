// Transport tests on real sockets. Every node listens on its own loopback
// address (127.0.0.11, .12, .13 — all of 127.0.0.0/8 is loopback on Linux)
// on a port the kernel picks, every test runs its own io_context in the test
// thread, and every wait is bounded (run_until).
#include "net/transport/transport.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "chorus/wire.pb.h"
#include "net/transport/frame.h"
#include "net/transport/raft_codec.h"
#include "net/transport/testing.h"

namespace chorus::net {
namespace {

using namespace std::chrono_literals;
using testing_messages::every_kind;
using testing_messages::expect_same;

constexpr auto kWait = 10s;  // upper bound of any single wait in these tests

// Runs io until pred() holds or `limit` passes. Returns pred().
bool run_until(asio::io_context& io, const std::function<bool()>& pred,
               std::chrono::milliseconds limit = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  // One handler at a time, so pred() sees every intermediate state.
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.run_one_for(1ms);
    if (io.stopped()) io.restart();
  }
  return true;
}

void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  run_until(
      io, [] { return false; }, d);
}

std::string ip_of(int n) {
  return "127.0.0." + std::to_string(10 + n);
}

raft::Message heartbeat(uint64_t from, uint64_t to, uint64_t round) {
  return {NodeId(from), NodeId(to), Term(1), raft::Heartbeat{LogIndex(0), round}};
}

// One node: a transport, what it received, and its log lines.
struct Node {
  // Declared before the transport, which logs into it until it is destroyed.
  std::shared_ptr<std::ostringstream> log_text = std::make_shared<std::ostringstream>();
  std::unique_ptr<Transport> t;
  std::vector<raft::Message> got;
  NodeId id;
  Endpoint at;

  size_t count(std::string_view kind) const {
    size_t n = 0;
    for (const auto& m : got) n += raft::message_name(m.body) == kind;
    return n;
  }
  std::string log() const { return log_text->str(); }
};

// A few nodes on one io_context.
class Harness {
 public:
  // CHORUS_TRANSPORT_TEST_LOGS=1 prints every node's log lines.
  ~Harness() {
    if (std::getenv("CHORUS_TRANSPORT_TEST_LOGS") == nullptr) return;
    for (auto& [i, node] : nodes_) std::cerr << node.log();
  }

  // Node ids 1..n on 127.0.0.11.. with kernel-chosen ports, all peers of each other.
  void start(int n, std::function<void(TransportConfig&)> tweak = nullptr,
             std::string cluster = "test-cluster") {
    for (int i = 1; i <= n; ++i) add_node(i, tweak, cluster);
    for (int i = 1; i <= n; ++i) introduce(i);
  }

  Node& add_node(int i, const std::function<void(TransportConfig&)>& tweak,
                 const std::string& cluster, uint16_t port = 0) {
    Node& node = nodes_[i];
    node.id = NodeId(i);
    node.got.clear();
    TransportConfig cfg;
    cfg.self = node.id;
    cfg.cluster_id = cluster;
    cfg.listen = Endpoint{ip_of(i), port};
    cfg.reconnect_backoff_min_ms = 10;
    cfg.reconnect_backoff_max_ms = 200;
    cfg.jitter_seed = static_cast<uint64_t>(i);
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*node.log_text);
    cfg.logger = std::make_shared<spdlog::logger>("node" + std::to_string(i), sink);
    if (tweak) tweak(cfg);
    node.t = std::make_unique<Transport>(io, cfg);
    node.t->set_receiver([&node](raft::Message m) { node.got.push_back(std::move(m)); });
    const Status st = node.t->start();
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    node.at = node.t->listen_endpoint();
    return node;
  }

  // Tells node i about every other node and the others about node i.
  void introduce(int i) {
    for (auto& [j, other] : nodes_) {
      if (j == i || !other.t) continue;
      nodes_[i].t->set_peer(other.id, other.at);
      other.t->set_peer(nodes_[i].id, nodes_[i].at);
    }
  }

  Node& operator[](int i) { return nodes_.at(i); }

  bool connected(int a, int b) { return nodes_.at(a).t->peer_stats(NodeId(b)).connected; }
  bool all_connected() {
    for (auto& [i, a] : nodes_) {
      for (auto& [j, b] : nodes_) {
        if (i != j && a.t && b.t && !connected(i, j)) return false;
      }
    }
    return true;
  }
  bool wait(const std::function<bool()>& pred, std::chrono::milliseconds limit = kWait) {
    return run_until(io, pred, limit);
  }

  asio::io_context io;

 private:
  std::map<int, Node> nodes_;
};

// A hand-made peer on a plain POSIX socket, for what a real transport never
// sends. Non-blocking reads are polled from run_until predicates, so the test
// stays single-threaded.
class RawPeer {
 public:
  explicit RawPeer(const Endpoint& to, const std::string& from_ip = "127.0.0.1") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    ::inet_pton(AF_INET, from_ip.c_str(), &local.sin_addr);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local), 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(to.port);
    ::inet_pton(AF_INET, to.ip.c_str(), &addr.sin_addr);
    const int one = 1;  // no Nagle delay between the small writes of a test
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // The kernel completes a loopback connect from the listen backlog.
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ~RawPeer() { ::close(fd_); }

  void send_bytes(std::string_view bytes) {
    while (!bytes.empty()) {
      const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
      if (n <= 0) return;  // the other side closed: fine for these tests
      bytes.remove_prefix(static_cast<size_t>(n));
    }
  }
  void send_frame(const google::protobuf::MessageLite& m) {
    std::string f;
    append_frame(m.SerializeAsString(), &f);
    send_bytes(f);
  }
  // Reads what is available; true once the other side has closed.
  bool poll_closed() {
    char buf[65536];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n > 0) {
        decoder_.feed(std::string_view(buf, static_cast<size_t>(n)));
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) closed_ = true;
      return closed_;
    }
  }
  // The next frame received, once complete (polls the socket).
  std::optional<std::string> poll_frame() {
    poll_closed();
    auto r = decoder_.next();
    if (!r.is_ok() || !r->has_value()) return std::nullopt;
    return std::string(**r);
  }

 private:
  int fd_ = -1;
  bool closed_ = false;
  FrameDecoder decoder_{kDefaultMaxFrameBytes};
};

wirepb::Handshake handshake_as(uint64_t node, uint64_t dialled,
                               std::string cluster = "test-cluster") {
  wirepb::Handshake h;
  h.set_magic(kWireMagic);
  h.set_protocol_version(kProtocolVersion);
  h.set_min_protocol_version(kMinProtocolVersion);
  h.set_cluster_id(std::move(cluster));
  h.set_node_id(node);
  h.set_peer_node_id(dialled);
  return h;
}

// Performs a handshake as `h` with the transport at `to`; returns the reply.
std::optional<wirepb::HandshakeReply> raw_handshake(Harness& h, RawPeer& raw,
                                                    const wirepb::Handshake& mine) {
  raw.send_frame(mine);
  std::optional<std::string> theirs;
  if (!h.wait([&] { return (theirs = raw.poll_frame()).has_value(); })) return std::nullopt;
  wirepb::HandshakeReply accept;
  accept.set_accepted(true);
  accept.set_protocol_version(kProtocolVersion);
  raw.send_frame(accept);
  std::optional<std::string> reply;
  if (!h.wait([&] { return (reply = raw.poll_frame()).has_value(); })) return std::nullopt;
  wirepb::HandshakeReply r;
  if (!r.ParseFromString(*reply)) return std::nullopt;
  return r;
}

// ---- Delivery -------------------------------------------------------------------

TEST(TransportTest, ThreeNodesExchangeEveryMessageKind) {
  Harness h;
  h.start(3);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  for (int from = 1; from <= 3; ++from) {
    for (int to = 1; to <= 3; ++to) {
      if (from == to) continue;
      for (auto& m : every_kind(NodeId(from), NodeId(to))) h[from].t->send(m);
    }
  }
  const size_t per_pair = every_kind().size();
  ASSERT_TRUE(h.wait([&] {
    return h[1].got.size() == 2 * per_pair && h[2].got.size() == 2 * per_pair &&
           h[3].got.size() == 2 * per_pair;
  }));
  for (int to = 1; to <= 3; ++to) {
    for (int from = 1; from <= 3; ++from) {
      if (from == to) continue;
      // In the order sent, per sender.
      std::vector<raft::Message> from_one;
      for (auto& m : h[to].got) {
        if (m.from == NodeId(from)) from_one.push_back(m);
      }
      const auto want = every_kind(NodeId(from), NodeId(to));
      ASSERT_EQ(from_one.size(), want.size());
      for (size_t i = 0; i < want.size(); ++i) expect_same(want[i], from_one[i]);
    }
  }
  const PeerStats s = h[1].t->peer_stats(NodeId(2));
  EXPECT_EQ(s.messages_sent, per_pair);
  EXPECT_EQ(s.messages_received, per_pair);
  EXPECT_EQ(s.messages_dropped, 0u);
  EXPECT_GT(s.bytes_sent, 0u);
  EXPECT_GT(s.bytes_received, 0u);
  EXPECT_EQ(s.connects, 1u);
  EXPECT_NE(h[1].log().find("connected to node 2"), std::string::npos);
}

TEST(TransportTest, ManySendsAreCoalescedIntoFewWrites) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  constexpr int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) h[1].t->send(heartbeat(1, 2, static_cast<uint64_t>(i)));
  ASSERT_TRUE(h.wait([&] { return h[2].got.size() == kMessages; }));
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(std::get<raft::Heartbeat>(h[2].got[static_cast<size_t>(i)].body).read_round,
              static_cast<uint64_t>(i));
  }
  const PeerStats s = h[1].t->peer_stats(NodeId(2));
  EXPECT_EQ(s.messages_sent, static_cast<uint64_t>(kMessages));
  // 256 frames per write by default: 8 writes would do.
  EXPECT_LE(s.writes, 12u) << "writes: " << s.writes;
}

TEST(TransportTest, QueueOverflowDropsTheOldestAndCountsThem) {
  Harness h;
  h.start(2, [](TransportConfig& c) {
    c.max_frame_bytes = 64u << 10;
    c.snapshot_chunk_bytes = 32u << 10;
    c.max_queued_bytes_per_peer = 64u << 10;
  });
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  constexpr uint64_t kMessages = 3000;
  for (uint64_t i = 0; i < kMessages; ++i) {
    h[1].t->send({NodeId(1), NodeId(2), Term(1),
                  raft::ForwardProposals{{std::to_string(i) + std::string(1000, 'p')}}});
  }
  const PeerStats queued = h[1].t->peer_stats(NodeId(2));
  EXPECT_LE(queued.queued_bytes, 64u << 10);
  ASSERT_TRUE(h.wait([&] {
    const PeerStats s = h[1].t->peer_stats(NodeId(2));
    return s.messages_sent + s.messages_dropped == kMessages && h[2].got.size() == s.messages_sent;
  }));
  const PeerStats s = h[1].t->peer_stats(NodeId(2));
  EXPECT_GT(s.messages_dropped, 0u);
  // The newest survive: the last one sent is the last one received.
  const auto& last = std::get<raft::ForwardProposals>(h[2].got.back().body).data[0];
  EXPECT_EQ(last.substr(0, 4), std::to_string(kMessages - 1));
}

TEST(TransportTest, MessagesToAnUnconnectedPeerAreDroppedAndCounted) {
  Harness h;
  h.start(1);
  h[1].t->set_peer(NodeId(2), Endpoint{ip_of(2), 1});  // nobody listens there
  h[1].t->send(heartbeat(1, 2, 1));
  h[1].t->send(heartbeat(1, 9, 1));  // unknown node: ignored
  EXPECT_EQ(h[1].t->peer_stats(NodeId(2)).messages_dropped, 1u);
  run_for(h.io, 100ms);
  EXPECT_FALSE(h.connected(1, 2));
  // Retries are quiet: one line for the unreachable peer, however many attempts.
  const std::string log = h[1].log();
  size_t lines = 0;
  for (size_t at = log.find("unreachable"); at != std::string::npos;
       at = log.find("unreachable", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 1u) << log;
}

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
  h[3].t->send(heartbeat(3, 1, 5));
  h[4].t->send(heartbeat(4, 2, 6));
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
  h[1].t->send(heartbeat(1, 2, 1));
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
  wirepb::PeerMessage pm;
  encode_peer_message(heartbeat(from, to, 1), &pm);
  return pm;
}

TEST(TransportTest, HostileFramesAfterTheHandshakeCloseTheConnection) {
  Harness h;
  h.start(1, [](TransportConfig& c) {
    c.self = NodeId(2);
    c.peers = {{NodeId(1), Endpoint{ip_of(1), 1}}};
  });
  const std::vector<HostileCase> cases = {
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
      {"forged sender", [] { return framed(peer_message(3, 2)); }, "message 3->2"},
      {"not for us", [] { return framed(peer_message(1, 3)); }, "message 1->3"},
      {"unknown group",
       [] {
         auto pm = peer_message(1, 2);
         pm.set_group_id(7);
         return framed(pm);
       },
       "unknown group 7"},
      {"invalid raft message",
       [] {
         wirepb::PeerMessage pm;
         encode_peer_message(every_kind()[4], &pm);
         pm.mutable_append_entries()->mutable_entries(1)->set_index(99);
         return framed(pm);
       },
       "not contiguous"},
      {"empty body",
       [] {
         auto pm = peer_message(1, 2);
         pm.clear_heartbeat();
         return framed(pm);
       },
       "no body"},
      {"chunk out of order",
       [] {
         wirepb::PeerMessage pm = peer_message(1, 2);
         auto* c = pm.mutable_snapshot_chunk();
         c->set_transfer_id(4);
         c->mutable_meta()->set_index(3);
         c->mutable_meta()->set_term(1);
         c->set_offset(100);
         c->set_data("x");
         return framed(pm);
       },
       "out of order"},
  };
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
    EXPECT_NE(h[1].log().find(c.log), std::string::npos) << h[1].log();
    EXPECT_FALSE(h[1].t->peer_stats(NodeId(1)).connected);
  }
  EXPECT_EQ(h[1].count("Heartbeat"), cases.size());
}

// ---- Reconnecting ---------------------------------------------------------------

TEST(TransportTest, AcceptingPeerRestartReconnectsAndDeliveryResumes) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  h[1].t->send(heartbeat(1, 2, 1));
  ASSERT_TRUE(h.wait([&] { return h[2].got.size() == 1; }));

  const Endpoint at = h[2].at;
  h[2].t.reset();  // "crash": node 2 goes away
  ASSERT_TRUE(h.wait([&] { return !h.connected(1, 2); }));
  h[1].t->send(heartbeat(1, 2, 2));  // dropped while down
  EXPECT_GE(h[1].t->peer_stats(NodeId(2)).messages_dropped, 1u);
  run_for(h.io, 100ms);  // node 1 retries against a closed port

  h.add_node(2, nullptr, "test-cluster", at.port);
  h[2].t->set_peer(NodeId(1), h[1].at);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  h[1].t->send(heartbeat(1, 2, 3));
  h[2].t->send(heartbeat(2, 1, 4));
  ASSERT_TRUE(h.wait([&] { return h[2].got.size() == 1 && h[1].got.size() == 1; }));
  EXPECT_EQ(std::get<raft::Heartbeat>(h[2].got[0].body).read_round, 3u);
  const PeerStats s = h[1].t->peer_stats(NodeId(2));
  EXPECT_EQ(s.connects, 2u);
  EXPECT_EQ(s.disconnects, 1u);
  const std::string log = h[1].log();
  EXPECT_NE(log.find("disconnected from node 2"), std::string::npos) << log;
  // One line for the outage, not one per retry.
  EXPECT_EQ(log.find("unreachable"), log.rfind("unreachable")) << log;
}

TEST(TransportTest, DiallingPeerRestartReplacesTheOldConnection) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  const Endpoint at = h[1].at;
  h[1].t.reset();
  h.add_node(1, nullptr, "test-cluster", at.port);
  h[1].t->set_peer(NodeId(2), h[2].at);
  ASSERT_TRUE(
      h.wait([&] { return h.all_connected() && h[2].t->peer_stats(NodeId(1)).connects == 2; }));
  h[2].t->send(heartbeat(2, 1, 7));
  ASSERT_TRUE(h.wait([&] { return h[1].got.size() == 1; }));
}

// A restarted peer's new connection can arrive before the old one is seen to
// close (kill -9 under load; a peer paused by SIGSTOP). The nemesis soak found
// the replacement path logging through a pointer it had just reset.
TEST(TransportTest, NewConnectionFromAPeerReplacesAnOldOneStillOpen) {
  Harness h;
  h.start(1, [](TransportConfig& c) {
    c.self = NodeId(2);
    c.peers = {{NodeId(1), Endpoint{ip_of(1), 1}}};
  });
  RawPeer old_conn(h[1].at);
  auto first = raw_handshake(h, old_conn, handshake_as(1, 2));
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(first->accepted());
  ASSERT_TRUE(h.wait([&] { return h[1].t->peer_stats(NodeId(1)).connected; }));

  RawPeer new_conn(h[1].at);  // the old one is still open: no FIN was sent
  auto second = raw_handshake(h, new_conn, handshake_as(1, 2));
  ASSERT_TRUE(second.has_value());
  EXPECT_TRUE(second->accepted());
  EXPECT_TRUE(h.wait([&] { return old_conn.poll_closed(); }));
  EXPECT_TRUE(h.wait([&] { return h[1].t->peer_stats(NodeId(1)).connects == 2; }));
  EXPECT_TRUE(h[1].t->peer_stats(NodeId(1)).connected);
  EXPECT_FALSE(new_conn.poll_closed());
}

// ---- Snapshots ------------------------------------------------------------------

std::shared_ptr<const std::string> snapshot_bytes(size_t n, uint64_t seed) {
  auto s = std::make_shared<std::string>(n, '\0');
  uint64_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    (*s)[i] = static_cast<char>(x >> 56);
  }
  return s;
}

TEST(TransportTest, LargeSnapshotArrivesIntactInChunksWhileHeartbeatsFlow) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  const auto data = snapshot_bytes(20u << 20, 1);
  h[1].t->send({NodeId(1), NodeId(2), Term(3),
                raft::InstallSnapshot{core::SnapshotRef{{LogIndex(500), Term(2)}, data}}});
  // A heartbeat every time node 2 has received another chunk: with fair
  // interleaving each one arrives before the snapshot is complete.
  uint64_t chunks_seen = 0;
  uint64_t round = 0;
  size_t heartbeats_before_snapshot = 0;
  ASSERT_TRUE(h.wait([&] {
    const uint64_t chunks = h[2].t->peer_stats(NodeId(1)).snapshot_chunks_received;
    if (chunks != chunks_seen) {
      chunks_seen = chunks;
      h[1].t->send(heartbeat(1, 2, ++round));
    }
    if (h[2].count("InstallSnapshot") == 0) heartbeats_before_snapshot = h[2].count("Heartbeat");
    return h[2].count("InstallSnapshot") == 1;
  }));
  const auto& snap = std::get<raft::InstallSnapshot>(
      std::find_if(h[2].got.begin(), h[2].got.end(), [](const raft::Message& m) {
        return std::holds_alternative<raft::InstallSnapshot>(m.body);
      })->body);
  EXPECT_EQ(snap.snapshot.meta, (core::SnapshotMeta{LogIndex(500), Term(2)}));
  ASSERT_TRUE(snap.snapshot.data);
  EXPECT_TRUE(*snap.snapshot.data == *data);
  const PeerStats sent = h[1].t->peer_stats(NodeId(2));
  EXPECT_EQ(sent.snapshot_chunks_sent, 20u);
  EXPECT_EQ(sent.snapshots_sent, 1u);
  EXPECT_EQ(h[2].t->peer_stats(NodeId(1)).snapshots_received, 1u);
  EXPECT_GE(heartbeats_before_snapshot, 5u);
}

class PiecesSource : public SnapshotSource {
 public:
  PiecesSource(std::shared_ptr<const std::string> data, size_t piece)
      : data_(std::move(data)), piece_(piece) {}
  Result<bool> next(std::string* chunk) override {
    if (at_ == data_->size()) return false;
    const size_t n = std::min(piece_, data_->size() - at_);
    chunk->assign(*data_, at_, n);
    at_ += n;
    return true;
  }

 private:
  std::shared_ptr<const std::string> data_;
  size_t piece_;
  size_t at_ = 0;
};

TEST(TransportTest, SnapshotWithoutBytesIsStreamedFromTheOpener) {
  const auto data = snapshot_bytes((3u << 20) + 12345, 2);
  int opened = 0;
  Harness h;
  h.start(2, [&](TransportConfig& c) {
    c.snapshot_chunk_bytes = 256u << 10;
    c.snapshot_opener =
        [&](const core::SnapshotMeta& meta) -> Result<std::unique_ptr<SnapshotSource>> {
      ++opened;
      if (meta.index != LogIndex(40)) return Status::not_found("no such snapshot");
      return std::unique_ptr<SnapshotSource>(new PiecesSource(data, 300000));
    };
  });
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  h[1].t->send({NodeId(1), NodeId(2), Term(4),
                raft::InstallSnapshot{core::SnapshotRef{{LogIndex(40), Term(4)}, nullptr}}});
  ASSERT_TRUE(h.wait([&] { return h[2].count("InstallSnapshot") == 1; }));
  const auto& got = std::get<raft::InstallSnapshot>(h[2].got[0].body).snapshot;
  EXPECT_EQ(got.meta, (core::SnapshotMeta{LogIndex(40), Term(4)}));
  EXPECT_TRUE(*got.data == *data);
  // A snapshot the opener cannot find is dropped and counted; nothing breaks.
  const uint64_t dropped = h[1].t->peer_stats(NodeId(2)).messages_dropped;
  h[1].t->send({NodeId(1), NodeId(2), Term(4),
                raft::InstallSnapshot{core::SnapshotRef{{LogIndex(41), Term(4)}, nullptr}}});
  EXPECT_EQ(h[1].t->peer_stats(NodeId(2)).messages_dropped, dropped + 1);
  EXPECT_EQ(opened, 2);
  EXPECT_TRUE(h.connected(1, 2));
}

TEST(TransportTest, OversizeSnapshotIsRefusedButTheConnectionStays) {
  Harness h;
  h.start(2, [](TransportConfig& c) { c.max_snapshot_bytes = 2u << 20; });
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  h[1].t->send({NodeId(1), NodeId(2), Term(3),
                raft::InstallSnapshot{
                    core::SnapshotRef{{LogIndex(9), Term(3)}, snapshot_bytes(5u << 20, 3)}}});
  h[1].t->send(heartbeat(1, 2, 1));
  ASSERT_TRUE(h.wait([&] { return h[1].t->peer_stats(NodeId(2)).snapshots_sent == 1; }));
  h[1].t->send(heartbeat(1, 2, 2));
  ASSERT_TRUE(h.wait([&] { return h[2].count("Heartbeat") == 2; }));
  EXPECT_EQ(h[2].count("InstallSnapshot"), 0u);
  EXPECT_EQ(h[2].t->peer_stats(NodeId(1)).messages_dropped, 1u);
  EXPECT_EQ(h[2].t->peer_stats(NodeId(1)).disconnects, 0u);
  EXPECT_NE(h[2].log().find("over max_snapshot_bytes"), std::string::npos);
}

TEST(TransportTest, InterruptedSnapshotIsDiscardedAndRestartsCleanly) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  const auto data = snapshot_bytes(8u << 20, 4);
  const raft::Message snap{NodeId(1), NodeId(2), Term(3),
                           raft::InstallSnapshot{core::SnapshotRef{{LogIndex(70), Term(3)}, data}}};
  h[1].t->send(snap);
  ASSERT_TRUE(h.wait([&] { return h[2].t->peer_stats(NodeId(1)).snapshot_chunks_received >= 2; }));
  // Break the connection mid-transfer: node 2 (the acceptor) restarts.
  const Endpoint at = h[2].at;
  h[2].t.reset();
  h.add_node(2, nullptr, "test-cluster", at.port);
  h[2].t->set_peer(NodeId(1), h[1].at);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  EXPECT_EQ(h[2].count("InstallSnapshot"), 0u);
  h[1].t->send(snap);  // the leader's retry
  ASSERT_TRUE(h.wait([&] { return h[2].count("InstallSnapshot") == 1; }));
  EXPECT_TRUE(*std::get<raft::InstallSnapshot>(h[2].got[0].body).snapshot.data == *data);
}

// ---- Addresses and shutdown -----------------------------------------------------

TEST(TransportTest, OutgoingConnectionsAreBoundToTheOwnAddress) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  // Node 1 (lower id) dialled node 2: node 2 sees it coming from 127.0.0.11.
  const std::string seen_by_2 = h[2].t->peer_stats(NodeId(1)).remote_address;
  EXPECT_EQ(seen_by_2.rfind("127.0.0.11:", 0), 0u) << seen_by_2;
  EXPECT_EQ(h[1].t->peer_stats(NodeId(2)).remote_address, h[2].at.to_string());
}

TEST(TransportTest, NoCallbackAfterStop) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  for (int i = 0; i < 100; ++i) h[1].t->send(heartbeat(1, 2, static_cast<uint64_t>(i)));
  // Node 2 stops from inside its own receiver, after the first message.
  h[2].t->set_receiver([&](raft::Message m) {
    h[2].got.push_back(std::move(m));
    h[2].t->stop();
  });
  run_for(h.io, 200ms);
  EXPECT_EQ(h[2].got.size(), 1u);
  h[1].t->stop();
  h[1].t->send(heartbeat(1, 2, 1000));  // ignored after stop
  run_for(h.io, 50ms);
  EXPECT_EQ(h[2].got.size(), 1u);
}

TEST(TransportTest, ListenFailureIsReported) {
  Harness h;
  h.start(1);
  asio::io_context io;
  TransportConfig cfg;
  cfg.self = NodeId(5);
  cfg.cluster_id = "test-cluster";
  cfg.listen = h[1].at;  // taken
  cfg.logger = std::make_shared<spdlog::logger>("quiet");
  Transport t(io, cfg);
  const Status st = t.start();
  EXPECT_EQ(st.code(), StatusCode::kIoError);
}

TEST(TransportConfigTest, ValidateNamesTheBadField) {
  TransportConfig cfg;
  cfg.self = NodeId(1);
  cfg.cluster_id = "c";
  cfg.listen = Endpoint{"127.0.0.11", 7101};
  EXPECT_TRUE(cfg.validate().is_ok());
  auto bad = cfg;
  bad.cluster_id.clear();
  EXPECT_NE(bad.validate().message().find("cluster_id"), std::string::npos);
  bad = cfg;
  bad.listen.ip = "localhost";
  EXPECT_NE(bad.validate().message().find("listen ip"), std::string::npos);
  bad = cfg;
  bad.max_queued_bytes_per_peer = 1;
  EXPECT_NE(bad.validate().message().find("max_queued_bytes_per_peer"), std::string::npos);
  bad = cfg;
  bad.snapshot_chunk_bytes = bad.max_frame_bytes;
  EXPECT_NE(bad.validate().message().find("snapshot_chunk_bytes"), std::string::npos);
}

TEST(EndpointTest, ParseAndPrint) {
  auto v4 = Endpoint::parse("127.0.0.11:7101");
  ASSERT_TRUE(v4.is_ok());
  EXPECT_EQ(v4->ip, "127.0.0.11");
  EXPECT_EQ(v4->port, 7101);
  EXPECT_EQ(v4->to_string(), "127.0.0.11:7101");
  auto v6 = Endpoint::parse("[::1]:80");
  ASSERT_TRUE(v6.is_ok());
  EXPECT_EQ(v6->to_string(), "[::1]:80");
  EXPECT_FALSE(Endpoint::parse("localhost:80").is_ok());
  EXPECT_FALSE(Endpoint::parse("1.2.3.4").is_ok());
  EXPECT_FALSE(Endpoint::parse("1.2.3.4:65536").is_ok());
  EXPECT_FALSE(Endpoint::parse("1.2.3.4:").is_ok());
}

}  // namespace
}  // namespace chorus::net
