// Snapshot chunking and reassembly (snapshot_stream.h), without sockets.
#include "net/transport/snapshot_stream.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace chorus::net {
namespace {

constexpr uint32_t kChunk = 1000;

// The message a snapshot belongs to: here a Raft InstallSnapshot of group 3
// from node 1 to node 2 (the transport does not care which engine).
wirepb::PeerMessage header_message(uint64_t index = 40) {
  wirepb::PeerMessage m;
  m.set_group_id(3);
  m.set_from(1);
  m.set_to(2);
  m.mutable_raft()->set_term(5);
  auto* meta = m.mutable_raft()->mutable_install_snapshot()->mutable_meta();
  meta->set_index(index);
  meta->set_term(4);
  return m;
}

std::shared_ptr<const std::string> bytes_of(size_t n) {
  auto s = std::make_shared<std::string>(n, '\0');
  for (size_t i = 0; i < n; ++i) (*s)[i] = static_cast<char>(i * 131 + 7);
  return s;
}

// Returns the snapshot in pieces of `piece` bytes (the last may be shorter).
class PiecesSource : public SnapshotSource {
 public:
  PiecesSource(std::shared_ptr<const std::string> data, size_t piece)
      : data_(std::move(data)), piece_(piece) {}
  Result<bool> next(std::string* out) override {
    if (fail_at_ && at_ >= *fail_at_) return Status::io_error("disk on fire");
    if (at_ == data_->size()) return false;
    const size_t n = std::min(piece_, data_->size() - at_);
    out->assign(*data_, at_, n);
    at_ += n;
    return true;
  }
  std::optional<size_t> fail_at_;

 private:
  std::shared_ptr<const std::string> data_;
  size_t piece_;
  size_t at_ = 0;
};

OutgoingTransfer from_memory(std::shared_ptr<const std::string> data, uint64_t id = 1) {
  return OutgoingTransfer(id, header_message(), core::SnapshotRef{{LogIndex(40), Term(4)}, data},
                          nullptr, kChunk);
}

OutgoingTransfer from_source(std::unique_ptr<SnapshotSource> source) {
  return OutgoingTransfer(1, header_message(), core::SnapshotRef{{LogIndex(40), Term(4)}, nullptr},
                          std::move(source), kChunk);
}

std::vector<wirepb::PeerMessage> all_chunks(OutgoingTransfer& t) {
  std::vector<wirepb::PeerMessage> out;
  while (!t.done()) {
    auto c = t.next_chunk();
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    if (!c.is_ok()) break;
    out.push_back(std::move(c).value());
  }
  return out;
}

// Feeds every chunk; expects the message to come out with the last one only.
IncomingMessage reassemble(const std::vector<wirepb::PeerMessage>& chunks) {
  SnapshotReassembler r(1u << 20);
  IncomingMessage got;
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto out = r.add(chunks[i]);
    EXPECT_TRUE(out.is_ok()) << out.status().to_string();
    if (!out.is_ok()) break;
    EXPECT_FALSE(out->refused);
    EXPECT_EQ(out->complete.has_value(), i + 1 == chunks.size()) << "chunk " << i;
    if (out->complete) got = std::move(*out->complete);
  }
  EXPECT_FALSE(r.in_transfer());
  return got;
}

TEST(SnapshotStreamTest, EveryChunkingReassemblesToTheSameBytesAndHeader) {
  for (size_t size : {0, 1, 999, 1000, 1001, 3005}) {
    for (size_t piece : {0, 1, 7, 1000, 3000}) {  // 0: bytes in memory
      SCOPED_TRACE(testing::Message() << "size " << size << " piece " << piece);
      const auto data = bytes_of(size);
      OutgoingTransfer t =
          piece == 0 ? from_memory(data) : from_source(std::make_unique<PiecesSource>(data, piece));
      const auto chunks = all_chunks(t);
      EXPECT_EQ(chunks.size(), std::max<size_t>(1, (size + kChunk - 1) / kChunk));
      const IncomingMessage got = reassemble(chunks);
      EXPECT_EQ(got.from, NodeId(1));
      EXPECT_EQ(got.message.SerializeAsString(), header_message().SerializeAsString());
      ASSERT_TRUE(got.snapshot_data);
      EXPECT_TRUE(*got.snapshot_data == *data);
    }
  }
}

TEST(SnapshotStreamTest, OnlyTheFirstChunkCarriesTheHeaderAndEveryChunkTheEnvelope) {
  OutgoingTransfer t = from_memory(bytes_of(2500), 9);
  EXPECT_EQ(t.total_bytes(), 2500u);
  const auto chunks = all_chunks(t);
  ASSERT_EQ(chunks.size(), 3u);
  uint64_t offset = 0;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const wirepb::PeerMessage& m = chunks[i];
    EXPECT_EQ(m.group_id(), 3u);
    EXPECT_EQ(m.from(), 1u);
    EXPECT_EQ(m.to(), 2u);
    EXPECT_TRUE(check_chunk(m).is_ok()) << check_chunk(m).to_string();
    const wirepb::SnapshotChunk& c = m.snapshot_chunk();
    EXPECT_EQ(c.transfer_id(), 9u);
    EXPECT_EQ(c.offset(), offset);
    EXPECT_EQ(c.total_bytes(), 2500u);
    EXPECT_EQ(c.has_header(), i == 0);
    EXPECT_EQ(c.last(), i == 2);
    offset += c.data().size();
  }
}

TEST(SnapshotStreamTest, SendsRecognisesTheSameSnapshotOnly) {
  OutgoingTransfer t = from_memory(bytes_of(10));
  const core::SnapshotMeta meta{LogIndex(40), Term(4)};
  EXPECT_TRUE(t.sends(header_message(), meta));
  EXPECT_FALSE(t.sends(header_message(41), meta));
  EXPECT_FALSE(t.sends(header_message(), core::SnapshotMeta{LogIndex(41), Term(4)}));
  auto other_term = header_message();
  other_term.mutable_raft()->set_term(6);
  EXPECT_FALSE(t.sends(other_term, meta));
}

TEST(SnapshotStreamTest, SourceErrorAndEmptyPieceStopTheTransfer) {
  auto failing = std::make_unique<PiecesSource>(bytes_of(5000), 700);
  failing->fail_at_ = 1400;
  OutgoingTransfer t = from_source(std::move(failing));
  EXPECT_TRUE(t.next_chunk().is_ok());                              // pieces 1 and 2
  EXPECT_EQ(t.next_chunk().status().code(), StatusCode::kIoError);  // piece 3

  class EmptyPiece : public SnapshotSource {
    Result<bool> next(std::string* out) override {
      out->clear();
      return true;
    }
  };
  OutgoingTransfer empty = from_source(std::make_unique<EmptyPiece>());
  EXPECT_EQ(empty.next_chunk().status().code(), StatusCode::kInvalidArgument);
}

// ---- Chunk rules ----------------------------------------------------------------

wirepb::PeerMessage chunk(uint64_t offset, std::string data, bool last, uint64_t total,
                          uint64_t transfer = 1) {
  wirepb::PeerMessage m;
  m.set_group_id(3);
  m.set_from(1);
  m.set_to(2);
  auto* c = m.mutable_snapshot_chunk();
  c->set_transfer_id(transfer);
  c->set_offset(offset);
  c->set_data(std::move(data));
  c->set_last(last);
  c->set_total_bytes(total);
  if (offset == 0) *c->mutable_header() = header_message();
  return m;
}

TEST(SnapshotStreamTest, ChunkRulesAreChecked) {
  EXPECT_TRUE(check_chunk(chunk(0, "abc", false, 6)).is_ok());
  EXPECT_TRUE(check_chunk(chunk(3, "abc", true, 6)).is_ok());
  EXPECT_TRUE(check_chunk(chunk(3, "abc", true, 0)).is_ok());  // size unknown
  EXPECT_TRUE(check_chunk(chunk(0, "", true, 0)).is_ok());     // an empty snapshot
  struct Case {
    const char* name;
    wirepb::PeerMessage m;
    const char* reason;
  };
  std::vector<Case> cases = {
      {"past total", chunk(4, "abc", false, 6), "past the announced 6 bytes"},
      {"last ends short", chunk(0, "abc", true, 6), "the last chunk ends at 3"},
      {"offset overflows", chunk(UINT64_MAX - 1, "abc", false, 0), "offset overflows"},
      {"transfer 0", chunk(0, "", false, 0, 0), "transfer id 0"},
      {"first without header", chunk(0, "a", false, 0), "at offset 0 without a header"},
      {"later with header", chunk(5, "a", false, 0), "at offset 5 with a header"},
      {"header without engine body", chunk(0, "a", false, 0), "its header holds no body"},
      {"header of another group", chunk(0, "a", false, 0), "header of group 4 1->2"},
      {"header to another node", chunk(0, "a", false, 0), "header of group 3 1->9"},
  };
  cases[4].m.mutable_snapshot_chunk()->clear_header();
  *cases[5].m.mutable_snapshot_chunk()->mutable_header() = header_message();
  cases[6].m.mutable_snapshot_chunk()->mutable_header()->clear_raft();
  cases[7].m.mutable_snapshot_chunk()->mutable_header()->set_group_id(4);
  cases[8].m.mutable_snapshot_chunk()->mutable_header()->set_to(9);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const Status st = check_chunk(c.m);
    EXPECT_EQ(st.code(), StatusCode::kCorruption);
    EXPECT_NE(st.message().find(c.reason), std::string::npos) << st.message();
    // The reassembler refuses it too.
    SnapshotReassembler r(1u << 20);
    EXPECT_FALSE(r.add(c.m).is_ok());
  }
}

// ---- Reassembly -----------------------------------------------------------------

TEST(SnapshotStreamTest, ChunkThatDoesNotContinueTheTransferIsRefused) {
  SnapshotReassembler r(1u << 20);
  EXPECT_FALSE(r.add(chunk(3, "abc", false, 0)).is_ok()) << "no transfer under way";
  ASSERT_TRUE(r.add(chunk(0, "abc", false, 0)).is_ok());
  const Status gap = r.add(chunk(4, "abc", false, 0)).status();
  EXPECT_NE(gap.message().find("transfer 1 at offset 4 out of order"), std::string::npos)
      << gap.to_string();
  EXPECT_FALSE(r.add(chunk(3, "abc", false, 0, 2)).is_ok()) << "another transfer";
}

TEST(SnapshotStreamTest, ChunkAtOffsetZeroAbandonsAnUnfinishedTransfer) {
  SnapshotReassembler r(1u << 20);
  ASSERT_TRUE(r.add(chunk(0, "old", false, 0, 1)).is_ok());
  ASSERT_TRUE(r.add(chunk(0, "new", false, 0, 2)).is_ok());
  auto out = r.add(chunk(3, "er", true, 0, 2));
  ASSERT_TRUE(out.is_ok());
  ASSERT_TRUE(out->complete);
  EXPECT_EQ(*out->complete->snapshot_data, "newer");
  EXPECT_FALSE(r.add(chunk(3, "!", true, 0, 1)).is_ok()) << "the abandoned one cannot continue";
}

TEST(SnapshotStreamTest, OversizeTransferIsRefusedOnceAndTheRestIgnored) {
  SnapshotReassembler r(5);
  // Announced too large: refused at the first chunk.
  auto first = r.add(chunk(0, "ab", false, 6, 1));
  ASSERT_TRUE(first.is_ok());
  EXPECT_TRUE(first->refused);
  auto rest = r.add(chunk(2, "cdef", true, 6, 1));
  ASSERT_TRUE(rest.is_ok());
  EXPECT_FALSE(rest->refused);
  EXPECT_FALSE(rest->complete);
  EXPECT_FALSE(r.in_transfer());
  // Size unknown: refused when a chunk crosses the limit.
  ASSERT_FALSE(r.add(chunk(0, "abc", false, 0, 2))->refused);
  EXPECT_TRUE(r.add(chunk(3, "def", false, 0, 2))->refused);
  auto last = r.add(chunk(6, "g", true, 0, 2));
  ASSERT_TRUE(last.is_ok());
  EXPECT_FALSE(last->complete);
  // The next transfer that fits arrives.
  auto fits = r.add(chunk(0, "12345", true, 5, 3));
  ASSERT_TRUE(fits.is_ok() && fits->complete);
  EXPECT_EQ(*fits->complete->snapshot_data, "12345");
}

}  // namespace
}  // namespace chorus::net
