// The `resp` driver: hiredis, blocking, one connection per client, for
// Chorus and Redis.
//
// Each call has a deadline of DriverOptions::timeout (socket send/receive
// timeouts, set with redisSetTimeout). A connection error or timeout leaves
// the hiredis context unusable: the call that saw it fails, and the next call
// reconnects (after kReconnectDelay, so a dead server does not turn the load
// generator into a busy loop of refused connections). A RESP error reply
// (-TRYAGAIN, -ERR...) fails only its own operation.
//
// Pipelining: send() appends the command to hiredis's output buffer
// (redisAppendCommandArgv, nothing is written yet); the first receive()
// writes the whole buffer and reads replies in order (redisGetReply).
//
// Driver options (--driver-opt):
//   consistency=linearizable|lease|follower  sends CHORUS.CONSISTENCY after
//       connecting (Chorus only: lease or follower reads).
#include <hiredis/hiredis.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <thread>

#include "bench/driver.h"

namespace chorus::bench {
namespace {

// The most commands queued before their replies are read.
constexpr int kPipelineDepthMax = 1024;
constexpr std::chrono::milliseconds kReconnectDelay{50};

struct ReplyDeleter {
  void operator()(redisReply* r) const {
    if (r != nullptr) freeReplyObject(r);
  }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const {
    if (c != nullptr) redisFree(c);
  }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

timeval to_timeval(std::chrono::milliseconds ms) {
  return timeval{static_cast<time_t>(ms.count() / 1000),
                 static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

// What a reply means for `type`; found is set for a GET that succeeded.
Reply interpret(OpType type, const redisReply* r) {
  if (r->type == REDIS_REPLY_ERROR) {
    return {Status::unavailable(std::string(r->str, r->len)), false};
  }
  if (type == OpType::kSet) {
    if (r->type == REDIS_REPLY_STATUS) return {Status::ok(), false};
  } else {
    if (r->type == REDIS_REPLY_STRING) return {Status::ok(), true};
    if (r->type == REDIS_REPLY_NIL) return {Status::ok(), false};
  }
  return {Status::aborted("unexpected reply type " + std::to_string(r->type)), false};
}

class RespDriver final : public Driver {
 public:
  RespDriver(Endpoint ep, std::chrono::milliseconds timeout, std::string consistency)
      : ep_(std::move(ep)), timeout_(timeout), consistency_(std::move(consistency)) {}

  Status connect() override;
  Status set(std::string_view key, std::string_view value) override {
    Reply r = roundtrip(Op{OpType::kSet, key, value});
    return r.status;
  }
  Result<bool> get(std::string_view key) override {
    Reply r = roundtrip(Op{OpType::kGet, key, {}});
    if (!r.status.is_ok()) return r.status;
    return r.found;
  }
  int pipeline_depth_max() const override { return kPipelineDepthMax; }
  Status send(const Op& op) override;
  Reply receive() override;

 private:
  Reply roundtrip(const Op& op) {
    Status st = send(op);
    Reply r = receive();  // exactly once per send(), as the contract says
    if (!st.is_ok()) return {st, false};
    return r;
  }
  Status ensure_connected();
  Status context_error(const char* what);

  Endpoint ep_;
  std::chrono::milliseconds timeout_;
  std::string consistency_;      // empty: leave the server's default
  ContextPtr ctx_;               // null or broken (ctx_->err) after a failure
  std::vector<OpType> pending_;  // types of the sent, not yet received operations
  size_t pending_head_ = 0;
  Status send_error_;  // why the current batch could not be queued, if it could not
};

Status RespDriver::connect() {
  ctx_.reset(redisConnectWithTimeout(ep_.host.c_str(), ep_.port, to_timeval(timeout_)));
  if (ctx_ == nullptr) return Status::io_error("connect " + ep_.to_string() + ": out of memory");
  if (ctx_->err != 0) return context_error("connect");
  if (redisSetTimeout(ctx_.get(), to_timeval(timeout_)) != REDIS_OK) {
    return context_error("set timeout");
  }
  if (!consistency_.empty()) {
    const char* argv[] = {"CHORUS.CONSISTENCY", consistency_.c_str()};
    ReplyPtr r(static_cast<redisReply*>(redisCommandArgv(ctx_.get(), 2, argv, nullptr)));
    if (r == nullptr) return context_error("CHORUS.CONSISTENCY");
    if (r->type == REDIS_REPLY_ERROR) {
      return Status::invalid_argument("CHORUS.CONSISTENCY " + consistency_ + " on " +
                                      ep_.to_string() + ": " + std::string(r->str, r->len));
    }
  }
  return Status::ok();
}

Status RespDriver::context_error(const char* what) {
  // hiredis reports a socket timeout as an I/O error with strerror(EAGAIN).
  const bool timeout =
      ctx_->err == REDIS_ERR_IO && std::strcmp(ctx_->errstr, std::strerror(EAGAIN)) == 0;
  std::string msg = std::string(what) + " " + ep_.to_string() + ": " +
                    (timeout ? std::string("timed out") : std::string(ctx_->errstr));
  return timeout ? Status::timed_out(std::move(msg)) : Status::io_error(std::move(msg));
}

Status RespDriver::ensure_connected() {
  if (ctx_ != nullptr && ctx_->err == 0) return Status::ok();
  if (ctx_ != nullptr) std::this_thread::sleep_for(kReconnectDelay);  // after a failure
  return connect();
}

Status RespDriver::send(const Op& op) {
  pending_.push_back(op.type);
  if (pending_.size() - pending_head_ == 1) send_error_ = ensure_connected();  // a new batch
  if (!send_error_.is_ok()) return send_error_;
  const char* argv[3] = {op.type == OpType::kSet ? "SET" : "GET", op.key.data(), op.value.data()};
  const size_t lens[3] = {3, op.key.size(), op.value.size()};
  const int argc = op.type == OpType::kSet ? 3 : 2;
  if (redisAppendCommandArgv(ctx_.get(), argc, argv, lens) != REDIS_OK) {
    send_error_ = context_error("append");
  }
  return send_error_;
}

Reply RespDriver::receive() {
  CHORUS_ASSERT(pending_head_ < pending_.size());
  const OpType type = pending_[pending_head_++];
  if (pending_head_ == pending_.size()) {
    pending_.clear();
    pending_head_ = 0;
  }
  if (!send_error_.is_ok()) return {send_error_, false};
  if (ctx_->err != 0) return {context_error("read"), false};
  void* raw = nullptr;
  if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
    return {context_error("read"), false};
  }
  ReplyPtr r(static_cast<redisReply*>(raw));
  return interpret(type, r.get());
}

Result<std::unique_ptr<Driver>> make_resp_driver(const DriverOptions& opts, int client) {
  std::string consistency;
  if (auto it = opts.params.find("consistency"); it != opts.params.end()) {
    consistency = it->second;
    if (consistency != "linearizable" && consistency != "lease" && consistency != "follower") {
      return Status::invalid_argument(
          "resp: consistency must be linearizable, lease or follower, not '" + consistency + "'");
    }
  }
  return std::unique_ptr<Driver>(
      new RespDriver(endpoint_for_client(opts, client), opts.timeout, std::move(consistency)));
}

}  // namespace

void register_resp_driver(DriverRegistry& registry) {
  registry.add(DriverInfo{
      .name = "resp",
      .summary = "Redis protocol over hiredis (Chorus, Redis)",
      .params = {{"consistency",
                  "linearizable|lease|follower: sent as CHORUS.CONSISTENCY (Chorus only)"}},
      .make = make_resp_driver,
  });
}

}  // namespace chorus::bench
