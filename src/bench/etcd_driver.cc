// The `etcd` driver: etcd's v3 KV API over gRPC (etcd_kv.proto, a
// wire-compatible subset of etcd's rpc.proto), one channel, so one HTTP/2
// connection, per client, to endpoint_for_client().
//
//   set(): KV.Put(key, value). A follower forwards it to the leader.
//   get(): KV.Range(key) of the single key; found if it returns a key-value.
//          Linearizable by default (the member checks with the leader,
//          ReadIndex, before answering); --driver-opt serializable=true asks
//          for a serializable read instead, answered from the member's own
//          state (may be stale).
//
// Calls are synchronous (one in flight per client, no pipelining), each with
// a deadline of DriverOptions::timeout. A gRPC failure is returned with
// gRPC's code and message; DEADLINE_EXCEEDED is TimedOut, UNAVAILABLE
// (connection down, no leader...) is Unavailable.
//
// Channels: each has its own subchannel pool, or gRPC would carry every
// channel to the same address over one shared TCP connection; the proxy
// settings of the environment are ignored; reconnection backoff is capped at
// kReconnectBackoffMax (gRPC's default is 2 minutes) so that a restarted
// member is used again quickly, and each attempt may take up to the timeout.
// connect() waits for the connection, then sends one serializable Range (so
// a port that is not etcd, or a dead one, fails at connect with gRPC's
// reason). A call fails fast if the channel is down (UNAVAILABLE, with
// gRPC's reason). After an UNAVAILABLE, the next call first waits, within
// its timeout, for the channel to be connected again (else it fails with
// Unavailable), or for kReconnectDelay if it still is connected (the member
// itself said unavailable, e.g. no leader): no busy loop of errors while a
// member is down. The wait also drives the reconnection: a synchronous gRPC
// client has no thread of its own polling a connection attempt, so with
// nothing but fail-fast calls (which fail at once while the channel is in
// TRANSIENT_FAILURE) the attempts time out and the channel never recovers.
//
// Driver options (--driver-opt):
//   serializable=true|false  serializable instead of linearizable reads
//       (default false).
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "bench/driver.h"
#include "etcd_kv.grpc.pb.h"

namespace chorus::bench {
namespace {

constexpr std::chrono::milliseconds kReconnectDelay{50};
constexpr std::chrono::milliseconds kReconnectBackoffMin{100};
constexpr std::chrono::milliseconds kReconnectBackoffMax{1000};
// connect()'s probe when the channel did not come up: just long enough to
// learn why.
constexpr std::chrono::milliseconds kProbeDeadline{200};
// The key connect() reads (it need not exist).
constexpr std::string_view kProbeKey = "chorus-bench-connect-probe";

std::string code_name(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "code " + std::to_string(static_cast<int>(code));
  }
}

class EtcdDriver final : public Driver {
 public:
  EtcdDriver(Endpoint ep, std::chrono::milliseconds timeout, bool serializable)
      : ep_(std::move(ep)), timeout_(timeout), serializable_(serializable) {}

  Status connect() override;
  Status set(std::string_view key, std::string_view value) override;
  Result<bool> get(std::string_view key) override;

 private:
  // After an UNAVAILABLE: waits until the channel is connected again.
  Status recover();
  // A Status for gRPC status `s` of call `what`.
  Status failure(const char* what, const grpc::Status& s);
  void set_deadline(grpc::ClientContext* ctx, std::chrono::milliseconds timeout) const {
    ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  }

  Endpoint ep_;
  std::chrono::milliseconds timeout_;
  bool serializable_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<etcdserverpb::KV::Stub> stub_;
  bool failed_ = false;  // the last call failed with UNAVAILABLE
  // Reused from call to call (their buffers stay allocated).
  etcdserverpb::PutRequest put_;
  etcdserverpb::PutResponse put_reply_;
  etcdserverpb::RangeRequest range_;
  etcdserverpb::RangeResponse range_reply_;
};

Status EtcdDriver::failure(const char* what, const grpc::Status& s) {
  std::string msg = std::string("etcd ") + what + " " + ep_.to_string() + ": " +
                    code_name(s.error_code()) + ": " + s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Status::timed_out(std::move(msg));
    case grpc::StatusCode::UNAVAILABLE:
      failed_ = true;
      return Status::unavailable(std::move(msg));
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Status::busy(std::move(msg));
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Status::invalid_argument(std::move(msg));
    default:
      return Status::aborted(std::move(msg));
  }
}

Status EtcdDriver::recover() {
  if (!failed_) return Status::ok();
  if (channel_->GetState(false) == GRPC_CHANNEL_READY) {
    std::this_thread::sleep_for(kReconnectDelay);
  } else if (!channel_->WaitForConnected(std::chrono::system_clock::now() + timeout_)) {
    return Status::unavailable("etcd " + ep_.to_string() + ": not reconnected within " +
                               std::to_string(timeout_.count()) + "ms");
  }
  failed_ = false;
  return Status::ok();
}

Status EtcdDriver::connect() {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
              static_cast<int>(kReconnectBackoffMin.count()));
  // Despite its name, the shortest time a connection attempt is given.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(timeout_.count()));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(kReconnectBackoffMax.count()));
  channel_ = grpc::CreateCustomChannel(ep_.to_string(), grpc::InsecureChannelCredentials(), args);
  stub_ = etcdserverpb::KV::NewStub(channel_);
  failed_ = false;
  const bool up = channel_->WaitForConnected(std::chrono::system_clock::now() + timeout_);
  grpc::ClientContext ctx;
  set_deadline(&ctx, up ? timeout_ : kProbeDeadline);
  etcdserverpb::RangeRequest probe;
  probe.set_key(kProbeKey.data(), kProbeKey.size());
  probe.set_serializable(true);
  etcdserverpb::RangeResponse reply;
  const grpc::Status s = stub_->Range(&ctx, probe, &reply);
  if (s.ok()) return Status::ok();
  if (!up && s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Status::timed_out("etcd connect " + ep_.to_string() + ": not connected within " +
                             std::to_string(timeout_.count()) + "ms");
  }
  Status st = failure("connect", s);
  failed_ = false;
  return st;
}

Status EtcdDriver::set(std::string_view key, std::string_view value) {
  CHORUS_RETURN_IF_ERROR(recover());
  put_.set_key(key.data(), key.size());
  put_.set_value(value.data(), value.size());
  grpc::ClientContext ctx;
  set_deadline(&ctx, timeout_);
  const grpc::Status s = stub_->Put(&ctx, put_, &put_reply_);
  if (!s.ok()) return failure("put", s);
  return Status::ok();
}

Result<bool> EtcdDriver::get(std::string_view key) {
  CHORUS_RETURN_IF_ERROR(recover());
  range_.set_key(key.data(), key.size());
  range_.set_serializable(serializable_);
  grpc::ClientContext ctx;
  set_deadline(&ctx, timeout_);
  const grpc::Status s = stub_->Range(&ctx, range_, &range_reply_);
  if (!s.ok()) return failure("range", s);
  return range_reply_.kvs_size() > 0;
}

Result<std::unique_ptr<Driver>> make_etcd_driver(const DriverOptions& opts, int client) {
  bool serializable = false;
  if (auto it = opts.params.find("serializable"); it != opts.params.end()) {
    if (it->second == "true") {
      serializable = true;
    } else if (it->second != "false") {
      return Status::invalid_argument("etcd: serializable must be true or false, not '" +
                                      it->second + "'");
    }
  }
  return std::unique_ptr<Driver>(
      new EtcdDriver(endpoint_for_client(opts, client), opts.timeout, serializable));
}

}  // namespace

void register_etcd_driver(DriverRegistry& registry) {
  registry.add(DriverInfo{
      .name = "etcd",
      .summary = "etcd v3 KV API over gRPC: Put, Range (linearizable unless serializable=true)",
      .params = {{"serializable",
                  "true|false: serializable (member-local, maybe stale) instead of "
                  "linearizable reads (default false)"}},
      .make = make_etcd_driver,
  });
}

}  // namespace chorus::bench
