#include "storage/snapshot/snapshot_store.h"

#include <algorithm>
#include <cstdio>

#include "base/planted.h"
#include "chorus/storage.pb.h"

namespace chorus::storage {
namespace {

// File layout (docs/formats/snapshot.md):
//   prefix  = magic "CHSNAP01" | header_length u32 | reserved u32 | header_checksum u64
//   header  = storagepb.SnapshotHeader, header_length bytes
//   chunk   = length u32 (> 0) | reserved u32 | checksum u64 (XXH3-64 of data) | data
//   footer  = 0 u32 | reserved u32 | chunks u64 | data_bytes u64 | data_checksum u64
//             | footer_checksum u64 (XXH3-64 of the 32 footer bytes before it)
constexpr std::string_view kMagic = "CHSNAP01";
constexpr size_t kPrefixBytes = 24;
constexpr size_t kChunkHeaderBytes = 16;
constexpr size_t kFooterBytes = 40;
constexpr std::string_view kTmpSuffix = ".tmp";

std::string at(const std::string& path, uint64_t offset) {
  return "snapshot " + path + " offset " + std::to_string(offset);
}

Status read_exact(ReadableFile* file, uint64_t offset, size_t n, char* dst) {
  CHORUS_ASSIGN_OR_RETURN(size_t got, file->read_at(offset, n, dst));
  if (got != n) return Status::corruption(at(file->path(), offset + got) + ": file ends early");
  return Status::ok();
}

struct Footer {
  uint64_t chunks = 0;
  uint64_t data_bytes = 0;
  uint64_t data_checksum = 0;
};

// Reads the prefix and header; returns the offset of the first chunk.
Result<uint64_t> read_header(ReadableFile* file, SnapshotInfo* info) {
  const std::string& path = file->path();
  char prefix[kPrefixBytes];
  CHORUS_RETURN_IF_ERROR(read_exact(file, 0, sizeof prefix, prefix));
  if (std::string_view(prefix, kMagic.size()) != kMagic) {
    return Status::corruption(at(path, 0) + ": bad magic");
  }
  const uint32_t length = get_u32(prefix + 8);
  if (length > kMaxSnapshotHeaderBytes)
    return Status::corruption(at(path, 8) + ": header too long");
  std::string header(length, '\0');
  CHORUS_RETURN_IF_ERROR(read_exact(file, kPrefixBytes, length, header.data()));
  if (checksum64(header) != get_u64(prefix + 16)) {
    return Status::corruption(at(path, kPrefixBytes) + ": header checksum mismatch");
  }
  storagepb::SnapshotHeader h;
  if (!h.ParseFromString(header))
    return Status::corruption(at(path, kPrefixBytes) + ": bad header");
  info->meta = core::SnapshotMeta{LogIndex(h.index()), Term(h.term())};
  info->content_type = h.content_type();
  info->path = path;
  return kPrefixBytes + length;
}

// Reads the chunk at *offset, appending its bytes to *out and advancing
// *offset; returns false (and fills *footer) when the footer is there.
Result<bool> read_chunk(ReadableFile* file, uint64_t* offset, std::string* out, Footer* footer) {
  const std::string& path = file->path();
  char head[kFooterBytes];
  CHORUS_RETURN_IF_ERROR(read_exact(file, *offset, kChunkHeaderBytes, head));
  const uint32_t length = get_u32(head);
  if (length == 0) {
    CHORUS_RETURN_IF_ERROR(read_exact(file, *offset + kChunkHeaderBytes,
                                      kFooterBytes - kChunkHeaderBytes, head + kChunkHeaderBytes));
    if (checksum64(std::string_view(head, 32)) != get_u64(head + 32)) {
      return Status::corruption(at(path, *offset) + ": footer checksum mismatch");
    }
    *footer = Footer{get_u64(head + 8), get_u64(head + 16), get_u64(head + 24)};
    *offset += kFooterBytes;
    return false;
  }
  if (length > kMaxSnapshotChunkBytes) {
    return Status::corruption(at(path, *offset) + ": chunk length " + std::to_string(length) +
                              " over the limit");
  }
  const size_t start = out->size();
  out->resize(start + length);
  CHORUS_RETURN_IF_ERROR(
      read_exact(file, *offset + kChunkHeaderBytes, length, out->data() + start));
  bool chunk_ok = checksum64(std::string_view(*out).substr(start)) == get_u64(head + 8);
  if constexpr (planted::kSnapshotNoChecksum) chunk_ok = true;  // planted bug: trust the bytes
  if (!chunk_ok) return Status::corruption(at(path, *offset) + ": chunk checksum mismatch");
  *offset += kChunkHeaderBytes + length;
  return true;
}

Status check_footer(const std::string& path, uint64_t offset, const Footer& f, uint64_t chunks,
                    uint64_t bytes, uint64_t sum) {
  if constexpr (planted::kSnapshotNoChecksum) sum = f.data_checksum;  // planted bug
  if (f.chunks != chunks || f.data_bytes != bytes || f.data_checksum != sum) {
    return Status::corruption(at(path, offset) + ": footer does not match the chunks (" +
                              std::to_string(chunks) + " chunks, " + std::to_string(bytes) +
                              " bytes read; footer says " + std::to_string(f.chunks) + ", " +
                              std::to_string(f.data_bytes) + ")");
  }
  return Status::ok();
}

bool by_position(const core::SnapshotMeta& a, const core::SnapshotMeta& b) {
  return a.index != b.index ? a.index < b.index : a.term < b.term;
}

}  // namespace

std::string snapshot_file_name(const core::SnapshotMeta& meta) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "snap-%020llu-%020llu.snap",
                static_cast<unsigned long long>(meta.index.value()),
                static_cast<unsigned long long>(meta.term.value()));
  return buf;
}

bool parse_snapshot_file_name(std::string_view name, core::SnapshotMeta* meta) {
  constexpr size_t kLen = 5 + 20 + 1 + 20 + 5;
  if (name.size() != kLen || !name.starts_with("snap-") || !name.ends_with(".snap") ||
      name[25] != '-') {
    return false;
  }
  auto digits = [](std::string_view s, uint64_t* v) {
    uint64_t x = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return false;
      const uint64_t d = static_cast<uint64_t>(c - '0');
      if (x > (UINT64_MAX - d) / 10) return false;
      x = x * 10 + d;
    }
    *v = x;
    return true;
  };
  uint64_t index = 0;
  uint64_t term = 0;
  if (!digits(name.substr(5, 20), &index) || !digits(name.substr(26, 20), &term)) return false;
  *meta = core::SnapshotMeta{LogIndex(index), Term(term)};
  return true;
}

Result<SnapshotInfo> verify_snapshot_file(Env* env, const std::string& path, std::string* data) {
  CHORUS_ASSIGN_OR_RETURN(uint64_t size, env->file_size(path));
  CHORUS_ASSIGN_OR_RETURN(auto file, env->open_readable(path));
  SnapshotInfo info;
  CHORUS_ASSIGN_OR_RETURN(uint64_t offset, read_header(file.get(), &info));
  std::string scratch;
  std::string* out = data != nullptr ? data : &scratch;
  StreamingChecksum sum;
  Footer footer;
  for (;;) {
    const size_t start = out->size();
    CHORUS_ASSIGN_OR_RETURN(bool chunk, read_chunk(file.get(), &offset, out, &footer));
    if (!chunk) break;
    sum.update(std::string_view(*out).substr(start));
    info.data_bytes += out->size() - start;
    ++info.chunks;
    if (data == nullptr) scratch.clear();
  }
  CHORUS_RETURN_IF_ERROR(
      check_footer(path, offset, footer, info.chunks, info.data_bytes, sum.digest()));
  if (offset != size) return Status::corruption(at(path, offset) + ": bytes after the footer");
  core::SnapshotMeta named;
  if (parse_snapshot_file_name(base_name(path), &named) && !(named == info.meta)) {
    return Status::corruption(at(path, 0) + ": header says index " +
                              std::to_string(info.meta.index.value()) + " term " +
                              std::to_string(info.meta.term.value()) + ", the name disagrees");
  }
  return info;
}

// ---------------------------------------------------------------- reader

Result<bool> SnapshotReader::next(std::string* chunk) {
  chunk->clear();
  Footer footer;
  CHORUS_ASSIGN_OR_RETURN(bool more, read_chunk(file_.get(), &offset_, chunk, &footer));
  if (more) {
    data_sum_.update(*chunk);
    ++chunks_read_;
    return true;
  }
  // Every chunk passed its own check; the footer proves none was lost or reordered.
  CHORUS_RETURN_IF_ERROR(check_footer(info_.path, offset_, footer, info_.chunks, info_.data_bytes,
                                      footer.data_checksum));
  if (chunks_read_ != info_.chunks || data_sum_.digest() != footer.data_checksum) {
    return Status::corruption(at(info_.path, offset_) + ": snapshot changed while being read");
  }
  return false;
}

Result<std::string> SnapshotReader::read_all() {
  std::string out;
  std::string chunk;
  for (;;) {
    CHORUS_ASSIGN_OR_RETURN(bool more, next(&chunk));
    if (!more) return out;
    out += chunk;
  }
}

// ---------------------------------------------------------------- writer

SnapshotWriter::SnapshotWriter(SnapshotStore* store, SnapshotInfo info, std::string tmp_path,
                               std::unique_ptr<WritableFile> file)
    : store_(store),
      info_(std::move(info)),
      tmp_path_(std::move(tmp_path)),
      file_(std::move(file)) {}

SnapshotWriter::~SnapshotWriter() {
  abandon();
}

void SnapshotWriter::abandon() {
  if (done_) return;
  done_ = true;
  file_->close().ignore();
  // Best effort: open() removes leftovers anyway.
  store_->env_->remove(tmp_path_).ignore();
}

Status SnapshotWriter::failed(Status s) {
  abandon();
  return s;
}

Status SnapshotWriter::write_chunk(std::string_view chunk) {
  frame_.clear();
  put_u32(&frame_, static_cast<uint32_t>(chunk.size()));
  put_u32(&frame_, 0);
  put_u64(&frame_, checksum64(chunk));
  frame_ += chunk;
  const Status s = file_->append(frame_);
  if (!s.is_ok()) return failed(s);
  data_sum_.update(chunk);
  info_.data_bytes += chunk.size();
  ++info_.chunks;
  return Status::ok();
}

Status SnapshotWriter::append(std::string_view data) {
  if (done_) return Status::invalid_argument("snapshot " + tmp_path_ + ": writer is closed");
  const size_t chunk = store_->options_.chunk_bytes;
  while (!data.empty()) {
    if (partial_.empty() && data.size() >= chunk) {
      CHORUS_RETURN_IF_ERROR(write_chunk(data.substr(0, chunk)));
      data.remove_prefix(chunk);
      continue;
    }
    const size_t take = std::min(chunk - partial_.size(), data.size());
    partial_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (partial_.size() == chunk) {
      CHORUS_RETURN_IF_ERROR(write_chunk(partial_));
      partial_.clear();
    }
  }
  return Status::ok();
}

Result<SnapshotInfo> SnapshotWriter::finish() {
  if (done_) return Status::invalid_argument("snapshot " + tmp_path_ + ": writer is closed");
  if (!partial_.empty()) {
    CHORUS_RETURN_IF_ERROR(write_chunk(partial_));
    partial_.clear();
  }
  std::string footer;
  put_u32(&footer, 0);
  put_u32(&footer, 0);
  put_u64(&footer, info_.chunks);
  put_u64(&footer, info_.data_bytes);
  put_u64(&footer, data_sum_.digest());
  put_u64(&footer, checksum64(footer));
  Status s = file_->append(footer);
  if (s.is_ok()) s = file_->sync();
  if (s.is_ok()) s = file_->close();
  if (s.is_ok()) s = store_->env_->rename(tmp_path_, info_.path);
  if (!s.is_ok()) return failed(s);
  done_ = true;
  // From here the file has its final name; a failed directory fsync leaves
  // its durability unknown, so the caller must not compact the log.
  CHORUS_RETURN_IF_ERROR(store_->env_->sync_dir(store_->dir_));
  CHORUS_RETURN_IF_ERROR(store_->retain(info_.meta));
  return info_;
}

// ---------------------------------------------------------------- store

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::open(Env* env, std::string dir,
                                                           SnapshotStoreOptions options) {
  if (options.keep < 1) return Status::invalid_argument("snapshot store: keep must be >= 1");
  if (options.chunk_bytes < 1 || options.chunk_bytes > kMaxSnapshotChunkBytes) {
    return Status::invalid_argument("snapshot store: chunk_bytes outside [1, " +
                                    std::to_string(kMaxSnapshotChunkBytes) + "]");
  }
  std::unique_ptr<SnapshotStore> store(new SnapshotStore(env, std::move(dir), options));
  CHORUS_RETURN_IF_ERROR(store->init());
  return store;
}

Status SnapshotStore::init() {
  CHORUS_RETURN_IF_ERROR(env_->create_dir(dir_));
  CHORUS_ASSIGN_OR_RETURN(auto names, env_->list_dir(dir_));
  for (const auto& name : names) {
    if (name.starts_with("snap-") && name.ends_with(kTmpSuffix)) {
      CHORUS_RETURN_IF_ERROR(env_->remove(join_path(dir_, name)));
      removed_tmp_.push_back(join_path(dir_, name));
    }
  }
  return env_->sync_dir(dir_);
}

std::string SnapshotStore::path_of(const core::SnapshotMeta& meta) const {
  return join_path(dir_, snapshot_file_name(meta));
}

Result<std::vector<core::SnapshotMeta>> SnapshotStore::list() {
  CHORUS_ASSIGN_OR_RETURN(auto names, env_->list_dir(dir_));
  std::vector<core::SnapshotMeta> out;
  for (const auto& name : names) {
    core::SnapshotMeta meta;
    if (parse_snapshot_file_name(name, &meta)) out.push_back(meta);
  }
  std::sort(out.begin(), out.end(), by_position);
  return out;
}

Status SnapshotStore::retain(const core::SnapshotMeta& finished) {
  CHORUS_ASSIGN_OR_RETURN(auto all, list());
  // Snapshots after the one just finished are of a replaced history (found
  // by the simulator, async seed 552: a backup installed its new primary's
  // snapshot below its own, restarted, and recovered from its own).
  bool removed = false;
  while (!all.empty() && by_position(finished, all.back())) {
    CHORUS_RETURN_IF_ERROR(env_->remove(path_of(all.back())));
    all.pop_back();
    removed = true;
  }
  if (all.size() <= options_.keep) return removed ? env_->sync_dir(dir_) : Status::ok();
  for (size_t i = 0; i + options_.keep < all.size(); ++i) {
    CHORUS_RETURN_IF_ERROR(env_->remove(path_of(all[i])));
  }
  return env_->sync_dir(dir_);
}

Result<std::unique_ptr<SnapshotWriter>> SnapshotStore::begin(core::SnapshotMeta meta,
                                                             std::string content_type) {
  SnapshotInfo info;
  info.meta = meta;
  info.content_type = std::move(content_type);
  info.path = path_of(meta);
  const std::string tmp = info.path + std::string(kTmpSuffix);
  CHORUS_ASSIGN_OR_RETURN(auto file, env_->open_writable(tmp, OpenMode::kTruncate));
  storagepb::SnapshotHeader h;
  h.set_index(meta.index.value());
  h.set_term(meta.term.value());
  h.set_content_type(info.content_type);
  const std::string header = h.SerializeAsString();
  if (header.size() > kMaxSnapshotHeaderBytes) {
    return Status::invalid_argument("snapshot header too long (content type?)");
  }
  std::string prefix(kMagic);
  put_u32(&prefix, static_cast<uint32_t>(header.size()));
  put_u32(&prefix, 0);
  put_u64(&prefix, checksum64(header));
  prefix += header;
  std::unique_ptr<SnapshotWriter> w(
      new SnapshotWriter(this, std::move(info), tmp, std::move(file)));
  const Status s = w->file_->append(prefix);
  if (!s.is_ok()) return w->failed(s);
  return w;
}

Result<SnapshotInfo> SnapshotStore::write(core::SnapshotMeta meta, std::string_view data,
                                          std::string content_type) {
  CHORUS_ASSIGN_OR_RETURN(auto writer, begin(meta, std::move(content_type)));
  CHORUS_RETURN_IF_ERROR(writer->append(data));
  return writer->finish();
}

Result<SnapshotLoad> SnapshotStore::load_latest() {
  CHORUS_ASSIGN_OR_RETURN(auto all, list());
  SnapshotLoad load;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    std::string data;
    auto info = verify_snapshot_file(env_, path_of(*it), &data);
    if (info.is_ok()) {
      load.snapshot = LoadedSnapshot{std::move(info).value(), std::move(data)};
      return load;
    }
    load.rejected.push_back(info.status());
  }
  if (!load.rejected.empty()) {
    std::string msg = "snapshot store " + dir_ + ": no snapshot verifies:";
    for (const auto& s : load.rejected) msg += " [" + s.message() + "]";
    return Status::corruption(std::move(msg));
  }
  return load;
}

Result<std::unique_ptr<SnapshotReader>> SnapshotStore::open_reader(const core::SnapshotMeta& meta) {
  const std::string path = path_of(meta);
  CHORUS_ASSIGN_OR_RETURN(SnapshotInfo info, verify_snapshot_file(env_, path, nullptr));
  CHORUS_ASSIGN_OR_RETURN(auto file, env_->open_readable(path));
  SnapshotInfo header_info;
  CHORUS_ASSIGN_OR_RETURN(uint64_t offset, read_header(file.get(), &header_info));
  if (!(header_info.meta == info.meta)) {
    return Status::corruption(at(path, 0) + ": snapshot changed while being opened");
  }
  return std::unique_ptr<SnapshotReader>(
      new SnapshotReader(std::move(info), std::move(file), offset));
}

Result<std::unique_ptr<SnapshotReader>> SnapshotStore::open_latest(std::vector<Status>* rejected) {
  CHORUS_ASSIGN_OR_RETURN(auto all, list());
  std::vector<Status> failures;
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    auto reader = open_reader(*it);
    if (reader.is_ok()) {
      if (rejected) rejected->insert(rejected->end(), failures.begin(), failures.end());
      return std::move(reader).value();
    }
    failures.push_back(reader.status());
  }
  if (rejected) rejected->insert(rejected->end(), failures.begin(), failures.end());
  if (!failures.empty()) {
    return Status::corruption("snapshot store " + dir_ +
                              ": no snapshot verifies: " + failures.front().message());
  }
  return std::unique_ptr<SnapshotReader>();
}

}  // namespace chorus::storage
