// Conversion between paxos::Message (src/core/paxos/messages.h) and what the
// peer transport carries (src/net/transport/peer_message.h): a PeerMessage
// whose body is a PaxosMessage (proto/chorus/paxos.proto), plus the snapshot
// bytes of an InstallSnapshot. Pure: no I/O. The pattern is raft_codec.h's.
//
// Encoding is total for every message the Paxos core produces. An Accept's
// proposals do not repeat the Accept's ballot (the core asserts they all
// carry it); the decoder puts it back. The bytes of an InstallSnapshot
// travel beside the message (OutgoingMessage::snapshot).
//
// Decoding treats its input as hostile. It refuses with kCorruption what a
// correct sender never produces and the core relies on (several of these
// are assertions in the core, so a message that broke them would stop the
// node). Not yet checked, as they need the receiver's state: a slot far
// beyond its log, a round at the maximum, a Decide contradicting a value it
// knows chosen (docs/strategies.md, "Hostile peers"). Checked:
//  - a `paxos` body holding exactly one known message; `from` and `to`
//    nonzero and different;
//  - ballots: every ballot packs (round <= 2^48 - 2, node < 2^16), the
//    chosen marker only where a value is reported; a proposer's ballot
//    (Prepare, Accept, Heartbeat) is real (round >= 1) and names the sender;
//    a ballot answered (Promise, Accepted, Nack) is real and names the
//    receiver; a Nack's `promised` is a real ballot above the refused one;
//  - values: a known type, a real origin ballot;
//  - slots >= 1; the pvalues of a Promise, Accept and Decide strictly
//    ascending; a Decide's ballots all the chosen marker, a Promise's real
//    or the chosen marker, an Accept's unset; a CatchupRequest's
//    1 <= first <= last;
//  - InstallSnapshot: meta at index >= 1, with its bytes attached; no bytes
//    attached to any other message.
// Size limits on values and snapshots are the transport's (frame limits).
#pragma once

#include "base/ids.h"
#include "base/status.h"
#include "core/paxos/messages.h"
#include "net/transport/peer_message.h"

namespace chorus::net {

// m as a message of group `group`, for Transport::send().
OutgoingMessage encode_paxos_message(const paxos::Message& m, GroupId group);

// The Paxos message in `in` (with its snapshot bytes, for an
// InstallSnapshot), validated as described above.
Result<paxos::Message> decode_paxos_message(const IncomingMessage& in);

}  // namespace chorus::net
