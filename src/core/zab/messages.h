// ZAB messages. The names are the papers' (Junqueira, Reed & Serafini, DSN
// 2011, Algorithms 1-3; Medeiros 2012) with ZooKeeper's packet names beside
// them, since both are in use:
//
//   phase 0  Notification                     FLE notification (vote exchange)
//   phase 1  FollowerInfo  = CEPOCH           FOLLOWERINFO (acceptedEpoch)
//            NewEpoch      = NEWEPOCH         LEADERINFO
//            AckEpoch      = ACK-E            ACKEPOCH (currentEpoch, last zxid)
//   phase 2  NewLeader     = NEWLEADER(e, I)  DIFF | TRUNC | SNAP, then NEWLEADER
//            NewLeaderAck  = ACK-LD           ACK of NEWLEADER
//            UpToDate      = COMMIT-LD        UPTODATE
//   phase 3  Proposal      = PROPOSE          PROPOSAL
//            Ack           = ACK              ACK
//            Commit        = COMMIT           COMMIT
//            Ping                             PING (the follower answers with an Ack)
//
// The paper's NEWLEADER carries the new leader's whole initial history;
// ZooKeeper sends only what the follower lacks, as DIFF, TRUNC or SNAP
// packets before NEWLEADER. One NewLeader message carries both: the sync
// mode and its payload, and the epoch being established.
//
// Channels: ZAB assumes reliable FIFO channels (TCP). Chorus's transport
// may drop, duplicate and reorder, so the handshake messages carry the
// follower's `session` (one per connection attempt: a stale reply to an
// earlier attempt is ignored), and proposals carry their log index so a
// follower sees a skipped proposal and re-synchronizes instead of accepting
// past it — what a ZooKeeper follower does when its TCP connection breaks.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "core/common/types.h"
#include "core/zab/zxid.h"

namespace chorus::zab {

// A participant's state as it announces it in notifications.
enum class ServerState : uint8_t { kLooking, kFollowing, kLeading };
std::string_view server_state_name(ServerState s);

// A vote: the proposed leader and what ranks it (FLE's totalOrderPredicate
// compares peer_epoch, then zxid, then the leader's id).
struct Vote {
  NodeId leader;
  Zxid zxid;            // the proposed leader's last zxid
  uint64_t peer_epoch;  // the proposed leader's currentEpoch
  bool operator==(const Vote&) const = default;
};

struct Notification {
  Vote vote;
  uint64_t election_epoch = 0;  // the sender's logical clock (election round)
  ServerState state = ServerState::kLooking;
};

struct FollowerInfo {
  uint64_t accepted_epoch = 0;
  uint64_t session = 0;
};

struct NewEpoch {
  uint64_t epoch = 0;
  uint64_t session = 0;
  // The leader's settled vote and round. The follower takes them as its own,
  // so what it answers LOOKING peers names this leadership: over a lossy
  // channel it may reconnect to a leader that was re-elected in another
  // round without noticing (a ZooKeeper follower would have seen its TCP
  // connection close and gone through the election again).
  std::optional<Vote> leader_vote;
  uint64_t election_epoch = 0;
};

struct AckEpoch {
  uint64_t epoch = 0;
  uint64_t session = 0;
  uint64_t current_epoch = 0;
  Zxid last_zxid;
  LogIndex last_index;
  // The follower had already accepted this epoch before this NewEpoch (it
  // may have acknowledged it to another leader that picked the same e'):
  // ZooKeeper's ACKEPOCH with epoch -1 (Learner.registerWithLeader). The
  // leader synchronizes it but does not count it toward the quorum that
  // establishes the epoch, so no epoch is established by two leaders.
  bool already_accepted = false;
};

enum class SyncMode : uint8_t {
  kDiff,   // the follower's log is a prefix of the leader's: send the rest
  kTrunc,  // the follower holds proposals the leader lacks: cut them, then diff
  kSnap,   // the follower is behind the leader's snapshot: install it, then diff
};
std::string_view sync_mode_name(SyncMode m);

struct NewLeader {
  uint64_t epoch = 0;
  uint64_t session = 0;
  SyncMode mode = SyncMode::kDiff;
  // kDiff, kTrunc: the follower keeps its log through here (its entry there
  // has trunc_zxid) and drops the rest. kSnap: unused.
  LogIndex trunc_index;
  Zxid trunc_zxid;
  std::optional<core::SnapshotRef> snapshot;  // kSnap only
  std::vector<core::Entry> entries;           // from trunc_index + 1 (or the snapshot) on
  LogIndex commit;                            // the leader's committed prefix
  // The entries reach the leader's last proposal. When false (the diff was
  // longer than max_sync_entries) the follower stores them and connects
  // again for the rest; it acknowledges only a complete history.
  bool complete = true;
};

struct NewLeaderAck {
  uint64_t epoch = 0;
  uint64_t session = 0;
  LogIndex last_index;  // durable through here: a cumulative ACK too
};

struct UpToDate {
  uint64_t epoch = 0;
  uint64_t session = 0;
  LogIndex commit;
};

// A run of consecutive proposals (zxid order), sent as one message.
struct Proposal {
  uint64_t epoch = 0;
  std::vector<core::Entry> entries;  // term = packed zxid
};

// Cumulative: the follower's log is durable and matches the leader's
// through `index`, whose proposal is `zxid`.
struct Ack {
  uint64_t epoch = 0;
  Zxid zxid;
  LogIndex index;
};

// Everything through `index` (proposal `zxid`) is committed.
struct Commit {
  uint64_t epoch = 0;
  Zxid zxid;
  LogIndex index;
};

struct Ping {
  uint64_t epoch = 0;
  LogIndex commit;
  LogIndex last_index;  // the leader's last proposal, to detect a lost tail
};

using Body = std::variant<Notification, FollowerInfo, NewEpoch, AckEpoch, NewLeader, NewLeaderAck,
                          UpToDate, Proposal, Ack, Commit, Ping>;

struct Message {
  NodeId from;
  NodeId to;
  Body body;
};

std::string_view message_name(const Body& b);
// One line for traces: "Proposal 1->2 e=3 0x3.1..0x3.4 @5..8".
std::string describe(const Message& m);

}  // namespace chorus::zab
