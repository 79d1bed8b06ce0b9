#include "bench/args.h"

#include <gtest/gtest.h>

namespace chorus::bench {
namespace {

using namespace std::chrono_literals;

}  // namespace

void register_resp_driver(DriverRegistry& registry);  // resp_driver.cc

namespace {

// resp only, whether or not this binary has the peer drivers built in.
const DriverRegistry& registry() {
  static const DriverRegistry r = [] {
    DriverRegistry out;
    register_resp_driver(out);
    return out;
  }();
  return r;
}

Result<BenchConfig> parse(const std::vector<std::string>& argv) {
  return parse_bench_args(argv, registry());
}

// The error message of a rejected command line ("" if it was accepted).
std::string rejection(const std::vector<std::string>& argv) {
  auto r = parse(argv);
  if (r.is_ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST(BenchArgsTest, DefaultsMatchTheIssue) {
  auto r = parse({});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const BenchConfig& c = *r;
  EXPECT_EQ(c.driver, "resp");
  EXPECT_EQ(c.label, "resp");
  ASSERT_EQ(c.driver_options.endpoints.size(), 1u);
  EXPECT_EQ(c.driver_options.endpoints[0].to_string(), "127.0.0.1:7001");
  EXPECT_EQ(c.workload.kind, WorkloadKind::kSet);
  EXPECT_EQ(c.workload.keys, 100'000u);
  EXPECT_EQ(c.workload.key_size, 16);
  EXPECT_EQ(c.workload.value_size, 256);
  EXPECT_EQ(c.workload.distribution, KeyDistribution::kUniform);
  EXPECT_EQ(c.run.clients, 50);
  EXPECT_EQ(c.run.pipeline, 1);
  EXPECT_EQ(c.run.ops, 0u);
  EXPECT_EQ(c.run.duration, 10s);
  EXPECT_EQ(c.run.warmup, 1s);
  EXPECT_FALSE(c.preload);  // set needs no preload
  EXPECT_NE(c.run.progress_out, nullptr);
}

TEST(BenchArgsTest, FullCommandLineIsParsed) {
  auto r = parse({"--driver",       "resp",        "--endpoints",  "127.0.0.1:7001,localhost:7002",
                  "--connect-to",   "round-robin", "--workload",   "mixed",
                  "--clients",      "8",           "--pipeline",   "4",
                  "--ops",          "5000",        "--warmup",     "300",
                  "--keys",         "1000",        "--key-size",   "12",
                  "--value-size",   "100",         "--read-ratio", "0.5",
                  "--distribution", "zipfian",     "--seed",       "9",
                  "--timeout",      "250ms",       "--driver-opt", "consistency=lease",
                  "--label",        "chorus-3",    "--json",       "--quiet"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const BenchConfig& c = *r;
  EXPECT_EQ(c.driver_options.endpoints.size(), 2u);
  EXPECT_EQ(c.driver_options.endpoints[1].host, "localhost");
  EXPECT_EQ(c.driver_options.endpoints[1].port, 7002);
  EXPECT_EQ(c.driver_options.policy, EndpointPolicy::kRoundRobin);
  EXPECT_EQ(&endpoint_for_client(c.driver_options, 3), &c.driver_options.endpoints[1]);
  EXPECT_EQ(c.driver_options.timeout, 250ms);
  EXPECT_EQ(c.driver_options.params.at("consistency"), "lease");
  EXPECT_EQ(c.workload.kind, WorkloadKind::kMixed);
  EXPECT_EQ(c.workload.read_ratio, 0.5);
  EXPECT_EQ(c.workload.distribution, KeyDistribution::kZipfian);
  EXPECT_EQ(c.workload.seed, 9u);
  EXPECT_EQ(c.run.clients, 8);
  EXPECT_EQ(c.run.pipeline, 4);
  EXPECT_EQ(c.run.ops, 5000u);
  EXPECT_EQ(c.run.duration, 0ns);
  EXPECT_EQ(c.run.warmup_ops, 300u);
  EXPECT_EQ(c.run.warmup, 0ns);
  EXPECT_TRUE(c.preload);  // mixed reads existing keys
  EXPECT_EQ(c.label, "chorus-3");
  EXPECT_TRUE(c.json);
  EXPECT_EQ(c.run.progress_out, nullptr);
}

TEST(BenchArgsTest, DurationsTakeUnits) {
  EXPECT_EQ(*parse_duration("500ms"), 500ms);
  EXPECT_EQ(*parse_duration("10s"), 10s);
  EXPECT_EQ(*parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(*parse_duration("2m"), 120s);
  EXPECT_EQ(*parse_duration("3"), 3s);
  EXPECT_EQ(*parse_duration("0s"), 0s);
  for (const char* bad : {"", "s", "ten", "-1s", "5h", "1e9s", "10 s"}) {
    EXPECT_FALSE(parse_duration(bad).is_ok()) << bad;
  }
  auto r = parse({"--duration", "2s", "--warmup", "500ms"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->run.duration, 2s);
  EXPECT_EQ(r->run.warmup, 500ms);
  r = parse({"--warmup", "0"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->run.warmup_ops, 0u);
  EXPECT_EQ(r->run.warmup, 0ns);
  r = parse({"--warmup", "2000ops"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->run.warmup_ops, 2000u);
}

TEST(BenchArgsTest, PreloadFlagsOverrideTheWorkloadDefault) {
  EXPECT_TRUE(parse({"--workload", "get"})->preload);
  EXPECT_FALSE(parse({"--workload", "get", "--no-preload"})->preload);
  EXPECT_TRUE(parse({"--workload", "set", "--preload"})->preload);
  EXPECT_NE(rejection({"--preload", "--no-preload"}).find("contradict"), std::string::npos);
}

TEST(BenchArgsTest, BadArgumentsAreRejectedWithTheOptionNamed) {
  struct Case {
    std::vector<std::string> argv;
    std::string expected;  // a substring of the message
  };
  const std::vector<Case> cases = {
      {{"--driver", "mongo"}, "--driver 'mongo' is unknown (built in: resp)"},
      {{"--driver", "etcd"},
       "--driver 'etcd' is not built in; configure with -DCHORUS_BENCH_PEERS=ON (built in: resp)"},
      {{"--driver", "zookeeper"}, "'zookeeper' is not built in; configure with"},
      {{"--endpoints", "localhost"}, "\"localhost\" is not host:port"},
      {{"--endpoints", "h:0"}, "port must be 1..65535"},
      {{"--endpoints", "h:1,"}, "endpoint \"\" is not host:port"},
      {{"--endpoints", "h:99999"}, "(port above 65535)"},
      {{"--workload", "scan"}, "--workload must be set, get or mixed"},
      {{"--clients", "0"}, "--clients must be 1..1024"},
      {{"--clients", "many"}, "clients"},
      {{"--pipeline", "0"}, "--pipeline must be 1..1024"},
      {{"--ops", "10", "--duration", "1s"}, "exactly one of --ops and --duration"},
      {{"--duration", "0s"}, "--duration must be more than 0"},
      {{"--duration", "soon"}, "--duration: 'soon' is not a duration"},
      {{"--warmup", "x"}, "--warmup"},
      {{"--keys", "0"}, "--keys must be 1..100000000"},
      {{"--key-size", "4"}, "--key-size must be 9..1024 for 100000 keys"},
      {{"--value-size", "-1"}, "--value-size must be 0..1048576"},
      {{"--read-ratio", "2"}, "--read-ratio must be between 0 and 1"},
      {{"--distribution", "pareto"}, "--distribution must be uniform or zipfian"},
      {{"--connect-to", "leader"}, "--connect-to must be first or round-robin"},
      {{"--timeout", "0ms"}, "--timeout must be at least 1ms"},
      {{"--driver-opt", "consistency"}, "expected key=value"},
      {{"--driver-opt", "color=red"}, "driver resp has no option 'color' (accepted: consistency)"},
      {{"--driver-opt", "consistency=sometimes"}, "consistency must be linearizable, lease or"},
      {{"--preload-clients", "0"}, "--preload-clients must be 1..1024"},
      {{"--no-such-flag"}, "no-such-flag"},
  };
  for (const auto& c : cases) {
    const std::string msg = rejection(c.argv);
    EXPECT_NE(msg.find(c.expected), std::string::npos)
        << "argv[0]=" << c.argv[0] << ": got '" << msg << "'";
  }
}

TEST(BenchArgsTest, HelpListsTheDriversAndTheirOptions) {
  BenchArgs args;
  CLI::App app{"chorus bench"};
  add_bench_options(app, args, registry());
  const std::string help = app.help();
  EXPECT_NE(help.find("Client driver: resp"), std::string::npos) << help;
  EXPECT_NE(help.find("consistency"), std::string::npos) << help;
  EXPECT_NE(help.find("Not built in: etcd, zookeeper (configure with -DCHORUS_BENCH_PEERS=ON)"),
            std::string::npos)
      << help;
}

}  // namespace
}  // namespace chorus::bench
