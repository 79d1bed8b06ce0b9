// PosixEnv: the Env on real system calls (Linux).
//
//   append/write_at -> pwrite (looped over short writes and EINTR)
//   sync            -> fdatasync; an error is returned as is, never retried
//                      into a success (after a failed fdatasync Linux may have
//                      marked the dirty pages clean, so a second call can
//                      "succeed" without the data being on disk)
//   sync_dir        -> open(O_DIRECTORY) + fsync
//   create_dir      -> mkdir per missing component, then fsync of its parent
//
// Shared syncs (SharedSync in env.h) are thread-local: begin_shared_sync()
// opens one for the calling thread only. Inside it sync() and sync_dir()
// dup() the descriptor (or open the directory) and record it with its
// st_dev; a barrier fdatasyncs / fsyncs the current owner's records. The
// commit makes what was recorded durable with:
//   * nothing, when nothing was recorded;
//   * the record's own fdatasync / fsync, when there is one record;
//   * ONE syncfs(2) on a recorded descriptor, when there are several and all
//     live on one file system (same st_dev) and the kernel reports writeback
//     errors through syncfs (Linux >= 5.8; before, syncfs returned 0 even
//     when writeback failed, which would turn a lost write into a success);
//   * otherwise an fdatasync / fsync per record, stopping at the first error.
// syncfs writes back every dirty page of the file system, this process's or
// not, so its cost grows with what else is dirty there. Its error check uses
// the descriptor's errseq cursor; the recorded descriptors were opened before
// the writes they cover (dup shares the open file description), so a
// writeback error since then is reported, not swallowed.
//
// Thread-safety: the Env itself is stateless and may be shared by threads; a
// WritableFile or ReadableFile must be used by one thread at a time.
#pragma once

#include <cstdint>

#include "storage/env/env.h"

namespace chorus::storage {

class PosixEnv final : public Env {
 public:
  // A process-wide instance (stateless, never destroyed).
  static PosixEnv* get();

  Status create_dir(const std::string& path) override;
  Result<std::vector<std::string>> list_dir(const std::string& path) override;
  Result<bool> exists(const std::string& path) override;
  Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                      OpenMode mode) override;
  Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) override;
  Result<std::string> read_file(const std::string& path, uint64_t max_bytes) override;
  Result<uint64_t> file_size(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Status truncate(const std::string& path, uint64_t size) override;
  Status sync_dir(const std::string& path) override;
  std::unique_ptr<SharedSync> begin_shared_sync() override;

  // Device syncs this process made through any PosixEnv, by kind (all
  // threads; relaxed counters for benchmarks and metrics).
  struct SyncCounts {
    uint64_t fdatasyncs = 0;
    uint64_t fsyncs = 0;  // directories (and a shared sync's directory records)
    uint64_t syncfs = 0;
    uint64_t total() const { return fdatasyncs + fsyncs + syncfs; }
  };
  static SyncCounts sync_counts();
  // Whether this kernel reports writeback errors through syncfs (>= 5.8).
  static bool syncfs_reports_errors();
};

}  // namespace chorus::storage
