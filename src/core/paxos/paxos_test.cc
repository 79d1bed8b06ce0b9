// Paxos core tests, named after the rule they check (Lamport, "Paxos Made
// Simple"; van Renesse & Altinbuken, "Paxos Made Moderately Complex"), then
// scenarios on the in-memory cluster (testing.h), then a randomized sweep.
#include "core/paxos/paxos.h"

#include <gtest/gtest.h>

#include <string>

#include "core/paxos/testing.h"

namespace chorus::paxos {
namespace {

using core::EntryType;
using core::ProposeStatus;
using testing::Cluster;
using testing::Options;

Config config3(uint64_t id) {
  Config c;
  c.id = NodeId(id);
  c.members = {NodeId(1), NodeId(2), NodeId(3)};
  return c;
}

Message msg(uint64_t from, uint64_t to, Body b) {
  return Message{NodeId(from), NodeId(to), std::move(b)};
}

Ballot bal(uint64_t round, uint64_t node) {
  return Ballot{round, NodeId(node)};
}

// Drives a lone acceptor: takes its Ready as a host would, returns it.
Ready drain(Paxos& p) {
  Ready rd = p.ready();
  p.advance(rd);
  return rd;
}

template <class T>
const T* body(const Message& m) {
  return std::get_if<T>(&m.body);
}

// ---- Ballots and durable state --------------------------------------------

TEST(Ballot, OrderedByRoundThenNodeAndPackingKeepsOrder) {
  EXPECT_LT(bal(1, 3), bal(2, 1));
  EXPECT_LT(bal(2, 1), bal(2, 2));
  EXPECT_LT(bal(1, 3).to_term(), bal(2, 1).to_term());
  EXPECT_LT(bal(2, 1).to_term(), bal(2, 2).to_term());
  EXPECT_EQ(Ballot::from_term(bal(7, 9).to_term()), bal(7, 9));
  EXPECT_LT(bal(kMaxRound, 65535), kChosenBallot);
}

TEST(DurableState, RoundTripsAndRejectsCorruption) {
  for (const DurableState ds :
       {DurableState{bal(42, 3), LogIndex(0)}, DurableState{bal(42, 3), LogIndex(1000)}}) {
    const Result<DurableState> back = Paxos::decode_durable(Paxos::encode_durable(ds));
    ASSERT_TRUE(back.is_ok());
    EXPECT_EQ(back.value(), ds);
  }
  EXPECT_FALSE(Paxos::decode_durable("short").is_ok());
  EXPECT_FALSE(Paxos::decode_durable(std::string(16, '\xff')).is_ok());
}

TEST(DurableState, ANewNodesEmptyStateDecodesToTheNullPromise) {
  // The host hands a node that never saved its state empty bytes.
  const Result<DurableState> fresh = Paxos::decode_durable("");
  ASSERT_TRUE(fresh.is_ok());
  EXPECT_TRUE(fresh.value().promised.is_null());
}

TEST(SlotCodec, MatchesTheWorkedExampleInTheFormatDoc) {
  // docs/formats/paxos.md, "Worked example".
  const core::Entry e =
      encode_slot(LogIndex(7), bal(3, 2), Value{bal(2, 1), EntryType::kNormal, "SET k v"});
  EXPECT_EQ(e.term, Term(0x30002));
  EXPECT_EQ(e.data, std::string("\x01\x00\x02\x00\x00\x00\x00\x00SET k v", 15));
  EXPECT_EQ(Paxos::encode_durable(DurableState{bal(3, 2), LogIndex(0)}),
            std::string("\x03\0\0\0\0\0\0\0\x02\0\0\0\0\0\0\0", 16));
}

TEST(SlotCodec, RoundTripsAcceptedChosenAndHoles) {
  const Value v{bal(3, 1), EntryType::kNormal, "cmd"};
  const core::Entry e = encode_slot(LogIndex(5), bal(4, 2), v);
  EXPECT_EQ(e.term, bal(4, 2).to_term());
  EXPECT_EQ(decode_slot(e), (PValue{LogIndex(5), bal(4, 2), v}));
  EXPECT_EQ(decode_slot(encode_slot(LogIndex(6), kChosenBallot, v))->ballot, kChosenBallot);
  EXPECT_FALSE(decode_slot(encode_hole(LogIndex(7))).has_value());
}

// ---- Acceptor rules ----------------------------------------------------------

TEST(PaxosConfig, ByteCapsMustBePositive) {
  EXPECT_TRUE(config3(1).validate().is_ok());
  Config a = config3(1);
  a.max_bytes_per_accept = 0;
  EXPECT_FALSE(a.validate().is_ok());
  Config d = config3(1);
  d.max_bytes_per_decide = 0;
  EXPECT_FALSE(d.validate().is_ok());
}

TEST(PaxosAcceptor, PromiseLeavesOnlyAfterThePromiseIsPersisted) {
  Paxos a(config3(2), Prng(1));
  a.step(msg(1, 2, Prepare{bal(1, 1), LogIndex(1)}));
  EXPECT_FALSE(a.has_messages());  // nothing may leave before the fsync
  const Ready rd = drain(a);
  ASSERT_TRUE(rd.durable_state.has_value());
  EXPECT_EQ(rd.durable_state->promised, bal(1, 1));
  EXPECT_TRUE(rd.messages.empty());
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  EXPECT_NE(body<Promise>(rd.messages_after_persist[0]), nullptr);
}

TEST(PaxosAcceptor, AcceptedLeavesOnlyAfterTheValueIsPersisted) {
  Paxos a(config3(2), Prng(1));
  const Value v{bal(1, 1), EntryType::kNormal, "x"};
  a.step(msg(1, 2, Accept{bal(1, 1), {PValue{LogIndex(1), bal(1, 1), v}}, LogIndex(0)}));
  const Ready rd = drain(a);
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(decode_slot(rd.entries[0])->value, v);
  EXPECT_TRUE(rd.messages.empty());
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  const auto* acc = body<Accepted>(rd.messages_after_persist[0]);
  ASSERT_NE(acc, nullptr);
  EXPECT_EQ(acc->slots, std::vector<LogIndex>{LogIndex(1)});
}

TEST(PaxosAcceptor, NeverPromisesOrAcceptsBelowItsPromise) {
  Paxos a(config3(2), Prng(1));
  a.step(msg(3, 2, Prepare{bal(5, 3), LogIndex(1)}));
  drain(a);
  a.step(msg(1, 2, Prepare{bal(4, 1), LogIndex(1)}));
  a.step(msg(1, 2,
             Accept{bal(4, 1),
                    {PValue{LogIndex(1), bal(4, 1), Value{bal(4, 1), EntryType::kNormal, "y"}}},
                    LogIndex(0)}));
  const Ready rd = drain(a);
  EXPECT_TRUE(rd.entries.empty());
  ASSERT_EQ(rd.messages.size(), 2u);
  for (const Message& m : rd.messages) {
    const auto* n = body<Nack>(m);
    ASSERT_NE(n, nullptr);
    EXPECT_EQ(n->promised, bal(5, 3));  // the Nack names the higher ballot
  }
  EXPECT_FALSE(a.accepted(LogIndex(1)).has_value());
}

TEST(PaxosAcceptor, PromiseReportsAcceptedValuesFromTheFirstSlot) {
  Paxos a(config3(2), Prng(1));
  const Value v1{bal(1, 1), EntryType::kNormal, "one"};
  const Value v3{bal(1, 1), EntryType::kNormal, "three"};
  a.step(msg(1, 2,
             Accept{bal(1, 1),
                    {PValue{LogIndex(1), bal(1, 1), v1}, PValue{LogIndex(3), bal(1, 1), v3}},
                    LogIndex(0)}));
  const Ready first = drain(a);
  // Slot 2 was never accepted: it is persisted as a hole.
  ASSERT_EQ(first.entries.size(), 3u);
  EXPECT_TRUE(is_hole(first.entries[1]));
  a.step(msg(3, 2, Prepare{bal(2, 3), LogIndex(2)}));
  const Ready rd = drain(a);
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  const auto* p = body<Promise>(rd.messages_after_persist[0]);
  ASSERT_NE(p, nullptr);
  ASSERT_EQ(p->accepted.size(), 1u);
  EXPECT_EQ(p->accepted[0], (PValue{LogIndex(3), bal(1, 1), v3}));
}

TEST(PaxosAcceptor, CrashRestartKeepsItsPromise) {
  Paxos a(config3(2), Prng(1));
  a.step(msg(3, 2, Prepare{bal(5, 3), LogIndex(1)}));
  const Ready rd = drain(a);
  PersistentState st;
  st.durable = *rd.durable_state;
  Paxos restarted(config3(2), Prng(2), st);
  EXPECT_EQ(restarted.promised(), bal(5, 3));
  restarted.step(msg(1, 2, Prepare{bal(4, 1), LogIndex(1)}));
  const Ready after = drain(restarted);
  ASSERT_EQ(after.messages.size(), 1u);
  EXPECT_NE(body<Nack>(after.messages[0]), nullptr);
  // Its own next ballot is above what it promised.
  for (int i = 0; i < 40 && restarted.paxos_role() == PaxosRole::kFollower; ++i) {
    restarted.tick();
  }
  EXPECT_GT(restarted.ballot(), bal(5, 3));
}

// The host rewrites a log's tail by cutting it durably and then syncing the
// new copy; a crash in between loses accepted slots past the cut (found by
// the simulator). The acceptor first makes written_through cover them, so
// after such a crash it knows, and promises nothing for them — its Promise
// could omit a chosen value — until it has learned them chosen.
TEST(PaxosAcceptor, AcceptorThatLostSlotsInARewriteCrashPromisesNothingForThemUntilRelearned) {
  Paxos a(config3(2), Prng(1));
  const Value v1{bal(1, 1), EntryType::kNormal, "one"};
  const Value v2{bal(1, 1), EntryType::kNormal, "two"};
  // Slot 2 arrives first: the log is a hole at 1, then slot 2.
  a.step(msg(1, 2, Accept{bal(1, 1), {PValue{LogIndex(2), bal(1, 1), v2}}, LogIndex(0)}));
  Ready rd = drain(a);
  ASSERT_EQ(rd.entries.size(), 2u);
  // Slot 1 arrives: slot 2 must be written again behind it.
  a.step(msg(1, 2, Accept{bal(1, 1), {PValue{LogIndex(1), bal(1, 1), v1}}, LogIndex(0)}));
  rd = drain(a);
  ASSERT_TRUE(rd.durable_state.has_value());
  EXPECT_EQ(rd.durable_state->written_through, LogIndex(2)) << "slot 2 is on disk";
  EXPECT_TRUE(rd.entries.empty()) << "the rewrite waits until the mark is durable";
  EXPECT_TRUE(rd.messages_after_persist.empty());
  const DurableState disk = *rd.durable_state;
  rd = drain(a);
  ASSERT_EQ(rd.entries.size(), 2u);
  EXPECT_EQ(rd.entries.front().index, LogIndex(1));
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  // The host cut slot 2 durably and crashed before the new copy was synced.
  Paxos b(config3(2), Prng(2), PersistentState{disk, std::nullopt, {}, LogIndex(0)});
  EXPECT_EQ(b.amnesic_through(), LogIndex(2));
  b.step(msg(3, 2, Prepare{bal(2, 3), LogIndex(1)}));
  rd = drain(b);
  for (const Message& m : rd.messages_after_persist) {
    EXPECT_EQ(body<Promise>(m), nullptr) << "a Promise reporting slot 2 empty";
  }
  // Once it has learned slots 1 and 2 chosen it promises again, reporting them.
  b.step(msg(
      1, 2,
      Decide{{PValue{LogIndex(1), kChosenBallot, v1}, PValue{LogIndex(2), kChosenBallot, v2}}}));
  drain(b);
  EXPECT_FALSE(b.amnesic_through().has_value());
  b.step(msg(3, 2, Prepare{bal(3, 3), LogIndex(1)}));
  rd = drain(b);
  ASSERT_EQ(rd.messages_after_persist.size(), 1u);
  const auto* pr = body<Promise>(rd.messages_after_persist[0]);
  ASSERT_NE(pr, nullptr);
  ASSERT_EQ(pr->accepted.size(), 2u);
  EXPECT_EQ(pr->accepted[1].value, v2);
  EXPECT_EQ(pr->accepted[1].ballot, kChosenBallot);
}

TEST(PaxosProposer, PrepareLeavesOnlyOnceItsBallotIsDurable) {
  Paxos p(config3(1), Prng(1));
  while (p.paxos_role() == PaxosRole::kFollower) p.tick();
  EXPECT_FALSE(p.has_messages());
  const Ready rd = drain(p);
  ASSERT_TRUE(rd.durable_state.has_value());
  EXPECT_EQ(rd.durable_state->promised, p.ballot());
  EXPECT_TRUE(rd.messages.empty());
  ASSERT_EQ(rd.messages_after_persist.size(), 2u);
  for (const Message& m : rd.messages_after_persist) EXPECT_NE(body<Prepare>(m), nullptr);
}

TEST(PaxosProposer, ACrashedProposerNeverReusesABallot) {
  // Found by the sweep (seed 778 with harsher faults): a proposer crashed
  // with its ballot not yet durable, restarted, drew the same ballot and
  // proposed another value for a slot under it.
  Cluster c({.nodes = 3});
  c.hold(1);
  while (c.px(1).paxos_role() == PaxosRole::kFollower) c.tick(1);
  c.deliver_all();
  // Nothing left: the Prepares wait for the persist, so the ballot the crash
  // makes n1 forget was never seen by anyone and may be drawn again.
  for (const Message& m : c.sent_log()) EXPECT_EQ(body<Prepare>(m), nullptr);
  EXPECT_EQ(c.px(2).promised(), Ballot{});
  c.crash(1);
  c.restart(1);
  ASSERT_TRUE(c.elect(1));
  const auto r = c.propose(1, "x");
  c.deliver_all();
  EXPECT_EQ(c.applied(2).at(r.index).data, "x");
}

TEST(PaxosAcceptor, RestartedAcceptorStillRefusesTheBallotItOutranked) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  const Ballot old = c.px(1).ballot();
  // n3 runs phase 1 with a higher ballot that n2 promises, but n1 hears
  // nothing of it.
  c.cut(1, 3);
  c.cut(1, 2);
  while (c.px(3).paxos_role() == PaxosRole::kFollower) c.tick(3);
  c.deliver_all();
  ASSERT_GT(c.px(2).promised(), old);
  c.crash(2);
  c.restart(2);
  EXPECT_GT(c.px(2).promised(), old);
  c.heal();
  c.cut(1, 3);
  c.sent_log().clear();
  c.propose(1, "from-the-old-ballot");
  c.deliver_all();
  bool nacked = false;
  for (const Message& m : c.sent_log()) {
    EXPECT_EQ(body<Accepted>(m) != nullptr && m.from == NodeId(2) && m.to == NodeId(1), false);
    nacked = nacked || (body<Nack>(m) != nullptr && m.from == NodeId(2));
  }
  EXPECT_TRUE(nacked);
  EXPECT_EQ(c.px(1).paxos_role(), PaxosRole::kFollower);  // preempted
}

TEST(PaxosAcceptor, CrashBeforeThePersistLosesThePromiseButNoOneHeardIt) {
  Cluster c({.nodes = 3});
  c.hold(2);
  c.hold(3);
  while (c.px(1).paxos_role() == PaxosRole::kFollower) c.tick(1);
  c.deliver_all();
  EXPECT_TRUE(c.holding_ready(2));
  EXPECT_EQ(c.px(1).paxos_role(), PaxosRole::kPreparing);  // no promise reached n1
  c.crash(2);
  c.restart(2);
  EXPECT_EQ(c.px(2).promised(), Ballot{});
  c.release(3);
  c.deliver_all();
  EXPECT_EQ(c.px(1).paxos_role(), PaxosRole::kLeader);
}

// ---- Phase 1: value adoption -------------------------------------------------

TEST(PaxosPhase1, ValueAcceptedByAMinorityIsChosenWhenAPromiseRevealsIt) {
  Cluster c({.nodes = 5});
  ASSERT_TRUE(c.elect(1));
  // n1's Accept reaches n2 only: {n1, n2} is a minority of five.
  for (uint64_t n : {3, 4, 5}) c.cut(1, n);
  const auto r = c.propose(1, "x");
  ASSERT_EQ(r.status, ProposeStatus::kAccepted);
  c.deliver_all();
  ASSERT_TRUE(c.px(2).accepted(r.index).has_value());
  EXPECT_LT(c.px(1).chosen_through(), r.index);
  c.crash(1);
  c.heal();
  ASSERT_TRUE(c.elect(3));  // n2's promise reveals (slot, ballot, "x")
  c.deliver_all();
  for (uint64_t n : {2, 3, 4, 5}) {
    ASSERT_TRUE(c.applied(n).contains(r.index)) << "n" << n;
    EXPECT_EQ(c.applied(n).at(r.index).data, "x");
    EXPECT_EQ(c.applied(n).at(r.index).term, r.term);  // the write keeps its origin ballot
  }
}

TEST(PaxosPhase1, ValueNoMajorityMemberAcceptedMayBeReplaced) {
  Cluster c({.nodes = 5});
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  const auto lost = c.propose(1, "lost");  // accepted by n1 alone
  c.deliver_all();
  c.crash(1);
  c.heal();
  ASSERT_TRUE(c.elect(3));  // no promise reports the slot: it is free
  const auto next = c.propose(3, "next");
  ASSERT_EQ(next.index, lost.index);
  c.deliver_all();
  for (uint64_t n : {2, 3, 4, 5}) EXPECT_EQ(c.applied(n).at(lost.index).data, "next");
  // n1 comes back with "lost" on its disk and learns "next" instead.
  c.restart(1);
  ASSERT_TRUE(c.run_until([&] { return c.applied(1).contains(lost.index); }));
  EXPECT_EQ(c.applied(1).at(lost.index).data, "next");
}

TEST(PaxosPhase1, HolesBelowAnAdoptedSlotAreFilledWithNoops) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  const auto a = c.propose(1, "a");  // accepted by n1 alone
  c.deliver_all();
  c.heal();
  c.cut(1, 3);
  const auto b = c.propose(1, "b");  // only the new slot goes out: to n2
  c.deliver_all();
  ASSERT_EQ(b.index, a.index.next());
  EXPECT_FALSE(c.px(2).accepted(a.index).has_value());
  ASSERT_TRUE(c.px(2).accepted(b.index).has_value());
  c.crash(1);
  c.heal();
  ASSERT_TRUE(c.elect(3));
  c.deliver_all();
  for (uint64_t n : {2, 3}) {
    EXPECT_EQ(c.applied(n).at(a.index).type, EntryType::kNoop);
    EXPECT_EQ(c.applied(n).at(b.index).data, "b");
  }
}

TEST(PaxosPhase1, AReplicaWithAShorterLogBecomesLeaderAndKeepsEveryChosenValue) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.isolate(3);
  std::vector<core::ProposeResult> rs;
  for (int i = 0; i < 5; ++i) rs.push_back(c.propose(1, "v" + std::to_string(i)));
  c.deliver_all();
  ASSERT_EQ(c.px(1).chosen_through(), rs.back().index);
  EXPECT_FALSE(c.px(3).accepted(rs.back().index).has_value());  // n3's log is shorter
  c.crash(1);
  c.heal();
  // Raft's election restriction would refuse n3 (n2's log is longer). Paxos
  // needs no such rule: n2's promise hands n3 the values it lacks.
  ASSERT_TRUE(c.elect(3));
  c.deliver_all();
  for (size_t i = 0; i < rs.size(); ++i) {
    for (uint64_t n : {2, 3}) {
      ASSERT_TRUE(c.applied(n).contains(rs[i].index));
      EXPECT_EQ(c.applied(n).at(rs[i].index).data, "v" + std::to_string(i));
    }
  }
  const auto r = c.propose(3, "after");
  ASSERT_EQ(r.status, ProposeStatus::kAccepted);
  c.deliver_all();
  EXPECT_EQ(c.applied(2).at(r.index).data, "after");
}

// ---- Phase 2: pipelining, batching, learning ---------------------------------

TEST(PaxosPhase2, ManySlotsInFlightAreBatchedIntoFewAccepts) {
  Cluster c({.nodes = 3, .max_slots_per_accept = 4});
  ASSERT_TRUE(c.elect(1));
  c.sent_log().clear();
  std::vector<std::string> data;
  for (int i = 0; i < 10; ++i) data.push_back("p" + std::to_string(i));
  const std::vector<core::ProposeResult> rs = c.propose_batch(1, data);
  // Pipelined: ten slots open at once, none chosen yet.
  EXPECT_LT(c.px(1).chosen_through(), rs.front().index);
  size_t accepts_to_2 = 0;
  size_t slots_to_2 = 0;
  for (const Message& m : c.sent_log()) {
    if (const auto* a = body<Accept>(m); a != nullptr && m.to == NodeId(2)) {
      ++accepts_to_2;
      slots_to_2 += a->proposals.size();
      EXPECT_LE(a->proposals.size(), 4u);
    }
  }
  EXPECT_EQ(slots_to_2, 10u);
  EXPECT_LT(accepts_to_2, 10u);  // batched
  c.deliver_all();
  for (size_t i = 0; i < rs.size(); ++i) {
    for (uint64_t n : {1, 2}) EXPECT_EQ(c.applied(n).at(rs[i].index).data, "p" + std::to_string(i));
  }
}

// The payload bytes of a batch as the byte caps count them.
size_t batch_bytes(const std::vector<PValue>& pvs) {
  size_t n = 0;
  for (const PValue& pv : pvs) n += pvalue_bytes(pv);
  return n;
}

TEST(PaxosPhase2, AnAcceptStaysWithinTheByteCapUnlessItCarriesOneSlot) {
  // 64 slots of large values in one Accept would exceed the transport's
  // frame limit; the byte cap cuts the batch, and a value above the cap
  // still travels alone instead of never.
  constexpr size_t kCap = 1000;
  Cluster c({.nodes = 3, .max_bytes_per_accept = kCap});
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  c.sent_log().clear();
  std::vector<std::string> data;
  for (int i = 0; i < 10; ++i) data.push_back(std::string(300, static_cast<char>('a' + i)));
  data.push_back(std::string(3 * kCap, 'z'));  // alone above the cap
  data.push_back("small");
  const std::vector<core::ProposeResult> rs = c.propose_batch(1, data);
  // The first sends, then resends while n1 is cut off (one batch a heartbeat).
  for (int t = 0; t < 10; ++t) c.tick(1);
  c.heal();
  ASSERT_TRUE(c.run_until([&] { return c.applied(2).contains(rs.back().index); }, 200));
  size_t accepts_to_2 = 0;
  size_t oversized_alone = 0;
  for (const Message& m : c.sent_log()) {
    const auto* a = body<Accept>(m);
    if (a == nullptr || a->proposals.empty()) continue;
    const size_t bytes = batch_bytes(a->proposals);
    EXPECT_TRUE(bytes <= kCap || a->proposals.size() == 1)
        << a->proposals.size() << " slots, " << bytes << " bytes";
    if (bytes > kCap) ++oversized_alone;
    if (m.to == NodeId(2)) ++accepts_to_2;
  }
  EXPECT_GT(oversized_alone, 0u);
  EXPECT_GE(accepts_to_2, 5u);  // 3000 bytes of small values need at least four
  for (size_t i = 0; i < rs.size(); ++i) {
    for (uint64_t n : {1, 2, 3}) EXPECT_EQ(c.applied(n).at(rs[i].index).data, data[i]);
  }
}

TEST(PaxosPhase2, InflightWindowIsBounded) {
  Cluster c({.nodes = 3, .max_inflight_slots = 3});
  ASSERT_TRUE(c.elect(1));
  c.isolate(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.propose(1, "w").status, ProposeStatus::kAccepted);
  EXPECT_EQ(c.propose(1, "w").status, ProposeStatus::kTooMuchUncommitted);
}

TEST(PaxosLearner, AppliesInOrderAndFetchesAGapByRange) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.cut(1, 3);
  const auto a = c.propose(1, "a");
  c.deliver_all();  // chosen by n1 and n2; n3 never saw it
  c.heal();
  const auto b = c.propose(1, "b");
  c.deliver_all();
  // n3 accepted b under the leader's ballot but never held a: the commit
  // point showed it the gap, it asked for the range, and applied in order
  // (the harness checks the order at every apply).
  bool asked = false;
  bool decided = false;
  for (const Message& m : c.sent_log()) {
    if (const auto* r = body<CatchupRequest>(m); r != nullptr && m.from == NodeId(3)) {
      asked = asked || r->first <= a.index;
    }
    if (const auto* d = body<Decide>(m); d != nullptr && m.to == NodeId(3)) {
      for (const PValue& pv : d->chosen) decided = decided || pv.slot == a.index;
    }
  }
  EXPECT_TRUE(asked);
  EXPECT_TRUE(decided);
  EXPECT_EQ(c.applied(3).at(a.index).data, "a");
  EXPECT_EQ(c.applied(3).at(b.index).data, "b");
}

TEST(PaxosLearner, ALaggingLearnerCatchesUpThroughSeveralDecidesWithinTheByteCap) {
  // One Decide of the whole range would exceed the cap (and, with values of
  // hundreds of KiB, the transport's frame limit): the learner gets it in
  // pages and asks again for the rest.
  constexpr size_t kCap = 1000;
  Cluster c({.nodes = 3, .max_bytes_per_decide = kCap});
  ASSERT_TRUE(c.elect(1));
  c.cut(1, 3);
  std::vector<core::ProposeResult> rs;
  for (int i = 0; i < 10; ++i) rs.push_back(c.propose(1, std::string(300, 'a' + i)));
  c.deliver_all();  // chosen by n1 and n2; n3 saw none of it
  ASSERT_GE(c.px(1).chosen_through(), rs.back().index);
  c.heal();
  c.sent_log().clear();
  const auto tail = c.propose(1, "tail");
  ASSERT_TRUE(c.run_until([&] { return c.applied(3).contains(tail.index); }, 200));
  size_t decides_to_3 = 0;
  for (const Message& m : c.sent_log()) {
    const auto* d = body<Decide>(m);
    if (d == nullptr || m.to != NodeId(3)) continue;
    ++decides_to_3;
    EXPECT_TRUE(batch_bytes(d->chosen) <= kCap || d->chosen.size() == 1);
  }
  EXPECT_GE(decides_to_3, 4u);  // 10 slots of ~330 bytes, at most 3 a page
  EXPECT_EQ(c.applied(3), c.applied(1));
}

TEST(PaxosLearner, LaggingReplicaBehindTheCompactionPointInstallsASnapshot) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  c.isolate(3);
  for (int i = 0; i < 20; ++i) c.propose(1, "s" + std::to_string(i));
  c.deliver_all();
  c.compact(1);
  c.compact(2);
  const LogIndex snap = c.px(1).status().snapshot_index;
  ASSERT_GT(snap, LogIndex(0));
  c.heal();
  const auto r = c.propose(1, "tail");
  ASSERT_TRUE(c.run_until([&] { return c.applied(3).contains(r.index); }, 200));
  EXPECT_EQ(c.px(3).status().snapshot_index, snap);
  EXPECT_EQ(c.applied(3), c.applied(1));
}

TEST(PaxosLearner, ReadBarrierIsAnsweredOnceItsSlotIsChosen) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  const auto w = c.propose(1, "w");
  const auto r = c.px(1).read_index(7);
  ASSERT_EQ(r.status, ProposeStatus::kAccepted);
  EXPECT_GT(r.index, w.index);
  EXPECT_EQ(c.px(2).read_index(8).status, ProposeStatus::kNotLeader);
  c.deliver_all();
  EXPECT_GE(c.px(1).chosen_through(), r.index);
}

// ---- Leadership ---------------------------------------------------------------

TEST(PaxosLeadership, FollowerThatMissesHeartbeatsRaisesItsBallot) {
  Cluster c({.nodes = 3});
  ASSERT_TRUE(c.elect(1));
  const Ballot old = c.px(1).ballot();
  c.isolate(1);
  ASSERT_TRUE(c.run_until([&] {
    return c.px(2).paxos_role() == PaxosRole::kLeader || c.px(3).paxos_role() == PaxosRole::kLeader;
  }));
  const uint64_t nl = c.px(2).paxos_role() == PaxosRole::kLeader ? 2 : 3;
  EXPECT_GT(c.px(nl).ballot(), old);
  // The old leader is preempted (a Nack with the higher ballot) once healed.
  c.heal();
  ASSERT_TRUE(c.run_until([&] { return c.px(1).paxos_role() == PaxosRole::kFollower; }, 50));
  EXPECT_EQ(c.px(1).propose("x").status, ProposeStatus::kNotLeader);
}

TEST(PaxosLeadership, DuelingProposersConverge) {
  for (uint64_t seed = 1; seed <= 30; ++seed) {
    SCOPED_TRACE(seed);
    Cluster c({.nodes = 3, .seed = seed});
    c.faults().max_delay_ticks = 2;
    c.faults().reorder = true;
    // n1 and n2 start phase 1 together, again and again, preempting each
    // other, until the randomized backoff separates them.
    for (int duel = 0; duel < 3; ++duel) {
      while (c.px(1).paxos_role() == PaxosRole::kFollower) c.tick(1);
      while (c.px(2).paxos_role() == PaxosRole::kFollower) c.tick(2);
      c.deliver_all();
    }
    std::optional<core::ProposeResult> r;
    ASSERT_TRUE(c.run_until(
        [&] {
          if (!r) {
            auto l = c.leader();
            if (l) {
              auto res = c.propose(*l, "after-duel");
              if (res.status == ProposeStatus::kAccepted) r = res;
            }
            return false;
          }
          for (NodeId n : c.ids()) {
            if (!c.applied(n.value()).contains(r->index)) return false;
          }
          return true;
        },
        500));
  }
}

// ---- Randomized ------------------------------------------------------------------

TEST(PaxosRandomized, NoTwoReplicasApplyDifferentValuesAndAcknowledgedWritesSurvive) {
  size_t acknowledged = 0;
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    Prng rnd(seed * 7919);
    const size_t n = seed % 2 == 0 ? 3 : 5;
    Cluster c({.nodes = n, .seed = seed, .max_slots_per_accept = 1 + seed % 8});
    // Per-seed fault rates, so the sweep covers calm and violent runs.
    const double crash_p = 0.01 + rnd.real() * 0.05;
    const double isolate_p = 0.01 + rnd.real() * 0.05;
    const double hold_p = rnd.real() * 0.08;
    c.faults() = testing::NetFaults{.drop = 0.05 + rnd.real() * 0.15,
                                    .duplicate = rnd.real() * 0.1,
                                    .max_delay_ticks = static_cast<uint32_t>(rnd.uniform(0, 3)),
                                    .reorder = true};
    // Safety phase: faults, crashes, partitions, compaction.
    for (int t = 0; t < 400; ++t) {
      c.tick_all();
      const uint64_t victim = rnd.uniform(1, n);
      if (rnd.chance(0.4)) {
        if (auto l = c.leader())
          c.propose(*l, "s" + std::to_string(seed) + "t" + std::to_string(t));
      }
      if (rnd.chance(crash_p) && c.up(victim)) c.crash(victim);
      if (rnd.chance(0.05) && !c.up(victim)) c.restart(victim);
      if (rnd.chance(isolate_p)) c.isolate(victim);
      if (rnd.chance(0.04)) c.heal();
      if (rnd.chance(0.02) && c.up(victim)) c.compact(victim);
      // A slow fsync: answers wait; a crash meanwhile loses the held Ready.
      if (rnd.chance(hold_p)) c.hold(victim);
      if (rnd.chance(0.1)) c.release(rnd.uniform(1, n));
      if (::testing::Test::HasFailure()) return;
    }
    // Liveness phase: everything heals; every acknowledged write reaches
    // every replica.
    c.faults() = {};
    c.heal();
    for (NodeId id : c.ids()) {
      if (!c.up(id.value())) c.restart(id.value());
      c.release(id.value());
    }
    std::optional<core::ProposeResult> last;
    uint64_t last_at = 0;
    const bool settled = c.run_until(
        [&] {
          // A proposal whose proposer lost its ballot before the slot was
          // chosen may be lost (it was never acknowledged): offer it again.
          auto l = c.leader();
          if (l && (!last || (*l != last_at && !c.applied(last_at).contains(last->index)))) {
            auto r = c.propose(*l, "final");
            if (r.status == ProposeStatus::kAccepted) {
              last = r;
              last_at = *l;
            }
            return false;
          }
          if (!last) return false;
          for (NodeId id : c.ids()) {
            if (!c.applied(id.value()).contains(last->index)) return false;
          }
          return true;
        },
        2000);
    if (!settled) {
      for (NodeId id : c.ids()) {
        const core::EngineStatus st = c.px(id.value()).status();
        ADD_FAILURE() << "n" << id.value() << " " << st.role_name << " promised "
                      << c.px(id.value()).promised().round << "."
                      << c.px(id.value()).promised().node << " chosen " << st.commit_index
                      << " applied " << c.px(id.value()).applied() << " last " << st.last_index
                      << " snap " << st.snapshot_index << " leader " << st.soft.leader;
      }
      return;
    }
    c.expect_acknowledged_applied();
    if (::testing::Test::HasFailure()) return;
    for (const testing::Proposal& p : c.proposals()) acknowledged += p.acknowledged ? 1 : 0;
  }
  // The sweep is only worth something if writes got through the faults.
  EXPECT_GT(acknowledged, 300u * 20);
}

}  // namespace
}  // namespace chorus::paxos
