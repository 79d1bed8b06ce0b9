#include "net/codec/primary_codec.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "core/primary/messages.h"
#include "net/codec/testing.h"
#include "net/transport/envelope.h"
#include "net/transport/snapshot_stream.h"

namespace chorus::net {
namespace {

using primary::entry_term;
using primary::Epoch;
using primary::Message;
using testing_messages::as_received;

Term t(uint64_t epoch, uint64_t generation = 0) {
  return entry_term(Epoch(epoch), generation);
}

core::Entry entry(Term term, uint64_t index, core::EntryType type, std::string data) {
  return core::Entry{term, LogIndex(index), type, std::move(data)};
}

// Positions in every_kind(), for the tests that damage one kind.
enum Kind : size_t {
  kAppend,
  kHeartbeat,
  kAccepted,
  kMismatch,
  kLogEnds,
  kPrepareLimit,
  kStaleEpoch,
  kNeedSnapshot,
  kSnapshot,
  kConfiguration,
  kForward,
  kKinds
};

// One message of every kind (every Body alternative and every Refusal),
// each field set to a distinct value. Returned by value: tests keep the
// vector alive while they hold references into it.
std::vector<Message> every_kind(NodeId from = NodeId(1), NodeId to = NodeId(2)) {
  const Epoch e(3);
  auto snap = std::make_shared<const std::string>("snapshot bytes\0with a zero", 26);
  using primary::Refusal;
  std::vector<Message> all = {
      {from, to, e,
       primary::Append{t(3, 1),
                       LogIndex(10),
                       t(2),
                       {entry(t(2), 11, core::EntryType::kNormal, "x"),
                        entry(t(3), 12, core::EntryType::kNoop, ""),
                        entry(t(3, 1), 13, core::EntryType::kNormal, std::string(3, '\0'))},
                       LogIndex(9)}},
      {from, to, e, primary::Append{t(3), LogIndex(0), Term(0), {}, LogIndex(0)}},
      {from, to, e, primary::AppendResponse{Refusal::kNone, LogIndex(13), t(3, 1), {}, {}, {}}},
      {from, to, e,
       primary::AppendResponse{Refusal::kLogMismatch, {}, {}, LogIndex(8), t(2, 4), {}}},
      {from, to, e, primary::AppendResponse{Refusal::kLogEnds, {}, {}, LogIndex(6), {}, {}}},
      {from, to, e,
       primary::AppendResponse{Refusal::kPrepareLimit, {}, t(3, 1), {}, {}, LogIndex(12)}},
      {from, to, Epoch(4), primary::AppendResponse{Refusal::kStaleEpoch, {}, {}, {}, {}, {}}},
      {from, to, e, primary::AppendResponse{Refusal::kNeedSnapshot, {}, {}, LogIndex(7), {}, {}}},
      {from, to, e,
       primary::InstallSnapshot{
           core::SnapshotRef{{LogIndex(100), t(2, 5)}, snap},
           {{t(1), LogIndex(4)}, {t(2, 5), LogIndex(90)}, {t(3), LogIndex(101)}},
           LogIndex(120),
           core::SnapshotMeta{LogIndex(95), t(2, 3)}}},
      {from, to, e,
       primary::NewConfiguration{primary::Configuration{
           Epoch(3), NodeId(2), {NodeId(1), NodeId(2), NodeId(7)}, 0, 0, 5, {NodeId(4)}}}},
      {from, to, e, primary::Forward{{"set a 1", std::string("\0bin", 4)}}},
  };
  EXPECT_EQ(all.size(), size_t{kKinds});
  return all;
}

// Field-by-field equality: the one-line description plus what it omits.
void expect_same(const Message& want, const Message& got) {
  EXPECT_EQ(primary::describe(want), primary::describe(got));
  ASSERT_EQ(want.body.index(), got.body.index());
  if (const auto* w = std::get_if<primary::Append>(&want.body)) {
    EXPECT_EQ(w->entries, std::get<primary::Append>(got.body).entries);
  } else if (const auto* r = std::get_if<primary::AppendResponse>(&want.body)) {
    const auto& g = std::get<primary::AppendResponse>(got.body);
    EXPECT_EQ(r->refusal, g.refusal);
    EXPECT_EQ(r->match_index, g.match_index);
    EXPECT_EQ(r->match_term, g.match_term);
    EXPECT_EQ(r->hint, g.hint);
    EXPECT_EQ(r->hint_term, g.hint_term);
    EXPECT_EQ(r->refused_index, g.refused_index);
  } else if (const auto* s = std::get_if<primary::InstallSnapshot>(&want.body)) {
    const auto& g = std::get<primary::InstallSnapshot>(got.body);
    EXPECT_EQ(s->snapshot.meta, g.snapshot.meta);
    ASSERT_TRUE(g.snapshot.data);
    EXPECT_EQ(*s->snapshot.data, *g.snapshot.data);
    EXPECT_EQ(s->terms, g.terms);
    EXPECT_EQ(s->last_index, g.last_index);
    EXPECT_EQ(s->refuted, g.refuted);
  } else if (const auto* c = std::get_if<primary::NewConfiguration>(&want.body)) {
    EXPECT_EQ(c->config, std::get<primary::NewConfiguration>(got.body).config);
  } else if (const auto* f = std::get_if<primary::Forward>(&want.body)) {
    EXPECT_EQ(f->data, std::get<primary::Forward>(got.body).data);
  }
}

Result<Message> round_trip(const Message& m) {
  return decode_primary_message(as_received(encode_primary_message(m, GroupId(0))));
}

TEST(PrimaryCodecTest, EveryMessageKindRoundTrips) {
  for (const Message& m : every_kind()) {
    SCOPED_TRACE(primary::describe(m));
    auto got = round_trip(m);
    ASSERT_TRUE(got.is_ok()) << got.status().to_string();
    expect_same(m, *got);
  }
}

TEST(PrimaryCodecTest, EveryBodyAlternativeAndRefusalIsCovered) {
  std::vector<bool> seen(std::variant_size_v<primary::Body>, false);
  std::vector<bool> refusals(6, false);
  for (const Message& m : every_kind()) {
    seen[m.body.index()] = true;
    if (const auto* r = std::get_if<primary::AppendResponse>(&m.body)) {
      refusals.at(static_cast<size_t>(r->refusal)) = true;
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "alternative " << i;
  for (size_t i = 0; i < refusals.size(); ++i) {
    EXPECT_TRUE(refusals[i]) << primary::refusal_name(static_cast<primary::Refusal>(i));
  }
  EXPECT_EQ(primary::refusal_name(static_cast<primary::Refusal>(refusals.size())), "?")
      << "a new Refusal: add it to every_kind() and to this count";
}

TEST(PrimaryCodecTest, EnvelopeCarriesGroupSenderAndReceiver) {
  const auto all = every_kind(NodeId(4), NodeId(9));
  const OutgoingMessage out = encode_primary_message(all[kAppend], GroupId(3));
  EXPECT_EQ(out.to, NodeId(9));
  EXPECT_EQ(out.message.group_id(), 3u);
  EXPECT_EQ(out.message.from(), 4u);
  EXPECT_EQ(out.message.to(), 9u);
  EXPECT_TRUE(out.message.has_primary());
  EXPECT_EQ(out.message.primary().epoch(), 3u);
  EXPECT_TRUE(is_engine_body(out.message.body_case()));
  EXPECT_FALSE(out.snapshot.has_value());
}

TEST(PrimaryCodecTest, SnapshotBytesTravelBesideTheMessage) {
  const auto all = every_kind();
  const auto& ref = std::get<primary::InstallSnapshot>(all[kSnapshot].body).snapshot;
  const OutgoingMessage out = encode_primary_message(all[kSnapshot], GroupId(0));
  ASSERT_TRUE(out.snapshot.has_value());
  EXPECT_EQ(out.snapshot->meta, ref.meta);
  EXPECT_EQ(out.snapshot->data, ref.data);  // shared, not copied
  EXPECT_EQ(out.message.primary().install_snapshot().meta().index(), 100u);
  EXPECT_LT(out.message.ByteSizeLong(), 80u) << "the bytes must not be in the message";

  Message lazy = all[kSnapshot];  // a copy: the transport opens the snapshot file
  std::get<primary::InstallSnapshot>(lazy.body).snapshot.data = nullptr;
  const OutgoingMessage lazy_out = encode_primary_message(lazy, GroupId(0));
  ASSERT_TRUE(lazy_out.snapshot.has_value());
  EXPECT_EQ(lazy_out.snapshot->data, nullptr);
  EXPECT_EQ(lazy_out.message.SerializeAsString(), out.message.SerializeAsString());
}

// A primary that has seen many failovers: its whole history cannot ride in a
// snapshot header, so the newest starts go, and the header still fits.
TEST(PrimaryCodecTest, LongTermHistoryIsCutToTheNewestAndFitsTheSnapshotHeader) {
  const uint64_t n = 3 * kMaxWireTermStarts;
  primary::InstallSnapshot s;
  for (uint64_t i = 1; i <= n; ++i) {
    // Worst case sizes: huge epochs and indexes (10-byte varints).
    s.terms.push_back({Term((uint64_t{1} << 63) + (i << 32)), LogIndex((uint64_t{1} << 63) + i)});
  }
  s.last_index = s.terms.back().first;
  s.snapshot = core::SnapshotRef{{s.last_index, s.terms.back().term},
                                 std::make_shared<const std::string>("x")};
  const Message m{NodeId(UINT64_MAX), NodeId(UINT64_MAX - 1),
                  primary::epoch_of(s.terms.back().term), s};
  const OutgoingMessage out = encode_primary_message(m, GroupId(UINT64_MAX));
  EXPECT_LE(out.message.ByteSizeLong() + 16, kMaxSnapshotHeaderBytes)
      << "with a chunk's own fields around it";
  auto got = decode_primary_message(as_received(out));
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  const auto& g = std::get<primary::InstallSnapshot>(got->body);
  ASSERT_EQ(g.terms.size(), kMaxWireTermStarts);
  EXPECT_EQ(g.terms.front(), s.terms[n - kMaxWireTermStarts]);
  EXPECT_EQ(g.terms.back(), s.terms.back());
}

TEST(PrimaryCodecTest, NewConfigurationNeverCarriesALease) {
  const auto all = every_kind();
  Message m = all[kConfiguration];
  std::get<primary::NewConfiguration>(m.body).config.lease_ticks = 50;
  auto got = round_trip(m);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  EXPECT_EQ(std::get<primary::NewConfiguration>(got->body).config.lease_ticks, 0u);
}

// Encodes `m`, lets `mutate` damage what arrives, and expects a refusal.
template <class F>
void expect_refused(const Message& m, F mutate, const char* why) {
  IncomingMessage in = as_received(encode_primary_message(m, GroupId(0)));
  mutate(in);
  auto got = decode_primary_message(in);
  ASSERT_FALSE(got.is_ok()) << why;
  EXPECT_EQ(got.status().code(), StatusCode::kCorruption) << why;
}

primarypb::PrimaryMessage& pm(IncomingMessage& in) {
  return *in.message.mutable_primary();
}
primarypb::Entry& entry_of(IncomingMessage& in, int i) {
  return *pm(in).mutable_append()->mutable_entries(i);
}

TEST(PrimaryCodecTest, MalformedEnvelopeIsRefused) {
  const auto all = every_kind();
  const Message& append = all[kAppend];
  expect_refused(
      append, [](auto& in) { in.message.clear_primary(); }, "no primary body");
  expect_refused(
      append, [](auto& in) { in.message.mutable_raft()->set_term(1); }, "a raft body");
  expect_refused(
      append, [](auto& in) { in.message.set_from(0); }, "from 0");
  expect_refused(
      append, [](auto& in) { in.message.set_to(0); }, "to 0");
  expect_refused(
      append, [](auto& in) { in.message.set_to(in.message.from()); }, "to itself");
  expect_refused(
      append, [](auto& in) { pm(in).clear_append(); }, "no primary message");
}

TEST(PrimaryCodecTest, MalformedAppendIsRefused) {
  const auto all = every_kind();
  const Message& a = all[kAppend];
  const uint64_t e3 = t(3).value();
  expect_refused(
      a, [](auto& in) { entry_of(in, 1).set_index(20); }, "gap in entries");
  expect_refused(
      a, [](auto& in) { entry_of(in, 0).set_index(10); }, "first entry not after prev");
  expect_refused(
      a, [](auto& in) { entry_of(in, 2).set_term(t(2).value()); }, "entry term decreases");
  expect_refused(
      a, [](auto& in) { entry_of(in, 0).set_term(t(1).value()); }, "entry term below prev_term");
  expect_refused(
      a, [](auto& in) { entry_of(in, 2).set_term(t(3, 2).value()); }, "entry term above term");
  expect_refused(
      a, [](auto& in) { entry_of(in, 0).set_type(static_cast<primarypb::EntryType>(9)); },
      "unknown entry type");
  expect_refused(
      a, [e3](auto& in) { pm(in).mutable_append()->set_term(e3 + (uint64_t{1} << 32)); },
      "term of another epoch than the message's");
  expect_refused(
      a, [](auto& in) { pm(in).set_epoch(4); }, "message epoch beyond the term's");
  expect_refused(
      a, [](auto& in) { pm(in).mutable_append()->set_prev_term(0); }, "prev entry without a term");
  expect_refused(
      all[kHeartbeat], [](auto& in) { pm(in).mutable_append()->set_prev_term(t(1).value()); },
      "index 0 with a term");
  expect_refused(
      all[kHeartbeat],
      [](auto& in) {
        pm(in).set_epoch(0);
        pm(in).mutable_append()->set_term(0);
      },
      "an append from epoch 0");
  expect_refused(
      a, [](auto& in) { pm(in).mutable_append()->set_prev_index(UINT64_MAX - 1); },
      "index overflow");
}

TEST(PrimaryCodecTest, MalformedAppendResponseIsRefused) {
  const auto all = every_kind();
  expect_refused(
      all[kAccepted],
      [](auto& in) {
        pm(in).mutable_append_response()->set_refusal(static_cast<primarypb::Refusal>(9));
      },
      "unknown refusal");
  expect_refused(
      all[kAccepted], [](auto& in) { pm(in).mutable_append_response()->set_match_term(0); },
      "match without a term");
  expect_refused(
      all[kAccepted],
      [](auto& in) { pm(in).mutable_append_response()->set_match_term(t(4).value()); },
      "match term of an epoch the backup has not seen");
  expect_refused(
      all[kPrepareLimit], [](auto& in) { pm(in).mutable_append_response()->set_match_term(7); },
      "a term of epoch 0");
  // Only a refusal inside the backup's snapshot names a term to check.
  expect_refused(
      all[kLogEnds],
      [](auto& in) { pm(in).mutable_append_response()->set_hint_term(t(2).value()); },
      "a log's end with a term");
}

primarypb::InstallSnapshot& snap_of(IncomingMessage& in) {
  return *pm(in).mutable_install_snapshot();
}

TEST(PrimaryCodecTest, MalformedInstallSnapshotIsRefused) {
  const auto all = every_kind();
  const Message& s = all[kSnapshot];
  expect_refused(
      s, [](auto& in) { snap_of(in).mutable_meta()->set_index(0); }, "index 0");
  expect_refused(
      s, [](auto& in) { snap_of(in).mutable_meta()->set_term(0); }, "no term");
  expect_refused(
      s, [](auto& in) { snap_of(in).mutable_meta()->set_term(t(4).value()); },
      "term beyond the epoch");
  expect_refused(
      s, [](auto& in) { in.snapshot_data = nullptr; }, "snapshot without bytes");
  expect_refused(
      all[kHeartbeat],
      [](auto& in) { in.snapshot_data = std::make_shared<const std::string>("x"); },
      "bytes attached to an append");
  expect_refused(
      s, [](auto& in) { snap_of(in).add_term_terms(t(3, 1).value()); }, "more terms than starts");
  expect_refused(
      s, [](auto& in) { snap_of(in).set_term_firsts(1, 101); }, "starts do not ascend");
  expect_refused(
      s, [](auto& in) { snap_of(in).set_term_terms(1, t(1).value()); }, "terms do not ascend");
  expect_refused(
      s, [](auto& in) { snap_of(in).set_term_firsts(0, 0); }, "a start at index 0");
  expect_refused(
      s, [](auto& in) { snap_of(in).set_term_terms(1, t(2, 4).value()); },
      "history contradicts the snapshot's term");
  expect_refused(
      s, [](auto& in) { snap_of(in).set_last_index(99); }, "last_index before meta");
  expect_refused(
      s, [](auto& in) { snap_of(in).mutable_refuted()->set_index(0); },
      "a refuted point at index 0 with a term");
  expect_refused(
      s, [](auto& in) { snap_of(in).mutable_refuted()->set_term(t(4).value()); },
      "a refuted term beyond the epoch");
  expect_refused(
      s, [](auto& in) { snap_of(in).set_term_firsts(2, 121); }, "a start beyond last_index");
  expect_refused(
      s, [](auto& in) { snap_of(in).set_term_terms(2, t(4).value()); }, "history beyond epoch");
  expect_refused(
      s,
      [](auto& in) {
        for (size_t i = 0; i < kMaxWireTermStarts; ++i) {
          snap_of(in).add_term_terms(t(3, 1 + i).value());
          snap_of(in).add_term_firsts(102 + i);
        }
        snap_of(in).set_last_index(1000);
      },
      "too many term starts");
}

primarypb::NewConfiguration& config_of(IncomingMessage& in) {
  return *pm(in).mutable_new_configuration();
}

TEST(PrimaryCodecTest, MalformedNewConfigurationIsRefused) {
  const auto all = every_kind();
  const Message& c = all[kConfiguration];
  expect_refused(
      c, [](auto& in) { config_of(in).set_epoch(0); }, "epoch 0");
  expect_refused(
      c, [](auto& in) { config_of(in).set_epoch(4); }, "epoch beyond the sender's");
  expect_refused(
      c, [](auto& in) { config_of(in).set_primary(5); }, "primary not a member");
  expect_refused(
      c, [](auto& in) { config_of(in).set_primary(0); }, "no primary");
  expect_refused(
      c, [](auto& in) { config_of(in).add_members(7); }, "a member twice");
  expect_refused(
      c, [](auto& in) { config_of(in).add_members(0); }, "member 0");
  expect_refused(
      c,
      [](auto& in) {
        for (uint64_t i = 0; i < kMaxConfigurationMembers; ++i) config_of(in).add_members(100 + i);
      },
      "too many members");
  expect_refused(
      c, [](auto& in) { config_of(in).add_learners(7); }, "a learner that is a member");
  expect_refused(
      c, [](auto& in) { config_of(in).add_learners(4); }, "a learner twice");
  expect_refused(
      c, [](auto& in) { config_of(in).add_learners(0); }, "learner 0");
}

TEST(PrimaryCodecTest, MalformedForwardIsRefused) {
  const auto all = every_kind();
  const Message& f = all[kForward];
  expect_refused(
      f, [](auto& in) { in.message.mutable_primary()->mutable_forward()->clear_data(); },
      "no writes");
  expect_refused(
      f,
      [](auto& in) {
        for (size_t i = 0; i < kMaxForwardedWrites; ++i)
          in.message.mutable_primary()->mutable_forward()->add_data("x");
      },
      "too many writes");
}

TEST(PrimaryCodecTest, UnknownFieldsOfANewerVersionAreIgnored) {
  const auto all = every_kind();
  IncomingMessage in = as_received(encode_primary_message(all[kHeartbeat], GroupId(0)));
  std::string bytes = in.message.SerializeAsString();
  bytes += std::string("\xf8\x07\x01", 3);  // field 127, varint 1: unknown here
  ASSERT_TRUE(in.message.ParseFromString(bytes));
  EXPECT_TRUE(decode_primary_message(in).is_ok());
}

}  // namespace
}  // namespace chorus::net
