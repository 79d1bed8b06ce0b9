// SimEnv: an in-memory disk for the deterministic simulator.
//
// It implements the Env durability contract (env.h) literally, and nothing
// more, so that storage code which only gets durability by asking for it is
// the only code that survives a simulated crash:
//
//   * Every file (an "inode") has durable bytes and current bytes. Writes and
//     truncations change the current bytes and are queued as pending
//     operations; sync() makes current durable. crash() throws the pending
//     operations away — or, with probability torn_write_chance per file, keeps
//     a random prefix of them measured in bytes (a torn write: the tail of an
//     append stream is cut at an arbitrary byte) — or, failing that, with
//     probability page_subset_chance keeps an arbitrary subset of the
//     kSimPageBytes pages the pending writes touched (the page cache writes
//     dirty pages back in any order, so nothing written after the last
//     fdatasync is ordered: a later page may survive an earlier one). A kept
//     page holds its current bytes; the file grows to cover it, and a page
//     that was not kept keeps its durable bytes, or zeros past the durable
//     end (a hole). Pending truncations are kept all together or not at all
//     (file-size changes are metadata, journaled apart from the data).
//   * The namespace (which name points to which inode) has a durable copy too.
//     Creates, renames and removals change the current namespace and are
//     queued per directory; sync_dir() makes that directory's entries durable.
//     crash() drops the queued operations — or, with probability
//     dir_keep_chance per directory, keeps a random prefix of them in order
//     (as a journaling file system commits them). A file whose creation was
//     never made durable vanishes with its data, even if the data was synced.
//   * Directories are durable as soon as create_dir() returns (PosixEnv syncs
//     the parent).
//   * Shared syncs (env.h, SharedSync): while one is open, sync() and
//     sync_dir() record the inode or directory under the current owner and
//     change nothing on the simulated disk; a barrier (a mutating call by an
//     owner with records) syncs that owner's records one by one, as sync()
//     and sync_dir() would; commit() is ONE simulated device sync (one
//     sync_failure_rate draw, one fail_next_syncs() unit, one sync call for
//     power_fail_at_sync(); recording is not a sync call) that makes exactly
//     the recorded inodes and directories durable, or, when it fails, none
//     of them. A crash() before commit() loses every record (the un-synced
//     writes meet the crash faults above), and the commit then fails.
//   * Faults: sync() and sync_dir() fail with probability sync_failure_rate
//     (or deterministically via fail_next_syncs()); a failed sync leaves the
//     writes pending. Writes fail with write_failure_rate. A read returns one
//     flipped bit with read_corruption_rate (transient: the stored bytes are
//     intact). corrupt() flips bits in the stored bytes (media corruption,
//     persistent, in both the durable and the current copy).
//
// Handles opened before a crash are dead after it: every operation on them
// returns kIoError. Handles must not outlive the SimEnv.
//
// Determinism: every random choice comes from the Prng given at construction,
// in an order fixed by the sequence of calls; containers are ordered maps. No
// threads, clocks or global state. Thread-safety: none; one thread (the
// simulator's) uses it, or callers serialize access.
//
// Paths: any string; '/' separates components; "a//b" and "a/b/" mean "a/b".
// A file can only be created in a directory that exists (create_dir). rename()
// works only within one directory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "base/prng.h"
#include "storage/env/env.h"

namespace chorus::storage {

// The unit in which a crash with page_subset_chance keeps or loses un-synced
// writes: the page size of the page cache.
inline constexpr uint64_t kSimPageBytes = 4096;

struct SimEnvOptions {
  double sync_failure_rate = 0;     // per sync()/sync_dir() call
  double write_failure_rate = 0;    // per append/write_at/truncate call
  double torn_write_chance = 0;     // per file with pending writes, at crash()
  double dir_keep_chance = 0;       // per directory with pending entries, at crash()
  double read_corruption_rate = 0;  // per read call: one bit flipped in what is returned
  // Per file with pending writes that was not torn, at crash(): keep a random
  // subset of the pages they touched (each page with a probability drawn per
  // file), in no particular order.
  double page_subset_chance = 0;

  // Settings a simulator seed can use: crash faults (torn writes, partially
  // kept directory operations) usually on; fsync failures, write failures and
  // read corruption rare, because each of them makes a node stop
  // (fail-stop or a corruption error), which a sweep should see now and then,
  // not on every seed.
  static SimEnvOptions random(Prng& prng);
  // "disk: sync_fail=0.001 write_fail=0 torn=0.5 dir_keep=0.5 read_flip=0 pages=0.3"
  std::string describe() const;
};

class SimEnv final : public Env {
 public:
  explicit SimEnv(Prng prng, SimEnvOptions options = {});
  ~SimEnv() override;

  // --- Env ---
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

  // --- Faults ---
  // A power failure: un-synced data and directory entries are lost (or kept
  // in part, see the class comment); open handles die.
  void crash();
  // XORs every byte of [offset, offset+len) (clamped to the file) with a
  // random non-zero byte, in the stored data. kNotFound if there is no file.
  Status corrupt(const std::string& path, uint64_t offset, uint64_t len);
  // The next n sync()/sync_dir() calls fail.
  void fail_next_syncs(int n) { fail_next_syncs_ = n; }
  // The power fails during the n-th sync()/sync_dir() call from now (n >= 1):
  // that call fails without making anything durable, and every later
  // mutation (write, truncate, create, rename, remove, sync) fails and does
  // nothing, until crash(). The simulator runs a disk job this way right
  // before crash() to cut a node in the middle of its writes and fsyncs;
  // what the job wrote before the failed sync is on the disk, un-synced.
  void power_fail_at_sync(int n) { power_fail_countdown_ = n; }
  bool powered_off() const { return powered_off_; }
  void set_options(const SimEnvOptions& options) { options_ = options; }
  const SimEnvOptions& options() const { return options_; }

  // --- Inspection (tests and the simulator's checks) ---
  // Bytes of `path` that would survive a crash right now with no torn write
  // (its durable size; 0 if the file itself would not survive).
  uint64_t durable_size(const std::string& path) const;
  struct Stats {
    uint64_t syncs = 0;
    uint64_t sync_failures = 0;
    uint64_t write_failures = 0;
    uint64_t crashes = 0;
    uint64_t torn_writes = 0;
    uint64_t page_subsets = 0;  // files left with a subset of their un-synced pages
    uint64_t read_corruptions = 0;
    uint64_t bytes_written = 0;
    uint64_t shared_sync_commits = 0;  // SharedSync commits (each also one of `syncs`)
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Inode;
  struct DirOp;
  class File;
  class Reader;
  class Shared;
  friend class File;
  friend class Reader;
  friend class Shared;

  bool dir_exists(const std::string& path) const;
  Result<std::shared_ptr<Inode>> find(const std::string& path, std::string_view op) const;
  Status maybe_fail_sync(const std::string& path);
  Status powered_off_error(const std::string& path) const;
  void maybe_flip_bit(char* data, size_t n);
  Status write_inode(Inode& inode, const std::string& path, uint64_t offset, std::string_view data);
  Status truncate_inode(Inode& inode, const std::string& path, uint64_t size);
  static void make_durable(Inode& inode);
  Status sync_inode(Inode& inode, const std::string& path);
  Status sync_file(const std::shared_ptr<Inode>& inode, const std::string& path);
  void make_dir_durable(const std::string& path);
  Status before_mutation();
  void crash_directories();
  void crash_inode(Inode& inode);
  void keep_torn_prefix(Inode& inode);
  void keep_page_subset(Inode& inode);

  Prng prng_;
  SimEnvOptions options_;
  Stats stats_;
  int fail_next_syncs_ = 0;
  int power_fail_countdown_ = 0;  // the sync call at which the power fails; 0 = none
  bool powered_off_ = false;      // since then every mutation fails
  Shared* shared_ = nullptr;      // the open shared sync, if any
  uint64_t epoch_ = 0;            // bumped by crash(); handles from an older epoch are dead
  std::set<std::string> dirs_;
  std::map<std::string, std::shared_ptr<Inode>> files_;          // current namespace
  std::map<std::string, std::shared_ptr<Inode>> durable_files_;  // what a crash leaves
  // Invariant: applying dir_ops_ in order to durable_files_ yields files_.
  std::vector<DirOp> dir_ops_;
};

}  // namespace chorus::storage
