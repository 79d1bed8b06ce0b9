// SnapshotStore: state-machine snapshot files in one directory
// (format: docs/formats/snapshot.md).
//
// What it is. Each snapshot is a file "snap-<index>-<term>.snap" holding a
// checksummed header (index, term, content type), the snapshot bytes as a
// sequence of checksummed chunks, and a footer with the chunk count, the
// byte count and a checksum of all the bytes. The bytes are opaque here (the
// state machine encodes them).
//
// Writing. begin() opens "<name>.tmp"; SnapshotWriter::append() takes bytes
// in any pieces and writes chunks of chunk_bytes; finish() writes the footer,
// fdatasyncs, renames the file to its final name and fsyncs the directory —
// only then is the snapshot durable and visible to load_latest() after a
// crash. Then every snapshot positioned after the one just finished is
// deleted — it belongs to a history the new one replaced (a primary-backup
// node installs its new primary's snapshot below its own: left in place, a
// restart would load the replaced one) — and all but the `keep` newest
// snapshots (by index, then term). A writer destroyed without finish() removes its temporary file.
//
// Reading. Nothing is handed out before the whole file has been verified:
// load_latest() reads and verifies the newest snapshot in one pass and
// returns its bytes only if every check passed; open_latest()/open_reader()
// verify the whole file first and then stream it chunk by chunk (each chunk
// checked again as it is read, so damage that appears in between is caught
// too; the consumer must be able to discard a partly read snapshot).
//
// Corruption. A snapshot that fails verification is never loaded. It is
// reported in SnapshotLoad::rejected and the next older snapshot is tried
// (the store keeps `keep` of them for this reason). Falling back is only safe
// if the log still reaches back to the older snapshot: the host must check
// that the WAL's first index is <= snapshot index + 1, and should compact the
// log no further than the oldest snapshot it keeps. If snapshot files exist
// but none verifies, load_latest() fails with kCorruption rather than
// pretend there is no snapshot.
//
// Crash. open() removes leftover temporary files (a crash mid-write) and
// fsyncs the directory (a rename by a process that died before its directory
// fsync is made durable before anyone acts on it).
//
// Thread-safety: none; one owner at a time. A writer or reader may be used by
// another thread than the store's, but the store must outlive them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/common/types.h"
#include "storage/env/coding.h"
#include "storage/env/env.h"

namespace chorus::storage {

// No chunk in a file may be larger (checked on read before allocating).
inline constexpr uint32_t kMaxSnapshotChunkBytes = 16u << 20;
inline constexpr uint32_t kMaxSnapshotHeaderBytes = 64u << 10;

struct SnapshotStoreOptions {
  size_t keep = 2;                  // snapshots kept after a new one is finished (>= 1)
  uint32_t chunk_bytes = 1u << 20;  // chunk size written, <= kMaxSnapshotChunkBytes
};

struct SnapshotInfo {
  core::SnapshotMeta meta;
  std::string content_type;
  std::string path;
  uint64_t data_bytes = 0;
  uint64_t chunks = 0;
};

class SnapshotStore;

class SnapshotWriter {
 public:
  ~SnapshotWriter();
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  // Adds bytes to the snapshot (any size; chunking is internal).
  Status append(std::string_view data);
  // Makes the snapshot durable and visible; deletes old ones beyond `keep`.
  Result<SnapshotInfo> finish();
  // Gives up: removes the temporary file. Implied by the destructor.
  void abandon();

 private:
  friend class SnapshotStore;
  SnapshotWriter(SnapshotStore* store, SnapshotInfo info, std::string tmp_path,
                 std::unique_ptr<WritableFile> file);
  Status write_chunk(std::string_view chunk);
  Status failed(Status s);

  SnapshotStore* store_;
  SnapshotInfo info_;
  std::string tmp_path_;
  std::unique_ptr<WritableFile> file_;
  std::string partial_;  // bytes of the next chunk, < chunk_bytes
  std::string frame_;    // scratch: header + chunk bytes for one write
  StreamingChecksum data_sum_;
  bool done_ = false;  // finished, failed or abandoned
};

class SnapshotReader {
 public:
  const SnapshotInfo& info() const { return info_; }
  // The next chunk, verified; false once the snapshot is exhausted.
  Result<bool> next(std::string* chunk);
  // All remaining bytes.
  Result<std::string> read_all();

 private:
  friend class SnapshotStore;
  SnapshotReader(SnapshotInfo info, std::unique_ptr<ReadableFile> file, uint64_t offset)
      : info_(std::move(info)), file_(std::move(file)), offset_(offset) {}

  SnapshotInfo info_;
  std::unique_ptr<ReadableFile> file_;
  uint64_t offset_;  // of the next chunk header
  uint64_t chunks_read_ = 0;
  StreamingChecksum data_sum_;
};

struct LoadedSnapshot {
  SnapshotInfo info;
  std::string data;
};

struct SnapshotLoad {
  std::optional<LoadedSnapshot> snapshot;  // nullopt: there is no snapshot
  std::vector<Status> rejected;            // newer snapshots that failed verification
};

class SnapshotStore {
 public:
  static Result<std::unique_ptr<SnapshotStore>> open(Env* env, std::string dir,
                                                     SnapshotStoreOptions options = {});

  Result<std::unique_ptr<SnapshotWriter>> begin(core::SnapshotMeta meta,
                                                std::string content_type = "");
  // begin + append + finish.
  Result<SnapshotInfo> write(core::SnapshotMeta meta, std::string_view data,
                             std::string content_type = "");

  // The newest snapshot that verifies, read whole.
  Result<SnapshotLoad> load_latest();
  // The newest snapshot that verifies, as a stream; nullptr if there is none.
  // Snapshots that failed are appended to *rejected when it is given.
  Result<std::unique_ptr<SnapshotReader>> open_latest(std::vector<Status>* rejected = nullptr);
  // A specific snapshot (e.g. to stream to a follower), verified first.
  Result<std::unique_ptr<SnapshotReader>> open_reader(const core::SnapshotMeta& meta);

  // Snapshots present (by file name, not verified), oldest first.
  Result<std::vector<core::SnapshotMeta>> list();
  // Temporary files open() removed.
  const std::vector<std::string>& removed_temporaries() const { return removed_tmp_; }
  const std::string& dir() const { return dir_; }

 private:
  friend class SnapshotWriter;
  SnapshotStore(Env* env, std::string dir, SnapshotStoreOptions options)
      : env_(env), dir_(std::move(dir)), options_(options) {}
  Status init();
  Status retain(const core::SnapshotMeta& finished);
  std::string path_of(const core::SnapshotMeta& meta) const;

  Env* env_;
  std::string dir_;
  SnapshotStoreOptions options_;
  std::vector<std::string> removed_tmp_;
};

// "snap-00000000000000000120-00000000000000000003.snap"
std::string snapshot_file_name(const core::SnapshotMeta& meta);
bool parse_snapshot_file_name(std::string_view name, core::SnapshotMeta* meta);

// Reads and verifies the whole snapshot file at `path`; when `data` is given
// the snapshot bytes are appended to it. Used by the store and by tools.
Result<SnapshotInfo> verify_snapshot_file(Env* env, const std::string& path, std::string* data);

}  // namespace chorus::storage
