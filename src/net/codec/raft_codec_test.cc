#include "net/codec/raft_codec.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/raft/messages.h"
#include "net/codec/testing.h"
#include "net/transport/envelope.h"
#include "net/transport/frame.h"
#include "net/transport/snapshot_stream.h"
#include "net/transport/transport.h"

namespace chorus::net {
namespace {

using raft::Message;
using testing_messages::as_received;
using testing_messages::every_kind;
using testing_messages::expect_same;

TEST(RaftCodecTest, EveryMessageKindRoundTrips) {
  for (const Message& m : every_kind()) {
    SCOPED_TRACE(raft::describe(m));
    auto got = decode_raft_message(as_received(encode_raft_message(m, GroupId(0))));
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    expect_same(m, *got);
  }
}

TEST(RaftCodecTest, EveryBodyAlternativeIsCovered) {
  std::vector<bool> seen(std::variant_size_v<raft::Body>, false);
  for (const Message& m : every_kind()) seen[m.body.index()] = true;
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "alternative " << i;
}

TEST(RaftCodecTest, EnvelopeCarriesGroupSenderAndReceiver) {
  const OutgoingMessage out = encode_raft_message(every_kind(NodeId(4), NodeId(9))[0], GroupId(3));
  EXPECT_EQ(out.to, NodeId(9));
  EXPECT_EQ(out.message.group_id(), 3u);
  EXPECT_EQ(out.message.from(), 4u);
  EXPECT_EQ(out.message.to(), 9u);
  EXPECT_TRUE(out.message.has_raft());
  EXPECT_TRUE(is_engine_body(out.message.body_case()));
  EXPECT_FALSE(out.snapshot.has_value());
}

TEST(RaftCodecTest, SnapshotBytesTravelBesideTheMessage) {
  const Message snap = every_kind()[10];
  const auto& ref = std::get<raft::InstallSnapshot>(snap.body).snapshot;
  const OutgoingMessage out = encode_raft_message(snap, GroupId(0));
  ASSERT_TRUE(out.snapshot.has_value());
  EXPECT_EQ(out.snapshot->meta, ref.meta);
  EXPECT_EQ(out.snapshot->data, ref.data);  // shared, not copied
  EXPECT_EQ(out.message.raft().install_snapshot().meta().index(), 100u);
  EXPECT_LT(out.message.ByteSizeLong(), 32u) << "the bytes must not be in the message";

  // Without bytes (the transport opens the snapshot file): same message, null data.
  Message lazy = snap;
  std::get<raft::InstallSnapshot>(lazy.body).snapshot.data = nullptr;
  const OutgoingMessage lazy_out = encode_raft_message(lazy, GroupId(0));
  ASSERT_TRUE(lazy_out.snapshot.has_value());
  EXPECT_EQ(lazy_out.snapshot->data, nullptr);
  EXPECT_EQ(lazy_out.message.SerializeAsString(), out.message.SerializeAsString());
}

// Encodes `m`, lets `mutate` damage what arrives, and expects a refusal.
template <class F>
void expect_refused(const Message& m, F mutate, const char* why) {
  IncomingMessage in = as_received(encode_raft_message(m, GroupId(0)));
  mutate(in);
  auto got = decode_raft_message(in);
  ASSERT_FALSE(got.is_ok()) << why;
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << why;
}

wirepb::RaftMessage& raft_of(IncomingMessage& in) {
  return *in.message.mutable_raft();
}

TEST(RaftCodecTest, MalformedEnvelopeIsRefused) {
  const Message vote = every_kind()[0];
  expect_refused(
      vote, [](auto& in) { in.message.clear_raft(); }, "no raft body");
  expect_refused(
      vote, [](auto& in) { in.message.mutable_snapshot_chunk()->set_transfer_id(1); },
      "a chunk is not a raft message");
  expect_refused(
      vote, [](auto& in) { in.message.set_from(0); }, "from 0");
  expect_refused(
      vote, [](auto& in) { in.message.set_to(0); }, "to 0");
  expect_refused(
      vote, [](auto& in) { in.message.set_to(in.message.from()); }, "to itself");
}

TEST(RaftCodecTest, MalformedRaftMessageIsRefused) {
  const auto all = every_kind();
  const Message& vote = all[0];
  const Message& append = all[4];
  expect_refused(
      vote, [](auto& in) { raft_of(in).clear_request_vote(); }, "no raft message");
  expect_refused(
      vote, [](auto& in) { raft_of(in).mutable_request_vote()->set_last_log_term(8); },
      "last_log_term above term");
  expect_refused(
      append,
      [](auto& in) { raft_of(in).mutable_append_entries()->mutable_entries(1)->set_index(20); },
      "gap in entries");
  expect_refused(
      append,
      [](auto& in) { raft_of(in).mutable_append_entries()->mutable_entries(0)->set_index(10); },
      "first entry not after prev");
  expect_refused(
      append,
      [](auto& in) { raft_of(in).mutable_append_entries()->mutable_entries(2)->set_term(6); },
      "entry term decreases");
  expect_refused(
      append,
      [](auto& in) { raft_of(in).mutable_append_entries()->mutable_entries(2)->set_term(8); },
      "entry term above message term");
  expect_refused(
      append,
      [](auto& in) { raft_of(in).mutable_append_entries()->mutable_entries(0)->set_term(4); },
      "entry term below prev_log_term");
  expect_refused(
      append,
      [](auto& in) {
        raft_of(in).mutable_append_entries()->mutable_entries(0)->set_type(
            static_cast<wirepb::EntryType>(9));
      },
      "unknown entry type");
  expect_refused(
      append,
      [](auto& in) { raft_of(in).mutable_append_entries()->set_prev_log_index(UINT64_MAX - 1); },
      "index overflow");
}

TEST(RaftCodecTest, SnapshotWithoutItsBytesOrBytesWithoutASnapshotAreRefused) {
  const auto all = every_kind();
  const Message& snap = all[10];
  const Message& heartbeat = all[8];
  expect_refused(
      snap, [](auto& in) { raft_of(in).mutable_install_snapshot()->mutable_meta()->set_index(0); },
      "snapshot index 0");
  expect_refused(
      snap, [](auto& in) { raft_of(in).mutable_install_snapshot()->mutable_meta()->set_term(9); },
      "snapshot term above message term");
  expect_refused(
      snap, [](auto& in) { in.snapshot_data = nullptr; }, "snapshot without bytes");
  expect_refused(
      heartbeat, [](auto& in) { in.snapshot_data = std::make_shared<const std::string>("x"); },
      "bytes attached to a heartbeat");
}

TEST(RaftCodecTest, UnknownFieldsOfANewerVersionAreIgnored) {
  IncomingMessage in = as_received(encode_raft_message(every_kind()[8], GroupId(0)));
  std::string bytes = in.message.SerializeAsString();
  bytes += std::string("\xf8\x07\x01", 3);  // field 127, varint 1: unknown here
  ASSERT_TRUE(in.message.ParseFromString(bytes));
  EXPECT_TRUE(decode_raft_message(in).is_ok());
}

// The frame holding m, in hex (a mismatch then prints readably).
std::string framed_hex(const google::protobuf::MessageLite& m) {
  std::string frame;
  append_frame(m.SerializeAsString(), &frame);
  std::string hex;
  for (unsigned char ch : frame) hex += fmt::format("{:02x}", ch);
  return hex;
}

TEST(WireFormatTest, WorkedExamplesMatchTheFormatDocument) {
  // docs/formats/wire.md, "Worked example".
  wirepb::Handshake h;
  h.set_magic(kWireMagic);
  h.set_protocol_version(2);
  h.set_min_protocol_version(2);
  h.set_cluster_id("demo");
  h.set_node_id(1);
  h.set_peer_node_id(2);
  h.set_listen_address("127.0.0.11:7101");
  EXPECT_EQ(framed_hex(h),
            "24000000045b38209765fc91"              // length 36, checksum
            "0d43485257"                            // magic "CHRW"
            "10021802"                              // protocol versions 2..2
            "220464656d6f"                          // cluster "demo"
            "28013002"                              // node 1, dialled 2
            "3a0f3132372e302e302e31313a37313031");  // listen address

  wirepb::HandshakeReply reply;
  reply.set_accepted(true);
  reply.set_protocol_version(2);
  EXPECT_EQ(framed_hex(reply),
            "040000005847adbd2f15e4a2"
            "08011802");

  const OutgoingMessage heartbeat = encode_raft_message(
      {NodeId(1), NodeId(2), Term(3), raft::Heartbeat{LogIndex(5), 9}}, GroupId(7));
  EXPECT_EQ(framed_hex(heartbeat.message),
            "10000000068931262ad01800"  // length 16, checksum
            "080710011802"              // group 7, from 1, to 2
            "5208"                      // raft (8 bytes)
            "0803"                      //   term 3
            "720408051009");            //   heartbeat: commit 5, read_round 9

  // A snapshot of 5 bytes: one chunk, carrying its InstallSnapshot.
  const OutgoingMessage snap = encode_raft_message(
      {NodeId(1), NodeId(2), Term(3),
       raft::InstallSnapshot{core::SnapshotRef{{LogIndex(40), Term(2)},
                                               std::make_shared<const std::string>("hello")}}},
      GroupId(7));
  OutgoingTransfer transfer(1, snap.message, *snap.snapshot, nullptr, 1u << 20);
  auto chunk = transfer.next_chunk();
  ASSERT_TRUE(chunk.is_ok());
  EXPECT_TRUE(transfer.done());
  EXPECT_EQ(framed_hex(*chunk),
            "2b0000003eae4125ad1fd91c"  // length 43, checksum
            "080710011802"              // group 7, from 1, to 2
            "a20122"                    // snapshot_chunk (34 bytes)
            "0801"                      //   transfer 1 (offset 0 is not written)
            "220568656c6c6f"            //   data "hello"
            "28013005"                  //   last, total_bytes 5
            "3a13080710011802"          //   header (19 bytes): group 7, from 1, to 2
            "520b0803"                  //     raft (11 bytes): term 3
            "8201060a0408281002");      //     install_snapshot: meta 40/2
}

}  // namespace
}  // namespace chorus::net
