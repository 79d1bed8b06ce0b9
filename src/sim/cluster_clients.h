// Cluster<E> (cluster.h): the clients. Each issues one operation at a time
// to a node's host — exactly what chorusd's client front end does — and
// records it in the history: OK with its output; failed when the host says
// it certainly did not happen (no leader, limits); unknown otherwise.
#pragma once

#include "sim/cluster.h"

namespace chorus::sim {

template <core::Engine E>
check::Operation Cluster<E>::execute(size_t i, check::OpKind kind, std::string key,
                                     std::string value, std::string expected, Time timeout,
                                     host::Consistency consistency) {
  const size_t c = scripted_client();
  clients_[c].target = i;
  const size_t op = record(c, kind, std::move(key), std::move(value), std::move(expected));
  submit(c, op, consistency);
  run_until([&] { return report_.history[op].complete_us != 0; }, timeout);
  if (report_.history[op].complete_us == 0) client_timeout(c, op);
  return report_.history[op];
}

template <core::Engine E>
size_t Cluster<E>::submit_async(size_t i, check::OpKind kind, std::string key, std::string value,
                                host::Consistency consistency) {
  const size_t c = scripted_client();
  clients_[c].target = i;
  const size_t op = record(c, kind, std::move(key), std::move(value), {});
  submit(c, op, consistency);
  q_.after(opts_.client_timeout_us, [this, c, op] { client_timeout(c, op); });
  return op;
}

template <core::Engine E>
void Cluster<E>::client_next(size_t c) {
  if (clients_stopped_ || clients_[c].scripted) return;
  const std::string key = key_name(prng_.uniform(1, static_cast<uint64_t>(opts_.keys)));
  const uint64_t dice = prng_.uniform(0, 99);
  const auto kind = dice < 40   ? check::OpKind::kGet
                    : dice < 65 ? check::OpKind::kPut
                    : dice < 85 ? check::OpKind::kAppend
                                : check::OpKind::kCas;
  const uint64_t id = report_.history.size() + 1;
  std::string value = kind == check::OpKind::kAppend ? fmt::format(",{}.{}", clients_[c].id, id)
                                                     : fmt::format("{}.{}", clients_[c].id, id);
  std::string expected = kind == check::OpKind::kCas ? last_written_[key] : std::string();
  if (kind == check::OpKind::kPut) last_written_[key] = value;
  const size_t op = record(c, kind, key, std::move(value), std::move(expected));
  submit(c, op, pick_consistency());
  q_.after(opts_.client_timeout_us, [this, c, op] { client_timeout(c, op); });
}

// Lease reads, when the engine is configured for them, half of the time.
template <core::Engine E>
host::Consistency Cluster<E>::pick_consistency() {
  if (Traits::lease_reads(knobs_) && prng_.chance(0.5)) return host::Consistency::kLease;
  return host::Consistency::kLinearizable;
}

template <core::Engine E>
size_t Cluster<E>::record(size_t c, check::OpKind kind, std::string key, std::string value,
                          std::string expected) {
  check::Operation o;
  o.id = report_.history.size() + 1;
  o.client = clients_[c].id;
  o.kind = kind;
  o.key = std::move(key);
  o.value = std::move(value);
  o.expected = std::move(expected);
  o.invoke_us = q_.now();
  o.status = check::OpStatus::kUnknown;
  const size_t op = report_.history.size();
  report_.history.push_back(std::move(o));
  clients_[c].op = op;
  return op;
}

// A client for one scripted operation; each gets its own session.
template <core::Engine E>
size_t Cluster<E>::scripted_client() {
  clients_.push_back(make_client());
  clients_.back().scripted = true;
  return clients_.size() - 1;
}

template <core::Engine E>
void Cluster<E>::submit(size_t c, size_t op, host::Consistency consistency) {
  Client& cl = clients_[c];
  const auto& o = report_.history[op];
  if (opts_.trace)
    trace(fmt::format("client {} -> n{}: {}", cl.id, cl.target + 1, check::describe(o)));
  const size_t i = cl.target;
  if (!up(i)) return;  // the request is lost; the client times out
  // The request enters the node's loop like a client's bytes from a socket:
  // held while the loop stalls.
  nodes_[i]->loop->at(q_.now(), [this, i, c, op, consistency] {
    if (report_.history[op].complete_us != 0) return;  // the client gave up meanwhile
    if (report_.history[op].kind == check::OpKind::kGet) {
      submit_read(i, op, consistency);
    } else {
      submit_write(i, c, op);
    }
  });
}

template <core::Engine E>
void Cluster<E>::submit_read(size_t i, size_t op, host::Consistency consistency) {
  Host& h = *nodes_[i]->host;
  if (consistency == host::Consistency::kLease && h.read_ready_now(consistency)) {
    // Served under the lease, at once: the state here must be at least as
    // new as any commit anywhere, or a write that completed elsewhere is
    // missed (the linearizability check would see it too; this names it).
    const LogIndex applied = h.state().applied_index();
    const LogIndex highest = highest_commit();
    // (A lossy engine's new primary may be behind what an old one committed.)
    if (applied < highest && !lossy()) {
      violation(fmt::format(
          "stale lease read: n{} served a lease read at applied index {} while index {} is "
          "committed",
          i + 1, applied.value(), highest.value()));
    }
    ++report_.lease_reads;
    serve_read(i, op, "lease");
    return;
  }
  // Thesis §6.4: a read index is at least the commit index when the read
  // began; anything lower can miss a completed write.
  const LogIndex min_index = highest_commit();
  const uint64_t inc = nodes_[i]->loop->incarnation();
  h.read(consistency, [this, i, op, min_index, inc](Result<LogIndex> r) {
    if (nodes_[i]->loop->incarnation() != inc) return;
    if (!r.is_ok()) {
      complete(op, check::OpStatus::kFail);
      return;
    }
    if (*r < min_index && !lossy()) {
      violation(fmt::format(
          "stale read index: n{} served read {} at index {}, but index {} was committed before "
          "the read began",
          i + 1, report_.history[op].id, r->value(), min_index.value()));
    }
    serve_read(i, op, "read index");
  });
}

template <core::Engine E>
void Cluster<E>::serve_read(size_t node, size_t op, const char* how) {
  auto& o = report_.history[op];
  if (o.complete_us != 0) return;  // the client gave up already
  auto v = state(node).read(o.key);
  if (!v.is_ok()) {
    violation(fmt::format("n{}: read of {} failed: {}", node + 1, o.key, v.status().to_string()));
    return;
  }
  read_at_[op] = last_applied_[node];  // the state it saw: the chain down from here
  o.found = v->has_value();
  o.output = v->value_or("");
  if (opts_.trace) trace(fmt::format("n{} serves {} by {}", node + 1, check::describe(o), how));
  complete(op, check::OpStatus::kOk);
}

template <core::Engine E>
void Cluster<E>::submit_write(size_t i, size_t c, size_t op) {
  Client& cl = clients_[c];
  const auto& o = report_.history[op];
  kvpb::Command cmd;
  switch (o.kind) {
    case check::OpKind::kPut:
      cmd = kv::make_put(o.key, o.value);
      break;
    case check::OpKind::kAppend:
      cmd = kv::make_append(o.key, o.value);
      break;
    case check::OpKind::kCas:
      cmd = kv::make_cas(o.key, o.expected, o.value);
      break;
    case check::OpKind::kGet:
      break;
  }
  cmd.set_client_id(cl.id);
  cmd.set_seq(++cl.seq);
  op_by_command_[{cl.id, cl.seq}] = op;
  nodes_[i]->host->write(std::move(cmd), [this, op](Result<kvpb::Result> r) {
    if (r.is_ok()) {
      auto& rec = report_.history[op];
      if (rec.kind == check::OpKind::kCas) rec.cas_ok = r->code() == kvpb::Result::OK;
      complete(op, check::OpStatus::kOk);
      return;
    }
    const StatusCode code = r.status().code();
    if (code == StatusCode::kUnavailable || code == StatusCode::kBusy) {
      complete(op, check::OpStatus::kFail);  // the host says: certainly never entered a log
    }
    // Anything else may or may not have happened: the client times out on it.
  });
}

template <core::Engine E>
void Cluster<E>::complete(size_t op, check::OpStatus status) {
  auto& o = report_.history[op];
  if (o.status != check::OpStatus::kUnknown || o.complete_us != 0) return;  // already finished
  o.status = status;
  o.complete_us = q_.now();
  if (opts_.trace) trace(fmt::format("client {} done: {}", o.client, check::describe(o)));
  Client& cl = clients_[o.client - 1];
  if (cl.op != op) return;
  cl.op.reset();
  if (status == check::OpStatus::kOk) {
    ++report_.ops_ok;
    if (!faults_on_ && o.invoke_us >= heal_at_) cl.ok_after_heal = true;
  } else {
    ++report_.ops_failed;
    cl.target = next_target(cl.target);
  }
  if (cl.scripted) return;
  const Time think = status == check::OpStatus::kOk ? static_cast<Time>(prng_.uniform(0, 2000))
                                                    : static_cast<Time>(prng_.uniform(5000, 30000));
  const size_t c = static_cast<size_t>(o.client - 1);
  q_.after(think, [this, c] { client_next(c); });
}

// Where a client turns after a failure: a random node — or, for an engine
// whose followers do not forward writes (Traits::kForwards false), usually
// the leader the failed node names, as a Redis cluster client follows a
// redirect.
template <core::Engine E>
size_t Cluster<E>::next_target(size_t failed) {
  const size_t any = static_cast<size_t>(prng_.uniform(0, nodes_.size() - 1));
  if (Traits::kForwards || !up(failed) || !prng_.chance(0.8)) return any;
  const NodeId l = nodes_[failed]->host->soft_state().leader;
  if (l == kNoNode || l.value() > nodes_.size()) return any;
  return static_cast<size_t>(l.value() - 1);
}

template <core::Engine E>
void Cluster<E>::client_timeout(size_t c, size_t op) {
  Client& cl = clients_[c];
  if (cl.op != op) return;
  auto& o = report_.history[op];
  // Unknown: it may still take effect; a late answer is ignored (complete()).
  o.complete_us = q_.now();
  ++report_.ops_unknown;
  cl.op.reset();
  cl.target = next_target(cl.target);
  if (opts_.trace) trace(fmt::format("client {} gives up: {}", cl.id, check::describe(o)));
  if (cl.scripted) return;
  q_.after(static_cast<Time>(prng_.uniform(0, 5000)), [this, c] { client_next(c); });
}

}  // namespace chorus::sim
