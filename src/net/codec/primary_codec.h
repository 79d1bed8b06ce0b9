// Conversion between primary::Message (src/core/primary/messages.h) and what
// the peer transport carries (src/net/transport/peer_message.h): a
// PeerMessage whose body is a PrimaryMessage (proto/chorus/primary.proto),
// plus the snapshot bytes of an InstallSnapshot. Pure: no I/O. The pattern
// is raft_codec.h's.
//
// Encoding is total for every message the primary-backup core produces. The
// bytes of an InstallSnapshot travel beside the message
// (OutgoingMessage::snapshot, streamed by the transport); the message is
// then the snapshot's header and must fit kMaxSnapshotHeaderBytes, so its
// term history is cut to the newest kMaxWireTermStarts starts (the backup
// treats the forgotten older part as the core already does for a primary
// that forgot it: entries there are reported in doubt, never silently).
// NewConfiguration has no lease on the wire (messages.h: a message never
// grants one); it decodes with lease_ticks = 0.
//
// Decoding treats its input as hostile. It refuses with kCorruption
// anything a correct sender never produces and the core relies on:
//  - a `primary` body holding exactly one known message; `from` and `to`
//    nonzero and different;
//  - terms: every entry term is (epoch, generation) with epoch >= 1; no term
//    carried in a message belongs to an epoch beyond the message's `epoch`
//    (a node never holds entries of an epoch it has not seen);
//  - Append: sent by a primary of `epoch`, so epoch_of(term) == epoch; entries
//    contiguous from prev_index + 1 (the Log Matching check relies on it),
//    of known types, terms never decreasing, >= prev_term and <= term;
//    prev_index == 0 exactly when prev_term == 0; no index overflows;
//  - AppendResponse: a known refusal; match_index == 0 exactly when
//    match_term == 0 for an acceptance;
//  - InstallSnapshot: meta at index >= 1 with a term; the term history
//    strictly ascending in both term and start, starts >= 1, at most
//    kMaxWireTermStarts, consistent with meta (the term it gives for
//    meta.index, when it covers it, is meta.term) and ending at or before
//    last_index >= meta.index; the snapshot's bytes attached, and no bytes
//    attached to any other message;
//  - NewConfiguration: epoch >= 1 and <= the message's, members distinct,
//    nonzero, at most kMaxConfigurationMembers, the primary among them;
//  - Forward: 1 to kMaxForwardedWrites writes.
// Size limits on entries and snapshots are the transport's (frame limits).
#pragma once

#include <cstddef>

#include "base/ids.h"
#include "base/status.h"
#include "core/primary/messages.h"
#include "net/transport/peer_message.h"

namespace chorus::net {

// Term starts an InstallSnapshot carries at most. Each costs at most 20
// bytes (two 10-byte varints), so 96 of them with the envelope, the meta and
// last_index (< 120 bytes) stay under kMaxSnapshotHeaderBytes (2048).
inline constexpr size_t kMaxWireTermStarts = 96;
// Members a NewConfiguration may name.
inline constexpr size_t kMaxConfigurationMembers = 64;
// Writes one Forward may carry.
inline constexpr size_t kMaxForwardedWrites = 4096;

// m as a message of group `group`, for Transport::send().
// Precondition: m is one the core produces (a NewConfiguration's members
// within kMaxConfigurationMembers).
OutgoingMessage encode_primary_message(const primary::Message& m, GroupId group);

// The primary-backup message in `in` (with its snapshot bytes, for an
// InstallSnapshot), validated as described above. The group is
// in.message.group_id(); routing on it is the caller's business.
Result<primary::Message> decode_primary_message(const IncomingMessage& in);

}  // namespace chorus::net
