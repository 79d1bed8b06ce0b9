// Status and Result<T>: the channel for I/O errors, corruption and bad input
// (LevelDB's status.h). OK is cheap (no allocation); an error carries a code
// and a message naming what failed (file, offset, key...). Both are
// [[nodiscard]]: an ignored error is a compile error.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include "base/assert.h"

namespace chorus {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // bad input from a user or a config file
  kNotFound,
  kCorruption,   // checksum mismatch, torn record in the middle of a log, bad format
  kIoError,      // the OS refused a read or write
  kFailStopped,  // an earlier fsync failed; this writer refuses all work
  kBusy,         // a limit was reached; retry later
  kUnavailable,  // no leader, quorum lost
  kTimedOut,
  kAborted,
  // A request was handed on (proposed, forwarded) and then lost sight of:
  // it may or may not take effect. Never retried blindly by a client.
  kIndeterminate,
};

std::string_view status_code_name(StatusCode c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string msg) : code_(code), msg_(std::move(msg)) {}

  static Status ok() { return Status(); }
  static Status invalid_argument(std::string m) {
    return {StatusCode::kInvalidArgument, std::move(m)};
  }
  static Status not_found(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
  static Status corruption(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
  static Status io_error(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
  static Status fail_stopped(std::string m) { return {StatusCode::kFailStopped, std::move(m)}; }
  static Status busy(std::string m) { return {StatusCode::kBusy, std::move(m)}; }
  static Status unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
  static Status timed_out(std::string m) { return {StatusCode::kTimedOut, std::move(m)}; }
  static Status aborted(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
  static Status indeterminate(std::string m) {
    return {StatusCode::kIndeterminate, std::move(m)};
  }

  bool is_ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "Corruption: wal/000001.log offset 4096: checksum mismatch"
  std::string to_string() const;

  // Explicitly drop a status whose failure is irrelevant (e.g. best-effort cleanup).
  void ignore() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string msg_;
};

// A value or an error Status. Access to value() on an error is a bug (asserted).
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T v) : v_(std::move(v)) {}  // NOLINT: implicit by design
  Result(Status s) : v_(std::move(s)) { CHORUS_ASSERT(!std::get<Status>(v_).is_ok()); }  // NOLINT

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & {
    CHORUS_ASSERT(is_ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    CHORUS_ASSERT(is_ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    CHORUS_ASSERT(is_ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace chorus

// Propagate an error Status from an expression returning Status.
#define CHORUS_RETURN_IF_ERROR(expr) \
  do {                               \
    ::chorus::Status _st = (expr);   \
    if (!_st.is_ok()) return _st;    \
  } while (0)

#define CHORUS_CONCAT_INNER(a, b) a##b
#define CHORUS_CONCAT(a, b) CHORUS_CONCAT_INNER(a, b)
// CHORUS_ASSIGN_OR_RETURN(auto x, expr): evaluates a Result, returns its Status on error.
#define CHORUS_ASSIGN_OR_RETURN(lhs, expr)                                                     \
  auto CHORUS_CONCAT(_res_, __LINE__) = (expr);                                                \
  if (!CHORUS_CONCAT(_res_, __LINE__).is_ok()) return CHORUS_CONCAT(_res_, __LINE__).status(); \
  lhs = std::move(CHORUS_CONCAT(_res_, __LINE__)).value()
