// Firewall: network partitions between the nemesis's own nodes, made with
// iptables.
//
// Every rule lives in one chain of this process, CHORUS-NEMESIS-<pid>, which
// a single rule at the top of INPUT jumps to (on loopback a packet passes
// OUTPUT then INPUT; dropping it in INPUT is enough). So:
//   heal()      = flush the chain;
//   teardown()  = remove the jump, flush, delete the chain.
// A rule matches only this cluster's peer traffic: TCP between two node
// addresses where one end is a node's peer port. Clients (which connect from
// 127.0.0.1) and any other program using the same addresses are untouched.
//
// drop(a, b) drops every segment going from a to b — both a's connection to
// b's listener and the replies on b's connection to a's listener — so TCP
// sees one-way loss; drop both ways for a symmetric partition.
//
// Availability: open() creates the chain; without root, without the
// iptables binary, or when the kernel refuses (a sandbox), it returns null
// and says why, and the nemesis skips partitions.
//
// Robustness: the destructor tears down. A nemesis killed with -9 leaves its
// chain behind; remove_stale_chains() deletes the chains of nemesis
// processes that no longer exist (run at startup).
//
// Thread-safety: none; the nemesis's main thread owns it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "server/config.h"

namespace chorus::tools::nemesis {

class Firewall {
 public:
  // Null (and *why_not set) when iptables cannot be used here.
  static std::unique_ptr<Firewall> open(std::string* why_not);
  // Deletes the chains (and their INPUT jumps) of nemesis processes that are
  // gone. Returns how many it removed.
  static int remove_stale_chains();

  ~Firewall();
  Firewall(const Firewall&) = delete;
  Firewall& operator=(const Firewall&) = delete;

  const std::string& chain() const { return chain_; }
  // One direction of peer traffic to drop: from node `from` to node `to`
  // (their listen.peer endpoints).
  struct Link {
    Endpoint from, to;
  };
  // Adds the drop rules for every link, atomically (one iptables-restore).
  Status drop(const std::vector<Link>& links);
  // Removes every drop rule.
  Status heal();
  // Removes the chain and its jump. Idempotent.
  void teardown();

 private:
  explicit Firewall(std::string chain) : chain_(std::move(chain)) {}
  std::string chain_;
  bool torn_down_ = false;
};

// Runs iptables (-w: wait for the xtables lock) with `args`; returns its exit
// code (127: could not run it) and its output in *output.
int run_iptables(const std::vector<std::string>& args, std::string* output = nullptr);
// Runs `iptables-restore -w --noflush` with `input` on its standard input.
int run_iptables_restore(const std::string& input, std::string* output = nullptr);

}  // namespace chorus::tools::nemesis
