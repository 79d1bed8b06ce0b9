// Multi-Paxos messages. Names follow the papers: phase 1a Prepare, phase 1b
// Promise, phase 2a Accept, phase 2b Accepted (Lamport, "Paxos Made Simple";
// van Renesse & Altinbuken call them p1a/p1b/p2a/p2b), Nack for a refusal
// carrying the higher ballot (Paxos Made Moderately Complex's "preempted"),
// and Decide for a learner's catch-up (their "decision"). Wire encoding lives
// in the transport layer; the core only sees these structs.
#pragma once

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "core/common/types.h"
#include "core/paxos/ballot.h"

namespace chorus::paxos {

// A proposal's value. `origin` is the ballot of the proposer that first put
// the command in this slot; it travels with the value when a later proposer
// adopts it, so that (slot, origin) names one client write for its whole life
// (the write token a host compares with term_at()).
struct Value {
  Ballot origin;
  core::EntryType type = core::EntryType::kNormal;  // kNoop fills a hole
  std::string data;
  bool operator==(const Value&) const = default;
};

// (slot, ballot, value): a pvalue in van Renesse & Altinbuken's words.
struct PValue {
  LogIndex slot;
  Ballot ballot;  // kChosenBallot: the sender knows the value is chosen
  Value value;
  bool operator==(const PValue&) const = default;
};

// Approximate wire size of a pvalue (slot, two ballots, type, command),
// used for the byte limits on batches (Config::max_bytes_per_accept).
inline size_t pvalue_bytes(const PValue& pv) {
  return pv.value.data.size() + 32;
}

// Phase 1a, once for every slot from `first_slot` on (Multi-Paxos: one
// phase 1 covers the infinite tail of slots, Paxos Made Simple §3).
struct Prepare {
  Ballot ballot;
  LogIndex first_slot;  // the proposer's first unchosen slot
};

// Phase 1b: the acceptor promises to accept nothing below `ballot`, and
// reports what it accepted from first_slot on. Sent only once the promise is
// durable.
struct Promise {
  Ballot ballot;
  std::vector<PValue> accepted;  // ascending slots >= first_slot
  // The acceptor compacted slots at or past first_slot: it cannot report
  // them, and the proposer is behind the cluster's snapshot.
  LogIndex compacted_through;
};

// Phase 2a, batched: several slots, one ballot. `commit` is the proposer's
// chosen prefix (every slot <= commit is chosen), so Accepts double as
// commit notifications.
struct Accept {
  Ballot ballot;
  std::vector<PValue> proposals;  // each with ballot == this ballot
  LogIndex commit;
};

// Phase 2b: the acceptor accepted these slots at `ballot`. Sent only once
// the accepted values are durable.
struct Accepted {
  Ballot ballot;
  std::vector<LogIndex> slots;
};

// Refusal of a Prepare, Accept or Heartbeat below the acceptor's promise.
struct Nack {
  Ballot ballot;    // the ballot refused
  Ballot promised;  // the acceptor's promise, higher than `ballot`
};

// The distinguished proposer's liveness signal and commit point.
struct Heartbeat {
  Ballot ballot;
  LogIndex commit;
};

// A learner asks the proposer for chosen values in [first, last].
struct CatchupRequest {
  LogIndex first;
  LogIndex last;
};

// Chosen values, for a learner that could not learn them from its own
// accepted slots (Paxos Made Moderately Complex's "decision").
struct Decide {
  std::vector<PValue> chosen;  // ballot is kChosenBallot
};

// The learner's first missing slot was compacted on the proposer.
struct InstallSnapshot {
  core::SnapshotRef snapshot;
};

using Body = std::variant<Prepare, Promise, Accept, Accepted, Nack, Heartbeat, CatchupRequest,
                          Decide, InstallSnapshot>;

struct Message {
  NodeId from;
  NodeId to;
  Body body;
};

std::string_view message_name(const Body& b);
// One line for traces: "Accept 1->2 b=3.1 slots=5..7 commit=4".
std::string describe(const Message& m);

}  // namespace chorus::paxos
