// Paxos ballots and the acceptor's durable state besides its slots.
//
// A ballot is (round, node id), ordered by round first and node id second
// (Lamport, "Paxos Made Simple" §2.2: proposals are numbered from disjoint
// sets; van Renesse & Altinbuken §3: ballot = (round, leader)). Two proposers
// never share a ballot because they differ in node id.
//
// Where a Term is needed (Entry::term, ProposeResult::term, SoftState::term)
// a ballot is packed as round << 16 | node, which keeps the order: the
// comparison of two packed ballots is the comparison of the ballots.
// Invariant: node ids fit in 16 bits, rounds in 48 (asserted on packing).
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/assert.h"
#include "base/ids.h"
#include "base/status.h"

namespace chorus::paxos {

inline constexpr uint64_t kNodeBits = 16;
inline constexpr uint64_t kMaxRound = (uint64_t{1} << (64 - kNodeBits)) - 2;

struct Ballot {
  uint64_t round = 0;  // 0: the null ballot, below every real one
  NodeId node;

  auto operator<=>(const Ballot&) const = default;
  bool is_null() const { return round == 0; }

  Term to_term() const {
    CHORUS_ASSERT(round <= kMaxRound);
    CHORUS_ASSERT(node.value() < (uint64_t{1} << kNodeBits));
    return Term(round << kNodeBits | node.value());
  }
  static Ballot from_term(Term t) {
    return Ballot{t.value() >> kNodeBits, NodeId(t.value() & ((uint64_t{1} << kNodeBits) - 1))};
  }
};

// The ballot an acceptor records for a slot whose value it knows is chosen
// (learned from a Decide, or below its chosen prefix). It is above every real
// ballot, so "adopt the value with the highest ballot" adopts a chosen value
// before anything else, and no Accept can overwrite it.
inline constexpr Ballot kChosenBallot{kMaxRound + 1, NodeId(0)};

// What an acceptor must keep across a crash besides its accepted slots:
// the highest ballot it promised (Paxos Made Simple §2.3: "an acceptor must
// remember this information even if it fails and then restarts").
struct DurableState {
  Ballot promised;
  // Every slot this acceptor may hold on disk is at or below it, raised
  // before the host rewrites the log's tail (which cuts it durably before
  // the new copy is synced). A log found ending below it after a crash lost
  // accepted slots in that window: see Paxos::amnesic_through().
  LogIndex written_through;
  bool operator==(const DurableState&) const = default;
};

// Every change must be fsynced before the Promise or Accepted that relies on
// it leaves: a promise forgotten in a crash lets a lower ballot be accepted.
inline bool durable_needs_sync(const DurableState& a, const DurableState& b) {
  return a != b;
}

// 16 bytes: round, node id, each little-endian u64; then, when it is not
// zero, written_through as a little-endian u64 (24 bytes).
std::string encode_durable_state(const DurableState& ds);
// Empty bytes (a new node) decode to the null promise; fails with
// kCorruption on any other length than 0, 16 or 24, or an impossible ballot.
Result<DurableState> decode_durable_state(std::string_view bytes);

}  // namespace chorus::paxos
