// A fixture for tests/check_one_driver.sh: a second Ready loop, which the
// check must refuse.
#include "core/raft/raft.h"

void pump(chorus::raft::Raft& core) {
  auto rd = core.ready();
  core.advance(rd);
}
