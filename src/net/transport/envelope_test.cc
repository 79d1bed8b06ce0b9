// The transport's envelope checks (envelope.h), without sockets.
#include "net/transport/envelope.h"

#include <gtest/gtest.h>

#include <string>

#include "net/transport/frame.h"

namespace chorus::net {
namespace {

wirepb::PeerMessage message(uint64_t from, uint64_t to) {
  wirepb::PeerMessage m;
  m.set_group_id(12);
  m.set_from(from);
  m.set_to(to);
  m.mutable_raft()->set_term(1);
  m.mutable_raft()->mutable_heartbeat()->set_commit(3);
  return m;
}

Status check(const wirepb::PeerMessage& m) {
  return check_envelope(m, /*peer=*/NodeId(1), /*self=*/NodeId(2));
}

TEST(EnvelopeTest, MessageFromThePeerToThisNodeIsAcceptedInAnyGroup) {
  EXPECT_TRUE(check(message(1, 2)).is_ok());
  auto other_group = message(1, 2);
  other_group.set_group_id(0xffffffffffull);
  EXPECT_TRUE(check(other_group).is_ok());
  wirepb::PeerMessage chunk = message(1, 2);
  chunk.mutable_snapshot_chunk()->set_transfer_id(1);
  EXPECT_TRUE(check(chunk).is_ok());  // the chunk rules are snapshot_stream.h's
}

TEST(EnvelopeTest, ForgedSenderOrWrongReceiverIsRefused) {
  for (const auto& m : {message(3, 2), message(1, 3), message(0, 2), message(2, 1)}) {
    const Status st = check(m);
    EXPECT_EQ(st.code(), StatusCode::kCorruption);
    EXPECT_NE(st.message().find("on the connection between 1 and 2"), std::string::npos)
        << st.message();
  }
}

TEST(EnvelopeTest, MissingOrUnknownBodyIsRefused) {
  auto none = message(1, 2);
  none.clear_raft();
  EXPECT_EQ(check(none).code(), StatusCode::kCorruption);
  // Field 12 (kept for ZAB), as a newer version might send it.
  wirepb::PeerMessage newer;
  ASSERT_TRUE(newer.ParseFromString(none.SerializeAsString() + std::string("\x62\x00", 2)));
  EXPECT_EQ(newer.body_case(), wirepb::PeerMessage::BODY_NOT_SET);
  const Status st = check(newer);
  EXPECT_NE(st.message().find("a body this version does not know"), std::string::npos);
}

TEST(EnvelopeTest, EngineBodiesAreTheOnlyOnesToSend) {
  EXPECT_TRUE(is_engine_body(wirepb::PeerMessage::kRaft));
  EXPECT_TRUE(is_engine_body(wirepb::PeerMessage::kPaxos));
  EXPECT_TRUE(is_engine_body(wirepb::PeerMessage::kPrimary));
  EXPECT_TRUE(is_engine_body(wirepb::PeerMessage::kProgress));
  EXPECT_FALSE(is_engine_body(wirepb::PeerMessage::kSnapshotChunk));
  EXPECT_FALSE(is_engine_body(wirepb::PeerMessage::BODY_NOT_SET));
  EXPECT_EQ(body_name(wirepb::PeerMessage::kRaft), "raft");
  EXPECT_EQ(body_name(wirepb::PeerMessage::kPaxos), "paxos");
  EXPECT_EQ(body_name(wirepb::PeerMessage::kPrimary), "primary");
  EXPECT_EQ(body_name(wirepb::PeerMessage::kProgress), "progress");
}

TEST(EnvelopeTest, EncodedFrameDecodesToTheMessage) {
  const auto m = message(1, 2);
  FrameDecoder d;
  d.feed(encode_frame(m));
  auto payload = d.next();
  ASSERT_TRUE(payload.is_ok() && payload->has_value());
  EXPECT_EQ(std::string(**payload), m.SerializeAsString());
}

}  // namespace
}  // namespace chorus::net
