#include "gateway/ledger/compact_tree.h"

#include <cstring>

namespace songda::ledger {
namespace {

CompactTree::Hash to_array(std::string_view raw) {
  CompactTree::Hash h{};
  std::memcpy(h.data(), raw.data(), h.size());
  return h;
}

std::string_view view(const CompactTree::Hash& h) { return {reinterpret_cast<const char*>(h.data()), h.size()}; }

}  // namespace

void CompactTree::reserve(std::uint64_t leaves) {
  for (unsigned k = 0; (leaves >> k) > 0; ++k) {
    if (levels_.size() <= k) levels_.emplace_back();
    levels_[k].reserve(leaves >> k);
  }
}

bool CompactTree::append_leaf_hash(std::string_view raw) {
  if (raw.size() != evidence::kHashSize) return false;
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(to_array(raw));
  for (std::size_t k = 0; levels_[k].size() % 2 == 0; ++k) {
    const auto& level = levels_[k];
    const Hash parent = to_array(evidence::node_hash(view(level[level.size() - 2]), view(level.back())));
    if (levels_.size() <= k + 1) levels_.emplace_back();
    levels_[k + 1].push_back(parent);
  }
  return true;
}

std::string CompactTree::node(unsigned level, std::uint64_t index) const {
  return std::string(view(levels_[level][index]));
}

Result<std::string> CompactTree::subtree_hash(unsigned level, std::uint64_t index) const {
  if (level >= levels_.size() || index >= levels_[level].size()) {
    return Error::permanent("not_found", "subtree (level " + std::to_string(level) + ", index " +
                                             std::to_string(index) + ") is not complete");
  }
  return node(level, index);
}

Result<evidence::NodeMap> CompactTree::subtree_hashes(std::span<const evidence::NodeId> ids) const {
  evidence::NodeMap out;
  for (const auto& id : ids) {
    auto h = subtree_hash(id.level, id.index);
    if (!h) return h.error();
    out.emplace(id, std::move(*h));
  }
  return out;
}

}  // namespace songda::ledger
