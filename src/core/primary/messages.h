// Primary-backup messages. Every message carries the sender's epoch: a
// backup learns a newer epoch (and its primary) from the primary's appends,
// and refuses appends from an older one. The wire encoding belongs to the
// transport layer; the core only sees these structs.
#pragma once

#include <algorithm>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/ids.h"
#include "core/common/types.h"
#include "core/primary/options.h"

namespace chorus::primary {

// Primary -> backup: entries to log durably (for sync-all: to *prepare*, in
// the two-phase-commit sense — logged, not applied) after (prev_index,
// prev_term), and the primary's commit index. Empty entries: a heartbeat.
struct Append {
  // The primary's current entry term (epoch:generation) when it sent this.
  // A backup ignores an append older than one it has taken: after a sync-all
  // rollback, a delayed append of the rolled-back generation must not put
  // the aborted entries back in place of the marker.
  Term term;
  LogIndex prev_index;
  Term prev_term;
  std::vector<core::Entry> entries;
  LogIndex commit;
};

enum class Refusal : uint8_t {
  kNone,
  kStaleEpoch,  // the sender's epoch is older than the backup's (see Message::epoch)
  // Our entry at prev_index has another term than prev_term: back up to
  // `hint` + 1 (see AppendResponse::hint).
  kLogMismatch,
  // No entry at prev_index here: our log ends at `hint`, below it. Apart
  // from kLogMismatch because only this one may say we hold less than the
  // primary's match for us (primary.cc, handle_log_mismatch).
  kLogEnds,
  kPrepareLimit,  // sync-all: preparing these would exceed max_prepared_bytes
  // The backup must drop entries it has already applied (or that are
  // committed here): only a snapshot from the primary can replace them.
  kNeedSnapshot,
};
std::string_view refusal_name(Refusal r);

// Backup -> primary, sent only once what it acknowledges is durable.
struct AppendResponse {
  Refusal refusal = Refusal::kNone;
  // Accepted: the backup's log matches the primary's through match_index,
  // whose term is match_term (the primary credits it only if its own entry
  // there has that term: an acknowledgement of a rolled-back generation is
  // worthless).
  LogIndex match_index;
  Term match_term;
  // kLogMismatch: the primary should retry after this index. Without
  // hint_term, our entry at prev has another term, and hint is where our run
  // of that term begins, minus one (Raft thesis §5.3): a lower bound on where
  // we diverge, which may be below what we share with the primary. With
  // hint_term set, hint is the backup's snapshot index (the append's prev
  // lies inside the backup's snapshot) and hint_term its term there: the
  // primary goes on after it if its own log has that term there (Log
  // Matching), and sends its snapshot, naming the backup's as refuted, if not.
  // kLogEnds: our last index (hint_term is zero). Below the primary's match
  // for us either when the refusal is stale, or when a snapshot we installed
  // replaced entries we had acknowledged.
  // kNeedSnapshot: where the backup's log diverges from the primary's at the
  // latest (the primary ignores the refusal if it is at or below the match).
  LogIndex hint;
  Term hint_term;
  // kPrepareLimit: the first entry refused.
  LogIndex refused_index;
};

// Where a term's entries begin in a primary's log.
struct TermStart {
  Term term;
  LogIndex first;
  bool operator==(const TermStart&) const = default;
};

// Primary -> backup whose next entry was compacted away, or that must drop
// entries it applied (kNeedSnapshot). `terms` and `last_index` describe the
// primary's whole log (compacted part included, as far as it remembers), so
// the backup can tell exactly which of its entries the primary does not
// have — the ones it must report as dropped — without the entries
// themselves (Kafka's leader-epoch cache plays the same part).
struct InstallSnapshot {
  core::SnapshotRef snapshot;
  std::vector<TermStart> terms;  // ascending; the first may start after index 1 (forgotten)
  LogIndex last_index;
  // When set: the backup's snapshot point that the primary found is not in
  // its log (from a kLogMismatch with hint_term). A backup whose snapshot is
  // still exactly this one must install; any other ignores the claim (a
  // delayed copy). Zero: install only if needed (primary_backup.cc).
  core::SnapshotMeta refuted;
};

// The term at index i of a log described by `terms` (ascending term starts)
// and its last index: nullopt where the description forgot it or the log
// ends before i.
inline std::optional<Term> term_in_history(const std::vector<TermStart>& terms, LogIndex last,
                                           LogIndex i) {
  if (i > last) return std::nullopt;
  auto it = std::upper_bound(terms.begin(), terms.end(), i,
                             [](LogIndex x, const TermStart& t) { return x < t.first; });
  if (it == terms.begin()) return std::nullopt;
  return std::prev(it)->term;
}

// A configuration, delivered as a message (from the configuration manager
// or relayed by a primary). Never carries a lease.
struct NewConfiguration {
  Configuration config;
};

// A backup hands client writes to its primary (Options::forward_proposals).
// The primary proposes each as if a client had sent it there; the backup's
// host learns the outcome when it applies the write (the client's session and
// sequence number identify it). Only a primary of the message's epoch takes
// it; anyone else drops it.
struct Forward {
  std::vector<std::string> data;
};

using Body = std::variant<Append, AppendResponse, InstallSnapshot, NewConfiguration, Forward>;

struct Message {
  NodeId from;
  NodeId to;
  Epoch epoch;  // the sender's highest epoch
  Body body;
};

std::string_view message_name(const Body& b);
// One line for traces: "Append 1->2 e3 prev=5/3:0 n=2 commit=4".
std::string describe(const Message& m);

}  // namespace chorus::primary
