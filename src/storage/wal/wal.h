// Wal: a segmented write-ahead log of core::Entry records
// (format: docs/formats/wal.md).
//
// What it is. The log is a directory of segment files
// "wal-<seq>-<first index>.log". Segments are numbered by a sequence number
// without gaps; each holds records for a contiguous run of log indexes
// starting at the index in its name; the last segment is the only one that
// is written to. Each record carries its log index, term, entry type and an
// XXH3-64 checksum.
//
// Invariants (checked by open(), kept by every method):
//   * segment sequence numbers are consecutive;
//   * entries are contiguous across all segments: first_index() ..
//     last_index() with no gap; an empty log has last_index() == first_index()-1;
//   * every segment but the last is complete (synced, no partial record);
//   * durable_index() <= last_index(): entries up to durable_index() survive
//     a crash (or are covered by the snapshot given to compact()).
//
// Writing. append() buffers encoded records in memory and writes them with
// one write() per write_buffer_bytes; sync() writes what is buffered and
// issues one fdatasync for everything appended since the previous sync
// (group commit), then reports durable_index() == last_index(). Nothing that
// depends on an entry's durability (a vote, an append acknowledgement, a
// client reply) may go out before sync() returns OK for it.
//
// Inside a shared sync (env.h, SharedSync) — the node's storage executor
// runs several groups' jobs under one — sync() only records the fdatasync and
// still sets durable_index() = last_index(), although nothing is durable until
// the shared sync's commit() returns OK. Nothing may act on durable_index()
// then: the host learns that its entries are durable from the job's DiskDone,
// which carries the commit's outcome. The sync-batch rules below still hold:
// the next write to this log (a later sync batch, a new segment, a cut) is a
// barrier that performs the recorded fdatasync first. A failed commit does
// not reach this object (healthy() stays true); the host fail-stops on the
// DiskDone.
//
// Sync batches. The records appended between two successful syncs form a
// sync batch; each record stores how many records of its batch precede it
// (batch_offset), so recovery knows where every batch begins. A record of a
// new batch is written only after the previous batch's fdatasync returned —
// sync() is synchronous and one thread owns the Wal — so a valid record of a
// later batch proves every earlier record was synced. A batch never spans
// segments (roll() syncs) and holds at most kMaxBatchOffset + 1 records
// (append syncs first when it would hold more).
//
// Overwriting (Raft §5.3). append() whose first index is <= last_index()
// first deletes the conflicting suffix: whole later segments are removed
// newest first, each removal made durable (directory fsync) before the next,
// then the segment holding the first conflicting entry is truncated and the
// cut synced before the new records are written. A crash in the middle
// therefore leaves a prefix of the old log, never a log with a hole in it,
// and no byte of an old suffix lies behind un-synced new records.
//
// Compaction. compact(through) deletes whole segments whose entries are all
// <= through, oldest first, each removal durable before the next (a crash
// leaves a suffix of the old log). When through >= last_index() — a snapshot
// beyond the end of the log was installed — every segment is deleted and the
// log continues at through+1. Precondition for both: a snapshot covering
// `through` is durable. After a restart the host calls compact(snapshot
// index) again, so an interrupted compaction is finished and the log
// continues after the snapshot.
//
// Recovery (open). Every segment is read and every record verified. A bad
// record in the LAST segment that belongs to the last sync batch written and
// looks like a write that never landed — a torn append, or a page the page
// cache had not written back when the power failed while later pages of the
// batch had been (see classify_bad_tail in record.h and the "Recovery"
// section of wal.md) — is cut off together with everything after it, the cut
// made durable, and reported in RecoveryReport::torn_tail with file, offset
// and the valid records dropped — the caller logs it. A bad record followed
// by a valid record of a later sync batch (the bad one had been synced), any
// other bad record, a gap in the segment sequence, an index gap, or a
// segment whose first record does not match its name makes open() fail with
// kCorruption naming the file and offset. Nothing that may have been
// acknowledged is dropped silently.
// open() does not check that the log starts right after the host's snapshot:
// the host compares first_index() with its snapshot index.
//
// Fail-stop. After a failed write, fdatasync, truncation or directory sync
// the log's state on disk is unknown; every later mutating call returns
// kFailStopped and healthy() is false. Reads still work. The node must stop
// and recover from disk; it never retries and pretends.
//
// Thread-safety: none. One thread owns a Wal (GroupCommitWal puts a lock and
// a syncer thread in front of it for concurrent appenders).
//
// Crash: the destructor does not sync. Appends not yet synced may be lost,
// exactly as in a crash.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/ids.h"
#include "base/status.h"
#include "core/common/types.h"
#include "storage/env/env.h"
#include "storage/wal/record.h"

namespace chorus::storage {

inline constexpr uint64_t kMinSegmentBytes = 4096;
inline constexpr uint64_t kMaxSegmentBytes = 1ull << 30;
// The largest segment file open() accepts: a segment may exceed
// segment_bytes by one record.
inline constexpr uint64_t kMaxSegmentFileBytes = kMaxSegmentBytes + (64ull << 20) + 4096;

struct WalOptions {
  // A new segment is started when the next record would make the current one
  // larger than this (a single record larger than this gets a segment of its
  // own). Range [kMinSegmentBytes, kMaxSegmentBytes].
  uint64_t segment_bytes = 64ull << 20;
  // Appends are buffered up to this many bytes before one write().
  uint64_t write_buffer_bytes = 1ull << 20;
};

// What open() found and did.
struct RecoveryReport {
  struct TornTail {
    std::string file;     // path of the last segment
    uint64_t offset = 0;  // where the file was cut
    uint64_t bytes_dropped = 0;
    std::string reason;
    // Valid records among the bytes dropped: records of the last sync batch
    // that followed a lost page or sector (docs/formats/wal.md, "Recovery").
    uint64_t records_dropped = 0;
  };
  uint64_t segments = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;  // bytes of valid records read and verified
  LogIndex first_index;
  LogIndex last_index;
  std::optional<TornTail> torn_tail;

  // "wal DIR: 3 segments, 1200 records (1.2 MB), indexes 1..1200; torn tail cut at FILE offset N (M
  // bytes: reason)"
  std::string to_string(const std::string& dir) const;
};

class Wal {
 public:
  // Opens (creating the directory if needed) and recovers the log in `dir`.
  static Result<std::unique_ptr<Wal>> open(Env* env, std::string dir, WalOptions options = {});
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Appends entries with contiguous indexes. If entries.front().index <=
  // last_index() the suffix from that index is deleted first (Raft log
  // overwrite); it must not be below first_index(). Otherwise it must be
  // last_index()+1. Entries are not durable until sync().
  Status append(std::span<const core::Entry> entries);
  // Makes everything appended durable with one fdatasync (plus a directory
  // fsync if a segment was created); then durable_index() == last_index().
  Status sync();
  // Deletes whole segments whose entries are all <= through (see the class comment).
  Status compact(LogIndex through);
  // The whole log is replaced by a snapshot through `through` received from a
  // leader (Raft §7: a follower whose log does not match the snapshot discards
  // it): every segment is deleted and the log continues at through+1.
  // Precondition: that snapshot is durable.
  Status replace_with_snapshot(LogIndex through);

  // Entries [lo, hi), read back from disk and verified.
  // Precondition-checked: first_index() <= lo <= hi <= last_index()+1.
  Result<std::vector<core::Entry>> entries(LogIndex lo, LogIndex hi);
  // Every entry in the log.
  Result<std::vector<core::Entry>> read_all() {
    return entries(first_index(), last_index().next());
  }

  LogIndex first_index() const { return first_index_; }
  LogIndex last_index() const { return last_index_; }
  // Inside a shared sync: durable only once it commits (class comment).
  LogIndex durable_index() const { return durable_index_; }
  bool healthy() const { return failure_.is_ok(); }
  // The error that stopped the log (OK while healthy).
  const Status& failure() const { return failure_; }
  const RecoveryReport& recovery() const { return recovery_; }
  const std::string& dir() const { return dir_; }
  size_t segment_count() const { return segments_.size(); }

  struct Stats {
    uint64_t writes = 0;  // write() calls
    uint64_t syncs = 0;   // fdatasync calls
    uint64_t bytes_written = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Segment {
    uint64_t seq = 0;
    LogIndex first_index;
    std::string path;
    // offsets[i] is the file offset of the record for index first_index + i.
    std::vector<uint64_t> offsets;
    LogIndex last_index() const { return first_index + offsets.size() - 1; }
  };

  Wal(Env* env, std::string dir, WalOptions options);
  Status recover();
  Result<std::string_view> read_segment(const std::string& path, std::string* buf);
  Status recover_segment(Segment& seg, bool is_last, std::string* buf);
  Status cut_unsynced_tail(Segment& seg, std::string_view bytes, uint64_t offset, RecordError error,
                           const TailContext& where);
  Status check_batch(std::span<const core::Entry> entries) const;
  Status append_one(const core::Entry& e);
  Status start_segment(LogIndex first_index);
  Status roll(LogIndex next_index);
  Status flush();
  Status sync_all();
  Status truncate_suffix(LogIndex from);
  Status remove_segment_durably(const Segment& seg);
  Status reset(LogIndex through);
  Status read_segment_range(const Segment& seg, LogIndex lo, LogIndex hi,
                            std::vector<core::Entry>* out);
  uint64_t active_bytes() const;
  Status refuse() const;
  Status fail(Status cause);

  Env* env_;
  std::string dir_;
  WalOptions options_;
  std::vector<Segment> segments_;         // by seq; the last one is active
  std::unique_ptr<WritableFile> active_;  // open on segments_.back(), or null
  std::string buffer_;                    // records for the end of the active segment
  uint64_t next_seq_ = 1;                 // for a new segment when segments_ is empty
  LogIndex first_index_{1};
  LogIndex last_index_{0};
  LogIndex durable_index_{0};
  // The first index of the current sync batch: the records appended since the
  // last successful sync (or open, or reset). nullopt when there are none.
  // Invariant: the active segment's records from *batch_first_ on are exactly
  // what is not yet known to be durable, and they are all in that segment.
  std::optional<LogIndex> batch_first_;
  bool file_dirty_ = false;  // the active file has writes/truncations not yet synced
  bool dir_dirty_ = false;   // a segment was created and the directory not yet synced
  Status failure_;
  RecoveryReport recovery_;
  Stats stats_;
};

}  // namespace chorus::storage
