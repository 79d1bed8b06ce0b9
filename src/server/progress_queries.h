// ProgressQueries: how a node that does not lead a group learns how many
// replicas hold one of the group's writes, for WAIT and CHORUS.POLL
// (client_server.h) — and how the leader answers.
//
// Only a group's leader (Raft) or primary knows every replica's position
// (EngineStatus peers' match_index); any other node knows only its own log.
// So a non-leader sends the leader a ProgressQuery (group, index, term)
// (src/net/codec/progress_codec.h), and the leader answers write_progress()
// of its own replica (write_progress.h): from its status and its in-memory
// log terms, never the disk.
//
// Never overcounts: an answer is used only when it is for the query it
// names, came from the node asked, carries the term (a primary: the epoch)
// this node saw the leader in when it asked, and this node still sees that
// leader in that term when the answer arrives. Anything else — no leader
// known, too many queries outstanding, the leader refusing (unknown group,
// not the leader), no answer by the deadline, a changed leader or term —
// completes the query with nullopt, and the caller counts locally.
//
// Bounded: at most kOutstandingMax queries wait at a time (a caller beyond
// that counts locally); each waits until its deadline, at most kTimeout.
// expire() is driven by the node's tick, so a deadline is late by up to
// one tick.
//
// Threading: every method runs on the node's event loop thread. Done is
// never called from inside ask(): always later, from receive(), expire()
// or stop().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>

#include "base/ids.h"
#include "base/status.h"
#include "net/codec/progress_codec.h"
#include "net/transport/peer_message.h"
#include "server/replica_group.h"
#include "server/write_progress.h"

namespace chorus::server {

class ProgressQueries {
 public:
  using Clock = std::chrono::steady_clock;
  // The leader's WriteProgress of the write; nullopt when it could not be used.
  using Done = std::function<void(std::optional<WriteProgress>)>;

  static constexpr size_t kOutstandingMax = 4096;
  static constexpr std::chrono::milliseconds kTimeout{300};

  struct Deps {
    NodeId self;
    std::function<void(net::OutgoingMessage)> send;
    // The data group `id` hosted here; nullptr if none.
    std::function<ReplicaGroup*(GroupId)> group;
    // Runs a completion later on the node's loop (unset: at once).
    std::function<void(std::function<void()>)> post;
    // The first request id (random in a node: an answer meant for an
    // earlier incarnation then matches no query of this one).
    uint64_t first_request_id = 0;
  };

  explicit ProgressQueries(Deps deps)
      : d_(std::move(deps)), last_request_id_(d_.first_request_id) {}

  // The node to ask about group `g`'s writes: its leader as this node sees
  // it, when that is another node and a query may be sent now (not
  // stopped, fewer than kOutstandingMax waiting). nullopt: count locally.
  std::optional<NodeId> leader_to_ask(const ReplicaGroup& g) const;

  // Asks leader_to_ask(g) about (index, term); done runs once, later, by
  // min(deadline, now + kTimeout) give or take a tick.
  // Precondition (asserted): leader_to_ask(g) is set; index, term >= 1.
  void ask(const ReplicaGroup& g, LogIndex index, Term term, Clock::time_point now,
           Clock::time_point deadline, Done done);

  // A progress message from a peer: a query is answered, an answer completes
  // its query. kCorruption (the transport then closes the connection) for
  // what a correct peer never sends: a malformed message, or an answer to a
  // query this node sent someone else or about another write.
  Status receive(const net::IncomingMessage& m);

  // Completes the queries whose deadline has passed (with nullopt).
  void expire(Clock::time_point now);
  // Completes every query (with nullopt); later asks are refused. Final.
  void stop();

  size_t outstanding() const { return pending_.size(); }

 private:
  // Invariant: leader != self, leader_term >= 1.
  struct Pending {
    GroupId group;
    NodeId leader;
    Term leader_term;  // the leader's term (epoch) as this node saw it when asking
    LogIndex index;
    Term term;
    Clock::time_point deadline;
    Done done;
  };
  void answer_query(GroupId group, NodeId from, const net::ProgressQuery& q);
  Status take_answer(GroupId group, NodeId from, const net::ProgressAnswer& a);
  void complete(Done done, std::optional<WriteProgress> view);

  Deps d_;
  std::map<uint64_t, Pending> pending_;  // by request id
  uint64_t last_request_id_ = 0;
  bool stopped_ = false;
};

// What WAIT and CHORUS.POLL report for a write, from this node's own view
// and the leader's (nullopt: not asked, or no usable answer).
//  - lost or rolled back here (judged by this node's committed log): as is;
//  - the leader proves it lost or rolled back (by its committed log): that,
//    with 0 replicas;
//  - otherwise this node's state, with the leader's count (0 when the
//    leader holds another term at the index: its log will replace the write).
WriteProgress with_leader_view(const WriteProgress& local,
                               const std::optional<WriteProgress>& leader);

}  // namespace chorus::server
