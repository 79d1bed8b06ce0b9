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
//   * Under a shared sync (SharedSync below) on the calling thread, sync()
//     and sync_dir() returning OK mean only "recorded": NOTHING recorded
//     is durable until SharedSync::commit() returns OK, and a crash
//     before that may lose all of it (with the same latitude as un-synced
//     writes above). Orders inside one owner's code still hold: a mutating
//     call by an owner with recorded syncs performs them first.
//
// Errors are Status values whose message names the path (and offset when one
// applies). A path that does not exist yields StatusCode::kNotFound.
//
// Thread-safety: PosixEnv may be used from several threads; one WritableFile
// must be used by one thread at a time. SimEnv is single-threaded (the
// simulator's thread, or callers that serialize access). A shared sync
// belongs to the thread that began it: other threads' syncs are not
// affected (PosixEnv keeps it thread-local; SimEnv has one thread).
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
  // Under a shared sync on this thread: recorded, durable only once its
  // commit() returns OK (see SharedSync).
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

// SharedSync: several disk jobs of different owners (a node's replication
// groups, each with its own directory) share ONE durability point, so N busy
// groups do not cost N device syncs per round.
//
// Contract. Env::begin_shared_sync() opens one on the calling thread; it
// ends when the object is destroyed. While it is open, on that thread:
//   * WritableFile::sync() and Env::sync_dir() record what needs syncing
//     under the current owner (set_owner()) and return OK without making
//     anything durable. (A failure to record — PosixEnv dup()s the file
//     descriptor — is returned at once.)
//   * A mutating call — append, write_at, truncate, open_writable,
//     rename, remove, create_dir — by an owner that has recorded syncs first
//     performs that owner's recorded syncs for real (a "barrier"); their
//     failure is the call's. So every "sync A, then write B" order inside one
//     owner's code holds exactly as without a shared sync: the WAL's rule that
//     a sync batch is written only after the previous one is durable, a
//     segment synced before the next is created, a temp file synced before
//     its rename, removals durable one by one. Owners are independent:
//     owner B's writes never wait for owner A's syncs.
//   * commit() makes everything recorded by every owner durable — PosixEnv
//     with one syncfs() when it all lives on one file system — and returns
//     OK only then. Nothing recorded is durable before commit() returns OK;
//     a crash before it may lose all of it.
//   * A failed commit leaves every recorded write of every owner in an
//     unknown state: every job under it has failed (fail-stop), even one
//     whose own calls all returned OK. Never retry a commit.
// Owners must not share files or directories (a barrier syncs only the
// current owner's records). Reads are not barriers. create_dir() stays
// durable on return. A shared sync must be committed before it is destroyed
// unless it recorded nothing; shared syncs do not nest.
//
// What callers must not do: act on "durable" state a storage object reports
// under it (Wal::durable_index(), ReplicaStorage::durable_index())
// before commit() returned OK — the host learns the outcome from its job's
// DiskDone, which the executor gives the commit's failure.
class SharedSync {
 public:
  virtual ~SharedSync() = default;
  // The calls that follow on this thread are `owner`'s (0 until set).
  virtual void set_owner(uint64_t owner) = 0;
  // Makes every recorded sync durable, with as few device syncs as the
  // implementation can; an error means nothing recorded is known durable.
  // Call once.
  virtual Status commit() = 0;

  struct Stats {
    uint64_t recorded = 0;       // sync()/sync_dir() calls deferred
    uint64_t barrier_syncs = 0;  // recorded syncs performed early by a barrier
    uint64_t committed = 0;      // distinct files and directories the commit covered
    uint64_t device_syncs = 0;   // syscalls (or simulated syncs) the commit made
  };
  virtual const Stats& stats() const = 0;
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

  // Opens a shared sync on the calling thread (SharedSync above); it ends
  // when the returned object is destroyed. Precondition: none is open.
  virtual std::unique_ptr<SharedSync> begin_shared_sync() = 0;
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
