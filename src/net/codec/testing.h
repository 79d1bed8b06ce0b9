// Test helpers shared by the Raft codec and transport tests: one Raft
// message of every kind, a field-by-field comparison, and what a receiver
// gets for a sent message.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "core/raft/messages.h"
#include "net/transport/peer_message.h"

namespace chorus::net::testing_messages {

inline core::Entry entry(uint64_t term, uint64_t index, core::EntryType type, std::string data) {
  return core::Entry{Term(term), LogIndex(index), type, std::move(data)};
}

// One message of every kind from -> to (every Body alternative, both
// variants of the flags), each field set to a distinct value.
inline std::vector<raft::Message> every_kind(NodeId from = NodeId(1), NodeId to = NodeId(2)) {
  const Term t(7);
  auto snap = std::make_shared<const std::string>("snapshot bytes\0with a zero", 26);
  return {
      {from, to, t, raft::RequestVote{LogIndex(41), Term(6), false}},
      {from, to, t, raft::RequestVote{LogIndex(41), Term(6), true}},
      {from, to, t, raft::RequestVoteResponse{true, false}},
      {from, to, t, raft::RequestVoteResponse{false, true}},
      {from, to, t,
       raft::AppendEntries{
           LogIndex(10),
           Term(5),
           {entry(5, 11, core::EntryType::kNormal, "x"), entry(7, 12, core::EntryType::kNoop, ""),
            entry(7, 13, core::EntryType::kNormal, std::string(3, '\0'))},
           LogIndex(9)}},
      {from, to, t, raft::AppendEntries{LogIndex(0), Term(0), {}, LogIndex(0)}},
      {from, to, t, raft::AppendEntriesResponse{true, LogIndex(13), {}, {}, {}}},
      {from, to, t, raft::AppendEntriesResponse{false, {}, LogIndex(10), Term(3), LogIndex(8)}},
      {from, to, t, raft::Heartbeat{LogIndex(12), 99}},
      {from, to, t, raft::HeartbeatResponse{99}},
      {from, to, t, raft::InstallSnapshot{core::SnapshotRef{{LogIndex(100), Term(6)}, snap}}},
      {from, to, t, raft::ForwardProposals{{"p1", "", std::string("\xff\x00", 2)}}},
      {from, to, t, raft::ReadIndexRequest{0xdeadbeefcafeull}},
      {from, to, t, raft::ReadIndexResponse{0xdeadbeefcafeull, LogIndex(12)}},
  };
}

// What the receiving transport delivers for `out` (when nothing is lost):
// the message through its bytes, as on the wire, and the snapshot's bytes.
inline IncomingMessage as_received(const OutgoingMessage& out) {
  IncomingMessage in;
  in.from = NodeId(out.message.from());
  EXPECT_TRUE(in.message.ParseFromString(out.message.SerializeAsString()));
  if (out.snapshot) in.snapshot_data = out.snapshot->data;
  return in;
}

// Field-by-field equality: the one-line description plus the fields it omits.
inline void expect_same(const raft::Message& want, const raft::Message& got) {
  EXPECT_EQ(raft::describe(want), raft::describe(got));
  ASSERT_EQ(want.body.index(), got.body.index());
  if (const auto* w = std::get_if<raft::AppendEntries>(&want.body)) {
    EXPECT_EQ(w->entries, std::get<raft::AppendEntries>(got.body).entries);
  } else if (const auto* s = std::get_if<raft::InstallSnapshot>(&want.body)) {
    const auto& g = std::get<raft::InstallSnapshot>(got.body).snapshot;
    EXPECT_EQ(s->snapshot.meta, g.meta);
    ASSERT_TRUE(g.data);
    EXPECT_EQ(*s->snapshot.data, *g.data);
  } else if (const auto* f = std::get_if<raft::ForwardProposals>(&want.body)) {
    EXPECT_EQ(f->data, std::get<raft::ForwardProposals>(got.body).data);
  } else if (const auto* r = std::get_if<raft::AppendEntriesResponse>(&want.body)) {
    const auto& g = std::get<raft::AppendEntriesResponse>(got.body);
    EXPECT_EQ(r->success, g.success);
    EXPECT_EQ(r->match_index, g.match_index);
    EXPECT_EQ(r->rejected_index, g.rejected_index);
    EXPECT_EQ(r->conflict_term, g.conflict_term);
    EXPECT_EQ(r->conflict_index, g.conflict_index);
  } else if (const auto* v = std::get_if<raft::RequestVoteResponse>(&want.body)) {
    EXPECT_EQ(v->pre_vote, std::get<raft::RequestVoteResponse>(got.body).pre_vote);
  }
}

}  // namespace chorus::net::testing_messages
