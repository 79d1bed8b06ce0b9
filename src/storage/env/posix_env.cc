#include "storage/env/posix_env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace chorus::storage {
namespace {

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

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(int fd, std::string path, uint64_t size)
      : fd_(fd), path_(std::move(path)), size_(size) {}
  ~PosixWritableFile() override { close().ignore(); }

  Status append(std::string_view data) override { return write_at(size_, data); }

  Status write_at(uint64_t offset, std::string_view data) override {
    if (fd_ < 0) return Status::io_error("write " + path_ + ": file is closed");
    CHORUS_RETURN_IF_ERROR(pwrite_all(fd_, path_, offset, data));
    size_ = std::max(size_, offset + data.size());
    return Status::ok();
  }

  Status truncate(uint64_t size) override {
    if (fd_ < 0) return Status::io_error("truncate " + path_ + ": file is closed");
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
    // EINTR means the call was interrupted before completing; calling again
    // performs a real sync. Any other error is final: the caller must treat
    // the data as possibly lost (see the class comment in posix_env.h).
    int rc;
    do {
      rc = ::fdatasync(fd_);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) return posix_error("fdatasync", path_, errno);
    return Status::ok();
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

Status fsync_path(const std::string& path, int flags) {
  const int fd = open_retry(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return posix_error("open", path, errno);
  int rc;
  do {
    rc = ::fsync(fd);
  } while (rc < 0 && errno == EINTR);
  const int err = errno;
  ::close(fd);
  if (rc < 0) return posix_error("fsync", path, err);
  return Status::ok();
}

}  // namespace

PosixEnv* PosixEnv::get() {
  static PosixEnv* env = new PosixEnv();
  return env;
}

Status PosixEnv::create_dir(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return Status::ok();
    return Status::io_error("mkdir " + path + ": exists and is not a directory");
  }
  const std::string parent = parent_dir(path);
  if (parent != path) CHORUS_RETURN_IF_ERROR(create_dir(parent));
  if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) {
    return posix_error("mkdir", path, errno);
  }
  return sync_dir(parent);
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
  if (::rename(from.c_str(), to.c_str()) < 0)
    return posix_error("rename", from + " -> " + to, errno);
  return Status::ok();
}

Status PosixEnv::remove(const std::string& path) {
  if (::unlink(path.c_str()) < 0) return posix_error("unlink", path, errno);
  return Status::ok();
}

Status PosixEnv::truncate(const std::string& path, uint64_t size) {
  int rc;
  do {
    rc = ::truncate(path.c_str(), static_cast<off_t>(size));
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return posix_error_at("truncate", path, size, errno);
  return Status::ok();
}

Status PosixEnv::sync_dir(const std::string& path) {
  return fsync_path(path, O_RDONLY | O_DIRECTORY);
}

}  // namespace chorus::storage
