#include "net/transport/frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/prng.h"

namespace chorus::net {
namespace {

// Feeds `bytes` in pieces chosen by `split` and collects every payload.
std::vector<std::string> decode_all(FrameDecoder& d, std::string_view bytes,
                                    const std::vector<size_t>& pieces, Status* error) {
  std::vector<std::string> out;
  size_t at = 0;
  size_t i = 0;
  while (at < bytes.size()) {
    const size_t n = std::min(pieces[i++ % pieces.size()], bytes.size() - at);
    d.feed(bytes.substr(at, n));
    at += n;
    for (;;) {
      auto r = d.next();
      if (!r.is_ok()) {
        *error = r.status();
        return out;
      }
      if (!r->has_value()) break;
      out.emplace_back(**r);
    }
  }
  return out;
}

TEST(FrameTest, ByteLayoutMatchesTheFormatDocument) {
  // docs/formats/wire.md, "Worked example": the frame of the payload "hello".
  std::string frame;
  append_frame("hello", &frame);
  ASSERT_EQ(frame.size(), kFrameHeaderBytes + 5);
  uint32_t length;
  uint64_t checksum;
  std::memcpy(&length, frame.data(), 4);
  std::memcpy(&checksum, frame.data() + 4, 8);
  EXPECT_EQ(length, 5u);
  EXPECT_EQ(checksum, 0x9555e8555c62dcfdull);  // XXH3-64("hello")
  EXPECT_EQ(frame.substr(0, 4), std::string("\x05\x00\x00\x00", 4));
  EXPECT_EQ(frame.substr(4, 8), std::string("\xfd\xdc\x62\x5c\x55\xe8\x55\x95", 8));
  EXPECT_EQ(frame.substr(12), "hello");
}

TEST(FrameTest, ManyFramesInOneFeed) {
  std::string stream;
  std::vector<std::string> payloads = {"", "a", std::string(1000, 'x'), "last"};
  for (const auto& p : payloads) append_frame(p, &stream);
  FrameDecoder d;
  Status err;
  EXPECT_EQ(decode_all(d, stream, {stream.size()}, &err), payloads);
  EXPECT_TRUE(err.is_ok());
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

TEST(FrameTest, ByteAtATimeFeeding) {
  std::string stream;
  std::vector<std::string> payloads;
  for (int i = 0; i < 50; ++i) {
    payloads.push_back(std::string(static_cast<size_t>(i * 7), static_cast<char>('a' + i % 26)));
    append_frame(payloads.back(), &stream);
  }
  FrameDecoder d;
  Status err;
  EXPECT_EQ(decode_all(d, stream, {1}, &err), payloads);
  EXPECT_TRUE(err.is_ok());
}

TEST(FrameTest, RandomSplitsYieldTheSamePayloads) {
  Prng rng(7);
  std::string stream;
  std::vector<std::string> payloads;
  for (int i = 0; i < 200; ++i) {
    std::string p(rng.uniform(0, 3000), '\0');
    for (char& c : p) c = static_cast<char>(rng.uniform(0, 255));
    payloads.push_back(p);
    append_frame(p, &stream);
  }
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<size_t> pieces;
    for (int i = 0; i < 64; ++i) pieces.push_back(rng.uniform(1, 5000));
    FrameDecoder d;
    Status err;
    EXPECT_EQ(decode_all(d, stream, pieces, &err), payloads) << "trial " << trial;
    EXPECT_TRUE(err.is_ok());
  }
}

TEST(FrameTest, PayloadViewsStayValidUntilTheNextFeed) {
  std::string stream;
  append_frame("first", &stream);
  append_frame("second", &stream);
  FrameDecoder d;
  d.feed(stream);
  auto a = d.next();
  auto b = d.next();
  ASSERT_TRUE(a.is_ok() && a->has_value() && b.is_ok() && b->has_value());
  EXPECT_EQ(**a, "first");
  EXPECT_EQ(**b, "second");
}

TEST(FrameTest, PrepareCommitReadsInPlace) {
  std::string stream;
  append_frame("zero-copy", &stream);
  FrameDecoder d;
  std::span<char> room = d.prepare(4096);
  ASSERT_GE(room.size(), stream.size());
  std::memcpy(room.data(), stream.data(), stream.size());
  d.commit(stream.size());
  auto r = d.next();
  ASSERT_TRUE(r.is_ok() && r->has_value());
  EXPECT_EQ(**r, "zero-copy");
}

TEST(FrameTest, NeedMoreUntilTheWholeFrameIsIn) {
  std::string stream;
  append_frame("abcdef", &stream);
  FrameDecoder d;
  d.feed(std::string_view(stream).substr(0, stream.size() - 1));
  auto r = d.next();
  ASSERT_TRUE(r.is_ok());
  EXPECT_FALSE(r->has_value());
  d.feed(std::string_view(stream).substr(stream.size() - 1));
  r = d.next();
  ASSERT_TRUE(r.is_ok() && r->has_value());
  EXPECT_EQ(**r, "abcdef");
}

TEST(FrameTest, OversizeLengthIsRefusedFromTheHeaderAlone) {
  // Only the 12 header bytes: the decoder must refuse before any payload arrives.
  std::string header(kFrameHeaderBytes, '\0');
  const uint32_t length = 0xffffffffu;
  std::memcpy(header.data(), &length, 4);
  FrameDecoder d(1024);
  d.feed(header);
  auto r = d.next();
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("exceeds"), std::string::npos);
  EXPECT_TRUE(d.failed());
  EXPECT_LE(d.buffered_bytes(), kFrameHeaderBytes);
}

TEST(FrameTest, LimitIsInclusive) {
  std::string stream;
  append_frame(std::string(100, 'q'), &stream);
  FrameDecoder ok(100);
  ok.feed(stream);
  EXPECT_TRUE(ok.next().is_ok());
  FrameDecoder too_small(99);
  too_small.feed(stream);
  EXPECT_FALSE(too_small.next().is_ok());
}

TEST(FrameTest, ChecksumMismatchIsRefused) {
  std::string stream;
  append_frame("payload", &stream);
  stream.back() ^= 0x01;
  FrameDecoder d;
  d.feed(stream);
  auto r = d.next();
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("checksum"), std::string::npos);
}

TEST(FrameTest, ErrorsAreFinal) {
  std::string bad;
  append_frame("payload", &bad);
  bad[5] ^= 0x40;  // the checksum
  std::string good;
  append_frame("good", &good);
  FrameDecoder d;
  d.feed(bad);
  EXPECT_FALSE(d.next().is_ok());
  d.feed(good);
  EXPECT_FALSE(d.next().is_ok());
}

TEST(FrameTest, LoweredLimitAppliesToLaterFrames) {
  std::string stream;
  append_frame(std::string(10, 'a'), &stream);
  append_frame(std::string(500, 'b'), &stream);
  FrameDecoder d(1000);
  d.feed(stream);
  auto r = d.next();
  ASSERT_TRUE(r.is_ok() && r->has_value());
  d.set_max_frame_bytes(100);
  EXPECT_FALSE(d.next().is_ok());
}

TEST(FrameTest, LargeFramesByteAtATimeStayLinear) {
  // 4 MiB fed one byte at a time: quadratic buffering would take minutes.
  std::string payload(4u << 20, 'z');
  std::string stream;
  append_frame(payload, &stream);
  append_frame("tail", &stream);
  FrameDecoder d;
  size_t frames = 0;
  for (char c : stream) {
    d.feed(std::string_view(&c, 1));
    for (;;) {
      auto r = d.next();
      ASSERT_TRUE(r.is_ok());
      if (!r->has_value()) break;
      ++frames;
    }
  }
  EXPECT_EQ(frames, 2u);
  EXPECT_EQ(d.buffered_bytes(), 0u);
}

}  // namespace
}  // namespace chorus::net
