// EngineGroup<E>: the ReplicaGroup (replica_group.h) that runs engine E in
// the server — host::ReplicaHost<E, AsioEffects> plus E's wire codec and its
// configuration from the node's config file. make_replica_group() picks E by
// strategy name through the registry (host/registry.h).
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

#include "base/prng.h"
#include "host/registry.h"
#include "host/replica_host.h"
#include "net/transport/transport.h"
#include "server/asio_effects.h"
#include "server/config.h"
#include "server/engine_setup.h"
#include "server/replica_group.h"

namespace chorus::server {

// What a group is built from.
struct GroupContext {
  asio::io_context* io = nullptr;
  StorageExecutor* storage = nullptr;  // the node's, shared by its groups; outlives the group
  const NodeConfig* config = nullptr;
  GroupId group_id;
  std::unique_ptr<storage::ReplicaStorage> store;
  std::unique_ptr<kv::StateMachine> sm;
  net::Transport* transport = nullptr;
  host::HostMetrics* metrics = nullptr;
  uint64_t prng_seed = 0;
  KeyspaceOptions options;  // the keyspace's strategy options
  // Entries this group dropped from its log (HostMetrics::dropped).
  std::function<void(GroupId, const core::DroppedEntry&)> on_dropped;
};

template <class E>
inline constexpr bool kIsPrimaryBackup = false;
template <primary::AckRule R>
inline constexpr bool kIsPrimaryBackup<primary::PrimaryBackup<R>> = true;

// The group for `strategy`, or kInvalidArgument naming the strategies there are.
Result<std::unique_ptr<ReplicaGroup>> make_replica_group(std::string_view strategy,
                                                         GroupContext ctx);

// Delivers a peer message to the group it belongs to (decoded by that
// group's engine codec). A message for a group this node does not host is
// dropped and counted (a keyspace being created or dropped elsewhere); a
// body the codec refuses is an error, and the transport closes the
// connection it came on.
class PeerRouter {
 public:
  void add(ReplicaGroup* g) { groups_.push_back(g); }
  Status deliver(net::IncomingMessage m);
  uint64_t unknown_group_drops() const { return unknown_group_drops_; }

 private:
  std::vector<ReplicaGroup*> groups_;
  uint64_t unknown_group_drops_ = 0;
};

template <core::Engine E>
class EngineGroup final : public ReplicaGroup {
  using Msg = typename E::Message;
  using Fx = AsioEffects<Msg>;
  using Host = host::ReplicaHost<E, Fx>;

 public:
  explicit EngineGroup(GroupContext ctx)
      : ctx_(std::move(ctx)),
        metrics_(ctx_.metrics ? *ctx_.metrics : host::HostMetrics{}),
        fx_(std::make_unique<Fx>(
            *ctx_.io, [this](Msg m) { send(std::move(m)); }, *ctx_.storage)) {
    if (ctx_.on_dropped) {
      metrics_.dropped = [this](const core::DroppedEntry& d) { ctx_.on_dropped(ctx_.group_id, d); };
    }
    host_ = std::make_unique<Host>(*fx_, EngineSetup<E>::host_options(*ctx_.config),
                                   std::move(ctx_.store), std::move(ctx_.sm),
                                   Prng(ctx_.prng_seed ^ 0x9e3779b97f4a7c15ULL), &metrics_);
  }
  ~EngineGroup() override {
    // The host stops first (no new storage job), then the effects wait for
    // this group's queued storage jobs while the host they use still exists.
    host_->stop();
    fx_.reset();
    host_.reset();
  }

  std::string_view strategy() const override { return E::kName; }
  core::Capabilities capabilities() const override {
    if constexpr (kIsPrimaryBackup<E>) {
      if (cfg_) return E::capabilities(*cfg_);
    }
    return E::kCapabilities;
  }
  GroupId group_id() const override { return ctx_.group_id; }

  Status init() override {
    CHORUS_ASSIGN_OR_RETURN(auto cfg, EngineSetup<E>::engine_config(*ctx_.config, ctx_.options));
    cfg_ = cfg;
    const uint64_t seed = ctx_.prng_seed;
    return host_->init([&](core::PersistentState<typename E::DurableState> ps) {
      return EngineSetup<E>::make(cfg, Prng(seed), std::move(ps));
    });
  }
  void start() override { host_->start(); }
  void stop() override { host_->stop(); }

  Status receive(net::IncomingMessage in) override {
    CHORUS_ASSIGN_OR_RETURN(Msg m, EngineSetup<E>::decode(in));
    host_->receive(std::move(m));
    return Status::ok();
  }
  void write(kvpb::Command cmd, WriteDone done) override {
    host_->write(std::move(cmd), std::move(done));
  }
  void write_acked(kvpb::Command cmd, WriteAckDone done) override {
    host_->write_acked(std::move(cmd), std::move(done));
  }
  void read(host::Consistency c, ReadDone done) override { host_->read(c, std::move(done)); }
  bool read_ready_now(host::Consistency c) override { return host_->read_ready_now(c); }

  const kv::StateMachine& state() const override { return host_->state(); }
  int64_t time_base_ms() const override { return host_->time_base_ms(); }
  bool healthy() const override { return host_->healthy(); }
  Status failure() const override { return host_->failure(); }
  core::SoftState soft_state() const override { return host_->soft_state(); }
  host::HostStatus status() const override { return host_->status(); }
  std::optional<Term> term_at(LogIndex i) const override { return host_->term_at(i); }

  bool managed() const override { return kIsPrimaryBackup<E>; }

  std::optional<primary::ReplicaReport> manager_report(
      uint64_t round, const std::optional<primary::Configuration>& last_grant) override {
    if constexpr (kIsPrimaryBackup<E>) {
      if (!host_->healthy()) return std::nullopt;
      const LogIndex durable = host_->status().durable_index;
      return host_->configure_engine([&](E& e) -> std::optional<primary::ReplicaReport> {
        primary::ReplicaReport r;
        r.epoch = e.epoch();
        r.last_index = std::min(durable, e.log().last_index());
        if (r.last_index != LogIndex(0)) {
          auto t = e.term_at(r.last_index);
          if (!t) return std::nullopt;  // compacted under us: report next time
          r.last_term = *t;
        }
        r.commit = e.status().commit_index;
        r.sent_tick = e.ticks();
        r.round = round;
        // Named primary of the epoch it holds, yet not primary: it restarted
        // since (primary.h), and the manager must replace it.
        r.serving = primary::reports_serving(e.id(), e.epoch(), e.is_primary(), last_grant);
        return r;
      });
    } else {
      (void)round;
      (void)last_grant;
      return std::nullopt;
    }
  }

  Status configure(const primary::Configuration& c) override {
    if constexpr (kIsPrimaryBackup<E>) {
      return host_->configure_engine([&](E& e) {
        primary::Configuration mine = c;
        if (c.primary != e.id()) {
          mine.lease_ticks = 0;
          mine.lease_anchor_tick = 0;
        }
        return e.configure(mine);
      });
    } else {
      return ReplicaGroup::configure(c);
    }
  }

 private:
  void send(Msg m) { ctx_.transport->send(EngineSetup<E>::encode(ctx_.group_id, m)); }

  GroupContext ctx_;
  host::HostMetrics metrics_;  // the node's hooks, plus this group's `dropped`
  std::optional<typename EngineSetup<E>::Config> cfg_;
  std::unique_ptr<Fx> fx_;
  std::unique_ptr<Host> host_;
};

}  // namespace chorus::server
