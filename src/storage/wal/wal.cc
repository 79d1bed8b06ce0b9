#include "storage/wal/wal.h"

#include <algorithm>
#include <cstdio>

#include "storage/wal/record.h"

namespace chorus::storage {
namespace {

std::string at(const std::string& path, uint64_t offset) {
  return path + " offset " + std::to_string(offset);
}

std::string idx(LogIndex i) {
  return std::to_string(i.value());
}

}  // namespace

std::string RecoveryReport::to_string(const std::string& dir) const {
  char buf[160];
  std::snprintf(buf, sizeof buf,
                "wal %s: %llu segments, %llu records (%llu bytes), indexes %llu..%llu", dir.c_str(),
                static_cast<unsigned long long>(segments), static_cast<unsigned long long>(records),
                static_cast<unsigned long long>(bytes),
                static_cast<unsigned long long>(first_index.value()),
                static_cast<unsigned long long>(last_index.value()));
  std::string s = buf;
  if (torn_tail) {
    s += "; torn tail cut at " + at(torn_tail->file, torn_tail->offset) + " (" +
         std::to_string(torn_tail->bytes_dropped) + " bytes dropped";
    if (torn_tail->records_dropped > 0) {
      s += ", " + std::to_string(torn_tail->records_dropped) +
           " valid records of a never-synced batch among them";
    }
    s += ": " + torn_tail->reason + ")";
  }
  return s;
}

Wal::Wal(Env* env, std::string dir, WalOptions options)
    : env_(env), dir_(std::move(dir)), options_(options) {}

Wal::~Wal() {
  if (active_) active_->close().ignore();
}

Result<std::unique_ptr<Wal>> Wal::open(Env* env, std::string dir, WalOptions options) {
  if (options.segment_bytes < kMinSegmentBytes || options.segment_bytes > kMaxSegmentBytes) {
    return Status::invalid_argument("wal segment_bytes " + std::to_string(options.segment_bytes) +
                                    " outside [" + std::to_string(kMinSegmentBytes) + ", " +
                                    std::to_string(kMaxSegmentBytes) + "]");
  }
  std::unique_ptr<Wal> wal(new Wal(env, std::move(dir), options));
  CHORUS_RETURN_IF_ERROR(wal->recover());
  return wal;
}

// Lists and orders the segments, then verifies each one in order.
Status Wal::recover() {
  CHORUS_RETURN_IF_ERROR(env_->create_dir(dir_));
  CHORUS_ASSIGN_OR_RETURN(auto names, env_->list_dir(dir_));
  for (const auto& name : names) {
    Segment seg;
    if (!parse_segment_name(name, &seg.seq, &seg.first_index)) continue;  // not ours
    if (seg.first_index == LogIndex(0)) {
      return Status::corruption(join_path(dir_, name) + ": segment starts at index 0");
    }
    seg.path = join_path(dir_, name);
    segments_.push_back(std::move(seg));
  }
  std::sort(segments_.begin(), segments_.end(),
            [](const Segment& a, const Segment& b) { return a.seq < b.seq; });
  for (size_t i = 1; i < segments_.size(); ++i) {
    if (segments_[i].seq != segments_[i - 1].seq + 1) {
      return Status::corruption("wal " + dir_ + ": missing segment: " + segments_[i - 1].path +
                                " is followed by " + segments_[i].path);
    }
  }
  std::string buf;
  for (size_t i = 0; i < segments_.size(); ++i) {
    Segment& seg = segments_[i];
    if (i > 0 && seg.first_index != segments_[i - 1].last_index().next()) {
      return Status::corruption(at(seg.path, 0) + ": index gap: segment starts at index " +
                                idx(seg.first_index) + " but the previous segment ends at " +
                                idx(segments_[i - 1].last_index()));
    }
    CHORUS_RETURN_IF_ERROR(recover_segment(seg, i + 1 == segments_.size(), &buf));
    recovery_.records += seg.offsets.size();
  }
  if (!segments_.empty()) {
    first_index_ = segments_.front().first_index;
    last_index_ = segments_.back().last_index();
    next_seq_ = segments_.back().seq + 1;
    CHORUS_ASSIGN_OR_RETURN(active_, env_->open_writable(segments_.back().path, OpenMode::kAppend));
    // What we read may have been written but never synced (the previous
    // process died before its fdatasync), and the torn-tail cut is not yet
    // durable: sync both, and the directory entry of the last segment, before
    // reporting anything as durable.
    CHORUS_RETURN_IF_ERROR(active_->sync());
    CHORUS_RETURN_IF_ERROR(env_->sync_dir(dir_));
  }
  durable_index_ = last_index_;
  recovery_.segments = segments_.size();
  recovery_.first_index = first_index_;
  recovery_.last_index = last_index_;
  return Status::ok();
}

// Reads a whole segment into `buf`, which is reused across segments: a fresh
// 64 MiB allocation per segment costs more in page faults than the checksums.
Result<std::string_view> Wal::read_segment(const std::string& path, std::string* buf) {
  CHORUS_ASSIGN_OR_RETURN(uint64_t size, env_->file_size(path));
  if (size > kMaxSegmentFileBytes) {
    return Status::corruption(path + ": segment is " + std::to_string(size) +
                              " bytes, more than the limit " +
                              std::to_string(kMaxSegmentFileBytes));
  }
  if (buf->size() < size) buf->resize(size);
  CHORUS_ASSIGN_OR_RETURN(auto file, env_->open_readable(path));
  CHORUS_ASSIGN_OR_RETURN(size_t n, file->read_at(0, size, buf->data()));
  return std::string_view(buf->data(), n);
}

Status Wal::recover_segment(Segment& seg, bool is_last, std::string* buf) {
  CHORUS_ASSIGN_OR_RETURN(const std::string_view view, read_segment(seg.path, buf));
  uint64_t offset = 0;
  LogIndex expected = seg.first_index;
  std::optional<LogIndex> batch;  // batch_first() of the previous record in this segment
  while (offset < view.size()) {
    RecordView rec;
    const RecordError err = decode_record(view.substr(offset), &rec);
    if (err != RecordError::kNone) {
      if (!is_last) {
        return Status::corruption(at(seg.path, offset) + ": " +
                                  std::string(record_error_name(err)) + " (not the last segment)");
      }
      return cut_unsynced_tail(seg, view, offset, err,
                               TailContext{seg.first_index, expected, batch});
    }
    if (rec.index != expected) {
      return Status::corruption(at(seg.path, offset) + ": index gap: expected index " +
                                idx(expected) + ", found " + idx(rec.index));
    }
    // A record continues the sync batch of the one before it or starts a new
    // one; a batch never spans segments (roll() syncs). Recovery's sync-batch
    // rule depends on it.
    if (rec.batch_first() != rec.index && rec.batch_first() != batch) {
      return Status::corruption(at(seg.path, offset) + ": index " + idx(rec.index) +
                                " says its sync batch began at index " + idx(rec.batch_first()) +
                                ", which the record before it is not in");
    }
    batch = rec.batch_first();
    seg.offsets.push_back(offset);
    offset += rec.size;
    expected = expected.next();
  }
  recovery_.bytes += offset;
  return Status::ok();
}

// The cut is made durable by recover(), which syncs the last segment before
// anything is reported durable.
Status Wal::cut_unsynced_tail(Segment& seg, std::string_view bytes, uint64_t offset,
                              RecordError error, const TailContext& where) {
  CHORUS_ASSERT(where.expected == seg.first_index + seg.offsets.size());
  TailVerdict verdict = classify_bad_tail(bytes, offset, error, where);
  if (!verdict.torn) {
    return Status::corruption(at(seg.path, offset) + ": " + std::string(record_error_name(error)) +
                              ": " + verdict.reason);
  }
  CHORUS_RETURN_IF_ERROR(env_->truncate(seg.path, offset));
  recovery_.bytes += offset;
  recovery_.torn_tail = RecoveryReport::TornTail{
      seg.path, offset, bytes.size() - offset,
      std::string(record_error_name(error)) + ", " + verdict.reason, verdict.records_dropped};
  return Status::ok();
}

Status Wal::refuse() const {
  return Status::fail_stopped("wal " + dir_ +
                              " refuses writes after an earlier failure: " + failure_.to_string());
}

Status Wal::fail(Status cause) {
  CHORUS_ASSERT(!cause.is_ok());
  if (failure_.is_ok()) failure_ = std::move(cause);
  return refuse();
}

uint64_t Wal::active_bytes() const {
  return active_ ? active_->size() + buffer_.size() : 0;
}

Status Wal::check_batch(std::span<const core::Entry> entries) const {
  for (size_t i = 0; i < entries.size(); ++i) {
    const core::Entry& e = entries[i];
    if (e.index == LogIndex(0)) return Status::invalid_argument("wal append: index 0");
    if (i > 0 && e.index != entries[i - 1].index.next()) {
      return Status::invalid_argument("wal append: batch not contiguous at index " + idx(e.index));
    }
    if (e.data.size() > kMaxRecordPayloadBytes) {
      return Status::invalid_argument("wal append: entry " + idx(e.index) + " has " +
                                      std::to_string(e.data.size()) + " bytes, limit " +
                                      std::to_string(kMaxRecordPayloadBytes));
    }
  }
  return Status::ok();
}

Status Wal::append(std::span<const core::Entry> entries) {
  if (!healthy()) return refuse();
  if (entries.empty()) return Status::ok();
  CHORUS_RETURN_IF_ERROR(check_batch(entries));
  const LogIndex first = entries.front().index;
  if (first <= last_index_) {
    if (first < first_index_) {
      return Status::invalid_argument("wal append: index " + idx(first) +
                                      " is before the first index " + idx(first_index_));
    }
    CHORUS_RETURN_IF_ERROR(truncate_suffix(first));
  } else if (first != last_index_.next()) {
    return Status::invalid_argument("wal append: index gap: log ends at " + idx(last_index_) +
                                    ", append starts at " + idx(first));
  }
  for (const auto& e : entries) CHORUS_RETURN_IF_ERROR(append_one(e));
  if (buffer_.size() >= options_.write_buffer_bytes) return flush();
  return Status::ok();
}

Status Wal::append_one(const core::Entry& e) {
  const uint64_t n = record_bytes(e);
  if (segments_.empty()) {
    CHORUS_RETURN_IF_ERROR(start_segment(e.index));
  } else if (active_bytes() > 0 && active_bytes() + n > options_.segment_bytes) {
    CHORUS_RETURN_IF_ERROR(roll(e.index));
  } else if (batch_first_ && e.index - *batch_first_ > kMaxBatchOffset) {
    CHORUS_RETURN_IF_ERROR(sync_all());  // the batch_offset field is full
  }
  if (!batch_first_) batch_first_ = e.index;
  CHORUS_ASSERT(*batch_first_ >= segments_.back().first_index && *batch_first_ <= e.index);
  segments_.back().offsets.push_back(active_bytes());
  encode_record(e, static_cast<uint32_t>(e.index - *batch_first_), &buffer_);
  last_index_ = e.index;
  return Status::ok();
}

Status Wal::start_segment(LogIndex first_index) {
  CHORUS_ASSERT(!batch_first_);  // a sync batch never spans segments
  const uint64_t seq = segments_.empty() ? next_seq_ : segments_.back().seq + 1;
  Segment seg{seq, first_index, join_path(dir_, segment_name(seq, first_index)), {}};
  auto file = env_->open_writable(seg.path, OpenMode::kTruncate);
  if (!file.is_ok()) return fail(file.status());
  active_ = std::move(file).value();
  segments_.push_back(std::move(seg));
  if (segments_.size() == 1) first_index_ = first_index;
  dir_dirty_ = true;
  return Status::ok();
}

// The finished segment is synced before the next one is created: a segment
// that is not the last is always complete, so recovery may treat any damage
// in it as corruption.
Status Wal::roll(LogIndex next_index) {
  CHORUS_RETURN_IF_ERROR(sync_all());
  const Status closed = active_->close();
  active_.reset();
  if (!closed.is_ok()) return fail(closed);
  return start_segment(next_index);
}

Status Wal::flush() {
  if (buffer_.empty()) return Status::ok();
  if (!healthy()) return refuse();  // a failed write is never retried
  const Status s = active_->append(buffer_);
  if (!s.is_ok()) return fail(s);
  ++stats_.writes;
  stats_.bytes_written += buffer_.size();
  buffer_.clear();
  file_dirty_ = true;
  return Status::ok();
}

Status Wal::sync() {
  if (!healthy()) return refuse();
  return sync_all();
}

Status Wal::sync_all() {
  CHORUS_RETURN_IF_ERROR(flush());
  if (file_dirty_) {
    const Status s = active_->sync();
    ++stats_.syncs;
    if (!s.is_ok()) return fail(s);
    file_dirty_ = false;
  }
  if (dir_dirty_) {
    const Status s = env_->sync_dir(dir_);
    if (!s.is_ok()) return fail(s);
    dir_dirty_ = false;
  }
  durable_index_ = last_index_;
  batch_first_.reset();  // the next record starts a new sync batch
  return Status::ok();
}

Status Wal::remove_segment_durably(const Segment& seg) {
  Status s = env_->remove(seg.path);
  if (s.is_ok()) s = env_->sync_dir(dir_);
  if (!s.is_ok()) return fail(s);
  return Status::ok();
}

// Precondition: first_index_ <= from <= last_index_.
Status Wal::truncate_suffix(LogIndex from) {
  CHORUS_RETURN_IF_ERROR(flush());
  // Newest first, each removal durable before the next: a crash leaves a
  // prefix of the old log.
  while (segments_.size() > 1 && segments_.back().first_index >= from) {
    const Status closed = active_ ? active_->close() : Status::ok();
    active_.reset();
    if (!closed.is_ok()) return fail(closed);
    CHORUS_RETURN_IF_ERROR(remove_segment_durably(segments_.back()));
    segments_.pop_back();
  }
  Segment& seg = segments_.back();
  if (!active_) {
    auto file = env_->open_writable(seg.path, OpenMode::kAppend);
    if (!file.is_ok()) return fail(file.status());
    active_ = std::move(file).value();
  }
  // `from` is in this segment, or just past its end when the removed segment
  // started at `from` (then there is nothing to cut here).
  const uint64_t keep = from - seg.first_index;
  CHORUS_ASSERT(keep <= seg.offsets.size());
  if (keep < seg.offsets.size()) {
    const Status s = active_->truncate(seg.offsets[keep]);
    if (!s.is_ok()) return fail(s);
    seg.offsets.resize(keep);
    file_dirty_ = true;
  }
  last_index_ = from.prev();
  durable_index_ = std::min(durable_index_, last_index_);
  // The cut is made durable before the new suffix is written, so no byte of
  // the old suffix can lie behind the new, un-synced records after a crash:
  // the un-synced part of a segment only ever holds the last sync batch (the
  // premise of recovery's sync-batch rule). Overwrites are rare (a follower
  // after a leader change); the extra fdatasync is cheap.
  return sync_all();
}

Status Wal::compact(LogIndex through) {
  if (!healthy()) return refuse();
  if (through < first_index_) return Status::ok();
  if (through >= last_index_) return reset(through);
  // Oldest first, each removal durable before the next: a crash leaves a
  // suffix of the old log. The active segment holds last_index_ > through,
  // so it is never removed here.
  while (segments_.size() > 1 && segments_.front().last_index() <= through) {
    CHORUS_RETURN_IF_ERROR(remove_segment_durably(segments_.front()));
    segments_.erase(segments_.begin());
  }
  if (!segments_.empty()) first_index_ = segments_.front().first_index;
  return Status::ok();
}

Status Wal::replace_with_snapshot(LogIndex through) {
  if (!healthy()) return refuse();
  return reset(through);
}

// Deletes every segment; the log continues at through+1.
Status Wal::reset(LogIndex through) {
  buffer_.clear();
  if (active_) {
    const Status closed = active_->close();
    active_.reset();
    if (!closed.is_ok()) return fail(closed);
  }
  if (!segments_.empty()) next_seq_ = segments_.back().seq + 1;
  // Newest first: a crash leaves a prefix of the old log, which the snapshot
  // covers or which ends before it (replace_with_snapshot), never a stale
  // suffix beyond the snapshot that recovery would bring back.
  while (!segments_.empty()) {
    CHORUS_RETURN_IF_ERROR(remove_segment_durably(segments_.back()));
    segments_.pop_back();
  }
  file_dirty_ = false;
  dir_dirty_ = false;
  batch_first_.reset();
  first_index_ = through.next();
  last_index_ = through;
  durable_index_ = through;  // covered by the durable snapshot (precondition)
  return Status::ok();
}

Result<std::vector<core::Entry>> Wal::entries(LogIndex lo, LogIndex hi) {
  if (lo < first_index_ || hi < lo || hi > last_index_.next()) {
    return Status::invalid_argument("wal entries [" + idx(lo) + ", " + idx(hi) +
                                    ") outside the log [" + idx(first_index_) + ", " +
                                    idx(last_index_) + "]");
  }
  std::vector<core::Entry> out;
  if (lo == hi) return out;
  CHORUS_RETURN_IF_ERROR(flush());
  out.reserve(hi - lo);
  for (const Segment& seg : segments_) {
    if (seg.offsets.empty() || seg.last_index() < lo || seg.first_index >= hi) continue;
    const LogIndex seg_lo = std::max(lo, seg.first_index);
    const LogIndex seg_hi = std::min(hi, seg.last_index().next());
    CHORUS_RETURN_IF_ERROR(read_segment_range(seg, seg_lo, seg_hi, &out));
  }
  return out;
}

Status Wal::read_segment_range(const Segment& seg, LogIndex lo, LogIndex hi,
                               std::vector<core::Entry>* out) {
  const uint64_t begin = seg.offsets[lo - seg.first_index];
  const bool to_end = hi == seg.last_index().next();
  const bool active = &seg == &segments_.back();
  uint64_t end;
  if (!to_end) {
    end = seg.offsets[hi - seg.first_index];
  } else if (active && active_) {
    end = active_->size();
  } else {
    CHORUS_ASSIGN_OR_RETURN(end, env_->file_size(seg.path));
  }
  CHORUS_ASSIGN_OR_RETURN(auto file, env_->open_readable(seg.path));
  std::string bytes(end - begin, '\0');
  CHORUS_ASSIGN_OR_RETURN(size_t n, file->read_at(begin, bytes.size(), bytes.data()));
  if (n != bytes.size()) {
    return Status::corruption(at(seg.path, begin + n) + ": file shorter than the log index says");
  }
  uint64_t offset = 0;
  for (LogIndex i = lo; i < hi; i = i.next()) {
    RecordView rec;
    const RecordError err = decode_record(std::string_view(bytes).substr(offset), &rec);
    if (err != RecordError::kNone || rec.index != i) {
      return Status::corruption(at(seg.path, begin + offset) + ": reading index " + idx(i) + ": " +
                                (err != RecordError::kNone ? std::string(record_error_name(err))
                                                           : "found index " + idx(rec.index)));
    }
    out->push_back(to_entry(rec));
    offset += rec.size;
  }
  return Status::ok();
}

}  // namespace chorus::storage
