#include "net/transport/raft_codec.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/raft/messages.h"
#include "net/transport/frame.h"
#include "net/transport/testing.h"
#include "net/transport/transport.h"

namespace chorus::net {
namespace {

using raft::Message;
using testing_messages::every_kind;
using testing_messages::expect_same;

TEST(RaftCodecTest, EveryMessageKindRoundTrips) {
  for (const Message& m : every_kind()) {
    SCOPED_TRACE(raft::describe(m));
    wirepb::PeerMessage pm;
    encode_peer_message(m, &pm);
    // Through bytes, as on the wire.
    std::string bytes = pm.SerializeAsString();
    wirepb::PeerMessage parsed;
    ASSERT_TRUE(parsed.ParseFromString(bytes));
    auto got = decode_peer_message(parsed);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    expect_same(m, *got);
  }
}

TEST(RaftCodecTest, EveryBodyAlternativeIsCovered) {
  std::vector<bool> seen(std::variant_size_v<raft::Body>, false);
  for (const Message& m : every_kind()) seen[m.body.index()] = true;
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "alternative " << i;
}

TEST(RaftCodecTest, GroupIdIsCarried) {
  wirepb::PeerMessage pm;
  encode_peer_message(every_kind()[0], &pm, 3);
  EXPECT_EQ(pm.group_id(), 3u);
}

// Encodes `m`, lets `mutate` damage the proto, and expects a refusal.
template <class F>
void expect_refused(const Message& m, F mutate, const char* why) {
  wirepb::PeerMessage pm;
  encode_peer_message(m, &pm);
  mutate(pm);
  auto got = decode_peer_message(pm);
  ASSERT_FALSE(got.is_ok()) << why;
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << why;
}

TEST(RaftCodecTest, MalformedInputIsRefused) {
  const auto all = every_kind();
  const Message& vote = all[0];
  const Message& append = all[4];
  const Message& snap = all[10];
  expect_refused(
      vote, [](auto& pm) { pm.clear_request_vote(); }, "no body");
  expect_refused(
      vote, [](auto& pm) { pm.set_from(0); }, "from 0");
  expect_refused(
      vote, [](auto& pm) { pm.set_to(0); }, "to 0");
  expect_refused(
      vote, [](auto& pm) { pm.set_to(pm.from()); }, "to itself");
  expect_refused(
      vote, [](auto& pm) { pm.mutable_request_vote()->set_last_log_term(8); },
      "last_log_term above term");
  expect_refused(
      append, [](auto& pm) { pm.mutable_append_entries()->mutable_entries(1)->set_index(20); },
      "gap in entries");
  expect_refused(
      append, [](auto& pm) { pm.mutable_append_entries()->mutable_entries(0)->set_index(10); },
      "first entry not after prev");
  expect_refused(
      append, [](auto& pm) { pm.mutable_append_entries()->mutable_entries(2)->set_term(6); },
      "entry term decreases");
  expect_refused(
      append, [](auto& pm) { pm.mutable_append_entries()->mutable_entries(2)->set_term(8); },
      "entry term above message term");
  expect_refused(
      append, [](auto& pm) { pm.mutable_append_entries()->mutable_entries(0)->set_term(4); },
      "entry term below prev_log_term");
  expect_refused(
      append,
      [](auto& pm) {
        pm.mutable_append_entries()->mutable_entries(0)->set_type(
            static_cast<wirepb::EntryType>(9));
      },
      "unknown entry type");
  expect_refused(
      append, [](auto& pm) { pm.mutable_append_entries()->set_prev_log_index(UINT64_MAX - 1); },
      "index overflow");
  expect_refused(
      snap, [](auto& pm) { pm.mutable_install_snapshot()->mutable_meta()->set_index(0); },
      "snapshot index 0");
  expect_refused(
      snap, [](auto& pm) { pm.mutable_install_snapshot()->mutable_meta()->set_term(9); },
      "snapshot term above message term");
  expect_refused(
      vote, [](auto& pm) { pm.mutable_snapshot_chunk()->set_transfer_id(1); },
      "a chunk is not a raft message");
}

TEST(RaftCodecTest, UnknownFieldsOfANewerVersionAreIgnored) {
  wirepb::PeerMessage pm;
  encode_peer_message(every_kind()[8], &pm);
  std::string bytes = pm.SerializeAsString();
  bytes += std::string("\xf8\x07\x01", 3);  // field 127, varint 1: unknown here
  wirepb::PeerMessage parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_TRUE(decode_peer_message(parsed).is_ok());
}

wirepb::PeerMessage chunk(uint64_t offset, std::string data, bool last, uint64_t total) {
  wirepb::PeerMessage pm;
  pm.set_from(1);
  pm.set_to(2);
  pm.set_term(5);
  auto* c = pm.mutable_snapshot_chunk();
  c->set_transfer_id(1);
  c->mutable_meta()->set_index(10);
  c->mutable_meta()->set_term(5);
  c->set_offset(offset);
  c->set_data(std::move(data));
  c->set_last(last);
  c->set_total_bytes(total);
  return pm;
}

TEST(RaftCodecTest, SnapshotChunkValidation) {
  EXPECT_TRUE(validate_snapshot_chunk(chunk(0, "abc", false, 6)).is_ok());
  EXPECT_TRUE(validate_snapshot_chunk(chunk(3, "abc", true, 6)).is_ok());
  EXPECT_TRUE(validate_snapshot_chunk(chunk(3, "abc", true, 0)).is_ok());    // size unknown
  EXPECT_FALSE(validate_snapshot_chunk(chunk(4, "abc", false, 6)).is_ok());  // past total
  EXPECT_FALSE(validate_snapshot_chunk(chunk(0, "abc", true, 6)).is_ok());   // last, short
  EXPECT_FALSE(validate_snapshot_chunk(chunk(UINT64_MAX - 1, "abc", false, 0)).is_ok());
  auto no_id = chunk(0, "", false, 0);
  no_id.mutable_snapshot_chunk()->set_transfer_id(0);
  EXPECT_FALSE(validate_snapshot_chunk(no_id).is_ok());
  auto future_term = chunk(0, "", false, 0);
  future_term.mutable_snapshot_chunk()->mutable_meta()->set_term(6);
  EXPECT_FALSE(validate_snapshot_chunk(future_term).is_ok());
  auto not_chunk = chunk(0, "", false, 0);
  not_chunk.mutable_heartbeat();
  EXPECT_FALSE(validate_snapshot_chunk(not_chunk).is_ok());
}

std::string unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  }
  return out;
}

TEST(WireFormatTest, WorkedExamplesMatchTheFormatDocument) {
  // docs/formats/wire.md, "Worked example".
  wirepb::Handshake h;
  h.set_magic(kWireMagic);
  h.set_protocol_version(1);
  h.set_min_protocol_version(1);
  h.set_cluster_id("demo");
  h.set_node_id(1);
  h.set_peer_node_id(2);
  h.set_listen_address("127.0.0.11:7101");
  std::string frame;
  append_frame(h.SerializeAsString(), &frame);
  EXPECT_EQ(frame, unhex("2400000094f446d1834b85dc0d43485257100118012204"
                         "64656d6f280130023a0f3132372e302e302e31313a37313031"));

  wirepb::HandshakeReply reply;
  reply.set_accepted(true);
  reply.set_protocol_version(1);
  frame.clear();
  append_frame(reply.SerializeAsString(), &frame);
  EXPECT_EQ(frame, unhex("040000002af6290225416e1f08011801"));

  wirepb::PeerMessage pm;
  encode_peer_message({NodeId(1), NodeId(2), Term(3), raft::Heartbeat{LogIndex(5), 9}}, &pm);
  frame.clear();
  append_frame(pm.SerializeAsString(), &frame);
  EXPECT_EQ(frame, unhex("0c0000001f40f522a70629c6100118022003720408051009"));
}

}  // namespace
}  // namespace chorus::net
