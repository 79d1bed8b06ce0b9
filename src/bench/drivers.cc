// The drivers compiled into this binary. `resp` is always built (hiredis is a
// dependency of the chorus CLI anyway). The peer drivers of the comparison
// (etcd over gRPC, ZooKeeper's C client) pull in libraries that `make test`
// should not need: the comparison build compiles their files into
// chorus_bench and defines CHORUS_BENCH_ETCD / CHORUS_BENCH_ZOOKEEPER, which
// enables their registration below.
#include "bench/driver.h"

namespace chorus::bench {

void register_resp_driver(DriverRegistry& registry);
#ifdef CHORUS_BENCH_ETCD
void register_etcd_driver(DriverRegistry& registry);
#endif
#ifdef CHORUS_BENCH_ZOOKEEPER
void register_zookeeper_driver(DriverRegistry& registry);
#endif

void register_builtin_drivers(DriverRegistry& registry) {
  register_resp_driver(registry);
#ifdef CHORUS_BENCH_ETCD
  register_etcd_driver(registry);
#endif
#ifdef CHORUS_BENCH_ZOOKEEPER
  register_zookeeper_driver(registry);
#endif
}

}  // namespace chorus::bench
