// libFuzzer target for the peer frame decoder and everything behind it on the
// receive path: FrameDecoder (src/net/transport/frame.h), the protobuf parse
// of each payload, the transport's envelope checks (envelope.h), snapshot
// reassembly (snapshot_stream.h) and the Raft and Paxos codecs' validation
// (src/net/codec/raft_codec.h, paxos_codec.h). Whatever the bytes and however they are split
// across reads, nothing may crash, hang, allocate beyond the frame and
// snapshot limits, or break the decoder's promises.
//
// Input layout (so seeds can be written by hand and mutations stay meaningful):
//
//   input   = mode max_frame split_seed body      (shorter inputs: all body, mode 0)
//   mode    = u8   bit 0: body is a list of payloads that the harness frames
//                         itself with correct checksums (reaches the proto
//                         parser and the codec far more often than random
//                         bytes, whose checksums never match);
//                  bit 1: also flip one byte of the framed stream
//   max_frame  = u32 little-endian, clipped to [0, 4 MiB]: the decoder's limit
//   split_seed = u64 little-endian: seeds the sizes of the pieces the stream
//                is fed in (1 byte up to 64 KiB, like short TCP reads)
//   body    = raw stream bytes (mode bit 0 clear), or
//             { u16 little-endian length, that many payload bytes }* (bit 0 set)
//
// Checked: a decoded payload never exceeds the limit; an error is final; in
// framed mode without a flipped byte, the payloads come out exactly as put in;
// a reassembled snapshot stays within its limit; a Raft or Paxos message that decodes
// (with its snapshot, if any) re-encodes, decodes again and re-encodes to the
// same bytes.
//
// Seeds: fuzz/seeds/frame_fuzz/. Built with -DCHORUS_FRAME_FUZZ_SEEDS_MAIN,
// this file is instead a program that writes them: `frame_fuzz_seeds DIR`.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/prng.h"
#include "chorus/wire.pb.h"
#include "net/codec/paxos_codec.h"
#include "net/codec/raft_codec.h"
#include "net/transport/envelope.h"
#include "net/transport/frame.h"
#include "net/transport/snapshot_stream.h"

namespace {

using chorus::net::FrameDecoder;
using chorus::net::IncomingMessage;
using chorus::net::SnapshotReassembler;

constexpr size_t kPrefixBytes = 13;
constexpr uint32_t kMaxFrameCap = 4u << 20;
// The reassembly limit of the harness: small, so the malloc limit catches
// a buffer sized by an unchecked announced total.
constexpr uint64_t kMaxSnapshotBytes = 1u << 20;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "frame_fuzz: %s\n", what);
  std::abort();
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// What was accepted must survive a round trip unchanged.
template <class Decode, class Encode>
void check_round_trip(const IncomingMessage& in, Decode decode, Encode encode) {
  auto m = decode(in);
  if (!m.is_ok()) return;
  const chorus::GroupId group(in.message.group_id());
  const chorus::net::OutgoingMessage again = encode(*m, group);
  const IncomingMessage again_in{in.from, again.message,
                                 again.snapshot ? again.snapshot->data : nullptr};
  auto back = decode(again_in);
  if (!back.is_ok()) fail("a decoded message does not decode after re-encoding");
  const chorus::net::OutgoingMessage third = encode(*back, group);
  if (again.message.SerializeAsString() != third.message.SerializeAsString()) {
    fail("round trip changed it");
  }
}

// Every engine codec the harness covers, each refusing the others' bodies.
void check_engines(const IncomingMessage& in) {
  check_round_trip(in, chorus::net::decode_raft_message, chorus::net::encode_raft_message);
  check_round_trip(in, chorus::net::decode_paxos_message, chorus::net::encode_paxos_message);
}

// The receive path after the frame layer, as the transport runs it on the
// connection from the message's sender to its receiver.
void check_payload(std::string_view payload, SnapshotReassembler* snapshots) {
  chorus::wirepb::Handshake hs;
  (void)hs.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
  chorus::wirepb::HandshakeReply reply;
  (void)reply.ParseFromArray(payload.data(), static_cast<int>(payload.size()));
  chorus::wirepb::PeerMessage pm;
  if (!pm.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) return;
  const chorus::NodeId from(pm.from());
  if (!chorus::net::check_envelope(pm, from, chorus::NodeId(pm.to())).is_ok()) return;
  if (!pm.has_snapshot_chunk()) {
    check_engines(IncomingMessage{from, std::move(pm), nullptr});
    return;
  }
  auto out = snapshots->add(std::move(pm));
  if (!out.is_ok()) {
    snapshots->abandon();  // the transport closes the connection
    return;
  }
  if (!out->complete) return;
  if (out->complete->snapshot_data->size() > kMaxSnapshotBytes) fail("snapshot over its limit");
  if (!chorus::net::is_engine_body(out->complete->message.body_case())) fail("bad header");
  check_engines(*out->complete);
}

// Feeds `stream` in pseudo-random pieces; returns the payloads decoded.
std::vector<std::string> feed_in_pieces(std::string_view stream, uint32_t max_frame,
                                        uint64_t split_seed, bool* failed) {
  FrameDecoder d(max_frame);
  SnapshotReassembler snapshots(kMaxSnapshotBytes);
  chorus::Prng rng(split_seed);
  std::vector<std::string> out;
  *failed = false;
  size_t at = 0;
  while (at < stream.size()) {
    // Mostly short reads, sometimes large ones.
    const uint64_t max_piece = rng.chance(0.2) ? 65536 : 64;
    const size_t n = std::min<size_t>(rng.uniform(1, max_piece), stream.size() - at);
    if (rng.chance(0.5)) {
      d.feed(stream.substr(at, n));
    } else {
      std::span<char> room = d.prepare(n);
      std::memcpy(room.data(), stream.data() + at, n);
      d.commit(n);
    }
    at += n;
    for (;;) {
      auto r = d.next();
      if (!r.is_ok()) {
        *failed = true;
        if (d.next().is_ok()) fail("decoder recovered from an error");
        if (!d.failed()) fail("failed() is false after an error");
        return out;
      }
      if (!r->has_value()) break;
      if ((*r)->size() > max_frame) fail("payload larger than the limit");
      check_payload(**r, &snapshots);
      out.emplace_back(**r);
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint8_t mode = 0;
  uint32_t max_frame = chorus::net::kHandshakeMaxFrameBytes;
  uint64_t split_seed = 1;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  if (size >= kPrefixBytes) {
    mode = data[0];
    max_frame = std::min(load_u32(data + 1), kMaxFrameCap);
    split_seed = load_u64(data + 5);
    body.remove_prefix(kPrefixBytes);
  }
  if ((mode & 1) == 0) {
    bool failed;
    feed_in_pieces(body, max_frame, split_seed, &failed);
    return 0;
  }
  // Framed mode: build correct frames around the listed payloads.
  std::vector<std::string> payloads;
  std::string stream;
  while (body.size() >= 2) {
    uint16_t length;
    std::memcpy(&length, body.data(), sizeof length);
    const size_t n = std::min<size_t>(length, body.size() - 2);
    payloads.emplace_back(body.substr(2, n));
    chorus::net::append_frame(payloads.back(), &stream);
    body.remove_prefix(2 + n);
  }
  const bool flip = (mode & 2) != 0 && !stream.empty();
  if (flip) stream[split_seed % stream.size()] ^= static_cast<char>(1u << (split_seed >> 61));
  bool failed;
  const std::vector<std::string> got = feed_in_pieces(stream, max_frame, split_seed, &failed);
  if (!flip) {
    bool all_fit = true;
    for (const auto& p : payloads) all_fit = all_fit && p.size() <= max_frame;
    if (all_fit && (failed || got != payloads)) fail("valid frames did not decode as written");
  }
  return 0;
}

#ifdef CHORUS_FRAME_FUZZ_SEEDS_MAIN
// Writes the seed corpus: one file per Raft message kind and per handshake
// message in framed mode, the same as ready-made frames in raw mode, and a
// few hostile streams.
#include <fstream>

namespace {

std::string prefix(uint8_t mode, uint32_t max_frame, uint64_t split_seed) {
  std::string p(kPrefixBytes, '\0');
  p[0] = static_cast<char>(mode);
  std::memcpy(p.data() + 1, &max_frame, 4);
  std::memcpy(p.data() + 5, &split_seed, 8);
  return p;
}

std::string listed(const std::vector<std::string>& payloads) {
  std::string out;
  for (const auto& p : payloads) {
    const uint16_t n = static_cast<uint16_t>(p.size());
    out.append(reinterpret_cast<const char*>(&n), 2);
    out += p;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> payloads() {
  using namespace chorus;
  const char* const names[] = {
      "PreVote",          "RequestVoteResponse", "AppendEntries",   "AppendEntriesResponse",
      "Heartbeat",        "HeartbeatResponse",   "InstallSnapshot", "ForwardProposals",
      "ReadIndexRequest", "ReadIndexResponse"};
  const NodeId a(1), b(2);
  const Term t(3);
  auto snap = std::make_shared<const std::string>("snapshot");
  std::vector<raft::Message> msgs = {
      {a, b, t, raft::RequestVote{LogIndex(5), Term(2), true}},
      {b, a, t, raft::RequestVoteResponse{true, false}},
      {a, b, t,
       raft::AppendEntries{LogIndex(4),
                           Term(2),
                           {core::Entry{Term(3), LogIndex(5), core::EntryType::kNoop, ""},
                            core::Entry{Term(3), LogIndex(6), core::EntryType::kNormal, "set x 1"}},
                           LogIndex(4)}},
      {b, a, t, raft::AppendEntriesResponse{false, {}, LogIndex(4), Term(1), LogIndex(2)}},
      {a, b, t, raft::Heartbeat{LogIndex(6), 9}},
      {b, a, t, raft::HeartbeatResponse{9}},
      {a, b, t, raft::InstallSnapshot{core::SnapshotRef{{LogIndex(6), Term(3)}, snap}}},
      {b, a, t, raft::ForwardProposals{{"p1", "p2"}}},
      {b, a, t, raft::ReadIndexRequest{77}},
      {a, b, t, raft::ReadIndexResponse{77, LogIndex(6)}},
  };
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < msgs.size(); ++i) {
    net::OutgoingMessage m = net::encode_raft_message(msgs[i], GroupId(0));
    if (!m.snapshot) {
      out.emplace_back(names[i], m.message.SerializeAsString());
      continue;
    }
    // A snapshot travels as chunks: three of 3 bytes for the 8-byte snapshot.
    net::OutgoingTransfer t(1, std::move(m.message), *m.snapshot, nullptr, 3);
    for (int k = 0; !t.done(); ++k) {
      out.emplace_back(std::string(names[i]) + "-chunk" + std::to_string(k),
                       t.next_chunk().value().SerializeAsString());
    }
  }
  wirepb::Handshake hs;
  hs.set_magic(0x57524843);
  hs.set_protocol_version(2);
  hs.set_min_protocol_version(2);
  hs.set_cluster_id("chorus-local");
  hs.set_node_id(1);
  hs.set_peer_node_id(2);
  hs.set_listen_address("127.0.0.11:7101");
  out.emplace_back("Handshake", hs.SerializeAsString());
  wirepb::HandshakeReply reply;
  reply.set_accepted(false);
  reply.set_reason("cluster id 'x' is not ours ('chorus-local')");
  out.emplace_back("HandshakeReply", reply.SerializeAsString());
  return out;
}

void write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<std::string> all;
  std::string all_frames;
  for (const auto& [name, payload] : payloads()) {
    write(dir, "framed-" + name, prefix(1, 1u << 20, 7) + listed({payload}));
    std::string frame;
    chorus::net::append_frame(payload, &frame);
    write(dir, "raw-" + name, prefix(0, 1u << 20, 11) + frame);
    all.push_back(payload);
    all_frames += frame;
  }
  write(dir, "framed-all", prefix(1, 1u << 20, 3) + listed(all));
  write(dir, "framed-all-flipped", prefix(3, 1u << 20, 0x4000000000000123ull) + listed(all));
  write(dir, "raw-all", prefix(0, 1u << 20, 5) + all_frames);
  std::string oversize(chorus::net::kFrameHeaderBytes, '\xff');
  write(dir, "raw-oversize-length", prefix(0, 65536, 1) + oversize);
  std::string bad_sum;
  chorus::net::append_frame("payload", &bad_sum);
  bad_sum[6] ^= 1;
  write(dir, "raw-checksum-mismatch", prefix(0, 65536, 1) + bad_sum);
  return 0;
}
#endif  // CHORUS_FRAME_FUZZ_SEEDS_MAIN
