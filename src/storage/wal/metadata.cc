#include "storage/wal/metadata.h"

#include <algorithm>

#include "chorus/storage.pb.h"
#include "storage/env/coding.h"

namespace chorus::storage {
namespace {

// Slot layout (docs/formats/metadata.md):
//   0  magic    "CHORUSMD"
//   8  checksum XXH3-64 of bytes [16, 24 + length)
//   16 length   u32, payload bytes
//   20 version  u32, kSlotVersion
//   24 payload  storagepb.HardStateRecord, then zeros to the end of the slot
constexpr std::string_view kMagic = "CHORUSMD";
constexpr size_t kChecksumAt = 8;
constexpr size_t kLengthAt = 16;
constexpr size_t kVersionAt = 20;
constexpr size_t kPayloadAt = 24;
// Version 2 holds the engine's bytes (engine_state); version 1 held Raft's
// term, vote and commit in fields 2-4 and is still read. Writing 2 makes a
// binary from before refuse the file ("unknown version") instead of reading
// term 0 and no vote — and voting twice in a term.
constexpr uint32_t kSlotVersion = 2;
constexpr uint32_t kOldestSlotVersion = 1;
constexpr uint64_t kMaxPayloadBytes = kMetadataSlotBytes - kPayloadAt;

std::string encode_payload(uint64_t sequence, std::string_view state) {
  storagepb::HardStateRecord rec;
  rec.set_sequence(sequence);
  rec.set_engine_state(std::string(state));
  return rec.SerializeAsString();
}

std::string encode_slot(std::string_view payload) {
  CHORUS_ASSERT(payload.size() <= kMaxPayloadBytes);
  std::string slot(kMagic);
  put_u64(&slot, 0);  // checksum, filled below
  put_u32(&slot, static_cast<uint32_t>(payload.size()));
  put_u32(&slot, kSlotVersion);
  slot += payload;
  store_u64(slot.data() + kChecksumAt, checksum64(std::string_view(slot).substr(
                                           kLengthAt, kPayloadAt - kLengthAt + payload.size())));
  slot.resize(kMetadataSlotBytes, '\0');
  return slot;
}

struct Copy {
  bool valid = false;
  bool unused = false;  // missing or all zeros: never written, not damage
  std::string problem;
  uint64_t sequence = 0;
  std::string state;
};

Copy decode_slot(std::string_view file, size_t slot) {
  Copy c;
  const uint64_t begin = slot * kMetadataSlotBytes;
  std::string_view s = begin < file.size() ? file.substr(begin, kMetadataSlotBytes) : "";
  if (std::all_of(s.begin(), s.end(), [](char ch) { return ch == 0; })) {
    c.unused = true;
    c.problem = "never written";
    return c;
  }
  auto bad = [&](std::string why) {
    c.problem = std::move(why);
    return c;
  };
  if (s.size() < kPayloadAt) return bad("copy cut short");
  if (s.substr(0, kMagic.size()) != kMagic) return bad("bad magic");
  const uint32_t length = get_u32(s.data() + kLengthAt);
  if (length > kMaxPayloadBytes || kPayloadAt + length > s.size()) return bad("bad length");
  if (checksum64(s.substr(kLengthAt, kPayloadAt - kLengthAt + length)) !=
      get_u64(s.data() + kChecksumAt)) {
    return bad("checksum mismatch");
  }
  const uint32_t version = get_u32(s.data() + kVersionAt);
  if (version < kOldestSlotVersion || version > kSlotVersion) return bad("unknown version");
  storagepb::HardStateRecord rec;
  if (!rec.ParseFromArray(s.data() + kPayloadAt, static_cast<int>(length))) {
    return bad("undecodable record");
  }
  if (rec.sequence() % 2 != slot) return bad("sequence in the wrong copy");
  c.valid = true;
  c.sequence = rec.sequence();
  if (rec.has_engine_state()) {
    c.state = rec.engine_state();
  } else {
    // A version-1 record: its fields 2-4 are the engine's (Raft's) bytes.
    rec.clear_sequence();
    c.state = rec.SerializeAsString();
  }
  return c;
}

std::string describe(const std::string& path, size_t slot, const Copy& c) {
  return path + " copy " + std::to_string(slot) + " at offset " +
         std::to_string(slot * kMetadataSlotBytes) + ": " + c.problem;
}

}  // namespace

Result<std::unique_ptr<MetadataFile>> MetadataFile::open(Env* env, std::string path) {
  std::unique_ptr<MetadataFile> m(new MetadataFile(env, std::move(path)));
  CHORUS_RETURN_IF_ERROR(m->load());
  return m;
}

Status MetadataFile::load() {
  auto bytes = env_->read_file(path_, kMetadataFileBytes);
  if (!bytes.is_ok() && bytes.status().code() == StatusCode::kNotFound) {
    is_new_ = true;
    return Status::ok();
  }
  if (!bytes.is_ok()) return bytes.status();
  const Copy copies[2] = {decode_slot(*bytes, 0), decode_slot(*bytes, 1)};
  if (!copies[0].valid && !copies[1].valid) {
    return Status::corruption("metadata " + path_ + ": both copies invalid (" +
                              describe(path_, 0, copies[0]) + "; " + describe(path_, 1, copies[1]) +
                              ")");
  }
  const size_t win =
      !copies[1].valid || (copies[0].valid && copies[0].sequence > copies[1].sequence) ? 0 : 1;
  const Copy& loser = copies[1 - win];
  if (!loser.valid && !loser.unused) damaged_copy_ = describe(path_, 1 - win, loser);
  state_ = copies[win].state;
  sequence_ = copies[win].sequence;
  CHORUS_ASSIGN_OR_RETURN(file_, env_->open_writable(path_, OpenMode::kAppend));
  // The copy we read may have been written by a process that died before its
  // fdatasync; make it durable before anyone acts on it.
  return file_->sync();
}

Status MetadataFile::fail(Status cause) {
  if (failure_.is_ok()) failure_ = cause;
  return Status::fail_stopped("metadata " + path_ +
                              " refuses writes after an earlier failure: " + failure_.to_string());
}

Status MetadataFile::save(std::string_view state) {
  if (!healthy()) return fail(failure_);
  const uint64_t seq = sequence_ + 1;
  const std::string payload = encode_payload(seq, state);
  if (payload.size() > kMaxPayloadBytes) {
    // Refused before anything is written: the file keeps its state.
    return Status::invalid_argument("metadata " + path_ + ": engine state of " +
                                    std::to_string(state.size()) + " bytes does not fit in a " +
                                    std::to_string(kMetadataSlotBytes) + "-byte copy");
  }
  const std::string slot = encode_slot(payload);
  const uint64_t offset = (seq % 2) * kMetadataSlotBytes;
  if (!file_) {
    // First save: create the whole file atomically so that an existing file
    // always has a valid copy.
    std::string whole(kMetadataFileBytes, '\0');
    std::copy(slot.begin(), slot.end(), whole.begin() + static_cast<ptrdiff_t>(offset));
    Status s = write_file_atomically(env_, path_, whole);
    if (!s.is_ok()) return fail(s);
    auto file = env_->open_writable(path_, OpenMode::kAppend);
    if (!file.is_ok()) return fail(file.status());
    file_ = std::move(file).value();
  } else {
    Status s = file_->write_at(offset, slot);
    if (s.is_ok()) s = file_->sync();
    if (!s.is_ok()) return fail(s);
  }
  state_ = std::string(state);
  sequence_ = seq;
  return Status::ok();
}

}  // namespace chorus::storage
