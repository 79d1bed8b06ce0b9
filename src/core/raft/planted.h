// Planted bugs: a build option (-DCHORUS_PLANTED_BUG=<name>) that breaks one
// Raft rule at a time, to prove the simulator and checkers catch real bugs.
// Production builds define none of these. Names:
//   DOUBLE_VOTE            grant a second vote in one term (breaks §5.2)
//   COMMIT_OLD_TERM        commit earlier-term entries by counting replicas (breaks §5.4.2)
//   NO_PREV_CHECK          accept an append without the previous-entry check (breaks §5.3)
//   READINDEX_NO_CONFIRM   serve a ReadIndex read without confirming leadership (thesis §6.4)
//   ACK_BEFORE_DURABLE     acknowledge an append before the entries are durable (§5.3, Figure 2)
//   SNAPSHOT_NO_CHECKSUM   load a snapshot file without verifying its checksums
//                          (src/storage/snapshot/snapshot_store.cc)
#pragma once

#if defined(CHORUS_PLANTED_BUG_DOUBLE_VOTE) || defined(CHORUS_PLANTED_BUG_COMMIT_OLD_TERM) || \
    defined(CHORUS_PLANTED_BUG_NO_PREV_CHECK) ||                                              \
    defined(CHORUS_PLANTED_BUG_READINDEX_NO_CONFIRM) ||                                       \
    defined(CHORUS_PLANTED_BUG_ACK_BEFORE_DURABLE) ||                                         \
    defined(CHORUS_PLANTED_BUG_SNAPSHOT_NO_CHECKSUM)
#define CHORUS_HAS_PLANTED_BUG 1
#endif
