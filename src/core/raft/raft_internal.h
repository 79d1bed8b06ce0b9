// Helpers shared by the Raft core's translation units (raft*.cc); not part of the public API.
#pragma once

namespace chorus::raft::internal {

// Visitor built from lambdas, for std::visit over a role or a message body.
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// (clang 14 needs the deduction guide that C++20 makes implicit.)
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace chorus::raft::internal
