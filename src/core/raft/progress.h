// Progress: the leader's view of one follower (etcd tracker/progress.go).
//
// Modes:
//  - kProbe: the leader does not know where the follower's log matches; it
//    sends one append at a time and waits for the answer before the next.
//  - kReplicate: the follower matched; appends are pipelined optimistically
//    (next_index advances as soon as an append is sent), bounded by Inflights.
//  - kSnapshot: the entries the follower needs were compacted; an
//    InstallSnapshot is outstanding and nothing else is sent until it is
//    acknowledged or times out.
#pragma once

#include <cstdint>

#include "base/ids.h"
#include "core/common/inflights.h"

namespace chorus::raft {

struct Progress {
  enum class Mode : uint8_t { kProbe, kReplicate, kSnapshot };

  explicit Progress(LogIndex next, size_t max_inflight)
      : next_index(next), inflights(max_inflight) {}

  // Invariant: match_index < next_index.
  LogIndex match_index;
  LogIndex next_index;
  Mode mode = Mode::kProbe;
  bool probe_sent = false;    // kProbe: an append is outstanding
  core::Inflights inflights;  // kReplicate: pipelined appends
  LogIndex pending_snapshot;  // kSnapshot: index of the snapshot sent
  uint32_t snapshot_elapsed_ticks = 0;
  uint64_t last_heard_tick = 0;   // leader's tick of this follower's last answer (CheckQuorum)
  uint64_t acked_read_round = 0;  // highest heartbeat round acknowledged

  bool paused() const {
    switch (mode) {
      case Mode::kProbe:
        return probe_sent;
      case Mode::kReplicate:
        return inflights.full();
      case Mode::kSnapshot:
        return true;
    }
    return true;
  }

  // A success acknowledgement through `n`; returns true if it moved match_index.
  bool maybe_update(LogIndex n) {
    bool updated = false;
    if (match_index < n) {
      match_index = n;
      updated = true;
      probe_sent = false;
    }
    if (next_index < n.next()) next_index = n.next();
    return updated;
  }

  // A rejection of the append whose previous index was `rejected`, with the
  // leader-side probe hint `probe`. Returns false when the rejection is stale.
  bool maybe_decrease(LogIndex rejected, LogIndex probe) {
    if (mode == Mode::kReplicate) {
      // A rejection at or below match must be for an old, reordered append.
      if (rejected <= match_index) return false;
      next_index = match_index.next();
      return true;
    }
    // In probe mode only the rejection of the append we sent last counts.
    if (next_index.prev() != rejected) return false;
    next_index = std::max(std::min(rejected, probe.next()), match_index.next());
    probe_sent = false;
    return true;
  }

  void become_probe() {
    // After a snapshot, resume just past it (or past match, if further).
    if (mode == Mode::kSnapshot) {
      next_index = std::max(match_index.next(), pending_snapshot.next());
    } else {
      next_index = match_index.next();
    }
    mode = Mode::kProbe;
    probe_sent = false;
    inflights.reset();
  }
  void become_replicate() {
    mode = Mode::kReplicate;
    next_index = match_index.next();
    inflights.reset();
  }
  void become_snapshot(LogIndex snapshot_index) {
    mode = Mode::kSnapshot;
    pending_snapshot = snapshot_index;
    snapshot_elapsed_ticks = 0;
    inflights.reset();
  }
};

}  // namespace chorus::raft
