// CompactTree: every complete subtree hash of an append-only RFC 9162 tree in
// memory, 32 bytes per node in contiguous arrays (about 64 bytes per leaf in
// all), for rebuilding and checking the Redis log and for benchmarks at tens
// of millions of leaves. Parents are computed as soon as they are complete.
//
// Ownership: a plain value that owns its arrays. Thread-safety: concurrent
// const use is safe; append needs external locking. Never throws except
// std::bad_alloc.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/evidence/merkle.h"

namespace songda::ledger {

class CompactTree final : public evidence::NodeSource {
 public:
  using Hash = std::array<unsigned char, evidence::kHashSize>;

  void reserve(std::uint64_t leaves);
  // A 32-byte raw leaf hash (anything else is ignored and returns false).
  bool append_leaf_hash(std::string_view raw);
  [[nodiscard]] std::uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }
  [[nodiscard]] std::size_t level_count() const { return levels_.size(); }
  [[nodiscard]] std::uint64_t level_size(unsigned level) const {
    return level < levels_.size() ? levels_[level].size() : 0;
  }
  // Raw 32 bytes of NodeId{level, index}; the caller keeps within level_size().
  [[nodiscard]] std::string node(unsigned level, std::uint64_t index) const;

  [[nodiscard]] Result<std::uint64_t> tree_size() const override { return size(); }
  [[nodiscard]] Result<std::string> subtree_hash(unsigned level, std::uint64_t index) const override;
  [[nodiscard]] Result<evidence::NodeMap> subtree_hashes(std::span<const evidence::NodeId> ids) const override;

 private:
  std::vector<std::vector<Hash>> levels_;
};

}  // namespace songda::ledger
