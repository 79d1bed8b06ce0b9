// A deliberately impure file: check_pure.sh must reject this fixture.
#pragma once
#include <thread>
inline void leak() {
  std::this_thread::yield();
}
