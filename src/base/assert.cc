#include "base/assert.h"

#include <cstdio>
#include <cstdlib>

namespace chorus {
namespace {
AssertionHandler g_handler = nullptr;
}  // namespace

void set_assertion_handler(AssertionHandler h) {
  g_handler = h;
}
}  // namespace chorus

namespace chorus::detail {

void assert_fail(const char* expr, const char* file, int line, const char* msg) {
  if (g_handler != nullptr) g_handler(expr, file, line, msg);  // may throw
  std::fprintf(stderr, "chorus: assertion failed: %s at %s:%d %s\n", expr, file, line, msg);
  std::fflush(stderr);
  std::abort();
}

}  // namespace chorus::detail
