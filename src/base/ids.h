// Strong integer types for numbers that must never mix (Scylla's
// tagged_uint64): a Term cannot be passed where a LogIndex is expected, and
// neither converts silently to or from a plain integer.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>

namespace chorus {

template <class Tag>
class Tagged {
 public:
  constexpr Tagged() = default;
  constexpr explicit Tagged(uint64_t v) : v_(v) {}

  constexpr uint64_t value() const { return v_; }
  constexpr auto operator<=>(const Tagged&) const = default;

  constexpr Tagged next() const { return Tagged(v_ + 1); }
  // Precondition: value() > 0.
  constexpr Tagged prev() const { return Tagged(v_ - 1); }

  friend std::ostream& operator<<(std::ostream& os, Tagged t) { return os << t.v_; }

 private:
  uint64_t v_ = 0;
};

// A Raft/ZAB/Paxos term (epoch, ballot round). 0 means "no term yet".
using Term = Tagged<struct TermTag>;
// A position in a replicated log. Indexes start at 1; 0 means "before the log".
using LogIndex = Tagged<struct LogIndexTag>;
// A cluster member. 0 is "no node" (e.g. no known leader, voted for nobody).
using NodeId = Tagged<struct NodeIdTag>;

inline constexpr NodeId kNoNode{0};
// A replication group: one keyspace's engine instance and its members. Peer
// messages carry it so that many groups share one connection per node pair.
using GroupId = Tagged<struct GroupIdTag>;

constexpr LogIndex operator+(LogIndex i, uint64_t n) {
  return LogIndex(i.value() + n);
}
constexpr LogIndex operator-(LogIndex i, uint64_t n) {
  return LogIndex(i.value() - n);
}
// Distance between two indexes. Precondition: a >= b.
constexpr uint64_t operator-(LogIndex a, LogIndex b) {
  return a.value() - b.value();
}

}  // namespace chorus

template <class Tag>
struct std::hash<chorus::Tagged<Tag>> {
  size_t operator()(chorus::Tagged<Tag> t) const noexcept {
    return std::hash<uint64_t>{}(t.value());
  }
};
