#include "net/transport/snapshot_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "base/assert.h"
#include "net/transport/envelope.h"

namespace chorus::net {
namespace {

Status bad(std::string what) {
  return Status::corruption("bad snapshot chunk: " + std::move(what));
}

Status check_header(const wirepb::PeerMessage& m, const wirepb::PeerMessage& header) {
  if (!is_engine_body(header.body_case())) {
    return bad(
        fmt::format("its header holds {}, not an engine message", body_name(header.body_case())));
  }
  if (header.group_id() != m.group_id() || header.from() != m.from() || header.to() != m.to()) {
    return bad(fmt::format("header of group {} {}->{} in a chunk of group {} {}->{}",
                           header.group_id(), header.from(), header.to(), m.group_id(), m.from(),
                           m.to()));
  }
  return Status::ok();
}

}  // namespace

Status check_chunk(const wirepb::PeerMessage& m) {
  CHORUS_ASSERT(m.has_snapshot_chunk());
  const wirepb::SnapshotChunk& c = m.snapshot_chunk();
  if (c.transfer_id() == 0) return bad("transfer id 0");
  const uint64_t size = c.data().size();
  if (c.offset() > std::numeric_limits<uint64_t>::max() - size) return bad("offset overflows");
  const uint64_t end = c.offset() + size;
  if (c.total_bytes() != 0 && end > c.total_bytes()) {
    return bad(fmt::format("it ends at {}, past the announced {} bytes", end, c.total_bytes()));
  }
  if (c.total_bytes() != 0 && c.last() && end != c.total_bytes()) {
    return bad(fmt::format("the last chunk ends at {}, announced {} bytes", end, c.total_bytes()));
  }
  if (c.has_header() != (c.offset() == 0)) {
    return bad(fmt::format("a chunk at offset {} {} a header", c.offset(),
                           c.has_header() ? "with" : "without"));
  }
  if (c.has_header()) return check_header(m, c.header());
  return Status::ok();
}

// ---- OutgoingTransfer ----------------------------------------------------------

OutgoingTransfer::OutgoingTransfer(uint64_t transfer_id, wirepb::PeerMessage header,
                                   const core::SnapshotRef& snapshot,
                                   std::unique_ptr<SnapshotSource> source, uint32_t chunk_bytes)
    : transfer_id_(transfer_id),
      group_id_(header.group_id()),
      from_(header.from()),
      to_(header.to()),
      header_(std::move(header)),
      header_bytes_(header_.SerializeAsString()),
      meta_(snapshot.meta),
      data_(snapshot.data),
      source_(std::move(source)),
      chunk_bytes_(chunk_bytes) {
  CHORUS_ASSERT(transfer_id_ != 0 && chunk_bytes_ > 0);
  CHORUS_ASSERT((data_ == nullptr) != (source_ == nullptr));
  CHORUS_ASSERT(is_engine_body(header_.body_case()));
  CHORUS_ASSERT(header_bytes_.size() <= kMaxSnapshotHeaderBytes);
}

bool OutgoingTransfer::sends(const wirepb::PeerMessage& header,
                             const core::SnapshotMeta& meta) const {
  return meta == meta_ && header.SerializeAsString() == header_bytes_;
}

std::optional<uint64_t> OutgoingTransfer::total_bytes() const {
  if (data_) return data_->size();
  return std::nullopt;
}

Result<wirepb::PeerMessage> OutgoingTransfer::next_chunk() {
  CHORUS_ASSERT(!done_);
  wirepb::PeerMessage m;
  m.set_group_id(group_id_);
  m.set_from(from_);
  m.set_to(to_);
  wirepb::SnapshotChunk* c = m.mutable_snapshot_chunk();
  c->set_transfer_id(transfer_id_);
  c->set_offset(offset_);
  // Only the first chunk is at offset 0: every chunk but the last is full.
  CHORUS_ASSERT((chunks_ == 0) == (offset_ == 0));
  if (chunks_ == 0) *c->mutable_header() = std::move(header_);
  if (data_) {
    c->set_total_bytes(data_->size());
    const size_t n = std::min<uint64_t>(chunk_bytes_, data_->size() - offset_);
    c->set_data(data_->data() + offset_, n);
    done_ = offset_ + n == data_->size();
  } else {
    CHORUS_RETURN_IF_ERROR(fill_from_source(c->mutable_data()));
    done_ = source_done_ && pending_pos_ == pending_.size();
  }
  CHORUS_ASSERT(done_ || c->data().size() == chunk_bytes_);
  if (done_) c->set_last(true);
  offset_ += c->data().size();
  ++chunks_;
  return m;
}

// Fills *out with up to chunk_bytes_ from the source. When the chunk is full
// it reads one piece ahead, so that a final chunk is known to be the last.
Status OutgoingTransfer::fill_from_source(std::string* out) {
  for (;;) {
    if (pending_pos_ == pending_.size() && !source_done_) {
      CHORUS_RETURN_IF_ERROR(read_piece());
      continue;
    }
    const size_t n = std::min<size_t>(chunk_bytes_ - out->size(), pending_.size() - pending_pos_);
    if (n == 0) return Status::ok();  // the chunk is full, or the source is exhausted
    out->append(pending_, pending_pos_, n);
    pending_pos_ += n;
  }
}

Status OutgoingTransfer::read_piece() {
  Result<bool> more = source_->next(&pending_);
  if (!more.is_ok()) return more.status();
  pending_pos_ = 0;
  if (!*more) {
    pending_.clear();
    source_done_ = true;
  } else if (pending_.empty()) {
    return Status::invalid_argument("snapshot source returned an empty piece");
  }
  return Status::ok();
}

// ---- SnapshotReassembler -------------------------------------------------------

Result<SnapshotReassembler::Outcome> SnapshotReassembler::add(wirepb::PeerMessage m) {
  CHORUS_RETURN_IF_ERROR(check_chunk(m));
  wirepb::SnapshotChunk* c = m.mutable_snapshot_chunk();
  if (c->offset() == 0) {
    start(c);
  } else if (!current_ || current_->transfer_id != c->transfer_id() ||
             current_->next_offset != c->offset()) {
    return bad(fmt::format("transfer {} at offset {} out of order", c->transfer_id(), c->offset()));
  }
  IncomingTransfer& t = *current_;
  t.next_offset += c->data().size();
  Outcome out;
  if (!t.refused &&
      (t.next_offset > max_snapshot_bytes_ || c->total_bytes() > max_snapshot_bytes_)) {
    t.refused = true;
    out.refused = true;
    std::string().swap(t.bytes);
  }
  if (!t.refused) t.bytes.append(c->data());
  if (!c->last()) return out;
  if (!t.refused) {
    out.complete = IncomingMessage{NodeId(m.from()), std::move(t.header),
                                   std::make_shared<const std::string>(std::move(t.bytes))};
  }
  current_.reset();
  return out;
}

// A chunk at offset 0 starts a new transfer; an unfinished one is abandoned
// (its sender gave up on it, or replaced it with a newer snapshot).
void SnapshotReassembler::start(wirepb::SnapshotChunk* c) {
  current_.emplace();
  current_->transfer_id = c->transfer_id();
  current_->header = std::move(*c->mutable_header());
  if (c->total_bytes() <= max_snapshot_bytes_) {
    current_->bytes.reserve(std::min<uint64_t>(c->total_bytes(), kMaxSnapshotReserveBytes));
  }
}

}  // namespace chorus::net
