// Env: the file-system operations durable storage needs, behind one interface
// (LevelDB's Env). Two implementations:
//
//   PosixEnv (posix_env.h) — real system calls; what chorusd runs on.
//   SimEnv   (sim_env.h)   — an in-memory disk for the deterministic
//                            simulator, with crash, torn-write, bit-flip and
//                            fsync-failure faults.
//
// The WAL, the metadata file and the snapshot store are written only against
// this interface, so the simulator runs the production storage code.
//
// Durability contract (what callers may rely on; SimEnv enforces exactly this
// and nothing more, so code that passes the simulator is correct on POSIX):
//
//   * Data written through a WritableFile survives a crash only after a
//     successful WritableFile::sync() (fdatasync). Until then a crash may
//     lose it entirely, keep any prefix of it (a torn write), or keep any
//     subset of the 4 KiB pages it touched — the page cache writes pages
//     back in any order, so a later page may survive an earlier one; pages
//     past the durable end that were not kept read as zeros. Nothing written
//     after the last completed sync() is ordered.
//   * A new directory entry — a created file, a rename, a removal — survives a
//     crash only after a successful sync_dir() of the directory that holds it.
//     Until then a crash may undo it. A file whose data was synced but whose
//     creation was not is gone after a crash.
//   * create_dir() is durable when it returns (it syncs the parent).
//   * A failed sync() leaves the data in an unknown state. Callers must not
//     retry and assume success (Linux may already have dropped the dirty
//     pages); the WAL treats it as fatal (fail-stop).
//
// Errors are Status values whose message names the path (and offset when one
// applies). A path that does not exist yields StatusCode::kNotFound.
//
// Thread-safety: PosixEnv may be used from several threads; one WritableFile
// must be used by one thread at a time. SimEnv is single-threaded (the
// simulator's thread, or callers that serialize access).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace chorus::storage {

// A file open for writing. Writes go to the OS (or the simulated page cache)
// immediately; they are durable only after sync().
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Writes `data` at offset size() and advances size().
  virtual Status append(std::string_view data) = 0;
  // Writes `data` at `offset` (which may be below size(): an overwrite);
  // size() becomes max(size(), offset + data.size()).
  virtual Status write_at(uint64_t offset, std::string_view data) = 0;
  // Cuts (or zero-extends) the file to `size` bytes; later appends go there.
  virtual Status truncate(uint64_t size) = 0;
  // fdatasync: everything written so far becomes durable, or an error is
  // returned and the durable state is unknown. Never retried by callers.
  virtual Status sync() = 0;
  // Closes the handle without syncing. Idempotent; the destructor closes too.
  virtual Status close() = 0;

  // Bytes in the file as seen by this handle (including un-synced writes).
  virtual uint64_t size() const = 0;
  virtual const std::string& path() const = 0;
};

// A file open for positional reads.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to n bytes at `offset` into dst; returns the count read, which
  // is less than n only at end of file.
  virtual Result<size_t> read_at(uint64_t offset, size_t n, char* dst) = 0;
  virtual const std::string& path() const = 0;
};

enum class OpenMode : uint8_t {
  kTruncate,  // create if missing, otherwise cut to zero length
  kAppend,    // create if missing, otherwise keep the contents; size() = current length
};

class Env {
 public:
  virtual ~Env() = default;

  // Creates `path` and any missing parents (mkdir -p); ok if it exists.
  // Durable on return: the parent of each created directory is synced.
  virtual Status create_dir(const std::string& path) = 0;
  // Names (not paths) of the entries in directory `path`, sorted, without "." and "..".
  virtual Result<std::vector<std::string>> list_dir(const std::string& path) = 0;
  // Whether a file or directory exists at `path`.
  virtual Result<bool> exists(const std::string& path) = 0;

  virtual Result<std::unique_ptr<WritableFile>> open_writable(const std::string& path,
                                                              OpenMode mode) = 0;
  virtual Result<std::unique_ptr<ReadableFile>> open_readable(const std::string& path) = 0;
  // The whole file. A file larger than max_bytes is an error (kCorruption):
  // callers pass the largest size the format allows, so a damaged or foreign
  // file cannot make us allocate without bound.
  virtual Result<std::string> read_file(const std::string& path, uint64_t max_bytes) = 0;
  virtual Result<uint64_t> file_size(const std::string& path) = 0;

  // Atomically replaces `to` with `from`. Durable after sync_dir() of the
  // directory (both paths must be in the same directory for SimEnv).
  virtual Status rename(const std::string& from, const std::string& to) = 0;
  // Removes a file. Durable after sync_dir() of its directory.
  virtual Status remove(const std::string& path) = 0;
  // Cuts the file at `path` to `size` bytes. Durable after a sync() of the
  // file through any handle (open one with OpenMode::kAppend).
  virtual Status truncate(const std::string& path, uint64_t size) = 0;
  // fsync of the directory: makes its entries (creates, renames, removals) durable.
  virtual Status sync_dir(const std::string& path) = 0;
};

// "dir/name" (no doubled separator).
std::string join_path(std::string_view dir, std::string_view name);
// The directory part of a path: "a/b/c" -> "a/b", "/c" -> "/", "c" -> ".".
std::string parent_dir(std::string_view path);
// The last component: "a/b/c" -> "c".
std::string_view base_name(std::string_view path);

// Writes `data` to `path` so that after a crash the file either holds exactly
// `data` or keeps its previous contents (or does not exist, if it did not):
// write to path + ".tmp", sync, rename, sync the directory.
Status write_file_atomically(Env* env, const std::string& path, std::string_view data);

}  // namespace chorus::storage
