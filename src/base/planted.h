// Planted bugs: a build option (-DCHORUS_PLANTED_BUG=<name>) that breaks one
// protocol rule at a time, to prove the simulator, the nemesis and the
// checkers catch real bugs. This header is the one place the switches are
// read; the code that breaks a rule tests a constant below with
// `if constexpr`, next to the rule it breaks. Production builds set none.
//
//   DOUBLE_VOTE            grant a second vote in one term (breaks Raft §5.2)
//   COMMIT_OLD_TERM        commit earlier-term entries by counting replicas (breaks §5.4.2)
//   NO_PREV_CHECK          accept an append without the previous-entry check (breaks §5.3)
//   READINDEX_NO_CONFIRM   serve a ReadIndex read without confirming leadership (thesis §6.4)
//   ACK_BEFORE_DURABLE     acknowledge an append before the entries are durable (§5.3, Figure 2)
//   SNAPSHOT_NO_CHECKSUM   load a snapshot file without verifying its checksums
//                          (src/storage/snapshot/snapshot_store.cc)
//
// Primary-backup (src/core/primary; caught by `chorus sim --strategy ...`):
//   PB_COMMIT_BEFORE_PREPARED  sync-all commits what the primary alone holds,
//                              before every backup prepared it
//   PB_PROMOTE_ANY             the manager promotes the first replica that
//                              answered, ignoring log positions
//   PB_NO_EPOCH_CHECK          a backup takes appends from any sender, whatever
//                              its epoch and term
//   PB_UNREPORTED_LOSS         a backup dropping a suffix it applied (it installs
//                              the primary's snapshot) does not report the loss
//
// tests/CMakeLists.txt recompiles only the files that read these constants
// with one bug defined; a new reader must be added to its list.
#pragma once

namespace chorus::planted {

#ifdef CHORUS_PLANTED_BUG_DOUBLE_VOTE
inline constexpr bool kDoubleVote = true;
#else
inline constexpr bool kDoubleVote = false;
#endif

#ifdef CHORUS_PLANTED_BUG_COMMIT_OLD_TERM
inline constexpr bool kCommitOldTerm = true;
#else
inline constexpr bool kCommitOldTerm = false;
#endif

#ifdef CHORUS_PLANTED_BUG_NO_PREV_CHECK
inline constexpr bool kNoPrevCheck = true;
#else
inline constexpr bool kNoPrevCheck = false;
#endif

#ifdef CHORUS_PLANTED_BUG_READINDEX_NO_CONFIRM
inline constexpr bool kReadIndexNoConfirm = true;
#else
inline constexpr bool kReadIndexNoConfirm = false;
#endif

#ifdef CHORUS_PLANTED_BUG_ACK_BEFORE_DURABLE
inline constexpr bool kAckBeforeDurable = true;
#else
inline constexpr bool kAckBeforeDurable = false;
#endif

#ifdef CHORUS_PLANTED_BUG_SNAPSHOT_NO_CHECKSUM
inline constexpr bool kSnapshotNoChecksum = true;
#else
inline constexpr bool kSnapshotNoChecksum = false;
#endif

#ifdef CHORUS_PLANTED_BUG_PB_COMMIT_BEFORE_PREPARED
inline constexpr bool kPbCommitBeforePrepared = true;
#else
inline constexpr bool kPbCommitBeforePrepared = false;
#endif

#ifdef CHORUS_PLANTED_BUG_PB_PROMOTE_ANY
inline constexpr bool kPbPromoteAny = true;
#else
inline constexpr bool kPbPromoteAny = false;
#endif

#ifdef CHORUS_PLANTED_BUG_PB_NO_EPOCH_CHECK
inline constexpr bool kPbNoEpochCheck = true;
#else
inline constexpr bool kPbNoEpochCheck = false;
#endif

#ifdef CHORUS_PLANTED_BUG_PB_UNREPORTED_LOSS
inline constexpr bool kPbUnreportedLoss = true;
#else
inline constexpr bool kPbUnreportedLoss = false;
#endif

inline constexpr bool kAny = kDoubleVote || kCommitOldTerm || kNoPrevCheck || kReadIndexNoConfirm ||
                             kAckBeforeDurable || kSnapshotNoChecksum || kPbCommitBeforePrepared ||
                             kPbPromoteAny || kPbNoEpochCheck || kPbUnreportedLoss;

}  // namespace chorus::planted
