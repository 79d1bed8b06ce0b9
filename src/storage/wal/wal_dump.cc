#include "storage/wal/wal_dump.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "storage/env/coding.h"
#include "storage/wal/record.h"
#include "storage/wal/wal.h"

namespace chorus::storage {
namespace {

struct SegmentFile {
  uint64_t seq = 0;
  LogIndex first_index;
  std::string name;
};

std::string_view type_name(RecordType t) {
  return t == RecordType::kEntryNoop ? "noop" : "normal";
}

std::string n(uint64_t v) {
  return std::to_string(v);
}

// Dump state across segments: what to report and return.
class Dumper {
 public:
  Dumper(Env* env, std::string dir, const std::function<void(std::string_view)>& line,
         WalDumpOptions options)
      : env_(env), dir_(std::move(dir)), line_(line), options_(options) {}

  Status run();

 private:
  Status dump_segment(const SegmentFile& seg, bool is_last);
  void problem(const std::string& where, const std::string& what) {
    line_("  BAD " + what);
    if (!first_problem_) first_problem_ = Status::corruption(where + ": " + what);
  }

  Env* env_;
  std::string dir_;
  const std::function<void(std::string_view)>& line_;
  WalDumpOptions options_;
  std::optional<Status> first_problem_;
  std::optional<LogIndex> expected_;  // next index after the previous segment
  uint64_t records_ = 0;
  std::optional<LogIndex> first_, last_;
};

Status Dumper::run() {
  CHORUS_ASSIGN_OR_RETURN(auto names, env_->list_dir(dir_));
  std::vector<SegmentFile> segs;
  for (const auto& name : names) {
    SegmentFile s;
    if (parse_segment_name(name, &s.seq, &s.first_index)) {
      s.name = name;
      segs.push_back(std::move(s));
    }
  }
  std::sort(segs.begin(), segs.end(), [](auto& a, auto& b) { return a.seq < b.seq; });
  for (size_t i = 0; i < segs.size(); ++i) {
    if (i > 0 && segs[i].seq != segs[i - 1].seq + 1) {
      line_("GAP missing segment(s) with seq " + n(segs[i - 1].seq + 1) + ".." +
            n(segs[i].seq - 1));
      if (!first_problem_) {
        first_problem_ =
            Status::corruption("wal " + dir_ + ": missing segment: " + segs[i - 1].name +
                               " is followed by " + segs[i].name);
      }
    }
    CHORUS_RETURN_IF_ERROR(dump_segment(segs[i], i + 1 == segs.size()));
  }
  std::string summary = "summary: " + n(segs.size()) + " segments, " + n(records_) + " records";
  if (first_) summary += ", indexes " + n(first_->value()) + ".." + n(last_->value());
  summary += first_problem_ ? ", first bad: " + first_problem_->message() : ", no corruption";
  line_(summary);
  return first_problem_ ? *first_problem_ : Status::ok();
}

Status Dumper::dump_segment(const SegmentFile& seg, bool is_last) {
  const std::string path = join_path(dir_, seg.name);
  CHORUS_ASSIGN_OR_RETURN(std::string bytes, env_->read_file(path, kMaxSegmentFileBytes));
  line_("segment " + seg.name + " seq=" + n(seg.seq) + " first_index=" +
        n(seg.first_index.value()) + " bytes=" + n(bytes.size()) + (is_last ? " (last)" : ""));
  if (expected_ && seg.first_index != *expected_) {
    problem(path + " offset 0", "index gap: segment starts at " + n(seg.first_index.value()) +
                                    ", previous segment ends at " + n(expected_->value() - 1));
  }
  LogIndex expected = seg.first_index;
  std::optional<LogIndex> batch;  // batch_first() of the previous record in this segment
  uint64_t offset = 0;
  while (offset < bytes.size()) {
    RecordView rec;
    const std::string_view rest = std::string_view(bytes).substr(offset);
    const RecordError err = decode_record(rest, &rec);
    const std::string where = path + " offset " + n(offset);
    if (err != RecordError::kNone) {
      std::string what = "offset=" + n(offset) + ": " + std::string(record_error_name(err));
      if (err == RecordError::kChecksumMismatch) {
        what += " (stored " + hex64(rec.checksum) + ")";
      }
      if (is_last) {
        const TailVerdict v =
            classify_bad_tail(bytes, offset, err, TailContext{seg.first_index, expected, batch});
        if (v.torn) {
          line_("  TORN " + what + ": torn tail, recovery cuts " + n(bytes.size() - offset) +
                " bytes here (" + v.reason + ")");
          break;
        }
        what += ": " + v.reason;
      }
      problem(where, what + "; recovery stops here");
      break;
    }
    if (options_.records) {
      line_("  record offset=" + n(offset) + " index=" + n(rec.index.value()) +
            " term=" + n(rec.term.value()) + " type=" + std::string(type_name(rec.type)) +
            " size=" + n(rec.payload.size()) +
            " checksum=ok batch=" + n(rec.batch_first().value()));
    }
    if (rec.index != expected) {
      problem(where,
              "index gap: expected " + n(expected.value()) + ", found " + n(rec.index.value()));
    } else if (rec.batch_first() != rec.index && rec.batch_first() != batch) {
      problem(where, "sync batch from index " + n(rec.batch_first().value()) +
                         " does not include the record before it");
    }
    batch = rec.batch_first();
    if (!first_) first_ = rec.index;
    last_ = rec.index;
    ++records_;
    expected = rec.index.next();
    offset += rec.size;
  }
  expected_ = expected;
  return Status::ok();
}

}  // namespace

Status wal_dump(Env* env, const std::string& dir, const std::function<void(std::string_view)>& line,
                WalDumpOptions options) {
  return Dumper(env, dir, line, options).run();
}

Status wal_dump(Env* env, const std::string& dir, std::string* out, WalDumpOptions options) {
  return wal_dump(
      env, dir,
      [out](std::string_view l) {
        out->append(l);
        out->push_back('\n');
      },
      options);
}

}  // namespace chorus::storage
