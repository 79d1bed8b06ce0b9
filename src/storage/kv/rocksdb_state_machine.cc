#include "storage/kv/rocksdb_state_machine.h"

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_batch.h>

#include <algorithm>

#include "base/assert.h"
#include "storage/kv/snapshot_stream.h"

namespace chorus::kv {
namespace {

// ---- Layout (docs/formats/kv-command.md, "RocksDB layout") ------------------
//
// default column family:  "current" -> RocksCurrent
// g<N> column family:     'k' user-key                 -> fixed64le expire_at_ms | value
//                         'x' be64(expire ^ 2^63) user-key -> ""   (expiry index)
//                         's' be64(client_id)           -> Session
//                         'm'                           -> RocksMeta
constexpr char kCurrentKey[] = "current";
constexpr uint32_t kRocksFormatVersion = 1;
constexpr char kDataPrefix = 'k';
constexpr char kExpiryPrefix = 'x';
constexpr char kSessionPrefix = 's';
constexpr std::string_view kMetaKey = "m";

void put_be64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t get_be64(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
  return v;
}

std::string data_key(std::string_view key) {
  std::string k;
  k.reserve(1 + key.size());
  k.push_back(kDataPrefix);
  k.append(key);
  return k;
}

// Flipping the sign bit makes big-endian order equal to int64 order.
std::string expiry_key(int64_t expire_at_ms, std::string_view key) {
  std::string k;
  k.reserve(9 + key.size());
  k.push_back(kExpiryPrefix);
  put_be64(&k, static_cast<uint64_t>(expire_at_ms) ^ (uint64_t{1} << 63));
  k.append(key);
  return k;
}

int64_t expiry_of(std::string_view expiry_key) {
  return static_cast<int64_t>(get_be64(expiry_key.substr(1)) ^ (uint64_t{1} << 63));
}

std::string session_key(uint64_t client_id) {
  std::string k(1, kSessionPrefix);
  put_be64(&k, client_id);
  return k;
}

std::string encode_value(const StoredValue& v) {
  std::string out(8, '\0');
  const auto e = static_cast<uint64_t>(v.expire_at_ms);
  for (size_t i = 0; i < 8; ++i) out[i] = static_cast<char>(e >> (8 * i));
  out.append(v.data);
  return out;
}

int64_t decode_expire(std::string_view rec) {
  uint64_t e = 0;
  for (size_t i = 0; i < 8; ++i)
    e |= static_cast<uint64_t>(static_cast<unsigned char>(rec[i])) << (8 * i);
  return static_cast<int64_t>(e);
}

Result<StoredValue> decode_value(std::string_view rec) {
  if (rec.size() < 8) return Status::corruption("rocksdb state machine: value record too short");
  return StoredValue{std::string(rec.substr(8)), decode_expire(rec)};
}

std::string_view view(const rocksdb::Slice& s) {
  return {s.data(), s.size()};
}

Status from_rocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::ok();
  std::string msg = "rocksdb " + std::string(what) + ": " + s.ToString();
  if (s.IsCorruption()) return Status::corruption(std::move(msg));
  if (s.IsNotFound()) return Status::not_found(std::move(msg));
  if (s.IsInvalidArgument()) return Status::invalid_argument(std::move(msg));
  return Status::io_error(std::move(msg));
}

bool parse_generation(const std::string& name, uint64_t* gen) {
  if (name.size() < 2 || name[0] != 'g') return false;
  uint64_t v = 0;
  for (size_t i = 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *gen = v;
  return true;
}

std::string generation_name(uint64_t gen) {
  return "g" + std::to_string(gen);
}

std::string meta_bytes(LogIndex applied, int64_t now_ms, uint64_t stored_keys) {
  kvpb::RocksMeta m;
  m.set_applied_index(applied.value());
  m.set_now_ms(now_ms);
  m.set_stored_keys(stored_keys);
  std::string out;
  CHORUS_ASSERT(m.SerializeToString(&out));
  return out;
}

}  // namespace

// ---- Options ------------------------------------------------------------------

// Options for a 2-core box with a few GB of memory: two background jobs
// (one flush, one compaction), 64 MiB memtables, a 128 MiB block cache shared
// by every column family, bloom filters (SST and memtable) so that the
// read-before-write of each command is cheap for new keys, LZ4 (cheap on
// CPU), and dynamic level sizes (bounded space amplification). Note that
// IncreaseParallelism() sizes the thread pools of the process-wide default
// Env, shared by every RocksDB instance in the process.
struct RocksDbStateMachine::Tuning {
  rocksdb::DBOptions db;
  rocksdb::ColumnFamilyOptions cf;
};

namespace {

rocksdb::CompressionType cheap_compression() {
  const auto supported = rocksdb::GetSupportedCompressions();
  for (auto c : {rocksdb::kLZ4Compression, rocksdb::kSnappyCompression}) {
    if (std::find(supported.begin(), supported.end(), c) != supported.end()) return c;
  }
  return rocksdb::kNoCompression;
}

}  // namespace

RocksDbStateMachine::RocksDbStateMachine(std::string path, RocksDbStateMachineOptions opts)
    : path_(std::move(path)),
      opts_(opts),
      tuning_(new Tuning),
      sessions_(opts.sm.limits.max_sessions) {
  rocksdb::DBOptions& db = tuning_->db;
  db.create_if_missing = true;
  db.IncreaseParallelism(std::max(opts_.background_jobs, 1));
  db.max_background_jobs = std::max(opts_.background_jobs, 1);
  db.bytes_per_sync = size_t{1} << 20;
  db.max_total_wal_size = 4 * opts_.write_buffer_bytes;
  db.keep_log_file_num = 4;
  db.max_log_file_size = size_t{16} << 20;
  db.max_open_files = 4096;

  rocksdb::ColumnFamilyOptions& cf = tuning_->cf;
  cf.write_buffer_size = opts_.write_buffer_bytes;
  cf.max_write_buffer_number = 3;
  cf.level_compaction_dynamic_level_bytes = true;
  cf.target_file_size_base = uint64_t{64} << 20;
  cf.max_bytes_for_level_base = uint64_t{256} << 20;
  cf.compression = cheap_compression();
  // A bloom filter over memtable keys: the read-before-write of a new key
  // skips the skiplist search.
  cf.memtable_whole_key_filtering = true;
  cf.memtable_prefix_bloom_size_ratio = 0.05;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(opts_.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.cache_index_and_filter_blocks = true;
  table.pin_l0_filter_and_index_blocks_in_cache = true;
  table.block_size = 16 << 10;
  table.format_version = 5;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
}

RocksDbStateMachine::~RocksDbStateMachine() {
  if (db_ == nullptr) return;
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  db_->Close().PermitUncheckedError();  // best effort: the WAL has every batch
  delete db_;
}

Result<std::unique_ptr<RocksDbStateMachine>> RocksDbStateMachine::open(
    const std::string& path, RocksDbStateMachineOptions opts) {
  std::unique_ptr<RocksDbStateMachine> sm(new RocksDbStateMachine(path, opts));
  CHORUS_RETURN_IF_ERROR(sm->open_db());
  CHORUS_RETURN_IF_ERROR(sm->recover());
  return sm;
}

Status RocksDbStateMachine::open_db() {
  std::vector<std::string> names;
  if (!rocksdb::DB::ListColumnFamilies(tuning_->db, path_, &names).ok()) {
    names = {rocksdb::kDefaultColumnFamilyName};  // a new database (Open reports real errors)
  }
  std::vector<rocksdb::ColumnFamilyDescriptor> descs;
  for (const auto& n : names) descs.emplace_back(n, tuning_->cf);
  return from_rocks(rocksdb::DB::Open(tuning_->db, path_, descs, &handles_, &db_), "open " + path_);
}

// Finds the current generation, drops every other one (a restore that a crash
// interrupted, or the old state of one that completed), loads the mirrors.
Status RocksDbStateMachine::recover() {
  std::string cur;
  rocksdb::Status s =
      db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), kCurrentKey, &cur);
  if (!s.ok() && !s.IsNotFound()) return from_rocks(s, "read current in " + path_);
  if (s.IsNotFound()) {
    generation_ = 1;  // a new database; a leftover g1 is from an interrupted creation
  } else {
    kvpb::RocksCurrent current;
    if (!current.ParseFromString(cur) || current.format_version() != kRocksFormatVersion ||
        current.generation() == 0) {
      return Status::corruption("rocksdb state machine " + path_ + ": bad current record");
    }
    generation_ = current.generation();
  }
  const std::string want = generation_name(generation_);
  for (size_t i = 0; i < handles_.size();) {
    rocksdb::ColumnFamilyHandle* h = handles_[i];
    uint64_t gen = 0;
    if (h->GetName() == rocksdb::kDefaultColumnFamilyName || (h->GetName() == want && s.ok())) {
      ++i;
      continue;
    }
    if (!parse_generation(h->GetName(), &gen)) {
      return Status::corruption("rocksdb state machine " + path_ + ": unknown column family " +
                                h->GetName());
    }
    dropped_on_open_.push_back(h->GetName());
    CHORUS_RETURN_IF_ERROR(from_rocks(db_->DropColumnFamily(h), "drop " + h->GetName()));
    CHORUS_RETURN_IF_ERROR(from_rocks(db_->DestroyColumnFamilyHandle(h), "close column family"));
    handles_.erase(handles_.begin() + static_cast<ptrdiff_t>(i));
  }
  if (s.IsNotFound()) {
    rocksdb::ColumnFamilyHandle* h = nullptr;
    CHORUS_RETURN_IF_ERROR(
        from_rocks(db_->CreateColumnFamily(tuning_->cf, want, &h), "create " + want));
    handles_.push_back(h);
    kvpb::RocksCurrent current;
    current.set_format_version(kRocksFormatVersion);
    current.set_generation(generation_);
    rocksdb::WriteOptions wo;
    wo.sync = true;
    CHORUS_RETURN_IF_ERROR(from_rocks(
        db_->Put(wo, db_->DefaultColumnFamily(), kCurrentKey, current.SerializeAsString()),
        "write current"));
  }
  for (auto* h : handles_) {
    if (h->GetName() == want) state_cf_ = h;
  }
  if (state_cf_ == nullptr) {
    return Status::corruption("rocksdb state machine " + path_ + ": current generation " + want +
                              " is missing");
  }
  return load_state_mirror();
}

Status RocksDbStateMachine::load_state_mirror() {
  std::string meta;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), state_cf_, kMetaKey, &meta);
  if (!s.ok() && !s.IsNotFound()) return from_rocks(s, "read meta");
  kvpb::RocksMeta m;
  if (s.ok() && !m.ParseFromString(meta)) {
    return Status::corruption("rocksdb state machine " + path_ + ": bad meta record");
  }
  applied_ = LogIndex(m.applied_index());
  now_ms_ = m.now_ms();
  stored_keys_ = m.stored_keys();
  sessions_ = SessionTable(opts_.sm.limits.max_sessions);
  const std::string lo(1, kSessionPrefix);
  const std::string hi(1, kSessionPrefix + 1);
  rocksdb::Slice upper(hi);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, state_cf_));
  for (it->Seek(lo); it->Valid(); it->Next()) {
    kvpb::Session sess;
    if (!sess.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::corruption("rocksdb state machine " + path_ + ": bad session record");
    }
    CHORUS_RETURN_IF_ERROR(sessions_.insert(std::move(sess)));
  }
  return from_rocks(it->status(), "read sessions");
}

Status RocksDbStateMachine::check_healthy() const {
  return poisoned_;
}

Status RocksDbStateMachine::poison(Status st) {
  CHORUS_ASSERT(!st.is_ok());
  if (poisoned_.is_ok()) {
    poisoned_ = Status(StatusCode::kFailStopped,
                       "rocksdb state machine " + path_ + " stopped after: " + st.to_string());
  }
  return st;
}

// ---- Applying -----------------------------------------------------------------

// The KeyStore of one apply batch: reads see the batch's own earlier writes.
class RocksDbStateMachine::BatchKeys final : public KeyStore {
 public:
  BatchKeys(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* cf, uint64_t* stored_keys)
      : db_(db),
        cf_(cf),
        batch_(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true),
        stored_keys_(stored_keys) {}

  Result<std::optional<StoredValue>> load(std::string_view key) override {
    rocksdb::PinnableSlice rec;
    rocksdb::Status s =
        batch_.GetFromBatchAndDB(db_, rocksdb::ReadOptions(), cf_, data_key(key), &rec);
    if (s.IsNotFound()) return std::optional<StoredValue>();
    CHORUS_RETURN_IF_ERROR(from_rocks(s, "get"));
    CHORUS_ASSIGN_OR_RETURN(StoredValue v, decode_value(view(rec)));
    return std::optional<StoredValue>(std::move(v));
  }

  Status store(std::string_view key, StoredValue v,
               const std::optional<StoredValue>& old) override {
    const int64_t old_expire = old ? old->expire_at_ms : 0;
    if (old_expire != 0 && old_expire != v.expire_at_ms) {
      CHORUS_RETURN_IF_ERROR(from_rocks(batch_.Delete(cf_, expiry_key(old_expire, key)), "batch"));
    }
    if (v.expire_at_ms != 0 && old_expire != v.expire_at_ms) {
      CHORUS_RETURN_IF_ERROR(
          from_rocks(batch_.Put(cf_, expiry_key(v.expire_at_ms, key), ""), "batch"));
    }
    if (!old) ++*stored_keys_;
    return from_rocks(batch_.Put(cf_, data_key(key), encode_value(v)), "batch");
  }

  Status erase(std::string_view key, const StoredValue& old) override {
    if (old.expire_at_ms != 0) {
      CHORUS_RETURN_IF_ERROR(
          from_rocks(batch_.Delete(cf_, expiry_key(old.expire_at_ms, key)), "batch"));
    }
    CHORUS_ASSERT(*stored_keys_ > 0);
    --*stored_keys_;
    return from_rocks(batch_.Delete(cf_, data_key(key)), "batch");
  }

  // Up to `max` user keys whose expiry is <= now_ms, earliest first, as the
  // batch so far sees them.
  Result<std::vector<std::string>> expired(int64_t now_ms, size_t max) {
    std::vector<std::string> keys;
    const std::string hi(1, kExpiryPrefix + 1);
    rocksdb::Slice upper(hi);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(
        batch_.NewIteratorWithBase(cf_, db_->NewIterator(ro, cf_), &ro));
    for (it->Seek(std::string(1, kExpiryPrefix)); it->Valid() && keys.size() < max; it->Next()) {
      const std::string_view k = view(it->key());
      if (k.empty() || k[0] != kExpiryPrefix) break;
      if (k.size() < 9) return Status::corruption("rocksdb state machine: bad expiry record");
      if (is_live(expiry_of(k), now_ms)) break;
      keys.emplace_back(k.substr(9));
    }
    CHORUS_RETURN_IF_ERROR(from_rocks(it->status(), "scan expiry index"));
    return keys;
  }

  rocksdb::WriteBatchWithIndex& batch() { return batch_; }

 private:
  rocksdb::DB* db_;
  rocksdb::ColumnFamilyHandle* cf_;
  rocksdb::WriteBatchWithIndex batch_;
  uint64_t* stored_keys_;
};

Result<std::vector<kvpb::Result>> RocksDbStateMachine::apply_batch(std::span<const Entry> entries) {
  CHORUS_RETURN_IF_ERROR(check_healthy());
  std::vector<kvpb::Result> results;
  if (entries.empty()) return results;
  results.reserve(entries.size());
  BatchKeys keys(db_, state_cf_, &stored_keys_);
  std::vector<uint64_t> touched;
  for (const Entry& e : entries) {
    CHORUS_ASSERT_MSG(e.index > applied_, "state machine applied out of order");
    applied_ = e.index;
    if (e.noop) {
      results.emplace_back();
      continue;
    }
    Result<kvpb::Result> r =
        apply_command(e.command, e.index, opts_.sm.limits, &now_ms_, sessions_, keys, &touched);
    if (!r.is_ok()) return poison(r.status());
    results.push_back(std::move(r).value());
  }
  Status st = purge_expired(keys);
  if (!st.is_ok()) return poison(st);
  rocksdb::WriteBatchWithIndex& b = keys.batch();
  std::sort(touched.begin(), touched.end());
  touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
  for (uint64_t id : touched) {
    const kvpb::Session* s = sessions_.find(id);
    rocksdb::Status rs = s ? b.Put(state_cf_, session_key(id), s->SerializeAsString())
                           : b.Delete(state_cf_, session_key(id));
    if (!rs.ok()) return poison(from_rocks(rs, "batch"));
  }
  rocksdb::Status rs = b.Put(state_cf_, kMetaKey, meta_bytes(applied_, now_ms_, stored_keys_));
  if (!rs.ok()) return poison(from_rocks(rs, "batch"));
  rocksdb::WriteOptions wo;
  wo.sync = opts_.sync_writes;
  rs = db_->Write(wo, b.GetWriteBatch());
  if (!rs.ok()) return poison(from_rocks(rs, "write batch"));
  return results;
}

// Removes up to kExpiredPurgeMaxPerBatch dead keys in the same batch.
Status RocksDbStateMachine::purge_expired(BatchKeys& keys) {
  CHORUS_ASSIGN_OR_RETURN(std::vector<std::string> dead,
                          keys.expired(now_ms_, kExpiredPurgeMaxPerBatch));
  for (const auto& key : dead) {
    CHORUS_ASSIGN_OR_RETURN(std::optional<StoredValue> old, keys.load(key));
    if (!old || is_live(old->expire_at_ms, now_ms_)) {
      return Status::corruption("rocksdb state machine " + path_ + ": expiry index out of step");
    }
    CHORUS_RETURN_IF_ERROR(keys.erase(key, *old));
  }
  return Status::ok();
}

Result<kvpb::Result> RocksDbStateMachine::apply(LogIndex index, std::string_view command) {
  const Entry e{index, command};
  CHORUS_ASSIGN_OR_RETURN(std::vector<kvpb::Result> r, apply_batch({&e, 1}));
  return std::move(r.front());
}

Status RocksDbStateMachine::apply_noop(LogIndex index) {
  const Entry e{.index = index, .command = {}, .noop = true};
  return apply_batch({&e, 1}).status();
}

Status RocksDbStateMachine::sync() {
  CHORUS_RETURN_IF_ERROR(check_healthy());
  rocksdb::Status s = db_->FlushWAL(/*sync=*/true);
  if (!s.ok()) return poison(from_rocks(s, "sync WAL"));
  return Status::ok();
}

// ---- Reading ------------------------------------------------------------------

Result<std::optional<std::string>> RocksDbStateMachine::read(std::string_view key) const {
  CHORUS_RETURN_IF_ERROR(check_healthy());
  rocksdb::PinnableSlice rec;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), state_cf_, data_key(key), &rec);
  if (s.IsNotFound()) return std::optional<std::string>();
  CHORUS_RETURN_IF_ERROR(from_rocks(s, "get"));
  if (rec.size() < 8) return Status::corruption("rocksdb state machine: value record too short");
  if (!is_live(decode_expire(view(rec)), now_ms_)) return std::optional<std::string>();
  return std::optional<std::string>(std::string(view(rec).substr(8)));
}

Result<uint64_t> RocksDbStateMachine::key_count() const {
  CHORUS_RETURN_IF_ERROR(check_healthy());
  // Dead keys not yet purged are all at the front of the expiry index.
  const std::string hi(1, kExpiryPrefix + 1);
  rocksdb::Slice upper(hi);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, state_cf_));
  uint64_t dead = 0;
  for (it->Seek(std::string(1, kExpiryPrefix)); it->Valid(); it->Next()) {
    if (it->key().size() < 9) return Status::corruption("rocksdb state machine: bad expiry record");
    if (is_live(expiry_of(view(it->key())), now_ms_)) break;
    ++dead;
  }
  CHORUS_RETURN_IF_ERROR(from_rocks(it->status(), "scan expiry index"));
  CHORUS_ASSERT(dead <= stored_keys_);
  return stored_keys_ - dead;
}

Result<StateMachine::ScanPage> RocksDbStateMachine::scan(std::string_view start,
                                                         size_t limit) const {
  CHORUS_RETURN_IF_ERROR(check_healthy());
  limit = std::clamp<size_t>(limit, 1, kScanItemsMax);
  const std::string hi(1, kDataPrefix + 1);
  rocksdb::Slice upper(hi);
  rocksdb::ReadOptions ro;
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, state_cf_));
  ScanPage page;
  for (it->Seek(data_key(start)); it->Valid(); it->Next()) {
    const std::string_view rec = view(it->value());
    if (rec.size() < 8) return Status::corruption("rocksdb state machine: value record too short");
    if (!is_live(decode_expire(rec), now_ms_)) continue;
    const std::string_view key = view(it->key()).substr(1);
    if (page.items.size() >= limit) {
      page.next = std::string(key);
      break;
    }
    page.items.emplace_back(std::string(key), std::string(rec.substr(8)));
  }
  CHORUS_RETURN_IF_ERROR(from_rocks(it->status(), "scan"));
  return page;
}

// ---- Snapshots ----------------------------------------------------------------

// Streams a consistent RocksDB snapshot of the generation: nothing is held in
// memory but one chunk.
Status RocksDbStateMachine::save_snapshot(const ChunkSink& sink) const {
  CHORUS_RETURN_IF_ERROR(check_healthy());
  rocksdb::ManagedSnapshot snap(db_);
  rocksdb::ReadOptions ro;
  ro.snapshot = snap.snapshot();
  ro.fill_cache = false;  // a full scan would evict the working set
  ro.readahead_size = size_t{2} << 20;
  std::string meta;
  rocksdb::Status s = db_->Get(ro, state_cf_, kMetaKey, &meta);
  kvpb::RocksMeta m;
  if (!s.ok() && !s.IsNotFound()) return from_rocks(s, "read meta");
  if (s.ok() && !m.ParseFromString(meta)) return Status::corruption("bad meta record");

  SnapshotWriter w(sink, opts_.sm.snapshot_chunk_bytes);
  CHORUS_RETURN_IF_ERROR(w.begin(LogIndex(m.applied_index()), m.now_ms()));
  const std::string data_hi(1, kDataPrefix + 1);
  rocksdb::Slice data_upper(data_hi);
  ro.iterate_upper_bound = &data_upper;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, state_cf_));
  for (it->Seek(std::string(1, kDataPrefix)); it->Valid(); it->Next()) {
    const std::string_view rec = view(it->value());
    if (rec.size() < 8) return Status::corruption("rocksdb state machine: value record too short");
    const int64_t expire = decode_expire(rec);
    if (!is_live(expire, m.now_ms())) continue;
    CHORUS_RETURN_IF_ERROR(w.add_kv(view(it->key()).substr(1), rec.substr(8), expire));
  }
  CHORUS_RETURN_IF_ERROR(from_rocks(it->status(), "snapshot scan"));

  const std::string sess_hi(1, kSessionPrefix + 1);
  rocksdb::Slice sess_upper(sess_hi);
  ro.iterate_upper_bound = &sess_upper;
  it.reset(db_->NewIterator(ro, state_cf_));
  for (it->Seek(std::string(1, kSessionPrefix)); it->Valid(); it->Next()) {
    kvpb::Session sess;
    if (!sess.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::corruption("rocksdb state machine: bad session record");
    }
    CHORUS_RETURN_IF_ERROR(w.add_session(sess));
  }
  CHORUS_RETURN_IF_ERROR(from_rocks(it->status(), "snapshot scan"));
  return w.finish();
}

// Fills a fresh generation column family. It is created only when the first
// restore batch is full, so a small stream is validated completely before
// RocksDB is touched at all.
class RocksDbStateMachine::Restorer {
 public:
  Restorer(RocksDbStateMachine& sm, uint64_t gen) : sm_(sm), name_(generation_name(gen)) {
    no_wal_.disableWAL = true;  // made durable by the flush before the switch
  }
  ~Restorer() {
    if (cf_ == nullptr) return;  // handed over, or never created
    // Abandoned: drop it (after a crash, open() does the same).
    sm_.db_->DropColumnFamily(cf_).PermitUncheckedError();
    sm_.db_->DestroyColumnFamilyHandle(cf_).PermitUncheckedError();
  }

  Status put(std::string key, std::string value) {
    pending_bytes_ += key.size() + value.size();
    pending_.emplace_back(std::move(key), std::move(value));
    return pending_bytes_ >= sm_.opts_.restore_batch_bytes ? write_pending() : Status::ok();
  }

  // Writes what is pending and flushes the column family to SST files.
  Result<rocksdb::ColumnFamilyHandle*> finish() {
    CHORUS_RETURN_IF_ERROR(write_pending());
    CHORUS_RETURN_IF_ERROR(
        from_rocks(sm_.db_->Flush(rocksdb::FlushOptions(), cf_), "restore flush"));
    return cf_;
  }
  void release() { cf_ = nullptr; }

 private:
  Status write_pending() {
    if (cf_ == nullptr) {
      CHORUS_RETURN_IF_ERROR(
          from_rocks(sm_.db_->CreateColumnFamily(sm_.tuning_->cf, name_, &cf_), "create " + name_));
    }
    rocksdb::WriteBatch wb;
    for (const auto& [k, v] : pending_) {
      CHORUS_RETURN_IF_ERROR(from_rocks(wb.Put(cf_, k, v), "restore batch"));
    }
    pending_.clear();
    pending_bytes_ = 0;
    return from_rocks(sm_.db_->Write(no_wal_, &wb), "restore write");
  }

  RocksDbStateMachine& sm_;
  std::string name_;
  rocksdb::WriteOptions no_wal_;
  rocksdb::ColumnFamilyHandle* cf_ = nullptr;
  std::vector<std::pair<std::string, std::string>> pending_;
  size_t pending_bytes_ = 0;
};

Status RocksDbStateMachine::load_snapshot(const ChunkSource& next_chunk) {
  CHORUS_RETURN_IF_ERROR(check_healthy());
  // Until the switch below, the old generation is the state: on any error the
  // restorer drops the new one and nothing changed.
  const uint64_t gen = generation_ + 1;
  Restorer fresh(*this, gen);
  SnapshotReader r(next_chunk, {opts_.sm.limits.key_bytes_max, opts_.sm.limits.value_bytes_max});
  CHORUS_ASSIGN_OR_RETURN(kvpb::SnapshotHeader header, r.read_header());
  SessionTable sessions(opts_.sm.limits.max_sessions);
  uint64_t kvs = 0;
  for (;;) {
    CHORUS_ASSIGN_OR_RETURN(std::optional<kvpb::SnapshotRecord> rec, r.next());
    if (!rec) break;
    if (rec->has_kv()) {
      kvpb::KeyValue* kv = rec->mutable_kv();
      const int64_t expire = kv->expire_at_ms();
      if (expire != 0) CHORUS_RETURN_IF_ERROR(fresh.put(expiry_key(expire, kv->key()), ""));
      CHORUS_RETURN_IF_ERROR(
          fresh.put(data_key(kv->key()), encode_value({std::move(*kv->mutable_value()), expire})));
      ++kvs;
    } else {
      CHORUS_RETURN_IF_ERROR(sessions.insert(std::move(*rec->mutable_session())));
    }
  }
  std::vector<uint64_t> evicted;
  sessions.trim(&evicted);  // a snapshot from a replica with a larger table
  for (const auto& [id, sess] : sessions.by_client()) {
    CHORUS_RETURN_IF_ERROR(fresh.put(session_key(id), sess.SerializeAsString()));
  }
  const LogIndex applied(header.applied_index());
  CHORUS_RETURN_IF_ERROR(
      fresh.put(std::string(kMetaKey), meta_bytes(applied, header.now_ms(), kvs)));
  CHORUS_ASSIGN_OR_RETURN(rocksdb::ColumnFamilyHandle * cf, fresh.finish());

  // The switch: one synced write of "current" makes the new generation the state.
  kvpb::RocksCurrent current;
  current.set_format_version(kRocksFormatVersion);
  current.set_generation(gen);
  rocksdb::WriteOptions synced;
  synced.sync = true;
  rocksdb::Status s =
      db_->Put(synced, db_->DefaultColumnFamily(), kCurrentKey, current.SerializeAsString());
  fresh.release();
  handles_.push_back(cf);
  if (!s.ok()) {
    // Whether the switch is durable is unknown: stop; open() will tell.
    return poison(from_rocks(s, "write current"));
  }
  rocksdb::ColumnFamilyHandle* old = state_cf_;
  std::erase(handles_, old);
  state_cf_ = cf;
  generation_ = gen;
  applied_ = applied;
  now_ms_ = header.now_ms();
  stored_keys_ = kvs;
  sessions_ = std::move(sessions);
  // Garbage from here on: if dropping fails, the next open() drops it.
  db_->DropColumnFamily(old).PermitUncheckedError();
  db_->DestroyColumnFamilyHandle(old).PermitUncheckedError();
  return Status::ok();
}

}  // namespace chorus::kv
