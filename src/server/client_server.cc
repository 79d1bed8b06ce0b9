#include "server/client_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <random>

#include "net/resp/resp_encoder.h"
#include "server/routed_state.h"

namespace chorus::server {

namespace resp = chorus::net::resp;

namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Adapts a callback-style operation to a coroutine: start(done) must call done
// exactly once, on the event loop.
template <class T, class Start>
asio::awaitable<T> await_callback(Start start) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(T)>(
      [start = std::move(start)](auto handler) mutable {
        auto h = std::make_shared<decltype(handler)>(std::move(handler));
        start([h](T value) mutable { std::move (*h)(std::move(value)); });
      },
      asio::use_awaitable);
}

bool is_status_command(const std::vector<std::string>& args) {
  if (args.empty() || args[0].size() != 13) return false;
  std::string lower;
  for (char c : args[0]) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == "chorus.status";
}

}  // namespace

std::string error_for(const Status& st) {
  switch (st.code()) {
    // Certainly not applied: Redis Cluster clients retry TRYAGAIN, and may.
    case StatusCode::kUnavailable:
    case StatusCode::kBusy:
      return "TRYAGAIN " + st.message();
    // Proposed, then lost sight of: may or may not have been applied.
    case StatusCode::kIndeterminate:
    case StatusCode::kTimedOut:
      return "UNCERTAIN " + st.message();
    case StatusCode::kAborted:
      return "ERR " + st.message();
    default:
      return "ERR node failed: " + st.to_string();
  }
}

ClientServer::ClientServer(asio::io_context& io, Node& node, uint64_t node_id,
                           ClientServerOptions opts)
    : io_(io), node_(node), node_id_(node_id), opts_(std::move(opts)), acceptor_(io) {
  // Session ids must never repeat across restarts: the state machine keeps
  // each session's last sequence number. Node id + a random base + a counter.
  std::random_device rd;
  session_base_ = (uint64_t{rd()} << 32) ^ rd();
  started_ms_ = wall_ms();
}

Status ClientServer::start(const std::string& host, uint16_t port) {
  std::error_code ec;
  const auto addr = asio::ip::make_address(host, ec);
  if (ec) return Status::invalid_argument("client address " + host + ": " + ec.message());
  const asio::ip::tcp::endpoint ep(addr, port);
  acceptor_.open(ep.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(ep, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::io_error("cannot listen for clients on " + host + ":" + std::to_string(port) +
                            ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  asio::co_spawn(io_, accept_loop(), asio::detached);
  return Status::ok();
}

void ClientServer::stop() {
  stopped_ = true;
  std::error_code ec;
  acceptor_.close(ec);
}

uint64_t ClientServer::new_session_id() {
  // 16 bits of node id, 48 bits unique to this process.
  return (node_id_ << 48) | ((session_base_ + ++session_counter_) & ((uint64_t{1} << 48) - 1));
}

ServerView ClientServer::view(bool with_status) const {
  ServerView v;
  v.node_id = node_id_;
  v.role = std::string(core::role_name(node_.default_group().soft_state().role));
  if (with_status) v.status_json = node_.status_json();
  v.lease_reads_enabled = opts_.lease_reads_enabled;
  // The latest base of every group: a TTL never counts from a replicated
  // time some group has already passed, whichever keyspace the key is in.
  for (ReplicaGroup* g : node_.data_groups())
    v.time_base_ms = std::max(v.time_base_ms, g->time_base_ms());
  v.max_bulk_bytes = opts_.limits.bulk_bytes_max;
  v.max_clients = opts_.max_clients;
  v.connected_clients = clients_;
  v.uptime_s = static_cast<uint64_t>((wall_ms() - started_ms_) / 1000);
  v.tcp_port = port_;
  return v;
}

asio::awaitable<void> ClientServer::accept_loop() {
  while (!stopped_) {
    std::error_code ec;
    auto socket = co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (stopped_ || ec == asio::error::operation_aborted) co_return;
      spdlog::warn("accepting a client failed: {}", ec.message());
      continue;
    }
    if (clients_ >= opts_.max_clients) {
      std::string out;
      resp::append_error(&out, "ERR max number of clients reached");
      co_await asio::async_write(socket, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      continue;
    }
    asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
  }
}

asio::awaitable<void> ClientServer::serve(asio::ip::tcp::socket socket) {
  ++clients_;
  std::error_code ec;
  socket.set_option(asio::ip::tcp::no_delay(true), ec);
  Session session;
  session.id = new_session_id();
  uint64_t seq = 0;
  resp::Parser parser(opts_.limits);
  std::array<char, 64 * 1024> buf;
  std::string out;
  bool open = true;
  while (open && !stopped_) {
    const size_t n = co_await socket.async_read_some(asio::buffer(buf),
                                                     asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    std::string_view data(buf.data(), n);
    while (open) {
      resp::ParseResult r = parser.parse(data);
      data.remove_prefix(r.consumed);
      if (r.kind == resp::ParseResult::Kind::kNeedMore) break;
      if (r.kind == resp::ParseResult::Kind::kError) {
        // The stream can no longer be parsed: answer and close (DESIGN.md).
        resp::append_error(&out, "ERR " + r.error);
        if (opts_.on_command) opts_.on_command("protocol", "error");
        open = false;
        break;
      }
      open = co_await execute(r.args, session, seq, out);
      if (out.size() >= 256 * 1024) {
        co_await asio::async_write(socket, asio::buffer(out),
                                   asio::redirect_error(asio::use_awaitable, ec));
        out.clear();
        if (ec) open = false;
      }
    }
    if (!out.empty()) {
      co_await asio::async_write(socket, asio::buffer(out),
                                 asio::redirect_error(asio::use_awaitable, ec));
      out.clear();
      if (ec) break;
    }
  }
  socket.shutdown(asio::ip::tcp::socket::shutdown_both, ec);
  socket.close(ec);
  --clients_;
}

// Runs one command and appends its reply. Returns false to close the connection.
asio::awaitable<bool> ClientServer::execute(const std::vector<std::string>& args, Session& session,
                                            uint64_t& seq, std::string& out) {
  const std::string_view name = args.empty() ? std::string_view("") : command_metric_name(args[0]);
  Plan plan = plan_command(args, session, view(is_status_command(args)));
  bool ok = true;
  bool keep_open = true;
  if (auto* imm = std::get_if<ImmediateReply>(&plan)) {
    out += imm->resp;
    ok = imm->resp.empty() || imm->resp[0] != '-';
    keep_open = !imm->close_after;
  } else if (auto* w = std::get_if<WriteOp>(&plan)) {
    co_await execute_write(*w, session, seq, out, ok);
  } else if (auto* rd = std::get_if<ReadOp>(&plan)) {
    co_await execute_read(*rd, session, out, ok);
  } else if (auto* k = std::get_if<KeyspaceOp>(&plan)) {
    co_await execute_keyspace(*k, out, ok);
  } else if (auto* wt = std::get_if<WaitOp>(&plan)) {
    co_await execute_wait(*wt, session, out);
  } else if (auto* p = std::get_if<PollOp>(&plan)) {
    co_await execute_poll(*p, out, ok);
  }
  if (opts_.on_command) opts_.on_command(name, ok ? "ok" : "error");
  co_return keep_open;
}

namespace {

void append_reply_or_error(std::string* out, const std::string& reply, bool* ok) {
  *ok = reply.empty() || reply[0] != '-';
  *out += reply;
}

}  // namespace

asio::awaitable<void> ClientServer::execute_write(WriteOp& w, Session& session, uint64_t& seq,
                                                  std::string& out, bool& ok) {
  ok = false;
  if (!node_.routing_ready()) {
    resp::append_error(&out, "TRYAGAIN the keyspace table is not known on this node yet");
    co_return;
  }
  const KeyspaceTable& table = node_.table();
  GroupId gid = kDefaultGroup;
  for (size_t i = 0; i < w.keys.size(); ++i) {
    const GroupId g = table.group_of(w.keys[i]);
    if (i > 0 && g != gid) {
      // All or nothing: never a write applied in one keyspace and not another.
      resp::append_error(&out, "CROSSKEYSPACE keys of keyspaces '" +
                                   std::string(table.name_of(w.keys[0])) + "' and '" +
                                   std::string(table.name_of(w.keys[i])) +
                                   "' in one write; transactions across keyspaces are not built "
                                   "yet");
      co_return;
    }
    gid = g;
  }
  ReplicaGroup* group = node_.group(gid);
  CHORUS_ASSERT(group != nullptr);
  // Named before the write suspends: the table may change meanwhile.
  std::string keyspace(w.keys.empty() ? kDefaultKeyspaceName : table.name_of(w.keys[0]));
  w.command.set_client_id(session.id);
  w.command.set_seq(++seq);
  Result<host::WriteAck> r = co_await replicate(*group, std::move(w.command));
  if (r.is_ok()) {
    // The write's token, for CHORUS.TOKEN and WAIT; its reply is Redis's.
    WriteToken token{std::move(keyspace), r->term.value(), r->index.value()};
    CHORUS_ASSERT(token.index > 0);
    session.last_write_by_keyspace[token.keyspace] = token;
    session.last_write = std::move(token);
    append_reply_or_error(&out, w.reply(r->result), &ok);
  } else {
    if (r.status().code() == StatusCode::kIndeterminate) {
      // The write may still commit: WAIT and CHORUS.TOKEN must not vouch for
      // an earlier write in its place.
      WriteToken unknown{std::move(keyspace), 0, 0, true};
      session.last_write_by_keyspace[unknown.keyspace] = unknown;
      session.last_write = std::move(unknown);
    }
    resp::append_error(&out, error_for(r.status()));
  }
}

asio::awaitable<void> ClientServer::execute_read(ReadOp& rd, Session& session, std::string& out,
                                                 bool& ok) {
  ok = false;
  if (!node_.routing_ready() && !rd.local_ok) {
    resp::append_error(&out, "TRYAGAIN the keyspace table is not known on this node yet");
    co_return;
  }
  // The groups it reads: its keys' (every data group for whole-keyspace reads).
  const KeyspaceTable& table = node_.table();
  std::map<GroupId, const kv::StateMachine*> states;
  std::vector<ReplicaGroup*> groups;
  if (rd.keys.empty()) {
    groups = node_.data_groups();
  } else {
    for (const std::string& key : rd.keys) {
      ReplicaGroup* g = node_.group(table.group_of(key));
      if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
    }
  }
  for (ReplicaGroup* g : groups) {
    if (!rd.local_ok) {
      // (Not a ?: around co_await: GCC 12 miscompiles temporaries there.)
      Status st = co_await read_barrier(*g, session.consistency);
      if (!st.is_ok()) {
        resp::append_error(&out, error_for(st));
        co_return;
      }
    }
    states[g->group_id()] = &g->state();
  }
  if (groups.size() == 1 && !rd.keys.empty()) {
    append_reply_or_error(&out, rd.run(groups[0]->state()), &ok);
  } else {
    if (!states.contains(kDefaultGroup)) states[kDefaultGroup] = &node_.default_group().state();
    RoutedState all(table, std::move(states));
    append_reply_or_error(&out, rd.run(all), &ok);
  }
}

asio::awaitable<void> ClientServer::execute_keyspace(KeyspaceOp& k, std::string& out, bool& ok) {
  auto start = [this, &k](Node::Done done) {
    switch (k.kind) {
      case KeyspaceOp::Kind::kCreate:
        return node_.create_keyspace(k.spec, std::move(done));
      case KeyspaceOp::Kind::kDrop:
        return node_.drop_keyspace(k.name, std::move(done));
      case KeyspaceOp::Kind::kList:
        return node_.list_keyspaces(std::move(done));
      case KeyspaceOp::Kind::kInfo:
        return node_.keyspace_info(k.name, std::move(done));
    }
  };
  Result<KeyspaceAnswer> r = co_await await_callback<Result<KeyspaceAnswer>>(std::move(start));
  ok = r.is_ok();
  if (ok) {
    out += keyspace_reply(*r);
  } else if (r.status().code() == StatusCode::kInvalidArgument ||
             r.status().code() == StatusCode::kNotFound) {
    resp::append_error(&out, "ERR " + r.status().message());
  } else {
    resp::append_error(&out, error_for(r.status()));
  }
}

asio::awaitable<Result<host::WriteAck>> ClientServer::replicate(ReplicaGroup& group,
                                                                kvpb::Command cmd) {
  return await_callback<Result<host::WriteAck>>(
      [&group, cmd = std::move(cmd)](std::function<void(Result<host::WriteAck>)> done) mutable {
        group.write_acked(std::move(cmd), std::move(done));
      });
}

asio::awaitable<Status> ClientServer::read_barrier(ReplicaGroup& group, Consistency c) {
  // Follower reads, and lease reads while the lease holds, need no round
  // trip through the replication loop: serve them without suspending.
  if (group.read_ready_now(c)) co_return Status::ok();
  Result<LogIndex> r = co_await await_callback<Result<LogIndex>>(
      [&group, c](std::function<void(Result<LogIndex>)> done) { group.read(c, std::move(done)); });
  co_return r.status();
}

}  // namespace chorus::server

namespace chorus::server {

ReplicaGroup* ClientServer::group_of_keyspace(std::string_view name) {
  if (name == kDefaultKeyspaceName) return &node_.default_group();
  if (!node_.routing_ready()) return nullptr;
  const metapb::KeyspaceDef* d = node_.table().find(name);
  return d == nullptr ? nullptr : node_.group(GroupId(d->group_id()));
}

asio::awaitable<WriteProgress> ClientServer::progress_of(ReplicaGroup& g, const WriteToken& t,
                                                         Clock::time_point deadline) {
  const LogIndex index(t.index);
  const Term term(t.term);
  const WriteProgress local = write_progress(g, index, term);
  ProgressQueries& queries = node_.progress();
  // Judged here for good; or a made-up token (no entry has term 0); or this
  // node leads the group, or knows no leader: nobody to ask.
  if (replaced(local.state) || term.value() == 0 || !queries.leader_to_ask(g)) {
    co_return local;
  }
  const auto now = Clock::now();
  std::optional<WriteProgress> leader =
      co_await await_callback<std::optional<WriteProgress>>([&](ProgressQueries::Done done) {
        queries.ask(g, index, term, now, deadline, std::move(done));
      });
  // The group may have been dropped meanwhile: the caller looks it up again.
  co_return with_leader_view(local, leader);
}

asio::awaitable<uint64_t> ClientServer::replicas_holding(const std::vector<WriteToken>& writes,
                                                         Session& session,
                                                         Clock::time_point deadline) {
  if (writes.empty()) {
    // Redis answers the replicas connected now; here the default group's
    // leader counts the peers it has heard from, other nodes the configured ones.
    const core::EngineStatus e = node_.default_group().status().engine;
    if (e.soft.role != core::Role::kLeader) co_return opts_.replicas_configured;
    uint64_t n = 0;
    for (const core::PeerStatus& peer : e.peers) {
      if (peer.id != e.soft.leader && peer.match_index.value() > 0) ++n;
    }
    co_return n;
  }
  uint64_t least = UINT64_MAX;
  for (const WriteToken& t : writes) {
    if (t.uncertain) co_return 0;  // its position is unknown: no replica can be vouched for
    // Looked up for each write: a query suspends, and a keyspace may be dropped meanwhile.
    ReplicaGroup* g = group_of_keyspace(t.keyspace);
    if (g == nullptr) {
      // The keyspace was dropped, and its writes with it: none holds them.
      // Forgotten, so the next WAIT of this connection is not stuck at 0.
      session.last_write_by_keyspace.erase(t.keyspace);
      co_return 0;
    }
    // One query at a time: a connection never has two outstanding.
    const WriteProgress p = co_await progress_of(*g, t, deadline);
    least = std::min(least, p.state == WriteProgress::State::kLost ? 0 : p.replicas);
    if (least == 0) break;
  }
  co_return least;
}

asio::awaitable<void> ClientServer::execute_wait(const WaitOp& w, Session& session,
                                                 std::string& out) {
  const uint64_t timeout_ms = w.timeout_ms == 0 ? opts_.wait_timeout_max_ms
                                                : std::min(w.timeout_ms, opts_.wait_timeout_max_ms);
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  uint64_t n = co_await replicas_holding(w.writes, session, deadline);
  asio::steady_timer timer(io_);
  // Redis answers at once when there is nothing to wait for.
  while (!w.writes.empty() && n < w.numreplicas && !stopped_ && Clock::now() < deadline) {
    timer.expires_after(std::chrono::milliseconds(opts_.wait_poll_interval_ms));
    std::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    n = co_await replicas_holding(w.writes, session, deadline);
  }
  resp::append_integer(&out, static_cast<int64_t>(n));
}

asio::awaitable<void> ClientServer::execute_poll(const PollOp& p, std::string& out, bool& ok) {
  ReplicaGroup* g = group_of_keyspace(p.token.keyspace);
  if (g == nullptr) {
    ok = false;
    resp::append_error(
        &out, "ERR unknown keyspace '" + p.token.keyspace.substr(0, 128) + "' in the write token");
    co_return;
  }
  const WriteProgress w =
      co_await progress_of(*g, p.token, Clock::now() + ProgressQueries::kTimeout);
  // A flat map, as Redis 7's RESP2 replies give one (CLIENT INFO-like pairs).
  resp::append_array_header(&out, 4);
  resp::append_bulk_string(&out, "status");
  resp::append_bulk_string(&out, write_state_name(w.state));
  resp::append_bulk_string(&out, "replicas");
  resp::append_integer(&out, static_cast<int64_t>(w.replicas));
}

}  // namespace chorus::server
