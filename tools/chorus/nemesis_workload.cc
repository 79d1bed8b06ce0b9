#include "nemesis_workload.h"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/format.h>

#include "base/prng.h"

namespace chorus::tools::nemesis {
namespace {

using Clock = std::chrono::steady_clock;
using check::OpKind;
using check::OpStatus;

constexpr int kRegisterOpsPerKey = 2000;
constexpr int kAppendsPerKey = 200;

timeval to_timeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000),
                 static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

Reply from_hiredis(const redisReply* r) {
  Reply out;
  if (r == nullptr) return out;
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      out.type = Reply::Type::kStatus;
      break;
    case REDIS_REPLY_STRING:
      out.type = Reply::Type::kString;
      break;
    case REDIS_REPLY_ERROR:
      out.type = Reply::Type::kError;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = Reply::Type::kInteger;
      break;
    case REDIS_REPLY_NIL:
      out.type = Reply::Type::kNil;
      break;
    default:
      out.type = Reply::Type::kOther;
      break;
  }
  if (r->str != nullptr) out.text.assign(r->str, r->len);
  out.integer = r->integer;
  return out;
}

OpStatus write_error_status(const Reply& r) {
  return r.type == Reply::Type::kError && definitely_not_applied(r.text) ? OpStatus::kFail
                                                                         : OpStatus::kUnknown;
}

}  // namespace

int64_t micros_since(Clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
}

bool definitely_not_applied(std::string_view error) {
  // -TRYAGAIN means the write certainly never entered a log (the host gives
  // it only to a write it never proposed nor forwarded: no leader, a limit
  // reached on arrival or at the first offer). -UNCERTAIN, -ERR and no reply
  // at all may have been applied.
  return error.starts_with("TRYAGAIN ");
}

std::optional<int> redirect_to(std::string_view error) {
  if (!error.starts_with("TRYAGAIN ")) return std::nullopt;
  constexpr std::string_view kNode = "; node ";
  const size_t at = error.find(kNode);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view rest = error.substr(at + kNode.size());
  int node = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), node);
  if (ec != std::errc() || node <= 0 ||
      !std::string_view(end, rest.data() + rest.size()).starts_with(" is"))
    return std::nullopt;
  return node;
}

void record_reply(check::Operation& op, const Reply& r) {
  using T = Reply::Type;
  switch (op.kind) {
    case OpKind::kGet:
      op.status = r.type == T::kString || r.type == T::kNil ? OpStatus::kOk : OpStatus::kFail;
      op.found = r.type == T::kString;
      op.output = op.found ? r.text : std::string();
      return;
    case OpKind::kPut:
      op.status = r.type == T::kStatus && r.text == "OK" ? OpStatus::kOk : write_error_status(r);
      return;
    case OpKind::kCas:
      if (r.type == T::kInteger && (r.integer == 0 || r.integer == 1)) {
        op.status = OpStatus::kOk;
        op.cas_ok = r.integer == 1;
      } else {
        op.status = write_error_status(r);
      }
      return;
    case OpKind::kAppend:
      op.status = r.type == T::kInteger ? OpStatus::kOk : write_error_status(r);
      return;
  }
}

Connection::Connection(const Endpoint& ep, std::chrono::milliseconds connect_timeout,
                       std::chrono::milliseconds op_timeout) {
  redisContext* c = redisConnectWithTimeout(ep.host.c_str(), ep.port, to_timeval(connect_timeout));
  if (c == nullptr) return;
  if (c->err != 0 || redisSetTimeout(c, to_timeval(op_timeout)) != REDIS_OK) {
    redisFree(c);
    return;
  }
  ctx_.reset(c);
}

Reply Connection::command(const std::vector<std::string>& args) {
  if (!ctx_) return {};
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* r = static_cast<redisReply*>(
      redisCommandArgv(ctx_.get(), static_cast<int>(args.size()), argv.data(), lens.data()));
  Reply out = from_hiredis(r);
  if (r != nullptr) freeReplyObject(r);
  if (r == nullptr || ctx_->err != 0) ctx_.reset();
  return out;
}

KeyRing::KeyRing(std::string prefix, int slots, uint64_t ops_per_key)
    : prefix_(std::move(prefix)),
      ops_per_key_(std::max<uint64_t>(ops_per_key, 1)),
      tickets_(static_cast<size_t>(slots)) {}

std::string KeyRing::key(int slot, bool counted) {
  auto& t = tickets_.at(static_cast<size_t>(slot));
  const uint64_t ticket = counted ? t.fetch_add(1) : t.load();
  return fmt::format("{}{}.{}", prefix_, slot, ticket / ops_per_key_);
}

std::vector<std::string> KeyRing::all_keys() const {
  std::vector<std::string> keys;
  for (size_t s = 0; s < tickets_.size(); ++s) {
    const uint64_t generations = tickets_[s].load() / ops_per_key_ + 1;
    for (uint64_t g = 0; g < generations; ++g)
      keys.push_back(fmt::format("{}{}.{}", prefix_, s, g));
  }
  return keys;
}

// ---------------------------------------------------------------------------

struct Workload::ClientState {
  int index = 0;  // 1-based client id
  Prng prng{1};
  uint64_t counter = 0;
  std::map<std::string, std::string> last_seen;  // key -> last value read or written
};

Workload::Workload(WorkloadOptions o)
    : o_(std::move(o)),
      ring_(o_.kind == WorkloadKind::kAppend ? "a" : "r", o_.keys,
            static_cast<uint64_t>(o_.ops_per_key > 0                 ? o_.ops_per_key
                                  : o_.kind == WorkloadKind::kAppend ? kAppendsPerKey
                                                                     : kRegisterOpsPerKey)),
      per_client_(static_cast<size_t>(o_.clients)),
      errors_(static_cast<size_t>(o_.clients)) {}

Workload::~Workload() {
  stop();
}

void Workload::start() {
  for (int c = 0; c < o_.clients; ++c) threads_.emplace_back([this, c] { client_main(c); });
}

void Workload::stop() {
  stop_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

check::History Workload::history() const {
  check::History h;
  for (const auto& ops : per_client_) h.insert(h.end(), ops.begin(), ops.end());
  std::sort(h.begin(), h.end(), [](const check::Operation& a, const check::Operation& b) {
    return a.invoke_us < b.invoke_us;
  });
  for (size_t i = 0; i < h.size(); ++i) h[i].id = i + 1;
  return h;
}

std::map<std::string, uint64_t> Workload::error_counts() const {
  std::map<std::string, uint64_t> all;
  for (const auto& m : errors_) {
    for (const auto& [what, n] : m) all[what] += n;
  }
  return all;
}

check::Operation Workload::next_op(ClientState& st) {
  check::Operation op;
  op.client = static_cast<uint64_t>(st.index);
  const int slot = static_cast<int>(st.prng.uniform(0, static_cast<uint64_t>(o_.keys - 1)));
  const double r = st.prng.real();
  const std::string fresh = fmt::format("{}.{}", st.index, ++st.counter);
  if (o_.kind == WorkloadKind::kAppend) {
    op.kind = r < 0.5 ? OpKind::kAppend : OpKind::kGet;
    op.key = ring_.key(slot, op.kind == OpKind::kAppend);
    if (op.kind == OpKind::kAppend) op.value = "," + fresh;
    return op;
  }
  op.key = ring_.key(slot, true);
  if (r < 0.5) {
    op.kind = OpKind::kGet;
  } else if (r < 0.8) {
    op.kind = OpKind::kPut;
    op.value = fresh;
  } else {
    op.kind = OpKind::kCas;
    auto it = st.last_seen.find(op.key);
    op.expected = it != st.last_seen.end() ? it->second : "none";
    op.value = fresh;
  }
  return op;
}

std::vector<std::string> Workload::command_for(const check::Operation& op) {
  switch (op.kind) {
    case OpKind::kGet:
      return {"GET", op.key};
    case OpKind::kPut:
      return {"SET", op.key, op.value};
    case OpKind::kCas:
      return {"CHORUS.CAS", op.key, op.expected, op.value};
    case OpKind::kAppend:
      return {"APPEND", op.key, op.value};
  }
  return {};
}

void Workload::client_main(int c) {
  ClientState st;
  st.index = c + 1;
  st.prng = Prng(o_.seed * 1000003 + static_cast<uint64_t>(c));
  const int n = static_cast<int>(o_.nodes.size());
  int target = c % n;
  Connection conn;
  auto& ops = per_client_[static_cast<size_t>(c)];
  const auto period = o_.rate_per_client > 0
                          ? std::chrono::microseconds(1'000'000 / o_.rate_per_client)
                          : std::chrono::microseconds(0);
  auto next_at = Clock::now();
  while (!stop_) {
    if (!conn.ok()) {
      conn = Connection(o_.nodes[static_cast<size_t>(target)], std::chrono::milliseconds(500),
                        o_.op_timeout);
      for (const auto& cmd : o_.session_setup) {
        if (conn.ok() && conn.command(cmd).text != "OK") conn = Connection();
      }
      if (!conn.ok()) {
        target = (target + 1) % n;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
    }
    check::Operation op = next_op(st);
    op.invoke_us = micros_since(o_.t0);
    const Reply reply = conn.command(command_for(op));
    op.complete_us = micros_since(o_.t0);
    record_reply(op, reply);
    if (op.status == OpStatus::kOk) {
      if (op.kind == OpKind::kGet && op.found) st.last_seen[op.key] = op.output;
      if (op.kind == OpKind::kPut || (op.kind == OpKind::kCas && op.cas_ok)) {
        st.last_seen[op.key] = op.value;
      }
    }
    if (op.status != OpStatus::kOk) {
      const std::string what = reply.type == Reply::Type::kNone
                                   ? "no reply (timeout or connection lost)"
                               : reply.type == Reply::Type::kError ? reply.text.substr(0, 80)
                                                                   : "unexpected reply";
      ++errors_[static_cast<size_t>(c)][what];
    }
    if (!conn.ok()) {
      target = (target + 1) % n;  // timed out or lost: another node
    } else if (auto to = o_.follow_refusals ? redirect_to(reply.text) : std::nullopt;
               reply.type == Reply::Type::kError && to && *to <= n && *to - 1 != target) {
      target = *to - 1;  // refused, naming the node that serves: go there
      conn = Connection();
    }
    ops.push_back(std::move(op));
    ++ops_done_;
    next_at += period;
    const auto now = Clock::now();
    if (next_at > now) {
      std::this_thread::sleep_until(next_at);
    } else if (now - next_at > std::chrono::seconds(1)) {
      next_at = now;  // far behind (a fault): do not burst to catch up
    }
  }
}

}  // namespace chorus::tools::nemesis
