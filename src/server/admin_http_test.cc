// Tests for the admin HTTP endpoint: every route over real loopback HTTP
// (httplib::Client), the StatusPublisher, and prompt start/stop.
#include "server/admin_http.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <thread>

namespace chorus::server {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr const char* kLoopback = "127.0.0.1";

struct Fixture {
  metrics::Registry registry;
  StatusPublisher publisher;
  std::unique_ptr<AdminServer> server;

  explicit Fixture(bool with_callbacks = true) {
    AdminServerOptions o;
    o.host = kLoopback;
    o.port = 0;
    if (with_callbacks) {
      o.status_json = publisher.status_callback();
      o.health = publisher.health_callback();
      o.metrics = &registry;
    }
    server = std::make_unique<AdminServer>(std::move(o));
    Status st = server->start();
    EXPECT_TRUE(st.is_ok()) << st.to_string();
  }
  httplib::Client client() const {
    httplib::Client c(kLoopback, server->port());
    c.set_connection_timeout(2, 0);
    c.set_read_timeout(5, 0);
    return c;
  }
};

// What server::status_json() produces on a leader.
std::string sample_status(uint64_t term = 3, uint64_t commit = 10) {
  nlohmann::json j = {{"node_id", 1},
                      {"role", "leader"},
                      {"term", term},
                      {"leader", 1},
                      {"commit_index", commit},
                      {"applied_index", 9},
                      {"last_index", 12},
                      {"healthy", true},
                      {"error", ""},
                      {"peers",
                       {{{"id", 2}, {"match_index", 12}, {"next_index", 13}, {"lag", 0}},
                        {{"id", 3}, {"match_index", 4}, {"next_index", 5}, {"lag", 8}}}}};
  return j.dump();
}

TEST(AdminStatus, ServesThePublishedSnapshotAsJson) {
  Fixture f;
  httplib::Client c = f.client();
  // Before the owner publishes anything.
  auto r = c.Get("/status");
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(nlohmann::json::parse(r->body)["role"], "starting");

  f.publisher.publish(sample_status());
  r = c.Get("/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  nlohmann::json j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["node_id"], 1);
  EXPECT_EQ(j["role"], "leader");
  EXPECT_EQ(j["term"], 3);
  EXPECT_EQ(j["leader"], 1);
  EXPECT_EQ(j["commit_index"], 10);
  EXPECT_EQ(j["applied_index"], 9);
  ASSERT_EQ(j["peers"].size(), 2u);
  EXPECT_EQ(j["peers"][1]["match_index"], 4);
  EXPECT_EQ(j["peers"][1]["lag"], 8);
}

TEST(AdminStatus, WithoutCallbackIs503Json) {
  Fixture f(/*with_callbacks=*/false);
  auto r = f.client().Get("/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(nlohmann::json::parse(r->body)["error"], "status not available");
}

TEST(AdminMetrics, ServesPrometheusText) {
  Fixture f;
  f.registry.counter("chorus_raft_proposals_total", "Proposals.").inc(5);
  auto r = f.client().Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_EQ(r->body,
            "# HELP chorus_raft_proposals_total Proposals.\n"
            "# TYPE chorus_raft_proposals_total counter\n"
            "chorus_raft_proposals_total 5\n");
}

TEST(AdminHealth, OkWhenHealthyElse503WithReason) {
  Fixture f;
  httplib::Client c = f.client();
  auto r = c.Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);  // nothing published yet
  EXPECT_EQ(r->body, "starting");

  f.publisher.publish_health({true, ""});
  r = c.Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("text/plain"));

  f.publisher.publish_health({false, "wal fsync failed: node is fail-stopped"});
  r = c.Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "wal fsync failed: node is fail-stopped");
}

TEST(AdminHealth, WithoutCallbackIsHealthy) {
  Fixture f(/*with_callbacks=*/false);
  auto r = f.client().Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
}

TEST(AdminDashboard, IsSelfContainedHtmlThatPollsStatus) {
  Fixture f;
  auto r = f.client().Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->get_header_value("Content-Type"), HasSubstr("text/html"));
  EXPECT_THAT(r->body, HasSubstr("<!doctype html>"));
  EXPECT_THAT(r->body, HasSubstr("fetch(\"/status\""));
  EXPECT_THAT(r->body, HasSubstr("setTimeout(poll, 1000)"));
  for (const char* field : {"s.role", "s.term", "s.leader", "s.commit_index", "s.applied_index",
                            "s.healthy", "p.match_index", "p.lag", "s.keyspaces", "k.strategy",
                            "g.leader", "g.term", "g.peers", "k.manager", "m.reason"}) {
    EXPECT_THAT(r->body, HasSubstr(field));
  }
  // No external assets: nothing is loaded from another origin.
  EXPECT_THAT(r->body, ::testing::Not(HasSubstr("http://")));
  EXPECT_THAT(r->body, ::testing::Not(HasSubstr("https://")));
  EXPECT_THAT(r->body, ::testing::Not(HasSubstr("src=")));
}

TEST(AdminRouting, UnknownPathIs404Json) {
  Fixture f;
  auto r = f.client().Get("/nope?x=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
  nlohmann::json j = nlohmann::json::parse(r->body);
  EXPECT_EQ(j["error"], "not found");
  EXPECT_EQ(j["path"], "/nope");
}

TEST(AdminRouting, CallbackExceptionIs500Json) {
  AdminServerOptions o;
  o.host = kLoopback;
  o.status_json = []() -> std::string { throw std::runtime_error("boom"); };
  AdminServer s(std::move(o));
  ASSERT_TRUE(s.start().is_ok());
  httplib::Client c(kLoopback, s.port());
  auto r = c.Get("/status");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_THAT(nlohmann::json::parse(r->body)["error"].get<std::string>(), HasSubstr("boom"));
}

TEST(AdminLifecycle, StopIsPromptAndIdempotent) {
  Fixture f;
  ASSERT_TRUE(f.server->running());
  ASSERT_TRUE(f.client().Get("/healthz"));
  auto t0 = Clock::now();
  f.server->stop();
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(500));
  EXPECT_FALSE(f.server->running());
  f.server->stop();  // idempotent
  auto r = f.client().Get("/healthz");
  EXPECT_FALSE(r);  // nobody listens any more
}

TEST(AdminLifecycle, StopWithAnIdleKeepAliveClientWaitsAtMostTheKeepAliveTimeout) {
  Fixture f;
  httplib::Client c = f.client();
  c.set_keep_alive(true);
  ASSERT_TRUE(c.Get("/healthz"));  // the connection stays open, idle
  auto t0 = Clock::now();
  f.server->stop();
  EXPECT_LT(Clock::now() - t0, std::chrono::milliseconds(2500));
}

TEST(AdminLifecycle, StopRightAfterStartDoesNotHang) {
  for (int i = 0; i < 20; ++i) {
    AdminServer s(AdminServerOptions{});
    ASSERT_TRUE(s.start().is_ok());
    s.stop();
  }
}

TEST(AdminLifecycle, DestructorStops) {
  uint16_t port = 0;
  {
    Fixture f;
    port = f.server->port();
    ASSERT_NE(port, 0);
  }
  httplib::Client c(kLoopback, port);
  c.set_connection_timeout(1, 0);
  EXPECT_FALSE(c.Get("/healthz"));
}

TEST(AdminLifecycle, PortInUseIsAnErrorNamingTheAddress) {
  Fixture f;
  AdminServerOptions o;
  o.host = kLoopback;
  o.port = f.server->port();
  AdminServer second(std::move(o));
  Status st = second.start();
  ASSERT_FALSE(st.is_ok());
  EXPECT_EQ(st.code(), StatusCode::kIoError);
  EXPECT_THAT(st.message(), HasSubstr("127.0.0.1:" + std::to_string(f.server->port())));
  // The first server is unaffected.
  EXPECT_TRUE(f.client().Get("/healthz"));
}

TEST(AdminLifecycle, FixedPortBinds) {
  // Find a free port, release it, bind to it explicitly.
  uint16_t port = 0;
  {
    AdminServer probe(AdminServerOptions{});
    ASSERT_TRUE(probe.start().is_ok());
    port = probe.port();
  }
  AdminServerOptions o;
  o.host = kLoopback;
  o.port = port;
  AdminServer s(std::move(o));
  Status st = s.start();
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(s.port(), port);
  httplib::Client c(kLoopback, port);
  EXPECT_TRUE(c.Get("/healthz"));
}

// The owner publishes from its thread while HTTP clients read: each reader
// sees a complete snapshot, never a torn one.
TEST(AdminConcurrency, PublishWhileServing) {
  Fixture f;
  std::atomic<bool> done{false};
  std::thread owner([&] {
    for (uint64_t i = 0; !done.load(); ++i) {
      f.publisher.publish(sample_status(i, i));
      f.registry.counter("ticks_total", "Ticks.").inc();
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  httplib::Client c = f.client();
  c.set_keep_alive(true);
  for (int i = 0; i < 50; ++i) {
    auto r = c.Get("/status");
    ASSERT_TRUE(r);
    nlohmann::json j = nlohmann::json::parse(r->body);
    if (j["role"] == "starting") continue;
    EXPECT_EQ(j["term"], j["commit_index"]);
    ASSERT_TRUE(c.Get("/metrics"));
  }
  done = true;
  owner.join();
}

}  // namespace
}  // namespace chorus::server
