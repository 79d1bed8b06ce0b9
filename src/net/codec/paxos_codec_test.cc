#include "net/codec/paxos_codec.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/overloaded.h"
#include "chorus/paxos.pb.h"
#include "core/paxos/messages.h"
#include "net/codec/testing.h"
#include "net/transport/envelope.h"

namespace chorus::net {
namespace {

using paxos::Ballot;
using paxos::kChosenBallot;
using paxos::Message;
using paxos::PValue;
using paxos::Value;
using testing_messages::as_received;

Ballot bal(uint64_t round, uint64_t node) {
  return Ballot{round, NodeId(node)};
}
Value val(Ballot origin, std::string data, core::EntryType t = core::EntryType::kNormal) {
  return Value{origin, t, std::move(data)};
}

// One message of every kind from node 1 to node 2, each field distinct. A
// proposer's ballot names node 1 (the sender) in Prepare, Accept and
// Heartbeat, node 2 (the receiver) in the answers.
std::vector<Message> every_kind() {
  const NodeId from(1), to(2);
  auto snap = std::make_shared<const std::string>("snapshot\0bytes", 14);
  const Value a = val(bal(3, 1), std::string("x\0y", 3));
  const Value noop = val(bal(4, 2), "", core::EntryType::kNoop);
  return {
      {from, to, paxos::Prepare{bal(5, 1), LogIndex(17)}},
      {from, to,
       paxos::Promise{
           bal(5, 2),
           {PValue{LogIndex(17), bal(3, 1), a}, PValue{LogIndex(19), kChosenBallot, noop}},
           LogIndex(16)}},
      {from, to, paxos::Promise{bal(6, 2), {}, LogIndex(0)}},
      {from, to,
       paxos::Accept{bal(5, 1),
                     {PValue{LogIndex(20), bal(5, 1), a}, PValue{LogIndex(21), bal(5, 1), noop}},
                     LogIndex(18)}},
      {from, to, paxos::Accept{bal(5, 1), {}, LogIndex(21)}},
      {from, to, paxos::Accepted{bal(5, 2), {LogIndex(20), LogIndex(21)}}},
      {from, to, paxos::Nack{bal(5, 2), bal(7, 3)}},
      {from, to, paxos::Heartbeat{bal((uint64_t{1} << 48) - 2, 1), LogIndex(21)}},
      {from, to, paxos::CatchupRequest{LogIndex(3), LogIndex(9)}},
      {from, to,
       paxos::Decide{
           {PValue{LogIndex(3), kChosenBallot, a}, PValue{LogIndex(4), kChosenBallot, noop}}}},
      {from, to,
       paxos::InstallSnapshot{core::SnapshotRef{{LogIndex(100), bal(3, 1).to_term()}, snap}}},
  };
}

// Field-by-field equality of two messages.
void expect_same(const Message& want, const Message& got) {
  EXPECT_EQ(paxos::describe(want), paxos::describe(got));
  EXPECT_EQ(want.from, got.from);
  EXPECT_EQ(want.to, got.to);
  ASSERT_EQ(want.body.index(), got.body.index());
  std::visit(Overloaded{
                 [&](const paxos::Prepare& w) {
                   const auto& g = std::get<paxos::Prepare>(got.body);
                   EXPECT_EQ(w.ballot, g.ballot);
                   EXPECT_EQ(w.first_slot, g.first_slot);
                 },
                 [&](const paxos::Promise& w) {
                   const auto& g = std::get<paxos::Promise>(got.body);
                   EXPECT_EQ(w.ballot, g.ballot);
                   EXPECT_EQ(w.accepted, g.accepted);
                   EXPECT_EQ(w.compacted_through, g.compacted_through);
                 },
                 [&](const paxos::Accept& w) {
                   const auto& g = std::get<paxos::Accept>(got.body);
                   EXPECT_EQ(w.ballot, g.ballot);
                   EXPECT_EQ(w.proposals, g.proposals);
                   EXPECT_EQ(w.commit, g.commit);
                 },
                 [&](const paxos::Accepted& w) {
                   const auto& g = std::get<paxos::Accepted>(got.body);
                   EXPECT_EQ(w.ballot, g.ballot);
                   EXPECT_EQ(w.slots, g.slots);
                 },
                 [&](const paxos::Nack& w) {
                   const auto& g = std::get<paxos::Nack>(got.body);
                   EXPECT_EQ(w.ballot, g.ballot);
                   EXPECT_EQ(w.promised, g.promised);
                 },
                 [&](const paxos::Heartbeat& w) {
                   const auto& g = std::get<paxos::Heartbeat>(got.body);
                   EXPECT_EQ(w.ballot, g.ballot);
                   EXPECT_EQ(w.commit, g.commit);
                 },
                 [&](const paxos::CatchupRequest& w) {
                   const auto& g = std::get<paxos::CatchupRequest>(got.body);
                   EXPECT_EQ(w.first, g.first);
                   EXPECT_EQ(w.last, g.last);
                 },
                 [&](const paxos::Decide& w) {
                   EXPECT_EQ(w.chosen, std::get<paxos::Decide>(got.body).chosen);
                 },
                 [&](const paxos::InstallSnapshot& w) {
                   const auto& g = std::get<paxos::InstallSnapshot>(got.body).snapshot;
                   EXPECT_EQ(w.snapshot.meta, g.meta);
                   ASSERT_TRUE(g.data);
                   EXPECT_EQ(*w.snapshot.data, *g.data);
                 },
             },
             want.body);
}

TEST(PaxosCodecTest, EveryMessageKindRoundTrips) {
  for (const Message& m : every_kind()) {
    SCOPED_TRACE(paxos::describe(m));
    auto got = decode_paxos_message(as_received(encode_paxos_message(m, GroupId(5))));
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    expect_same(m, *got);
  }
}

TEST(PaxosCodecTest, EveryBodyAlternativeIsCovered) {
  std::vector<bool> seen(std::variant_size_v<paxos::Body>, false);
  for (const Message& m : every_kind()) seen[m.body.index()] = true;
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "alternative " << i;
}

TEST(PaxosCodecTest, EnvelopeCarriesGroupSenderAndReceiver) {
  const OutgoingMessage out = encode_paxos_message(every_kind()[0], GroupId(3));
  EXPECT_EQ(out.to, NodeId(2));
  EXPECT_EQ(out.message.group_id(), 3u);
  EXPECT_EQ(out.message.from(), 1u);
  EXPECT_EQ(out.message.to(), 2u);
  EXPECT_TRUE(out.message.has_paxos());
  EXPECT_TRUE(is_engine_body(out.message.body_case()));
  EXPECT_EQ(body_name(out.message.body_case()), "paxos");
  EXPECT_FALSE(out.snapshot.has_value());
}

TEST(PaxosCodecTest, AcceptDoesNotRepeatItsBallotPerSlot) {
  const OutgoingMessage out = encode_paxos_message(every_kind()[3], GroupId(0));
  ASSERT_EQ(out.message.paxos().accept().proposals_size(), 2);
  EXPECT_FALSE(out.message.paxos().accept().proposals(0).has_ballot());
}

TEST(PaxosCodecTest, SnapshotBytesTravelBesideTheMessage) {
  const Message snap = every_kind().back();
  const auto& ref = std::get<paxos::InstallSnapshot>(snap.body).snapshot;
  const OutgoingMessage out = encode_paxos_message(snap, GroupId(0));
  ASSERT_TRUE(out.snapshot.has_value());
  EXPECT_EQ(out.snapshot->data, ref.data);  // shared, not copied
  EXPECT_LT(out.message.ByteSizeLong(), 40u) << "the bytes must not be in the message";
}

paxospb::PaxosMessage& paxos_of(IncomingMessage& in) {
  return *in.message.mutable_paxos();
}

// The kind at `index` of every_kind(), altered by `mutate`, must be refused
// with kCorruption.
void expect_refused(size_t index, const std::function<void(IncomingMessage&)>& mutate,
                    const char* why) {
  SCOPED_TRACE(why);
  const Message m = every_kind()[index];
  IncomingMessage in = as_received(encode_paxos_message(m, GroupId(0)));
  ASSERT_TRUE(decode_paxos_message(in).is_ok()) << "unaltered message must decode";
  mutate(in);
  auto got = decode_paxos_message(in);
  ASSERT_FALSE(got.is_ok());
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << got.status().to_string();
}

enum Kind : size_t {
  kPrepare = 0,
  kPromise = 1,
  kAccept = 3,
  kAccepted = 5,
  kNack = 6,
  kHeartbeat = 7,
  kCatchup = 8,
  kDecide = 9,
  kSnapshot = 10,
};

TEST(PaxosCodecTest, MalformedEnvelopeIsRefused) {
  expect_refused(
      kPrepare, [](auto& in) { in.message.clear_paxos(); }, "no paxos body");
  expect_refused(
      kPrepare, [](auto& in) { in.message.mutable_raft()->set_term(1); },
      "a raft body is not a paxos message");
  expect_refused(
      kPrepare, [](auto& in) { in.message.set_from(0); }, "from 0");
  expect_refused(
      kPrepare, [](auto& in) { in.message.set_to(0); }, "to 0");
  expect_refused(
      kPrepare, [](auto& in) { in.message.set_to(1); }, "to itself");
  expect_refused(
      kPrepare, [](auto& in) { paxos_of(in).clear_prepare(); }, "no paxos message");
}

TEST(PaxosCodecTest, BallotsThatCannotBePackedAreRefused) {
  // Ballot::to_term() asserts on these: a peer must not be able to stop us.
  expect_refused(
      kPrepare, [](auto& in) { paxos_of(in).mutable_prepare()->mutable_ballot()->set_round(0); },
      "null proposer ballot");
  expect_refused(
      kPrepare,
      [](auto& in) {
        paxos_of(in).mutable_prepare()->mutable_ballot()->set_round(paxos::kMaxRound + 2);
      },
      "round beyond 48 bits");
  expect_refused(
      kHeartbeat,
      [](auto& in) {
        auto* b = paxos_of(in).mutable_heartbeat()->mutable_ballot();
        b->set_round(paxos::kChosenBallot.round);
        b->set_node(0);
      },
      "the chosen marker as a proposer's ballot");
  expect_refused(
      kAccept,
      [](auto& in) {
        paxos_of(in)
            .mutable_accept()
            ->mutable_proposals(0)
            ->mutable_value()
            ->mutable_origin()
            ->set_node(1 << 16);
      },
      "origin node beyond 16 bits");
  expect_refused(
      kPromise,
      [](auto& in) {
        paxos_of(in).mutable_promise()->mutable_accepted(0)->mutable_ballot()->set_round(0);
      },
      "a reported value under the null ballot");
}

TEST(PaxosCodecTest, BallotsNamingTheWrongProposerAreRefused) {
  expect_refused(
      kPrepare, [](auto& in) { paxos_of(in).mutable_prepare()->mutable_ballot()->set_node(3); },
      "Prepare under another node's ballot");
  expect_refused(
      kAccept, [](auto& in) { paxos_of(in).mutable_accept()->mutable_ballot()->set_node(2); },
      "Accept under the receiver's ballot");
  expect_refused(
      kHeartbeat, [](auto& in) { paxos_of(in).mutable_heartbeat()->mutable_ballot()->set_node(3); },
      "Heartbeat under another node's ballot");
  expect_refused(
      kPromise, [](auto& in) { paxos_of(in).mutable_promise()->mutable_ballot()->set_node(1); },
      "Promise for a ballot that is not the receiver's");
  expect_refused(
      kAccepted, [](auto& in) { paxos_of(in).mutable_accepted()->mutable_ballot()->set_node(3); },
      "Accepted for a ballot that is not the receiver's");
  expect_refused(
      kNack, [](auto& in) { paxos_of(in).mutable_nack()->mutable_ballot()->set_node(1); },
      "Nack of a ballot that is not the receiver's");
}

TEST(PaxosCodecTest, MalformedSlotsAndValuesAreRefused) {
  expect_refused(
      kPrepare, [](auto& in) { paxos_of(in).mutable_prepare()->set_first_slot(0); },
      "Prepare from slot 0");
  expect_refused(
      kAccept, [](auto& in) { paxos_of(in).mutable_accept()->mutable_proposals(1)->set_slot(20); },
      "Accept slots not ascending");
  expect_refused(
      kAccept, [](auto& in) { paxos_of(in).mutable_accept()->mutable_proposals(0)->set_slot(0); },
      "Accept slot 0");
  expect_refused(
      kAccept,
      [](auto& in) {
        auto* b = paxos_of(in).mutable_accept()->mutable_proposals(0)->mutable_ballot();
        b->set_round(9);
        b->set_node(1);
      },
      "an Accept proposal under its own ballot (the core asserts they match)");
  expect_refused(
      kAccept,
      [](auto& in) {
        paxos_of(in).mutable_accept()->mutable_proposals(0)->mutable_value()->set_type(
            static_cast<paxospb::ValueType>(7));
      },
      "unknown value type");
  expect_refused(
      kPromise, [](auto& in) { paxos_of(in).mutable_promise()->mutable_accepted(1)->set_slot(17); },
      "Promise slots repeated");
  expect_refused(
      kAccepted, [](auto& in) { paxos_of(in).mutable_accepted()->set_slots(0, 0); },
      "Accepted slot 0");
  expect_refused(
      kDecide,
      [](auto& in) {
        paxos_of(in).mutable_decide()->mutable_chosen(0)->mutable_ballot()->set_round(3);
      },
      "a Decide value not marked chosen");
  expect_refused(
      kCatchup, [](auto& in) { paxos_of(in).mutable_catchup_request()->set_first(0); },
      "catch-up from slot 0");
  expect_refused(
      kCatchup, [](auto& in) { paxos_of(in).mutable_catchup_request()->set_last(2); },
      "catch-up range backwards");
  expect_refused(
      kNack, [](auto& in) { paxos_of(in).mutable_nack()->mutable_promised()->set_round(4); },
      "Nack by a promise (4.3) below the refused ballot (5.2)");
}

TEST(PaxosCodecTest, SnapshotWithoutItsBytesOrBytesWithoutASnapshotAreRefused) {
  expect_refused(
      kSnapshot, [](auto& in) { in.snapshot_data.reset(); }, "no bytes");
  expect_refused(
      kSnapshot,
      [](auto& in) { paxos_of(in).mutable_install_snapshot()->mutable_meta()->set_index(0); },
      "snapshot at slot 0");
  expect_refused(
      kPrepare, [](auto& in) { in.snapshot_data = std::make_shared<const std::string>("x"); },
      "bytes beside a Prepare");
}

TEST(PaxosCodecTest, UnknownFieldsOfANewerVersionAreIgnored) {
  IncomingMessage in = as_received(encode_paxos_message(every_kind()[kHeartbeat], GroupId(0)));
  // Field 99 (varint 1), appended to the Heartbeat: a newer sender's field.
  std::string bytes =
      in.message.paxos().heartbeat().SerializeAsString() + std::string("\x98\x06\x01", 3);
  ASSERT_TRUE(paxos_of(in).mutable_heartbeat()->ParseFromString(bytes));
  auto got = decode_paxos_message(in);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  expect_same(every_kind()[kHeartbeat], *got);
}

}  // namespace
}  // namespace chorus::net
