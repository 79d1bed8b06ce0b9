// Conversion between raft::Message (src/core/raft/messages.h) and the wire
// message wirepb::PeerMessage (proto/chorus/wire.proto). Pure: no I/O.
//
// Encoding is total for every message the Raft core produces, except an
// InstallSnapshot without bytes (SnapshotRef::data == nullptr), which the
// transport streams as SnapshotChunk frames instead; encoding one is a bug.
//
// Decoding treats its input as hostile: it checks everything the core relies
// on and that a correct sender always satisfies, and refuses the message with
// kCorruption otherwise (the transport then closes the connection):
//  - exactly one known body; `from` and `to` are nonzero and different;
//  - AppendEntries: entries are contiguous from prev_log_index + 1 (Raft §5.3
//    log matching relies on it) with known types, their terms never decrease,
//    are >= prev_log_term and <= the message term; no index overflows;
//  - terms carried inside a message (last_log_term, prev_log_term, snapshot
//    term, conflict_term) are <= the message term: a node's log never holds
//    a term beyond its current_term;
//  - snapshots cover at least index 1 and have a nonzero term.
// The limits on sizes are the frame limit's job (frame.h): a message is never
// larger than one frame.
#pragma once

#include <cstdint>

#include "base/status.h"
#include "chorus/wire.pb.h"
#include "core/raft/messages.h"

namespace chorus::net {

// Fills *out (cleared first) with m in group `group_id`.
// Precondition: m is not an InstallSnapshot with null data.
void encode_peer_message(const raft::Message& m, wirepb::PeerMessage* out, uint32_t group_id = 0);

// The Raft message in `in`, validated as described above. A snapshot_chunk
// body is not a Raft message (see validate_snapshot_chunk) and is refused.
Result<raft::Message> decode_peer_message(const wirepb::PeerMessage& in);

// Checks a PeerMessage whose body is a snapshot_chunk: envelope as above,
// transfer_id != 0, a valid snapshot meta whose term is <= the message term,
// no offset overflow, and offset + size within total_bytes when that is known
// (and equal to it on the last chunk).
Status validate_snapshot_chunk(const wirepb::PeerMessage& in);

}  // namespace chorus::net
