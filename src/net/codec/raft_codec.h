// Conversion between raft::Message (src/core/raft/messages.h) and what the
// peer transport carries (src/net/transport/peer_message.h): a PeerMessage
// whose body is a RaftMessage (proto/chorus/wire.proto), plus the snapshot
// bytes of an InstallSnapshot. Pure: no I/O.
//
// Encoding is total for every message the Raft core produces. The bytes of
// an InstallSnapshot travel beside the message (OutgoingMessage::snapshot,
// streamed by the transport), the RaftMessage carries only the snapshot's
// meta; bytes that are null are read through the transport's
// snapshot_opener.
//
// Decoding treats its input as hostile: it checks everything the core relies
// on and that a correct sender always satisfies, and refuses the message with
// kCorruption otherwise (the transport's receiver returns that status, and
// the transport closes the connection):
//  - a raft body holding exactly one known Raft message; `from` and `to` are
//    nonzero and different;
//  - AppendEntries: entries are contiguous from prev_log_index + 1 (Raft §5.3
//    log matching relies on it) with known types, their terms never decrease,
//    are >= prev_log_term and <= the message term; no index overflows;
//  - terms carried inside a message (last_log_term, prev_log_term, snapshot
//    term, conflict_term) are <= the message term: a node's log never holds
//    a term beyond its current_term;
//  - snapshots cover at least index 1, have a nonzero term, and come with
//    their bytes; no other message comes with snapshot bytes.
// The limits on sizes are the transport's job (frame and snapshot limits).
#pragma once

#include "base/ids.h"
#include "base/status.h"
#include "core/raft/messages.h"
#include "net/transport/peer_message.h"

namespace chorus::net {

// m as a message of group `group`, for Transport::send().
OutgoingMessage encode_raft_message(const raft::Message& m, GroupId group);

// The Raft message in `in` (with its snapshot bytes, for an InstallSnapshot),
// validated as described above. The group is in.message.group_id(); routing
// on it is the caller's business.
Result<raft::Message> decode_raft_message(const IncomingMessage& in);

}  // namespace chorus::net
