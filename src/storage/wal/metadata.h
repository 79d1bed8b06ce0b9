// MetadataFile: an engine's durable state (for Raft: current_term,
// voted_for, commit) in a double-buffered file (format:
// docs/formats/metadata.md). The bytes are the engine's encoding
// (core/common/engine.h); this file only keeps them safe.
//
// What it is. A file of two fixed-size copies ("slots") of 4 KiB each, in
// separate pages. Each copy holds the state, a sequence number and a
// checksum. save() writes the copy that does NOT hold the current state,
// then fdatasyncs; copy i only ever holds sequence numbers with
// sequence % 2 == i, so the two copies alternate. A crash during save() can
// damage at most the copy being written; the other still holds the previous
// state, which is the last one save() returned OK for.
//
// Loading. The valid copy with the higher sequence number wins. A damaged
// copy that loses is reported in damaged_copy() (the caller logs it). No
// file at all is a new node: state() is empty and is_new() is true. A file
// where neither copy is valid is an error (kCorruption): the node must not
// start with a forgotten vote (Raft §5.2: at most one vote per term).
//
// The first save() creates the file atomically (temporary name, fsync,
// rename, directory fsync), so a file that exists always had a valid copy.
//
// Fail-stop: after a failed write or fdatasync, every later save() returns
// kFailStopped. Thread-safety: none (one owner). Crash: state() after a
// restart is the last state save() returned OK for, or a newer one whose
// save() was in progress.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "storage/env/env.h"

namespace chorus::storage {

inline constexpr uint64_t kMetadataSlotBytes = 4096;
inline constexpr uint64_t kMetadataFileBytes = 2 * kMetadataSlotBytes;

class MetadataFile {
 public:
  static Result<std::unique_ptr<MetadataFile>> open(Env* env, std::string path);

  // The engine's bytes as last saved; empty for a new node.
  const std::string& state() const { return state_; }
  // Sequence number of the current state (0: never saved).
  uint64_t sequence() const { return sequence_; }
  // True when open() found no file (a new node).
  bool is_new() const { return is_new_; }
  // Why the losing copy was invalid, if it was damaged (not merely unused).
  const std::optional<std::string>& damaged_copy() const { return damaged_copy_; }

  // Durably replaces the state. On a write or sync error the file keeps the
  // previous state (or the new one; unknown), and the object is
  // fail-stopped. A state too large for one copy (kMetadataSlotBytes less
  // the header) is refused with kInvalidArgument before anything is written.
  Status save(std::string_view state);
  bool healthy() const { return failure_.is_ok(); }

 private:
  MetadataFile(Env* env, std::string path) : env_(env), path_(std::move(path)) {}
  Status load();
  Status fail(Status cause);

  Env* env_;
  std::string path_;
  std::unique_ptr<WritableFile> file_;  // null until the file exists
  std::string state_;
  uint64_t sequence_ = 0;
  bool is_new_ = false;
  std::optional<std::string> damaged_copy_;
  Status failure_;
};

}  // namespace chorus::storage
