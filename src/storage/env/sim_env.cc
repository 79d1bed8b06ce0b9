#include "storage/env/sim_env.h"

#include <algorithm>
#include <cstdio>

#include "base/assert.h"

namespace chorus::storage {
namespace {

// "a//b/" -> "a/b"; "/" stays "/".
std::string normalize(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '/' && !out.empty() && out.back() == '/') continue;
    out += c;
  }
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

}  // namespace

// A pending change to a file's bytes, not yet durable.
struct SimEnv::Inode {
  struct Op {
    bool is_truncate = false;
    uint64_t offset = 0;  // write: where; truncate: the new size
    std::string data;     // write: the bytes
  };
  std::string durable;  // survives a crash
  std::string current;  // what reads see
  // Invariant: applying `pending` in order to `durable` yields `current`.
  std::vector<Op> pending;
};

// A pending change to a directory's entries, not yet durable.
struct SimEnv::DirOp {
  enum Kind { kCreate, kRemove, kRename } kind;
  std::string dir;
  std::string path;              // create/remove: the entry; rename: the source
  std::string to;                // rename: the destination
  std::shared_ptr<Inode> inode;  // create/rename: the inode the entry points to
};

namespace {

void apply_write(std::string& bytes, uint64_t offset, std::string_view data) {
  if (bytes.size() < offset + data.size()) bytes.resize(offset + data.size(), '\0');
  std::copy(data.begin(), data.end(), bytes.begin() + static_cast<ptrdiff_t>(offset));
}

Status dead_handle(const std::string& path) {
  return Status::io_error(path + ": stale file handle (the simulated disk crashed)");
}

}  // namespace

class SimEnv::File final : public WritableFile {
 public:
  File(SimEnv* env, std::shared_ptr<Inode> inode, std::string path)
      : env_(env), inode_(std::move(inode)), path_(std::move(path)), epoch_(env->epoch_) {}

  Status append(std::string_view data) override { return write_at(size(), data); }
  Status write_at(uint64_t offset, std::string_view data) override {
    CHORUS_RETURN_IF_ERROR(check());
    return env_->write_inode(*inode_, path_, offset, data);
  }
  Status truncate(uint64_t size) override {
    CHORUS_RETURN_IF_ERROR(check());
    return env_->truncate_inode(*inode_, path_, size);
  }
  Status sync() override {
    CHORUS_RETURN_IF_ERROR(check());
    return env_->sync_file(inode_, path_);
  }
  Status close() override {
    closed_ = true;
    return Status::ok();
  }
  uint64_t size() const override { return inode_->current.size(); }
  const std::string& path() const override { return path_; }

 private:
  Status check() const {
    if (closed_) return Status::io_error(path_ + ": file is closed");
    if (epoch_ != env_->epoch_) return dead_handle(path_);
    return Status::ok();
  }

  SimEnv* env_;
  std::shared_ptr<Inode> inode_;
  std::string path_;
  uint64_t epoch_;
  bool closed_ = false;
};

class SimEnv::Reader final : public ReadableFile {
 public:
  Reader(SimEnv* env, std::shared_ptr<Inode> inode, std::string path)
      : env_(env), inode_(std::move(inode)), path_(std::move(path)), epoch_(env->epoch_) {}

  Result<size_t> read_at(uint64_t offset, size_t n, char* dst) override {
    if (epoch_ != env_->epoch_) return dead_handle(path_);
    const std::string& bytes = inode_->current;
    if (offset >= bytes.size()) return size_t{0};
    const size_t count = std::min<uint64_t>(n, bytes.size() - offset);
    std::copy_n(bytes.data() + offset, count, dst);
    env_->maybe_flip_bit(dst, count);
    return count;
  }
  const std::string& path() const override { return path_; }

 private:
  SimEnv* env_;
  std::shared_ptr<Inode> inode_;
  std::string path_;
  uint64_t epoch_;
};

// A shared sync (env.h): records per owner, made durable by one simulated
// device sync at commit().
class SimEnv::Shared final : public SharedSync {
 public:
  explicit Shared(SimEnv* env) : env_(env), epoch_(env->epoch_) {
    CHORUS_ASSERT_MSG(env_->shared_ == nullptr, "shared syncs do not nest");
    env_->shared_ = this;
  }
  ~Shared() override {
    CHORUS_ASSERT(env_->shared_ == this);
    CHORUS_ASSERT_MSG(commit_called_ || records_.empty(),
                      "a shared sync that recorded syncs was destroyed without commit()");
    env_->shared_ = nullptr;
  }

  void set_owner(uint64_t owner) override { owner_ = owner; }
  const Stats& stats() const override { return stats_; }

  void record_file(std::shared_ptr<Inode> inode, const std::string& path) {
    ++stats_.recorded;
    records_[owner_].files.emplace(std::move(inode), path);
  }
  void record_dir(const std::string& path) {
    ++stats_.recorded;
    records_[owner_].dirs.insert(path);
  }

  // The current owner's records, synced one by one as without a shared sync.
  Status barrier() {
    auto it = records_.find(owner_);
    if (it == records_.end()) return Status::ok();
    const Records recs = std::move(it->second);
    records_.erase(it);
    if (crashed()) return crashed_error();
    for (const auto& [inode, path] : recs.files) {
      ++stats_.barrier_syncs;
      CHORUS_RETURN_IF_ERROR(env_->sync_inode(*inode, path));
    }
    for (const auto& dir : recs.dirs) {
      ++stats_.barrier_syncs;
      CHORUS_RETURN_IF_ERROR(env_->maybe_fail_sync(dir));
      env_->make_dir_durable(dir);
    }
    return Status::ok();
  }

  Status commit() override {
    CHORUS_ASSERT_MSG(!commit_called_, "a shared sync is committed once");
    commit_called_ = true;
    std::map<uint64_t, Records> recs = std::move(records_);
    records_.clear();
    for (const auto& [owner, r] : recs) stats_.committed += r.files.size() + r.dirs.size();
    if (stats_.committed == 0) return Status::ok();
    if (crashed()) return crashed_error();
    ++stats_.device_syncs;
    ++env_->stats_.shared_sync_commits;
    // One device sync: all of it, or (failed, or the power failed during
    // it) none of it.
    CHORUS_RETURN_IF_ERROR(env_->maybe_fail_sync("shared sync"));
    for (const auto& [owner, r] : recs) {
      for (const auto& [inode, path] : r.files) make_durable(*inode);
      for (const auto& dir : r.dirs) env_->make_dir_durable(dir);
    }
    return Status::ok();
  }

 private:
  struct Records {
    std::map<std::shared_ptr<Inode>, std::string> files;  // inode -> a path it was synced by
    std::set<std::string> dirs;
  };
  bool crashed() const { return epoch_ != env_->epoch_; }
  static Status crashed_error() {
    return Status::io_error("shared sync: the simulated disk crashed before its commit");
  }

  SimEnv* env_;
  uint64_t epoch_;  // a crash() since it began loses its records
  uint64_t owner_ = 0;
  bool commit_called_ = false;
  std::map<uint64_t, Records> records_;
  Stats stats_;
};

SimEnvOptions SimEnvOptions::random(Prng& prng) {
  SimEnvOptions o;
  o.torn_write_chance = prng.chance(0.8) ? prng.real() : 0;
  o.dir_keep_chance = prng.chance(0.8) ? prng.real() : 0;
  o.sync_failure_rate = prng.chance(0.1) ? 0.001 : 0;
  o.write_failure_rate = prng.chance(0.05) ? 0.0005 : 0;
  // Bad reads are transient: recovery refuses to start and the node retries.
  // Some seeds make them common, so every reader's checksum is exercised.
  const double dice = prng.real();
  o.read_corruption_rate = dice < 0.1 ? 0.02 : dice < 0.15 ? 0.0005 : 0;
  // Drawn last, so the settings above stay what they were for a given seed.
  o.page_subset_chance = prng.chance(0.5) ? prng.real() : 0;
  return o;
}

std::string SimEnvOptions::describe() const {
  char buf[200];
  std::snprintf(
      buf, sizeof buf,
      "disk: sync_fail=%.4g write_fail=%.4g torn=%.3g dir_keep=%.3g read_flip=%.4g pages=%.3g",
      sync_failure_rate, write_failure_rate, torn_write_chance, dir_keep_chance,
      read_corruption_rate, page_subset_chance);
  return buf;
}

SimEnv::SimEnv(Prng prng, SimEnvOptions options) : prng_(prng), options_(options) {
  dirs_.insert("/");
  dirs_.insert(".");
}

SimEnv::~SimEnv() = default;

bool SimEnv::dir_exists(const std::string& path) const {
  return dirs_.count(path) > 0;
}

Result<std::shared_ptr<SimEnv::Inode>> SimEnv::find(const std::string& path,
                                                    std::string_view op) const {
  auto it = files_.find(path);
  if (it == files_.end()) {
    return Status::not_found(std::string(op) + " " + path + ": No such file or directory");
  }
  return it->second;
}

std::unique_ptr<SharedSync> SimEnv::begin_shared_sync() {
  return std::make_unique<Shared>(this);
}

Status SimEnv::before_mutation() {
  return shared_ ? shared_->barrier() : Status::ok();
}

Status SimEnv::create_dir(const std::string& raw) {
  const std::string path = normalize(raw);
  if (powered_off_) return powered_off_error(path);
  if (files_.count(path))
    return Status::io_error("mkdir " + path + ": exists and is not a directory");
  if (dir_exists(path)) return Status::ok();
  CHORUS_RETURN_IF_ERROR(before_mutation());
  const std::string parent = parent_dir(path);
  if (parent != path && !dir_exists(parent)) CHORUS_RETURN_IF_ERROR(create_dir(parent));
  dirs_.insert(path);
  return Status::ok();
}

Result<std::vector<std::string>> SimEnv::list_dir(const std::string& raw) {
  const std::string path = normalize(raw);
  if (!dir_exists(path))
    return Status::not_found("opendir " + path + ": No such file or directory");
  std::set<std::string> names;
  for (const auto& [p, inode] : files_) {
    if (parent_dir(p) == path) names.insert(std::string(base_name(p)));
  }
  for (const auto& d : dirs_) {
    if (d != path && parent_dir(d) == path) names.insert(std::string(base_name(d)));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<bool> SimEnv::exists(const std::string& raw) {
  const std::string path = normalize(raw);
  return files_.count(path) > 0 || dir_exists(path);
}

Result<std::unique_ptr<WritableFile>> SimEnv::open_writable(const std::string& raw, OpenMode mode) {
  const std::string path = normalize(raw);
  if (powered_off_) return powered_off_error(path);
  const std::string dir = parent_dir(path);
  if (!dir_exists(dir)) return Status::not_found("open " + path + ": No such file or directory");
  if (dir_exists(path)) return Status::io_error("open " + path + ": Is a directory");
  CHORUS_RETURN_IF_ERROR(before_mutation());  // it may create or cut the file
  std::shared_ptr<Inode> inode;
  if (auto it = files_.find(path); it != files_.end()) {
    inode = it->second;
    if (mode == OpenMode::kTruncate && !inode->current.empty()) {
      CHORUS_RETURN_IF_ERROR(truncate_inode(*inode, path, 0));
    }
  } else {
    inode = std::make_shared<Inode>();
    files_[path] = inode;
    dir_ops_.push_back(DirOp{DirOp::kCreate, dir, path, "", inode});
  }
  return std::unique_ptr<WritableFile>(new File(this, std::move(inode), path));
}

Result<std::unique_ptr<ReadableFile>> SimEnv::open_readable(const std::string& raw) {
  const std::string path = normalize(raw);
  CHORUS_ASSIGN_OR_RETURN(auto inode, find(path, "open"));
  return std::unique_ptr<ReadableFile>(new Reader(this, std::move(inode), path));
}

Result<std::string> SimEnv::read_file(const std::string& raw, uint64_t max_bytes) {
  const std::string path = normalize(raw);
  CHORUS_ASSIGN_OR_RETURN(auto inode, find(path, "open"));
  if (inode->current.size() > max_bytes) {
    return Status::corruption("read " + path + ": file is " +
                              std::to_string(inode->current.size()) +
                              " bytes, more than the limit " + std::to_string(max_bytes));
  }
  std::string out = inode->current;
  maybe_flip_bit(out.data(), out.size());
  return out;
}

Result<uint64_t> SimEnv::file_size(const std::string& raw) {
  const std::string path = normalize(raw);
  CHORUS_ASSIGN_OR_RETURN(auto inode, find(path, "stat"));
  return static_cast<uint64_t>(inode->current.size());
}

Status SimEnv::rename(const std::string& raw_from, const std::string& raw_to) {
  const std::string from = normalize(raw_from);
  const std::string to = normalize(raw_to);
  if (powered_off_) return powered_off_error(from);
  CHORUS_ASSIGN_OR_RETURN(auto inode, find(from, "rename"));
  const std::string dir = parent_dir(from);
  if (parent_dir(to) != dir) {
    return Status::invalid_argument("rename " + from + " -> " + to +
                                    ": SimEnv renames only within one directory");
  }
  if (dir_exists(to)) return Status::io_error("rename " + from + " -> " + to + ": Is a directory");
  if (from == to) return Status::ok();
  CHORUS_RETURN_IF_ERROR(before_mutation());
  files_.erase(from);
  files_[to] = inode;
  dir_ops_.push_back(DirOp{DirOp::kRename, dir, from, to, std::move(inode)});
  return Status::ok();
}

Status SimEnv::remove(const std::string& raw) {
  const std::string path = normalize(raw);
  if (powered_off_) return powered_off_error(path);
  CHORUS_ASSIGN_OR_RETURN(auto inode, find(path, "unlink"));
  CHORUS_RETURN_IF_ERROR(before_mutation());
  files_.erase(path);
  dir_ops_.push_back(DirOp{DirOp::kRemove, parent_dir(path), path, "", nullptr});
  return Status::ok();
}

Status SimEnv::truncate(const std::string& raw, uint64_t size) {
  const std::string path = normalize(raw);
  CHORUS_ASSIGN_OR_RETURN(auto inode, find(path, "truncate"));
  return truncate_inode(*inode, path, size);
}

Status SimEnv::sync_dir(const std::string& raw) {
  const std::string path = normalize(raw);
  if (!dir_exists(path)) return Status::not_found("open " + path + ": No such file or directory");
  if (powered_off_) return powered_off_error(path);
  if (shared_) {
    shared_->record_dir(path);
    return Status::ok();
  }
  CHORUS_RETURN_IF_ERROR(maybe_fail_sync(path));
  make_dir_durable(path);
  return Status::ok();
}

void SimEnv::make_dir_durable(const std::string& path) {
  for (auto it = durable_files_.begin(); it != durable_files_.end();) {
    it = parent_dir(it->first) == path ? durable_files_.erase(it) : std::next(it);
  }
  for (const auto& [p, inode] : files_) {
    if (parent_dir(p) == path) durable_files_[p] = inode;
  }
  std::erase_if(dir_ops_, [&](const DirOp& op) { return op.dir == path; });
}

Status SimEnv::powered_off_error(const std::string& path) const {
  return Status::io_error(path + ": the power failed (simulated)");
}

Status SimEnv::maybe_fail_sync(const std::string& path) {
  if (powered_off_) return powered_off_error(path);
  if (power_fail_countdown_ > 0 && --power_fail_countdown_ == 0) {
    powered_off_ = true;
    return powered_off_error(path);
  }
  ++stats_.syncs;
  if (fail_next_syncs_ > 0 || prng_.chance(options_.sync_failure_rate)) {
    if (fail_next_syncs_ > 0) --fail_next_syncs_;
    ++stats_.sync_failures;
    return Status::io_error("fdatasync " + path + ": Input/output error (simulated)");
  }
  return Status::ok();
}

void SimEnv::maybe_flip_bit(char* data, size_t n) {
  if (n == 0 || !prng_.chance(options_.read_corruption_rate)) return;
  const uint64_t bit = prng_.uniform(0, n * 8 - 1);
  data[bit / 8] = static_cast<char>(data[bit / 8] ^ (1 << (bit % 8)));
  ++stats_.read_corruptions;
}

Status SimEnv::write_inode(Inode& inode, const std::string& path, uint64_t offset,
                           std::string_view data) {
  if (powered_off_) return powered_off_error(path);
  if (prng_.chance(options_.write_failure_rate)) {
    ++stats_.write_failures;
    return Status::io_error("write " + path + " offset " + std::to_string(offset) +
                            ": Input/output error (simulated)");
  }
  CHORUS_RETURN_IF_ERROR(before_mutation());
  apply_write(inode.current, offset, data);
  inode.pending.push_back(Inode::Op{false, offset, std::string(data)});
  stats_.bytes_written += data.size();
  return Status::ok();
}

Status SimEnv::truncate_inode(Inode& inode, const std::string& path, uint64_t size) {
  if (powered_off_) return powered_off_error(path);
  if (prng_.chance(options_.write_failure_rate)) {
    ++stats_.write_failures;
    return Status::io_error("truncate " + path + ": Input/output error (simulated)");
  }
  CHORUS_RETURN_IF_ERROR(before_mutation());
  inode.current.resize(size, '\0');
  inode.pending.push_back(Inode::Op{true, size, {}});
  return Status::ok();
}

Status SimEnv::sync_file(const std::shared_ptr<Inode>& inode, const std::string& path) {
  if (powered_off_) return powered_off_error(path);
  if (shared_) {
    shared_->record_file(inode, path);
    return Status::ok();
  }
  return sync_inode(*inode, path);
}

Status SimEnv::sync_inode(Inode& inode, const std::string& path) {
  CHORUS_RETURN_IF_ERROR(maybe_fail_sync(path));
  make_durable(inode);
  return Status::ok();
}

// durable = current, by replaying the pending operations (the invariant):
// a sync then costs what was written since the last one, not the file's
// size, which made every WAL sync of a simulation copy the whole segment.
void SimEnv::make_durable(Inode& inode) {
  for (const auto& op : inode.pending) {
    if (op.is_truncate) {
      inode.durable.resize(op.offset, '\0');
    } else {
      apply_write(inode.durable, op.offset, op.data);
    }
  }
  inode.pending.clear();
  CHORUS_ASSERT(inode.durable.size() == inode.current.size());
}

void SimEnv::crash() {
  ++stats_.crashes;
  powered_off_ = false;
  power_fail_countdown_ = 0;
  ++epoch_;
  crash_directories();
  files_ = durable_files_;
  for (auto& [path, inode] : files_) crash_inode(*inode);
}

// Keeps, per directory and with dir_keep_chance, a random prefix of the
// pending entry operations; drops the rest.
void SimEnv::crash_directories() {
  std::map<std::string, std::vector<const DirOp*>> by_dir;
  for (const auto& op : dir_ops_) by_dir[op.dir].push_back(&op);
  for (const auto& [dir, ops] : by_dir) {
    if (!prng_.chance(options_.dir_keep_chance)) continue;
    const uint64_t keep = prng_.uniform(0, ops.size());
    for (uint64_t i = 0; i < keep; ++i) {
      const DirOp& op = *ops[i];
      switch (op.kind) {
        case DirOp::kCreate:
          durable_files_[op.path] = op.inode;
          break;
        case DirOp::kRemove:
          durable_files_.erase(op.path);
          break;
        case DirOp::kRename:
          durable_files_.erase(op.path);
          durable_files_[op.to] = op.inode;
          break;
      }
    }
  }
  dir_ops_.clear();
}

// Drops the file's pending operations, or keeps a prefix of them
// (torn_write_chance), or a subset of the pages they touched
// (page_subset_chance).
void SimEnv::crash_inode(Inode& inode) {
  if (!inode.pending.empty()) {
    if (prng_.chance(options_.torn_write_chance)) {
      keep_torn_prefix(inode);
    } else if (prng_.chance(options_.page_subset_chance)) {
      keep_page_subset(inode);
    }
  }
  inode.current = inode.durable;
  inode.pending.clear();
}

// A budget of bytes is drawn, each truncation costs one unit, each write as
// many units as it has bytes, and the write where the budget runs out is cut
// there.
void SimEnv::keep_torn_prefix(Inode& inode) {
  uint64_t total = 0;
  for (const auto& op : inode.pending) total += op.is_truncate ? 1 : op.data.size();
  uint64_t budget = prng_.uniform(0, total);
  for (const auto& op : inode.pending) {
    if (budget == 0) break;
    if (op.is_truncate) {
      inode.durable.resize(op.offset, '\0');
      --budget;
    } else {
      const uint64_t n = std::min<uint64_t>(budget, op.data.size());
      apply_write(inode.durable, op.offset, std::string_view(op.data).substr(0, n));
      budget -= n;
    }
  }
  ++stats_.torn_writes;
}

// Every page a pending write touched (and that still exists in the current
// bytes) is kept with a probability drawn for this file; kept pages take
// their current bytes, in any order relative to each other. Truncations are
// applied all together, or not at all, before the pages.
void SimEnv::keep_page_subset(Inode& inode) {
  const std::string& current = inode.current;
  std::set<uint64_t> dirty;  // page numbers
  bool truncates = false;
  for (const auto& op : inode.pending) {
    if (op.is_truncate) {
      truncates = true;
      continue;
    }
    if (op.data.empty()) continue;
    const uint64_t last = op.offset + op.data.size() - 1;
    for (uint64_t page = op.offset / kSimPageBytes; page <= last / kSimPageBytes; ++page) {
      if (page * kSimPageBytes < current.size()) dirty.insert(page);
    }
  }
  if (truncates && prng_.chance(0.5)) {
    for (const auto& op : inode.pending) {
      if (op.is_truncate) inode.durable.resize(op.offset, '\0');
    }
  }
  const double keep = prng_.real();
  for (const uint64_t page : dirty) {
    if (!prng_.chance(keep)) continue;
    const uint64_t lo = page * kSimPageBytes;
    const uint64_t hi = std::min<uint64_t>(lo + kSimPageBytes, current.size());
    CHORUS_ASSERT(lo < hi);
    // The file grows to cover the page; pages in between that were not kept
    // read as zeros.
    if (inode.durable.size() < hi) inode.durable.resize(hi, '\0');
    std::copy(current.begin() + static_cast<ptrdiff_t>(lo),
              current.begin() + static_cast<ptrdiff_t>(hi),
              inode.durable.begin() + static_cast<ptrdiff_t>(lo));
  }
  ++stats_.page_subsets;
}

Status SimEnv::corrupt(const std::string& raw, uint64_t offset, uint64_t len) {
  const std::string path = normalize(raw);
  CHORUS_ASSIGN_OR_RETURN(auto inode, find(path, "corrupt"));
  for (uint64_t i = offset; i < offset + len; ++i) {
    const auto mask = static_cast<char>(prng_.uniform(1, 255));
    if (i < inode->current.size()) inode->current[i] = static_cast<char>(inode->current[i] ^ mask);
    if (i < inode->durable.size()) inode->durable[i] = static_cast<char>(inode->durable[i] ^ mask);
    // The pending writes too, so that replaying them (make_durable) still
    // yields the current bytes.
    for (auto& op : inode->pending) {
      if (!op.is_truncate && i >= op.offset && i < op.offset + op.data.size()) {
        op.data[i - op.offset] = static_cast<char>(op.data[i - op.offset] ^ mask);
      }
    }
  }
  return Status::ok();
}

uint64_t SimEnv::durable_size(const std::string& raw) const {
  auto it = durable_files_.find(normalize(raw));
  return it == durable_files_.end() ? 0 : it->second->durable.size();
}

}  // namespace chorus::storage
