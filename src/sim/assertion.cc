#include "sim/assertion.h"

#include <fmt/format.h>

#include "base/assert.h"

namespace chorus::sim {
namespace {
[[noreturn]] void thrower(const char* expr, const char* file, int line, const char* msg) {
  throw AssertionFailure(fmt::format("{} at {}:{} {}", expr, file, line, msg));
}
}  // namespace

void throw_on_assertion_failure() {
  set_assertion_handler(&thrower);
}

}  // namespace chorus::sim
