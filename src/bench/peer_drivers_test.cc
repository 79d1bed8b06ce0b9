// The peer drivers' registration and option checks (no server needed: the
// factories do no I/O). Built only with -DCHORUS_BENCH_PEERS=ON.
#include <gtest/gtest.h>

#include "bench/args.h"

namespace chorus::bench {
namespace {

std::string rejection(const std::vector<std::string>& argv) {
  auto r = parse_bench_args(argv, builtin_drivers());
  if (r.is_ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

TEST(PeerDriversTest, AreBuiltIn) {
  ASSERT_NE(builtin_drivers().find("etcd"), nullptr);
  ASSERT_NE(builtin_drivers().find("zookeeper"), nullptr);
  BenchArgs args;
  CLI::App app{"chorus bench"};
  add_bench_options(app, args, builtin_drivers());
  const std::string help = app.help();
  EXPECT_NE(help.find("Client driver: resp, etcd, zookeeper"), std::string::npos) << help;
  EXPECT_EQ(help.find("Not built in"), std::string::npos) << help;
}

TEST(PeerDriversTest, OptionsAreChecked) {
  auto r = parse_bench_args({"--driver", "etcd", "--driver-opt", "serializable=true"},
                            builtin_drivers());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->driver_options.params.at("serializable"), "true");
  r = parse_bench_args({"--driver", "zookeeper", "--driver-opt", "root=/a/b"}, builtin_drivers());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(parse_bench_args({"--driver", "zookeeper"}, builtin_drivers()).is_ok());

  EXPECT_NE(rejection({"--driver", "etcd", "--driver-opt", "serializable=yes"})
                .find("etcd: serializable must be true or false, not 'yes'"),
            std::string::npos);
  EXPECT_NE(rejection({"--driver", "etcd", "--driver-opt", "consistency=lease"})
                .find("driver etcd has no option 'consistency' (accepted: serializable)"),
            std::string::npos);
  EXPECT_NE(rejection({"--driver", "zookeeper", "--driver-opt", "root=bench"})
                .find("zookeeper: root 'bench' must be an absolute path"),
            std::string::npos);
  EXPECT_NE(rejection({"--driver", "zookeeper", "--pipeline", "2"}).find("--pipeline"),
            std::string::npos);
}

}  // namespace
}  // namespace chorus::bench
