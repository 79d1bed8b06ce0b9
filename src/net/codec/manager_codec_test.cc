// The configuration manager's messages and stored state: round trips, and
// every hostile input the decoder must refuse.
#include "net/codec/manager_codec.h"

#include <gtest/gtest.h>

#include "chorus/manager.pb.h"

namespace chorus::net {
namespace {

primary::Configuration config() {
  return {primary::Epoch(3), NodeId(2), {NodeId(1), NodeId(2), NodeId(3)}, 40, 17, 5};
}

IncomingMessage received(OutgoingMessage out, NodeId from) {
  IncomingMessage in;
  in.from = from;
  in.message = std::move(out.message);
  in.message.set_from(from.value());
  in.message.set_to(out.to.value());
  return in;
}

TEST(ManagerCodec, ReportRoundTripsWithTheSenderAsNode) {
  primary::ReplicaReport r{NodeId(0),
                           primary::Epoch(3),
                           primary::entry_term(primary::Epoch(2), 1),
                           LogIndex(120),
                           LogIndex(118),
                           77,
                           (uint64_t{4} << 32) | 2};
  auto d =
      decode_manager_message(received(encode_manager_report(GroupId(5), NodeId(1), r), NodeId(3)));
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  const auto& got = std::get<primary::ReplicaReport>(*d);
  EXPECT_EQ(got.node, NodeId(3));
  EXPECT_EQ(got.epoch, r.epoch);
  EXPECT_EQ(got.last_term, r.last_term);
  EXPECT_EQ(got.last_index, r.last_index);
  EXPECT_EQ(got.commit, r.commit);
  EXPECT_EQ(got.sent_tick, 77u);
  EXPECT_EQ(got.round, r.round);
  EXPECT_TRUE(got.serving);
  // A restarted primary says it cannot serve its epoch (review: this field
  // once did not cross the wire, and such a primary was renewed forever).
  r.serving = false;
  auto d2 =
      decode_manager_message(received(encode_manager_report(GroupId(5), NodeId(1), r), NodeId(3)));
  ASSERT_TRUE(d2.is_ok());
  EXPECT_FALSE(std::get<primary::ReplicaReport>(*d2).serving);
}

TEST(ManagerCodec, GrantAndProbeRoundTrip) {
  auto d = decode_manager_message(
      received(encode_manager_grant(GroupId(5), NodeId(2), {config(), 9}), NodeId(1)));
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  const auto& g = std::get<ManagerGrant>(*d);
  ASSERT_TRUE(g.config.has_value());
  EXPECT_EQ(*g.config, config());
  EXPECT_EQ(g.round, 9u);
  auto p = decode_manager_message(
      received(encode_manager_grant(GroupId(5), NodeId(2), {std::nullopt, 10}), NodeId(1)));
  ASSERT_TRUE(p.is_ok());
  EXPECT_FALSE(std::get<ManagerGrant>(*p).config.has_value());
}

TEST(ManagerCodec, RefusesHostileConfigurations) {
  auto with = [](auto mutate) {
    OutgoingMessage out = encode_manager_grant(GroupId(5), NodeId(2), {config(), 1});
    mutate(*out.message.mutable_manager()->mutable_grant()->mutable_config());
    return decode_manager_message(received(std::move(out), NodeId(1)));
  };
  EXPECT_EQ(with([](managerpb::Configuration& c) { c.set_epoch(0); }).status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(
      with([](managerpb::Configuration& c) { c.set_epoch(uint64_t{1} << 40); }).status().code(),
      StatusCode::kCorruption);
  EXPECT_EQ(with([](managerpb::Configuration& c) { c.set_primary(9); }).status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(with([](managerpb::Configuration& c) { c.add_members(1); }).status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(with([](managerpb::Configuration& c) { c.add_members(0); }).status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(with([](managerpb::Configuration& c) { c.add_learners(1); }).status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(with([](managerpb::Configuration& c) { c.add_learners(0); }).status().code(),
            StatusCode::kCorruption);
  auto learner = with([](managerpb::Configuration& c) { c.add_learners(9); });
  ASSERT_TRUE(learner.is_ok()) << learner.status().to_string();
  EXPECT_EQ(std::get<ManagerGrant>(*learner).config->learners, std::vector<NodeId>{NodeId(9)});
}

TEST(ManagerCodec, RefusesHostileReportsAndEnvelopes) {
  auto report = [](auto mutate) {
    primary::ReplicaReport r{NodeId(0),
                             primary::Epoch(2),
                             primary::entry_term(primary::Epoch(2), 0),
                             LogIndex(4),
                             LogIndex(4),
                             1,
                             0};
    OutgoingMessage out = encode_manager_report(GroupId(5), NodeId(1), r);
    mutate(*out.message.mutable_manager()->mutable_report());
    return decode_manager_message(received(std::move(out), NodeId(3)));
  };
  EXPECT_TRUE(report([](managerpb::Report&) {}).is_ok());
  EXPECT_FALSE(report([](managerpb::Report& r) { r.set_last_term(0); }).is_ok());
  EXPECT_FALSE(report([](managerpb::Report& r) { r.set_epoch(1); }).is_ok());  // term of epoch 2
  EXPECT_FALSE(report([](managerpb::Report& r) { r.set_epoch(uint64_t{1} << 33); }).is_ok());
  IncomingMessage none;
  none.message.set_from(1);
  none.message.set_to(2);
  none.message.mutable_manager();
  EXPECT_EQ(decode_manager_message(none).status().code(), StatusCode::kCorruption);
  IncomingMessage self =
      received(encode_manager_grant(GroupId(5), NodeId(2), {config(), 1}), NodeId(2));
  EXPECT_EQ(decode_manager_message(self).status().code(), StatusCode::kCorruption);
}

TEST(ManagerCodec, StateRoundTripsAndRefusesCorruptBytes) {
  primary::ManagerState s{
      config(), {NodeId(1), NodeId(2), NodeId(3)}, {NodeId(1), NodeId(2)}, {NodeId(3)}};
  const std::string bytes = encode_manager_state(s);
  EXPECT_EQ(bytes, encode_manager_state(s));  // deterministic: the metadata CAS compares bytes
  auto d = decode_manager_state(bytes);
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_EQ(*d, s);
  primary::ManagerState fresh{{}, {NodeId(1), NodeId(2)}, {}, {}};
  auto f = decode_manager_state(encode_manager_state(fresh));
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(*f, fresh);
  EXPECT_EQ(decode_manager_state("\xff\xff\xff").status().code(), StatusCode::kCorruption);
  primary::ManagerState stray{config(), {NodeId(1), NodeId(2)}, {}, {}};  // member 3 not a replica
  EXPECT_EQ(decode_manager_state(encode_manager_state(stray)).status().code(),
            StatusCode::kCorruption);
}

}  // namespace
}  // namespace chorus::net
