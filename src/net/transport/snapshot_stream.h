// Snapshots on the peer wire (docs/formats/wire.md, "Snapshots"). Pure: the
// bytes come from memory or from a SnapshotSource, and nothing here touches
// a socket, a clock or a logger.
//
// Every snapshot attached to an OutgoingMessage travels the same way, as one
// or more SnapshotChunk frames of one transfer (a small snapshot is a single
// chunk with `last` set):
//
//   chunk 1:  transfer_id  offset 0         data  header = the message    [last]
//   chunk i:  transfer_id  offset = where chunk i-1 ended   data          [last]
//
// OutgoingTransfer makes the chunks of one transfer on demand, one per call,
// so the transport can put one chunk in each socket write and let other
// messages through in between. SnapshotReassembler (one per connection)
// checks each received chunk, appends the chunks of one transfer in memory
// (bounded by max_snapshot_bytes) and returns the header message with the
// bytes when the last chunk is in.
//
// Restart, not resume: a broken transfer is abandoned on both sides, and a
// chunk at offset 0 starts a new transfer, replacing an unfinished one.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/ids.h"
#include "base/status.h"
#include "chorus/wire.pb.h"
#include "core/common/types.h"
#include "net/transport/peer_message.h"

namespace chorus::net {

// The bytes of a snapshot, piece by piece (e.g. a storage::SnapshotReader).
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  // Replaces *chunk with the next piece (any size > 0); false at the end.
  virtual Result<bool> next(std::string* chunk) = 0;
};

// Opens the snapshot `meta` of group `group` names; used for an
// OutgoingMessage whose snapshot has no bytes (SnapshotRef::data == nullptr).
using SnapshotOpener = std::function<Result<std::unique_ptr<SnapshotSource>>(
    GroupId group, const core::SnapshotMeta& meta)>;

// Room in a frame for everything of a chunk but its data: the envelope, the
// chunk's own fields and, on the first chunk, the header message. Chunk data
// is at most max_frame_bytes - kChunkEnvelopeBytes.
inline constexpr uint32_t kChunkEnvelopeBytes = 4096;
// The largest header message a snapshot may carry (checked at send).
inline constexpr size_t kMaxSnapshotHeaderBytes = 2048;
// A reassembly buffer is reserved up to this size from the announced total;
// beyond it, it grows as chunks arrive (an announced size is not proof).
inline constexpr uint64_t kMaxSnapshotReserveBytes = 64u << 20;

// Checks the rules one chunk must follow on its own (m has a snapshot_chunk
// body): transfer_id != 0; offset + size does not overflow and stays within
// total_bytes when that is known (and reaches it on the last chunk); a
// header exactly at offset 0, with an engine body and the same group_id,
// from and to as m. kCorruption naming the broken rule otherwise.
Status check_chunk(const wirepb::PeerMessage& m);

// The chunks of one outgoing transfer. Not thread-safe; one owner.
class OutgoingTransfer {
 public:
  // header: the message the snapshot belongs to, with from and to set and an
  // engine body, at most kMaxSnapshotHeaderBytes. The bytes come from
  // snapshot.data, or from `source` when that is null.
  // Preconditions (asserted): transfer_id != 0, chunk_bytes > 0, exactly one
  // of snapshot.data and source.
  OutgoingTransfer(uint64_t transfer_id, wirepb::PeerMessage header,
                   const core::SnapshotRef& snapshot, std::unique_ptr<SnapshotSource> source,
                   uint32_t chunk_bytes);

  // Whether (header, meta) names what this transfer sends (the header
  // byte-equal): an engine retrying the same snapshot lets it finish.
  bool sends(const wirepb::PeerMessage& header, const core::SnapshotMeta& meta) const;

  // The next chunk, with `last` set on the final one; the source's error if
  // reading it failed (the transfer is then unusable).
  // Precondition: !done().
  Result<wirepb::PeerMessage> next_chunk();

  bool done() const { return done_; }
  GroupId group() const { return GroupId(group_id_); }
  const core::SnapshotMeta& meta() const { return meta_; }
  // Size of the snapshot when known up front (bytes in memory), else nullopt.
  std::optional<uint64_t> total_bytes() const;

 private:
  Status fill_from_source(std::string* out);
  Status read_piece();

  const uint64_t transfer_id_;
  const uint64_t group_id_, from_, to_;  // the header's envelope, repeated on every chunk
  wirepb::PeerMessage header_;           // moved into the first chunk
  const std::string header_bytes_;       // header_ serialized, for sends()
  const core::SnapshotMeta meta_;
  const std::shared_ptr<const std::string> data_;  // either the bytes...
  const std::unique_ptr<SnapshotSource> source_;   // ...or where to read them
  const uint32_t chunk_bytes_;
  std::string pending_;     // source: the piece read last
  size_t pending_pos_ = 0;  // Invariant: pending_pos_ <= pending_.size()
  bool source_done_ = false;
  uint64_t offset_ = 0;  // bytes already put into chunks
  uint64_t chunks_ = 0;  // chunks made; only the first is at offset 0
  bool done_ = false;
};

// A transfer being reassembled (SnapshotReassembler's state).
struct IncomingTransfer {
  uint64_t transfer_id = 0;
  wirepb::PeerMessage header;
  uint64_t next_offset = 0;  // where the next chunk must start
  std::string bytes;         // Invariant: bytes.size() <= the reassembler's max_snapshot_bytes
  bool refused = false;      // over the limit: bytes dropped, later chunks ignored
};

// Reassembles the snapshots arriving on one connection, one transfer at a
// time. Not thread-safe; one owner.
class SnapshotReassembler {
 public:
  explicit SnapshotReassembler(uint64_t max_snapshot_bytes)
      : max_snapshot_bytes_(max_snapshot_bytes) {}

  struct Outcome {
    // The last chunk arrived: the header message with the snapshot's bytes.
    std::optional<IncomingMessage> complete;
    // This chunk took its transfer over max_snapshot_bytes: the transfer is
    // dropped and its later chunks ignored (the connection can stay up).
    bool refused = false;
  };

  // Takes one chunk whose envelope has passed check_envelope(). An error
  // (kCorruption) is a chunk a correct sender never sends — it breaks
  // check_chunk() or does not continue the transfer under way — and the
  // connection should be closed.
  Result<Outcome> add(wirepb::PeerMessage m);

  // Drops an unfinished transfer (its connection broke).
  void abandon() { current_.reset(); }
  bool in_transfer() const { return current_.has_value(); }

 private:
  void start(wirepb::SnapshotChunk* c);

  const uint64_t max_snapshot_bytes_;
  std::optional<IncomingTransfer> current_;
};

}  // namespace chorus::net
