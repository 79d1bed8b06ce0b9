// The search's state sets: LinearizedSet (ops linearized), SeenSet (configurations entered).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace chorus::check::detail {

// ---------------------------------------------------------------------------
// LinearizedSet: a bitset of linearized operations, with an incrementally
// maintained Zobrist hash (XOR of a random key per member) and a canonical
// compact form for the seen set.

class LinearizedSet {
 public:
  LinearizedSet(size_t n, std::span<const uint64_t> zobrist)
      : zobrist_(zobrist), words_((n + 63) / 64, 0) {}

  void set(uint32_t i) {
    words_[i / 64] |= uint64_t{1} << (i % 64);
    hash_ ^= zobrist_[i];
    hi_ = std::max(hi_, i / 64 + 1);
  }
  void clear(uint32_t i) {
    words_[i / 64] &= ~(uint64_t{1} << (i % 64));
    hash_ ^= zobrist_[i];
    lo_ = std::min(lo_, i / 64);
    while (hi_ > 0 && words_[hi_ - 1] == 0) --hi_;
  }
  uint64_t hash() const { return hash_; }
  bool test(uint32_t i) const { return (words_[i / 64] >> (i % 64)) & 1; }
  uint64_t word(uint64_t w) const { return w < words_.size() ? words_[w] : 0; }

  // Number of leading all-ones words. Invariant: every word below lo_ is full.
  uint32_t full_words() {
    while (lo_ < words_.size() && words_[lo_] == ~uint64_t{0}) ++lo_;
    return lo_;
  }
  // Appends (index, word) for each non-zero word from word `from` on.
  void encode(uint32_t from, std::vector<uint64_t>& out) const {
    for (uint32_t w = from; w < hi_; ++w) {
      if (words_[w] != 0) {
        out.push_back(w);
        out.push_back(words_[w]);
      }
    }
  }

 private:
  std::span<const uint64_t> zobrist_;
  std::vector<uint64_t> words_;
  uint64_t hash_ = 0;
  uint32_t lo_ = 0;  // lower bound on the first non-full word
  uint32_t hi_ = 0;  // Invariant: words_[hi_..] are zero.
};

// ---------------------------------------------------------------------------
// SeenSet: every configuration the search entered, as (required ops
// linearized, optional ops linearized, state), compared exactly.
//
// Subsumption: a configuration is also covered by a *finished* one (explored
// without success) with the same required ops and state and a subset of its
// optional ops: every continuation of the former is one of the latter, which
// simply never uses the extra optional ops (they constrain no other op).
// Without this, each pending unknown write would double the configurations
// long after its effect was overwritten. Only finished entries subsume, so a
// pruned configuration is always one known to fail.
//
// Two open-addressing tables of entry ids: one keyed on everything, for exact
// lookups; one keyed on (required ops, state), heading a list of the entries
// that share them, newest first, for subsumption. Only the first
// kSubsumptionChecksMax entries of a list are checked: a missed subsumption
// costs search steps, never correctness, and per-step time stays bounded.

class SeenSet {
 public:
  static constexpr uint32_t kCovered = UINT32_MAX;

  SeenSet() : exact_slots_(kInitialSlots, kEmpty), group_slots_(kInitialSlots, kEmpty) {}

  // The new entry's id; kCovered if an equal entry exists or a finished one
  // with a subset of the optional ops.
  uint32_t insert(LinearizedSet& required, const LinearizedSet& optional, uint32_t state) {
    const uint64_t state_key = uint64_t{state} * 0x9e3779b97f4a7c15;
    const uint64_t exact_hash = mix(required.hash() ^ optional.hash() ^ state_key);
    const uint64_t group_hash = mix(required.hash() ^ state_key ^ 0x5bd1e995);
    Entry candidate{exact_hash, group_hash, pool_.size(), state, required.full_words(),
                    0,          0,          kEmpty,       false};
    scratch_.clear();
    required.encode(candidate.full_words, scratch_);
    candidate.required_words = static_cast<uint32_t>(scratch_.size());
    optional.encode(0, scratch_);
    candidate.optional_words = static_cast<uint32_t>(scratch_.size()) - candidate.required_words;

    size_t exact_slot = exact_hash & (exact_slots_.size() - 1);
    for (; exact_slots_[exact_slot] != kEmpty; exact_slot = next_slot(exact_slots_, exact_slot)) {
      const Entry& e = entries_[exact_slots_[exact_slot]];
      if (e.exact_hash == exact_hash && same_group(e, candidate) &&
          e.optional_words == candidate.optional_words &&
          std::equal(scratch_.begin(), scratch_.end(), pool_.begin() + offset(e))) {
        return kCovered;
      }
    }
    size_t group_slot = group_hash & (group_slots_.size() - 1);
    for (; group_slots_[group_slot] != kEmpty; group_slot = next_slot(group_slots_, group_slot)) {
      if (same_group(entries_[group_slots_[group_slot]], candidate)) break;
    }
    if (group_slots_[group_slot] != kEmpty &&
        subsumed(group_slots_[group_slot], candidate, optional)) {
      return kCovered;
    }
    const auto id = static_cast<uint32_t>(entries_.size());
    candidate.next_in_group = group_slots_[group_slot];
    entries_.push_back(candidate);
    pool_.insert(pool_.end(), scratch_.begin(), scratch_.end());
    exact_slots_[exact_slot] = id;
    group_slots_[group_slot] = id;
    if (entries_.size() * 2 > exact_slots_.size()) rebuild(exact_slots_.size() * 2);
    return id;
  }

  // The configuration was explored without success.
  void finish(uint32_t id) { entries_[id].finished = true; }

 private:
  static constexpr size_t kInitialSlots = 1 << 12;
  static constexpr uint32_t kEmpty = UINT32_MAX;
  static constexpr int kSubsumptionChecksMax = 8;

  struct Entry {
    uint64_t exact_hash;  // required ops, optional ops, state
    uint64_t group_hash;  // required ops, state
    size_t pool_offset;   // in pool_: the required part's words, then the optional part's
    uint32_t state;
    uint32_t full_words;  // leading all-ones words of the required set
    uint32_t required_words;
    uint32_t optional_words;
    uint32_t next_in_group;  // the previous entry with the same required ops and state
    bool finished;
  };

  static std::ptrdiff_t offset(const Entry& e) {
    return static_cast<std::ptrdiff_t>(e.pool_offset);
  }
  static size_t next_slot(const std::vector<uint32_t>& slots, size_t slot) {
    return (slot + 1) & (slots.size() - 1);
  }

  // Same required ops and state; the candidate's encoding is in scratch_.
  bool same_group(const Entry& e, const Entry& candidate) const {
    return e.group_hash == candidate.group_hash && e.state == candidate.state &&
           e.full_words == candidate.full_words && e.required_words == candidate.required_words &&
           std::equal(scratch_.begin(), scratch_.begin() + candidate.required_words,
                      pool_.begin() + offset(e));
  }

  bool subsumed(uint32_t id, const Entry& candidate, const LinearizedSet& optional) const {
    for (int checked = 0; id != kEmpty && checked < kSubsumptionChecksMax; ++checked) {
      const Entry& e = entries_[id];
      id = e.next_in_group;
      if (!e.finished) continue;
      const auto first = pool_.begin() + offset(e) + candidate.required_words;
      bool subset = true;
      for (auto it = first; subset && it != first + e.optional_words; it += 2) {
        subset = (optional.word(it[0]) & it[1]) == it[1];
      }
      if (subset) return true;
    }
    return false;
  }

  // Murmur3's finalizer: spreads XORs of Zobrist keys over the low bits.
  static uint64_t mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccd;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53;
    x ^= x >> 33;
    return x;
  }

  void rebuild(size_t slots) {
    exact_slots_.assign(slots, kEmpty);
    group_slots_.assign(slots, kEmpty);
    for (uint32_t id = 0; id < entries_.size(); ++id) {
      const Entry& e = entries_[id];
      size_t slot = e.exact_hash & (slots - 1);
      while (exact_slots_[slot] != kEmpty) slot = next_slot(exact_slots_, slot);
      exact_slots_[slot] = id;
      // Entries are visited oldest first, so each group's slot ends on its newest.
      slot = e.group_hash & (slots - 1);
      while (group_slots_[slot] != kEmpty &&
             entries_[group_slots_[slot]].group_hash != e.group_hash) {
        slot = next_slot(group_slots_, slot);
      }
      group_slots_[slot] = id;
    }
  }

  std::vector<Entry> entries_;
  std::vector<uint64_t> pool_;         // the encoded sets, back to back
  std::vector<uint32_t> exact_slots_;  // entry ids; power of two, at most half full
  std::vector<uint32_t> group_slots_;  // newest entry id of each group; same size
  std::vector<uint64_t> scratch_;
};

}  // namespace chorus::check::detail
