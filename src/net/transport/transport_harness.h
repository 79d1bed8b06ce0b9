// The transport tests' harness: nodes on their own loopback addresses
// (127.0.0.11, .12, .13 — all of 127.0.0.0/8 is loopback on Linux) on ports
// the kernel picks, all on one io_context run by the test thread, every wait
// bounded (run_until); and a hand-made peer on a plain socket for what a real
// transport never sends. Test-only.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "chorus/wire.pb.h"
#include "net/codec/raft_codec.h"
#include "net/transport/frame.h"
#include "net/transport/transport.h"

namespace chorus::net::transport_testing {

using namespace std::chrono_literals;

inline constexpr auto kWait = 10s;  // upper bound of any single wait in these tests

// Runs io until pred() holds or `limit` passes. Returns pred().
inline bool run_until(asio::io_context& io, const std::function<bool()>& pred,
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

inline void run_for(asio::io_context& io, std::chrono::milliseconds d) {
  run_until(
      io, [] { return false; }, d);
}

inline std::string ip_of(int n) {
  return "127.0.0." + std::to_string(10 + n);
}

inline raft::Message heartbeat(uint64_t from, uint64_t to, uint64_t round) {
  return {NodeId(from), NodeId(to), Term(1), raft::Heartbeat{LogIndex(0), round}};
}

// One node: a transport, what it received, and its log lines.
struct Node {
  // Declared before the transport, which logs into it until it is destroyed.
  std::shared_ptr<std::ostringstream> log_text = std::make_shared<std::ostringstream>();
  std::unique_ptr<Transport> t;
  std::vector<IncomingMessage> incoming;  // everything delivered, as delivered
  std::vector<raft::Message> got;         // the Raft messages among them, decoded
  NodeId id;
  Endpoint at;

  void send(const raft::Message& m, GroupId group = GroupId(0)) {
    t->send(encode_raft_message(m, group));
  }
  // What chorusd's receiver does: decode with the Raft codec, refuse what it refuses.
  Status receive(IncomingMessage in) {
    incoming.push_back(in);
    if (!in.message.has_raft()) return Status::ok();
    CHORUS_ASSIGN_OR_RETURN(raft::Message m, decode_raft_message(in));
    got.push_back(std::move(m));
    return Status::ok();
  }

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
    node.incoming.clear();
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
    node.t->set_receiver([&node](IncomingMessage in) { return node.receive(std::move(in)); });
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
    ::inet_pton(AF_INET, to.host.c_str(), &addr.sin_addr);
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

inline wirepb::Handshake handshake_as(uint64_t node, uint64_t dialled,
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
inline std::optional<wirepb::HandshakeReply> raw_handshake(Harness& h, RawPeer& raw,
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

}  // namespace chorus::net::transport_testing
