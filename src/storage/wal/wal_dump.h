// wal_dump: a human-readable listing of a WAL directory, for
// `chorus wal-dump DIR` and for debugging recovery failures.
//
// Read-only: it never truncates or repairs anything. It lists every segment
// (sequence, first index, size), every record (offset, index, term, type,
// payload size, checksum status) and flags the first bad record in each
// segment with its file and offset, together with what recovery would do
// about it (cut a torn tail of the last segment, or stop). It also reports
// gaps in the segment sequence and in the indexes.
//
// Output format (one line each, stable for scripts; batch= is the first
// index of the record's sync batch, docs/formats/wal.md):
//   segment wal-...log seq=1 first_index=1 bytes=4096
//     record offset=0 index=1 term=1 type=normal size=100 checksum=ok batch=1
//     BAD offset=4064: checksum mismatch: torn tail, recovery cuts it (...)
//   summary: 1 segments, 40 records, indexes 1..40, first bad record: FILE offset N
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "storage/env/env.h"

namespace chorus::storage {

struct WalDumpOptions {
  bool records = true;  // false: segments and problems only
};

// Calls `line` once per output line (without the newline). Returns OK if the
// log is clean or has only a torn tail that recovery would cut; otherwise the
// same kCorruption status Wal::open() would report, naming the first bad
// record's file and offset. I/O errors are returned as they happen.
Status wal_dump(Env* env, const std::string& dir, const std::function<void(std::string_view)>& line,
                WalDumpOptions options = {});
// The same, appending lines (each ending in '\n') to *out.
Status wal_dump(Env* env, const std::string& dir, std::string* out, WalDumpOptions options = {});

}  // namespace chorus::storage
