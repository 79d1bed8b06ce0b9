// The drivers compiled into this binary. `resp` is always built (hiredis is a
// dependency of the chorus CLI anyway). The peer drivers of the comparison
// (etcd over gRPC, ZooKeeper's C client) pull in libraries that `make test`
// should not need: they are built only when CMake is run with
// -DCHORUS_BENCH_PEERS=ON, which compiles their files into chorus_bench and
// defines CHORUS_BENCH_PEERS, enabling their registration below.
#include "bench/driver.h"

namespace chorus::bench {

void register_resp_driver(DriverRegistry& registry);
#ifdef CHORUS_BENCH_PEERS
void register_etcd_driver(DriverRegistry& registry);
void register_zookeeper_driver(DriverRegistry& registry);
#endif

void register_builtin_drivers(DriverRegistry& registry) {
  register_resp_driver(registry);
#ifdef CHORUS_BENCH_PEERS
  register_etcd_driver(registry);
  register_zookeeper_driver(registry);
#endif
}

}  // namespace chorus::bench
