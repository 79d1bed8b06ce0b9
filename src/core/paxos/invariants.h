// Paxos's own safety properties, checked by the simulator as it runs (the
// generic ones — one value applied per index, acknowledged writes present,
// convergence, linearizability — are in check/ and cover every engine).
// Pure: it only looks at Paxos objects, the messages nodes send and the
// slots they made durable.
//
// What the generic checks cannot see is the acceptors' state: a value can be
// chosen (a majority accepted it under one ballot) and never applied by
// anyone yet, and a second value chosen at the same slot under a higher
// ballot. So this class replays the definition of "chosen" from the
// acceptors' durable records:
//
//  - Acceptance is durable. Every slot a node makes durable with a real
//    ballot b is "accepted (slot, b, value)" by that node (the leader's own
//    acceptor included, which sends no Accepted message). When a majority
//    accepted one (slot, b) the value is chosen there.
//  - One value per (slot, ballot) (Paxos Made Simple §2.2: a proposer
//    proposes one value per proposal number).
//  - At most one value chosen per slot (PMS P2), and once v is chosen at
//    (slot, b) every durable acceptance at a ballot above b carries v (P2b).
//  - A learner learns only chosen values: every slot a node counts in its
//    chosen prefix holds the value chosen there, and the value was chosen
//    (a majority accepted it) before any node counted it.
//  - Acceptors forget nothing across a crash unless they know it: after a
//    restart a node still holds, at every slot past its snapshot (and past
//    its amnesic_through(), a crash inside a tail rewrite), a ballot at least
//    as high as the highest it ever accepted there durably; and its promise
//    is at least every ballot it answered with a Prepare, Promise or
//    Accepted.
//  - Proposers: a node's Prepare ballots never decrease (across restarts);
//    an Accept of ballot b leaves only after a majority promised b (PMS
//    §2.3: phase 2 follows a majority's phase 1b).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "core/paxos/paxos.h"

namespace chorus::paxos {

class Invariants {
 public:
  // What was applied anywhere at an index, as the simulator passes it to
  // every engine's invariants (unused here: its AppliedLog already checks
  // one value per index).
  struct Applied {
    Term term;
    uint64_t hash = 0;
  };

  explicit Invariants(size_t nodes);

  // After any event on node `i` (0-based) whose engine is `p`. Returns a
  // violation, if any.
  template <class AppliedAt, class Hash>
  std::optional<std::string> observe(size_t i, const Paxos& p, const AppliedAt& /*applied_at*/,
                                     const Hash& /*hash*/) {
    return observe(i, p);
  }
  std::optional<std::string> observe(size_t i, const Paxos& p);
  // Node i made these persisted entries durable (its host's fsync returned).
  std::optional<std::string> observe_durable(size_t i, std::span<const core::Entry> entries);
  // Node i sent m (before the network decides its fate).
  std::optional<std::string> observe_message(size_t i, const Message& m);
  // Node i restarts: its volatile state is gone.
  void reset(size_t i);
  // Node i's engine as just rebuilt from its disk: everything it holds is
  // durable (some of it made so by a persist whose completion the crash
  // cut off, unseen by observe_durable), and it must hold what it accepted.
  std::optional<std::string> observe_recovered(size_t i, const Paxos& p);

  // The slot a message promises is durable at its sender, if any (an
  // Accepted: its slots are held durably).
  static std::optional<LogIndex> promised_durable(const Message& m);

  // A value's identity (origin ballot, type, command), for comparisons.
  static uint64_t value_hash(const Value& v);

 private:
  struct Acceptance {
    uint64_t value = 0;          // value_hash
    std::set<size_t> acceptors;  // nodes holding it durably (at some point)
  };
  struct SlotState {
    std::map<Ballot, Acceptance> by_ballot;
    std::optional<Ballot> chosen_ballot;  // the lowest ballot a majority accepted
    uint64_t chosen_value = 0;
  };
  struct Watched {
    LogIndex checked;        // learner check done through here
    Ballot promise_floor;    // the highest ballot it answered with (durable)
    Ballot highest_prepare;  // the highest ballot of its Prepares
    // Per slot, the highest real ballot it ever made durable there.
    std::map<LogIndex, Ballot> durable_accepts;
  };
  std::optional<std::string> accept_durably(size_t i, LogIndex slot, Ballot b, const Value& v);
  std::optional<std::string> check_recovered(size_t i, const Paxos& p);
  std::optional<std::string> check_learned(size_t i, const Paxos& p);

  size_t majority_;
  std::vector<Watched> watched_;
  std::map<LogIndex, SlotState> slots_;
  // ballot -> nodes that promised it (its proposer once its Prepare left,
  // others by Promise messages that report every slot it asked for).
  std::map<Ballot, std::set<size_t>> promisers_;
  std::map<Ballot, LogIndex> prepare_first_slot_;
};

}  // namespace chorus::paxos
