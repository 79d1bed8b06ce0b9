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
// Thread-safety: the Env itself is stateless and may be shared by threads; a
// WritableFile or ReadableFile must be used by one thread at a time.
#pragma once

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
};

}  // namespace chorus::storage
