#include "storage/env/posix_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <vector>

namespace chorus::storage {
namespace {

std::atomic<uint64_t> g_fdatasyncs{0};
std::atomic<uint64_t> g_fsyncs{0};
std::atomic<uint64_t> g_syncfs{0};

// "open wal/x.log: No such file or directory"; ENOENT maps to kNotFound.
Status posix_error(std::string_view op, const std::string& path, int err) {
  std::string msg(op);
  msg += ' ';
  msg += path;
  msg += ": ";
  msg += std::strerror(err);
  if (err == ENOENT) return Status::not_found(std::move(msg));
  return Status::io_error(std::move(msg));
}

Status posix_error_at(std::string_view op, const std::string& path, uint64_t offset, int err) {
  return posix_error(op, path + " offset " + std::to_string(offset), err);
}

// open(2) retried on EINTR.
int open_retry(const char* path, int flags, mode_t mode = 0) {
  int fd;
  do {
    fd = ::open(path, flags, mode);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

Status pwrite_all(int fd, const std::string& path, uint64_t offset, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return posix_error_at("write", path, offset, errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
    offset += static_cast<uint64_t>(n);
  }
  return Status::ok();
}

Result<size_t> pread_all(int fd, const std::string& path, uint64_t offset, size_t n, char* dst) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, dst + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return posix_error_at("read", path, offset + done, errno);
    }
    if (r == 0) break;  // end of file
    done += static_cast<size_t>(r);
  }
  return done;
}

// fdatasync / fsync / syncfs of an open descriptor. EINTR means the call was
// interrupted before completing; calling again performs a real sync. Any
// other error is final: the caller must treat the data as possibly lost (see
// the comment in posix_env.h), never retry it into a success.
enum class SyncKind { kFdatasync, kFsync, kSyncfs };

Status sync_fd(int fd, SyncKind kind, const std::string& path) {
  int rc;
  do {
    switch (kind) {
      case SyncKind::kFdatasync:
        rc = ::fdatasync(fd);
        break;
      case SyncKind::kFsync:
        rc = ::fsync(fd);
        break;
      case SyncKind::kSyncfs:
        rc = ::syncfs(fd);
        break;
    }
  } while (rc < 0 && errno == EINTR);
  const int err = errno;
  switch (kind) {
    case SyncKind::kFdatasync:
      g_fdatasyncs.fetch_add(1, std::memory_order_relaxed);
      if (rc < 0) return posix_error("fdatasync", path, err);
      break;
    case SyncKind::kFsync:
      g_fsyncs.fetch_add(1, std::memory_order_relaxed);
      if (rc < 0) return posix_error("fsync", path, err);
      break;
    case SyncKind::kSyncfs:
      g_syncfs.fetch_add(1, std::memory_order_relaxed);
      if (rc < 0) return posix_error("syncfs (shared sync) via", path, err);
      break;
  }
  return Status::ok();
}

Status fsync_path(const std::string& path, int flags) {
  const int fd = open_retry(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return posix_error("open", path, errno);
  Status st = sync_fd(fd, SyncKind::kFsync, path);
  ::close(fd);
  return st;
}

// The calling thread's open shared sync (env.h, SharedSync), or null.
class PosixSharedSync;
thread_local PosixSharedSync* t_shared = nullptr;

class PosixSharedSync final : public SharedSync {
 public:
  PosixSharedSync() {
    CHORUS_ASSERT_MSG(t_shared == nullptr, "shared syncs do not nest");
    t_shared = this;
  }
  ~PosixSharedSync() override {
    CHORUS_ASSERT(t_shared == this);
    CHORUS_ASSERT_MSG(commit_called_ || records_.empty(),
                      "a shared sync that recorded syncs was destroyed without commit()");
    for (auto& [owner, recs] : records_) close_all(recs);
    t_shared = nullptr;
  }

  void set_owner(uint64_t owner) override { owner_ = owner; }
  const Stats& stats() const override { return stats_; }

  // sync() of `fd` under the shared sync: keeps a duplicate of the descriptor
  // (the file may be closed before the commit).
  Status record_file(int fd, const std::string& path) {
    const int dup = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dup < 0) return posix_error("dup (shared sync)", path, errno);
    return add(Record{dup, 0, 0, SyncKind::kFdatasync, path});
  }
  Status record_dir(const std::string& path) {
    const int fd = open_retry(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return posix_error("open", path, errno);
    return add(Record{fd, 0, 0, SyncKind::kFsync, path});
  }

  // Before a mutating call: the current owner's records are synced now, so
  // its "sync, then write" orders hold.
  Status barrier() {
    auto it = records_.find(owner_);
    if (it == records_.end()) return Status::ok();
    std::vector<Record> recs = std::move(it->second);
    records_.erase(it);
    Status first;
    for (const Record& r : recs) {
      ++stats_.barrier_syncs;
      Status st = sync_fd(r.fd, r.kind, r.path);
      if (first.is_ok() && !st.is_ok()) first = std::move(st);
    }
    close_all(recs);
    return first;
  }

  Status commit() override {
    CHORUS_ASSERT_MSG(!commit_called_, "a shared sync is committed once");
    commit_called_ = true;
    std::vector<Record> all;
    for (auto& [owner, recs] : records_) {
      for (auto& r : recs) all.push_back(std::move(r));
    }
    records_.clear();
    Status st = sync_records(all);
    close_all(all);
    return st;
  }

 private:
  struct Record {
    int fd;  // owned by this object
    dev_t dev;
    ino_t ino;
    SyncKind kind;
    std::string path;
  };

  Status add(Record r) {
    struct stat st;
    if (::fstat(r.fd, &st) < 0) {
      const int err = errno;
      ::close(r.fd);
      return posix_error("fstat (shared sync)", r.path, err);
    }
    r.dev = st.st_dev;
    r.ino = st.st_ino;
    ++stats_.recorded;
    std::vector<Record>& recs = records_[owner_];
    for (const Record& have : recs) {
      if (have.dev == r.dev && have.ino == r.ino && have.kind == r.kind) {
        ::close(r.fd);  // already recorded: one sync covers both
        return Status::ok();
      }
    }
    recs.push_back(std::move(r));
    return Status::ok();
  }

  Status sync_records(const std::vector<Record>& all) {
    stats_.committed = all.size();
    if (all.empty()) return Status::ok();
    const bool one_fs = std::all_of(all.begin(), all.end(),
                                    [&](const Record& r) { return r.dev == all.front().dev; });
    if (all.size() > 1 && one_fs && PosixEnv::syncfs_reports_errors()) {
      ++stats_.device_syncs;
      return sync_fd(all.front().fd, SyncKind::kSyncfs, all.front().path);
    }
    for (const Record& r : all) {
      ++stats_.device_syncs;
      CHORUS_RETURN_IF_ERROR(sync_fd(r.fd, r.kind, r.path));
    }
    return Status::ok();
  }

  static void close_all(std::vector<Record>& recs) {
    for (Record& r : recs) {
      if (r.fd >= 0) ::close(r.fd);
      r.fd = -1;
    }
  }

  uint64_t owner_ = 0;
  bool commit_called_ = false;
  // Invariant: every fd here is open and owned by this object.
  std::map<uint64_t, std::vector<Record>> records_;
  Stats stats_;
};

// Every mutating call begins here (env.h, SharedSync: the barrier).
Status before_mutation() {
  return t_shared ? t_shared->barrier() : Status::ok();
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  ~PosixWritableFile() override { close().ignore(); }

  Status append(std::string_view data) override { return write_at(size_, data); }

  Status write_at(uint64_t offset, std::string_view data) override {
    if (fd_ < 0) return Status::io_error("write " + path_ + ": file is closed");
    CHORUS_RETURN_IF_ERROR(before_mutation());
    CHORUS_RETURN_IF_ERROR(pwrite_all(fd_, path_, offset, data));
    size_ = std::max(size_, offset + data.size());
    return Status::ok();
  }

  Status truncate(uint64_t size) override {
    if (fd_ < 0) return Status::io_error("truncate " + path_ + ": file is closed");
    CHORUS_RETURN_IF_ERROR(before_mutation());
    int rc;
    do {
      rc = ::ftruncate(fd_, static_cast<off_t>(size));
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return posix_error_at("truncate", path_, size, errno);
    size_ = size;
    return Status::ok();
  }

  Status sync() override {
    if (fd_ < 0) return Status::io_error("fdatasync " + path_ + ": file is closed");
    if (t_shared) return t_shared->record_file(fd_, path_);
    return sync_fd(fd_, SyncKind::kFdatasync, path_);
  }

  Status close() override {
    if (fd_ < 0) return Status::ok();
    // close(2) must not be retried on EINTR on Linux: the descriptor is freed.
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc < 0 && errno != EINTR) return posix_error("close", path_, errno);
    return Status::ok();
  }

  uint64_t size() const override { return size_; }
  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
  uint64_t size_;  // Invariant: the file's length as written through this handle.
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Result<size_t> read_at(uint64_t offset, size_t n, char* dst) override {
    return pread_all(fd_, path_, offset, n, dst);
  }
  const std::string& path() const override { return path_; }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

PosixEnv* PosixEnv::get() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

PosixEnv::SyncCounts PosixEnv::sync_counts() {
  return SyncCounts{g_fdatasyncs.load(std::memory_order_relaxed),
                    g_fsyncs.load(std::memory_order_relaxed),
                    g_syncfs.load(std::memory_order_relaxed)};
}

bool PosixEnv::syncfs_reports_errors() {
  static const bool reports = [] {
    struct utsname u;
    int major = 0, minor = 0;
    if (::uname(&u) < 0 || std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
    return major > 5 || (major == 5 && minor >= 8);
  }();
  return reports;
}

std::unique_ptr<SharedSync> PosixEnv::begin_shared_sync() {
  return std::make_unique<PosixSharedSync>();
}

// Durable on return even inside a shared sync (env.h): the parent's fsync is
// made here, not recorded.
Status PosixEnv::create_dir(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::ok();
    return Status::io_error("mkdir " + path + ": exists and is not a directory");
  }
  CHORUS_RETURN_IF_ERROR(before_mutation());
  const std::string parent = parent_dir(path);
  if (parent != path) CHORUS_RETURN_IF_ERROR(create_dir(parent));
  if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) {
    return posix_error("mkdir", path, errno);
  }
  return fsync_path(parent, O_RDONLY | O_DIRECTORY);
}

Result<std::vector<std::string>> PosixEnv::list_dir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return posix_error("opendir", path, errno);
  std::vector<std::string> names;
  errno = 0;
  while (const dirent* e = ::readdir(dir)) {
    const std::string_view name(e->d_name);
    if (name != "." && name != "..") names.emplace_back(name);
  }
  const int err = errno;
  ::closedir(dir);
  if (err != 0) return posix_error("readdir", path, err);
  std::sort(names.begin(), names.end());
  return names;
}

Result<bool> PosixEnv::exists(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT) return false;
  return posix_error("stat", path, errno);
}

Result<std::unique_ptr<WritableFile>> PosixEnv::open_writable(const std::string& path,
                                                              OpenMode mode) {
  CHORUS_RETURN_IF_ERROR(before_mutation());  // it may create or cut the file
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
  if (mode == OpenMode::kTruncate) flags |= O_TRUNC;
  const int fd = open_retry(path.c_str(), flags, 0644);
  if (fd < 0) return posix_error("open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) < 0) {
    const int err = errno;
    ::close(fd);
    return posix_error("fstat", path, err);
  }
  return std::unique_ptr<WritableFile>(
      new PosixWritableFile(fd, path, static_cast<uint64_t>(st.st_size)));
}

Result<std::unique_ptr<ReadableFile>> PosixEnv::open_readable(const std::string& path) {
  const int fd = open_retry(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return posix_error("open", path, errno);
  return std::unique_ptr<ReadableFile>(new PosixReadableFile(fd, path));
}

Result<std::string> PosixEnv::read_file(const std::string& path, uint64_t max_bytes) {
  const int fd = open_retry(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return posix_error("open", path, errno);
  struct stat st;
  if (::fstat(fd, &st) < 0) {
    const int err = errno;
    ::close(fd);
    return posix_error("fstat", path, err);
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    ::close(fd);
    return Status::corruption("read " + path + ": file is " + std::to_string(size) +
                              " bytes, more than the limit " + std::to_string(max_bytes));
  }
  std::string out(size, '\0');
  auto n = pread_all(fd, path, 0, size, out.data());
  ::close(fd);
  if (!n.is_ok()) return n.status();
  out.resize(*n);  // the file may have shrunk since fstat
  return out;
}

Result<uint64_t> PosixEnv::file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) < 0) return posix_error("stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

Status PosixEnv::rename(const std::string& from, const std::string& to) {
  CHORUS_RETURN_IF_ERROR(before_mutation());
  if (::rename(from.c_str(), to.c_str()) < 0)
    return posix_error("rename", from + " -> " + to, errno);
  return Status::ok();
}

Status PosixEnv::remove(const std::string& path) {
  CHORUS_RETURN_IF_ERROR(before_mutation());
  if (::unlink(path.c_str()) < 0) return posix_error("unlink", path, errno);
  return Status::ok();
}

Status PosixEnv::truncate(const std::string& path, uint64_t size) {
  CHORUS_RETURN_IF_ERROR(before_mutation());
  int rc;
  do {
    rc = ::truncate(path.c_str(), static_cast<off_t>(size));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return posix_error_at("truncate", path, size, errno);
  return Status::ok();
}

Status PosixEnv::sync_dir(const std::string& path) {
  if (t_shared) return t_shared->record_dir(path);
  return fsync_path(path, O_RDONLY | O_DIRECTORY);
}

}  // namespace chorus::storage
