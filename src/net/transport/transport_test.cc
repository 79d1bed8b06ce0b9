// Transport tests on real sockets (transport_harness.h): delivery, groups,
// reconnecting, snapshots, shutdown. Handshake refusals and hostile input
// are in transport_hostile_test.cc.
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

// ---- Delivery -------------------------------------------------------------------

TEST(TransportTest, ThreeNodesExchangeEveryMessageKind) {
  Harness h;
  h.start(3);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  for (int from = 1; from <= 3; ++from) {
    for (int to = 1; to <= 3; ++to) {
      if (from == to) continue;
      for (auto& m : every_kind(NodeId(from), NodeId(to))) h[from].send(m);
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
      // In the order sent, per sender — except the snapshot, delivered when
      // its (only) chunk arrives: after the messages queued with it.
      std::vector<raft::Message> from_one;
      for (auto& m : h[to].got) {
        if (m.from == NodeId(from)) from_one.push_back(m);
      }
      auto want = every_kind(NodeId(from), NodeId(to));
      std::stable_partition(want.begin(), want.end(), [](const raft::Message& m) {
        return !std::holds_alternative<raft::InstallSnapshot>(m.body);
      });
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

TEST(TransportTest, TwoGroupsShareOneConnectionAndArriveTaggedWithTheirGroup) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  // Interleaved: group 0 carries even rounds, group 7 odd ones, both directions.
  constexpr uint64_t kRounds = 200;
  for (uint64_t r = 0; r < kRounds; ++r) {
    const GroupId group(r % 2 == 0 ? 0 : 7);
    h[1].send(heartbeat(1, 2, r), group);
    h[2].send(heartbeat(2, 1, r), group);
  }
  ASSERT_TRUE(
      h.wait([&] { return h[2].incoming.size() == kRounds && h[1].incoming.size() == kRounds; }));
  for (int to : {1, 2}) {
    for (uint64_t r = 0; r < kRounds; ++r) {
      const IncomingMessage& in = h[to].incoming[r];
      EXPECT_EQ(in.message.group_id(), r % 2 == 0 ? 0u : 7u) << "round " << r;
      EXPECT_EQ(in.message.raft().heartbeat().read_round(), r);  // in order, across groups
    }
  }
  // One connection carried both groups.
  for (int i : {1, 2}) {
    const PeerStats s = h[i].t->peer_stats(NodeId(3 - i));
    EXPECT_EQ(s.connects, 1u);
    EXPECT_EQ(s.messages_sent, kRounds);
    EXPECT_EQ(s.messages_received, kRounds);
  }
  EXPECT_EQ(h[1].t->stats().connections_accepted + h[2].t->stats().connections_accepted, 1u);
}

TEST(TransportTest, ManySendsAreCoalescedIntoFewWrites) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  constexpr int kMessages = 2000;
  for (int i = 0; i < kMessages; ++i) h[1].send(heartbeat(1, 2, static_cast<uint64_t>(i)));
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
    h[1].send({NodeId(1), NodeId(2), Term(1),
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
  h[1].send(heartbeat(1, 2, 1));
  h[1].send(heartbeat(1, 9, 1));  // unknown node: ignored
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

// ---- Reconnecting ---------------------------------------------------------------

TEST(TransportTest, AcceptingPeerRestartReconnectsAndDeliveryResumes) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  h[1].send(heartbeat(1, 2, 1));
  ASSERT_TRUE(h.wait([&] { return h[2].got.size() == 1; }));

  const Endpoint at = h[2].at;
  h[2].t.reset();  // "crash": node 2 goes away
  ASSERT_TRUE(h.wait([&] { return !h.connected(1, 2); }));
  h[1].send(heartbeat(1, 2, 2));  // dropped while down
  EXPECT_GE(h[1].t->peer_stats(NodeId(2)).messages_dropped, 1u);
  run_for(h.io, 100ms);  // node 1 retries against a closed port

  h.add_node(2, nullptr, "test-cluster", at.port);
  h[2].t->set_peer(NodeId(1), h[1].at);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  h[1].send(heartbeat(1, 2, 3));
  h[2].send(heartbeat(2, 1, 4));
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
  h[2].send(heartbeat(2, 1, 7));
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
  h[1].send({NodeId(1), NodeId(2), Term(3),
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
      h[1].send(heartbeat(1, 2, ++round));
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

// The transport does not read the message a snapshot is attached to: any
// engine body in any group arrives exactly as sent, with the bytes beside it.
TEST(TransportTest, StreamedSnapshotArrivesWithItsHeaderMessageIntact) {
  Harness h;
  h.start(2, [](TransportConfig& c) { c.snapshot_chunk_bytes = 64u << 10; });
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  const auto data = snapshot_bytes((1u << 20) + 7, 5);
  OutgoingMessage out = encode_raft_message(
      {NodeId(1), NodeId(2), Term(9),
       raft::InstallSnapshot{core::SnapshotRef{{LogIndex(123), Term(8)}, data}}},
      GroupId(5));
  const std::string sent_header = out.message.SerializeAsString();
  h[1].t->send(std::move(out));
  ASSERT_TRUE(h.wait([&] { return h[2].incoming.size() == 1; }));
  const IncomingMessage& in = h[2].incoming[0];
  EXPECT_EQ(in.from, NodeId(1));
  EXPECT_EQ(in.message.SerializeAsString(), sent_header);
  EXPECT_EQ(in.message.group_id(), 5u);
  EXPECT_EQ(in.message.raft().term(), 9u);
  EXPECT_EQ(in.message.raft().install_snapshot().meta().index(), 123u);
  ASSERT_TRUE(in.snapshot_data);
  EXPECT_TRUE(*in.snapshot_data == *data);
  EXPECT_EQ(h[1].t->peer_stats(NodeId(2)).snapshot_chunks_sent, 17u);  // 16 full, 1 of 7 bytes
}

TEST(TransportTest, SmallSnapshotTravelsAsOneLastChunk) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  for (size_t size : {size_t{0}, size_t{5}}) {
    SCOPED_TRACE(size);
    const size_t before = h[2].got.size();
    const uint64_t chunks = h[1].t->peer_stats(NodeId(2)).snapshot_chunks_sent;
    const auto data = snapshot_bytes(size, 6);
    h[1].send({NodeId(1), NodeId(2), Term(2),
               raft::InstallSnapshot{core::SnapshotRef{{LogIndex(3), Term(2)}, data}}});
    ASSERT_TRUE(h.wait([&] { return h[2].got.size() == before + 1; }));
    EXPECT_EQ(h[1].t->peer_stats(NodeId(2)).snapshot_chunks_sent, chunks + 1);
    EXPECT_TRUE(*std::get<raft::InstallSnapshot>(h[2].got.back().body).snapshot.data == *data);
  }
  EXPECT_EQ(h[2].t->peer_stats(NodeId(1)).snapshots_received, 2u);
}

TEST(TransportTest, RetriedSnapshotContinuesItsTransferAndANewerOneReplacesIt) {
  Harness h;
  h.start(2);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  const auto old_data = snapshot_bytes(4u << 20, 7);
  const auto new_data = snapshot_bytes(3u << 20, 8);
  const raft::Message snap{
      NodeId(1), NodeId(2), Term(3),
      raft::InstallSnapshot{core::SnapshotRef{{LogIndex(70), Term(3)}, old_data}}};
  h[1].send(snap);
  h[1].send(snap);  // the core's retry while the first is streaming: no restart
  EXPECT_EQ(h[1].t->peer_stats(NodeId(2)).messages_dropped, 0u);
  h[1].send({NodeId(1), NodeId(2), Term(3),
             raft::InstallSnapshot{core::SnapshotRef{{LogIndex(90), Term(3)}, new_data}}});
  EXPECT_EQ(h[1].t->peer_stats(NodeId(2)).messages_dropped, 1u);  // the old transfer
  ASSERT_TRUE(h.wait([&] { return h[2].count("InstallSnapshot") == 1; }));
  run_for(h.io, 50ms);
  ASSERT_EQ(h[2].count("InstallSnapshot"), 1u);
  const auto& got = std::get<raft::InstallSnapshot>(h[2].got.back().body).snapshot;
  EXPECT_EQ(got.meta.index, LogIndex(90));
  EXPECT_TRUE(*got.data == *new_data);
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
        [&](GroupId group,
            const core::SnapshotMeta& meta) -> Result<std::unique_ptr<SnapshotSource>> {
      ++opened;
      EXPECT_EQ(group, GroupId(6));  // the group the message was sent in
      if (meta.index != LogIndex(40)) return Status::not_found("no such snapshot");
      return std::unique_ptr<SnapshotSource>(new PiecesSource(data, 300000));
    };
  });
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  h[1].send({NodeId(1), NodeId(2), Term(4),
             raft::InstallSnapshot{core::SnapshotRef{{LogIndex(40), Term(4)}, nullptr}}},
            GroupId(6));
  ASSERT_TRUE(h.wait([&] { return h[2].count("InstallSnapshot") == 1; }));
  const auto& got = std::get<raft::InstallSnapshot>(h[2].got[0].body).snapshot;
  EXPECT_EQ(got.meta, (core::SnapshotMeta{LogIndex(40), Term(4)}));
  EXPECT_TRUE(*got.data == *data);
  // A snapshot the opener cannot find is dropped and counted; nothing breaks.
  const uint64_t dropped = h[1].t->peer_stats(NodeId(2)).messages_dropped;
  h[1].send({NodeId(1), NodeId(2), Term(4),
             raft::InstallSnapshot{core::SnapshotRef{{LogIndex(41), Term(4)}, nullptr}}},
            GroupId(6));
  EXPECT_EQ(h[1].t->peer_stats(NodeId(2)).messages_dropped, dropped + 1);
  EXPECT_EQ(opened, 2);
  EXPECT_TRUE(h.connected(1, 2));
}

TEST(TransportTest, OversizeSnapshotIsRefusedButTheConnectionStays) {
  Harness h;
  h.start(2, [](TransportConfig& c) { c.max_snapshot_bytes = 2u << 20; });
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  h[1].send({NodeId(1), NodeId(2), Term(3),
             raft::InstallSnapshot{
                 core::SnapshotRef{{LogIndex(9), Term(3)}, snapshot_bytes(5u << 20, 3)}}});
  h[1].send(heartbeat(1, 2, 1));
  ASSERT_TRUE(h.wait([&] { return h[1].t->peer_stats(NodeId(2)).snapshots_sent == 1; }));
  h[1].send(heartbeat(1, 2, 2));
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
  h[1].send(snap);
  ASSERT_TRUE(h.wait([&] { return h[2].t->peer_stats(NodeId(1)).snapshot_chunks_received >= 2; }));
  // Break the connection mid-transfer: node 2 (the acceptor) restarts.
  const Endpoint at = h[2].at;
  h[2].t.reset();
  h.add_node(2, nullptr, "test-cluster", at.port);
  h[2].t->set_peer(NodeId(1), h[1].at);
  ASSERT_TRUE(h.wait([&] { return h.all_connected(); }));
  EXPECT_EQ(h[2].count("InstallSnapshot"), 0u);
  h[1].send(snap);  // the leader's retry
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
  for (int i = 0; i < 100; ++i) h[1].send(heartbeat(1, 2, static_cast<uint64_t>(i)));
  // Node 2 stops from inside its own receiver, after the first message.
  h[2].t->set_receiver([&](IncomingMessage in) {
    Status st = h[2].receive(std::move(in));
    h[2].t->stop();
    return st;
  });
  run_for(h.io, 200ms);
  EXPECT_EQ(h[2].got.size(), 1u);
  h[1].t->stop();
  h[1].send(heartbeat(1, 2, 1000));  // ignored after stop
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
  bad.listen.host = "localhost";
  EXPECT_NE(bad.validate().message().find("listen host 'localhost' is not a numeric IP"),
            std::string::npos);
  bad = cfg;
  bad.max_queued_bytes_per_peer = 1;
  EXPECT_NE(bad.validate().message().find("max_queued_bytes_per_peer"), std::string::npos);
  bad = cfg;
  bad.snapshot_chunk_bytes = bad.max_frame_bytes;
  EXPECT_NE(bad.validate().message().find("snapshot_chunk_bytes"), std::string::npos);
}

}  // namespace
}  // namespace chorus::net
