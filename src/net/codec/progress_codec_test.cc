// The write-progress messages: round trips, and every hostile input the
// decoder must refuse.
#include "net/codec/progress_codec.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace chorus::net {
namespace {

IncomingMessage received(OutgoingMessage out, NodeId from) {
  IncomingMessage in;
  in.from = from;
  EXPECT_TRUE(in.message.ParseFromString(out.message.SerializeAsString()));
  in.message.set_from(from.value());
  in.message.set_to(out.to.value());
  return in;
}

ProgressAnswer counted() {
  ProgressAnswer a;
  a.request_id = 41;
  a.index = LogIndex(120);
  a.term = Term(3);
  a.leader_term = Term(4);
  a.state = ProgressState::kCommitted;
  a.replicas = 2;
  return a;
}

TEST(ProgressCodec, QueryRoundTripsInItsGroup) {
  const ProgressQuery q{41, LogIndex(120), Term(3)};
  const IncomingMessage in = received(encode_progress_query(GroupId(7), NodeId(1), q), NodeId(2));
  EXPECT_EQ(in.message.group_id(), 7u);
  auto d = decode_progress_message(in);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(std::get<ProgressQuery>(*d), q);
}

TEST(ProgressCodec, AnswersRoundTripEveryStateAndRefusal) {
  for (ProgressState s : {ProgressState::kPending, ProgressState::kCommitted, ProgressState::kLost,
                          ProgressState::kRolledBack}) {
    ProgressAnswer a = counted();
    a.state = s;
    auto d = decode_progress_message(
        received(encode_progress_answer(GroupId(7), NodeId(2), a), NodeId(1)));
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    EXPECT_EQ(std::get<ProgressAnswer>(*d), a);
  }
  for (ProgressError e : {ProgressError::kUnknownGroup, ProgressError::kNotLeader}) {
    ProgressAnswer a{41, LogIndex(120), Term(3), e, Term(), ProgressState::kPending, 0};
    auto d = decode_progress_message(
        received(encode_progress_answer(GroupId(7), NodeId(2), a), NodeId(1)));
    ASSERT_TRUE(d.is_ok()) << d.status().to_string();
    EXPECT_EQ(std::get<ProgressAnswer>(*d), a);
  }
}

// Each one what a correct sender never produces.
TEST(ProgressCodec, MalformedMessagesAreRefused) {
  const IncomingMessage query = received(
      encode_progress_query(GroupId(7), NodeId(1), {41, LogIndex(120), Term(3)}), NodeId(2));
  const IncomingMessage answer =
      received(encode_progress_answer(GroupId(7), NodeId(2), counted()), NodeId(1));
  auto refused = [](const IncomingMessage& m, const std::string& why) {
    auto d = decode_progress_message(m);
    ASSERT_FALSE(d.is_ok()) << why;
    EXPECT_EQ(d.status().code(), StatusCode::kCorruption) << why;
    EXPECT_EQ(d.status().message().rfind("progress message: ", 0), 0u) << d.status().message();
  };
  {
    IncomingMessage m = query;
    m.message.mutable_progress()->clear_body();
    refused(m, "no body");
  }
  {
    IncomingMessage m = query;
    m.message.mutable_raft()->set_term(1);  // replaces the progress body
    refused(m, "another body");
  }
  for (auto [from, to] : {std::pair<uint64_t, uint64_t>{0, 1}, {2, 0}, {2, 2}}) {
    IncomingMessage m = query;
    m.message.set_from(from);
    m.message.set_to(to);
    refused(m, "from/to");
  }
  {
    IncomingMessage m = query;
    m.snapshot_data = std::make_shared<const std::string>("bytes");
    refused(m, "snapshot attached");
  }
  for (int field = 0; field < 3; ++field) {
    IncomingMessage m = query;
    auto* q = m.message.mutable_progress()->mutable_query();
    if (field == 0) q->set_request_id(0);
    if (field == 1) q->set_index(0);
    if (field == 2) q->set_term(0);
    refused(m, "query field " + std::to_string(field) + " zero");
  }
  {
    IncomingMessage m = answer;
    m.message.mutable_progress()->mutable_answer()->set_state(
        static_cast<wirepb::ProgressState>(9));
    refused(m, "unknown state");
  }
  {
    IncomingMessage m = answer;
    m.message.mutable_progress()->mutable_answer()->set_error(
        static_cast<wirepb::ProgressError>(9));
    refused(m, "unknown error");
  }
  {
    IncomingMessage m = answer;
    m.message.mutable_progress()->mutable_answer()->set_leader_term(0);
    refused(m, "answered without a leader term");
  }
  {
    IncomingMessage m = answer;
    m.message.mutable_progress()->mutable_answer()->set_replicas(kMaxProgressReplicas + 1);
    refused(m, "more replicas than a group has");
  }
  {
    IncomingMessage m = answer;
    m.message.mutable_progress()->mutable_answer()->set_error(wirepb::PROGRESS_NOT_LEADER);
    refused(m, "a refusal that still counts replicas");
  }
  {
    IncomingMessage m = answer;
    m.message.mutable_progress()->mutable_answer()->set_request_id(0);
    refused(m, "answer to request 0");
  }
}

}  // namespace
}  // namespace chorus::net
