// ZAB transaction ids and the durable epochs.
//
// A zxid is (epoch, counter): the epoch of the leader that proposed the
// transaction and its position among that leader's proposals, starting at 1
// (Junqueira, Reed & Serafini, DSN 2011, §III; ZooKeeper packs it into one
// 64-bit number, epoch in the high 32 bits, counter in the low 32). Zxids
// are ordered by epoch first, then counter, so the packed number orders the
// same way. Wherever the Engine concept wants a Term for one log position
// (Entry::term, ProposeResult::term, SnapshotMeta::term, term_at()) the ZAB
// core hands the packed zxid: it names one proposal for its whole life, so a
// write token (index, zxid) is replaced exactly when the proposal was.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/assert.h"
#include "base/ids.h"
#include "base/status.h"

namespace chorus::zab {

inline constexpr uint64_t kMaxEpoch = 0xffffffffu;
inline constexpr uint64_t kMaxCounter = 0xffffffffu;
// A follower's session is (incarnation << 32) | attempt.
inline constexpr uint64_t kMaxIncarnation = 0xffffffffu;

struct Zxid {
  uint64_t epoch = 0;
  uint64_t counter = 0;  // 0 only in the null zxid and in (epoch, 0) markers

  auto operator<=>(const Zxid&) const = default;

  Term to_term() const {
    CHORUS_ASSERT(epoch <= kMaxEpoch && counter <= kMaxCounter);
    return Term(epoch << 32 | counter);
  }
  static Zxid from_term(Term t) { return Zxid{t.value() >> 32, t.value() & kMaxCounter}; }
};

std::string to_string(Zxid z);  // "0x1.3" (epoch in hex like ZooKeeper's logs, counter)

// What a ZAB participant must keep across a crash besides its log and
// snapshot (ZooKeeper's files `acceptedEpoch` and `currentEpoch`):
//  - accepted_epoch: the last NEWEPOCH it acknowledged (DSN 2011's f.p).
//    Persisted before its ACK-E leaves: a node that forgot it could
//    acknowledge an older leader's NEWEPOCH after a newer one, and two
//    leaders could establish one epoch.
//  - current_epoch: the last NEWLEADER it acknowledged (DSN 2011's f.a).
//    Persisted before its ACK of NEWLEADER leaves: it ranks the node's
//    history in Fast Leader Election and in discovery, and a node that
//    forgot it could win an election with a history that a quorum has
//    already replaced.
//  - incarnation: how many times the node started. Each start persists one
//    more before its first FollowerInfo leaves, and a follower's sessions
//    are (incarnation, attempt), so sessions only grow across restarts: a
//    leader can tell a newer connection attempt from a stale or duplicated
//    one, and a reply to an earlier incarnation never matches a later one.
// Invariant: current_epoch <= accepted_epoch.
struct DurableState {
  uint64_t accepted_epoch = 0;
  uint64_t current_epoch = 0;
  uint64_t incarnation = 0;
  bool operator==(const DurableState&) const = default;
};

// Both epochs promise something to a peer, so every change is synced before
// the messages that depend on it (ZooKeeper writes each file synchronously).
inline bool durable_needs_sync(const DurableState& a, const DurableState& b) {
  return a != b;
}

// 24 bytes: accepted_epoch, current_epoch, incarnation, each little-endian
// u64.
std::string encode_durable_state(const DurableState& ds);
// Fails with kCorruption on a wrong length, an epoch past 32 bits, an
// incarnation past 32 bits, or current_epoch > accepted_epoch.
Result<DurableState> decode_durable_state(std::string_view bytes);

}  // namespace chorus::zab
