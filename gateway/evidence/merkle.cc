#include "gateway/evidence/merkle.h"

#include <algorithm>
#include <bit>
#include <utility>

#include "gateway/core/crypto.h"

namespace songda::evidence {
namespace {

// A half-open leaf range [begin, end) whose MTH a computation needs. Every range
// RFC 9162's recursions produce starts at a multiple of a power of two that is
// at least its length, so it splits greedily into complete subtrees.
struct Range {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

// Largest power of two strictly less than n (n ≥ 2).
std::uint64_t split_point(std::uint64_t n) { return std::bit_floor(n - 1); }

std::vector<NodeId> range_nodes(Range r) {
  std::vector<NodeId> out;
  std::uint64_t at = r.begin;
  while (at < r.end) {
    const std::uint64_t width = std::bit_floor(r.end - at);
    const auto level = static_cast<unsigned>(std::countr_zero(width));
    out.push_back(NodeId{level, at >> level});
    at += width;
  }
  return out;
}

// MTH of the range: right fold of its complete subtrees.
Result<std::string> range_hash(const NodeMap& nodes, Range r) {
  const std::vector<NodeId> ids = range_nodes(r);
  std::string acc;
  for (auto it = ids.rbegin(); it != ids.rend(); ++it) {
    const auto found = nodes.find(*it);
    if (found == nodes.end()) {
      return Error::permanent("not_found", "subtree (level " + std::to_string(it->level) + ", index " +
                                               std::to_string(it->index) + ") was not fetched");
    }
    acc = acc.empty() ? found->second : node_hash(found->second, acc);
  }
  return acc;
}

// RFC 9162 §2.1.3.1 PATH(m, D[begin:end]), as the ranges whose MTH forms the path (leaf first).
void path_ranges(std::uint64_t m, Range r, std::vector<Range>& out) {
  const std::uint64_t n = r.end - r.begin;
  if (n <= 1) return;
  const std::uint64_t k = split_point(n);
  if (m < k) {
    path_ranges(m, Range{r.begin, r.begin + k}, out);
    out.push_back(Range{r.begin + k, r.end});
  } else {
    path_ranges(m - k, Range{r.begin + k, r.end}, out);
    out.push_back(Range{r.begin, r.begin + k});
  }
}

// RFC 9162 §2.1.4.1 SUBPROOF(m, D[begin:end], b).
void subproof_ranges(std::uint64_t m, Range r, bool b, std::vector<Range>& out) {
  const std::uint64_t n = r.end - r.begin;
  if (m == n) {
    if (!b) out.push_back(r);
    return;
  }
  const std::uint64_t k = split_point(n);
  if (m <= k) {
    subproof_ranges(m, Range{r.begin, r.begin + k}, b, out);
    out.push_back(Range{r.begin + k, r.end});
  } else {
    subproof_ranges(m - k, Range{r.begin + k, r.end}, false, out);
    out.push_back(Range{r.begin, r.begin + k});
  }
}

std::vector<NodeId> nodes_of(const std::vector<Range>& ranges) {
  std::vector<NodeId> out;
  for (const Range& r : ranges) {
    for (const NodeId& id : range_nodes(r)) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Result<std::vector<std::string>> hashes_of(const NodeMap& nodes, const std::vector<Range>& ranges) {
  std::vector<std::string> out;
  out.reserve(ranges.size());
  for (const Range& r : ranges) {
    auto h = range_hash(nodes, r);
    if (!h) return h.error();
    out.push_back(std::move(*h));
  }
  return out;
}

Error invalid(std::string message) { return Error::permanent("invalid_argument", std::move(message)); }
Error proof_invalid(std::string message) { return Error::permanent("proof_invalid", std::move(message)); }

Status check_size(const NodeSource& source, std::uint64_t size) {
  auto have = source.tree_size();
  if (!have) return have.error();
  if (size > *have) {
    return Error::permanent("out_of_range", "tree size " + std::to_string(size) + " asked, the log holds only " +
                                                std::to_string(*have) + " leaves");
  }
  return ok_status();
}

template <typename Compute>
auto fetch_and(const NodeSource& source, std::uint64_t size, const std::vector<NodeId>& ids, Compute compute)
    -> decltype(compute(NodeMap{})) {
  if (auto s = check_size(source, size); !s) return s.error();
  auto nodes = source.subtree_hashes(ids);
  if (!nodes) return nodes.error();
  return compute(*nodes);
}

bool is_hash(std::string_view h) { return h.size() == kHashSize; }

}  // namespace

std::string leaf_hash(std::string_view data) {
  std::string material(1, '\x00');
  material.append(data);
  return sha256_raw(material);
}

std::string node_hash(std::string_view left, std::string_view right) {
  std::string material(1, '\x01');
  material.append(left);
  material.append(right);
  return sha256_raw(material);
}

std::string empty_root() { return sha256_raw(""); }

Result<NodeMap> NodeSource::subtree_hashes(std::span<const NodeId> ids) const {
  NodeMap out;
  for (const NodeId& id : ids) {
    auto h = subtree_hash(id.level, id.index);
    if (!h) return h.error();
    out.emplace(id, std::move(*h));
  }
  return out;
}

std::vector<NodeId> needed_nodes_for_root(std::uint64_t size) { return range_nodes(Range{0, size}); }

std::vector<NodeId> needed_nodes_for_inclusion(std::uint64_t index, std::uint64_t size) {
  if (index >= size) return {};
  std::vector<Range> ranges;
  path_ranges(index, Range{0, size}, ranges);
  return nodes_of(ranges);
}

std::vector<NodeId> needed_nodes_for_consistency(std::uint64_t m, std::uint64_t n) {
  if (m == 0 || m > n) return {};
  std::vector<Range> ranges;
  if (m < n) subproof_ranges(m, Range{0, n}, true, ranges);
  return nodes_of(ranges);
}

Result<std::string> root_from(const NodeMap& nodes, std::uint64_t size) {
  if (size == 0) return empty_root();
  return range_hash(nodes, Range{0, size});
}

Result<std::vector<std::string>> inclusion_proof_from(const NodeMap& nodes, std::uint64_t index, std::uint64_t size) {
  if (index >= size) {
    return invalid("leaf index " + std::to_string(index) + " is not below tree size " + std::to_string(size));
  }
  std::vector<Range> ranges;
  path_ranges(index, Range{0, size}, ranges);
  return hashes_of(nodes, ranges);
}

Result<std::vector<std::string>> consistency_proof_from(const NodeMap& nodes, std::uint64_t m, std::uint64_t n) {
  if (m == 0 || m > n) {
    return invalid("consistency proof needs 0 < m <= n, got m=" + std::to_string(m) + " n=" + std::to_string(n));
  }
  std::vector<Range> ranges;
  if (m < n) subproof_ranges(m, Range{0, n}, true, ranges);
  return hashes_of(nodes, ranges);
}

Result<std::string> root(const NodeSource& source, std::uint64_t size) {
  return fetch_and(source, size, needed_nodes_for_root(size),
                   [size](const NodeMap& nodes) { return root_from(nodes, size); });
}

Result<std::vector<std::string>> inclusion_proof(const NodeSource& source, std::uint64_t index, std::uint64_t size) {
  if (index >= size) return inclusion_proof_from(NodeMap{}, index, size);
  return fetch_and(source, size, needed_nodes_for_inclusion(index, size),
                   [index, size](const NodeMap& nodes) { return inclusion_proof_from(nodes, index, size); });
}

Result<std::vector<std::string>> consistency_proof(const NodeSource& source, std::uint64_t m, std::uint64_t n) {
  if (m == 0 || m > n) return consistency_proof_from(NodeMap{}, m, n);
  return fetch_and(source, n, needed_nodes_for_consistency(m, n),
                   [m, n](const NodeMap& nodes) { return consistency_proof_from(nodes, m, n); });
}

Status verify_inclusion(std::string_view leaf, std::uint64_t index, std::uint64_t size,
                        std::span<const std::string> proof, std::string_view root_hash) {
  if (index >= size) return proof_invalid("leaf index " + std::to_string(index) + " is not below tree size");
  if (!is_hash(leaf) || !is_hash(root_hash)) return proof_invalid("leaf hash and root must be 32 bytes");
  std::uint64_t fn = index;
  std::uint64_t sn = size - 1;
  std::string r(leaf);
  for (const std::string& p : proof) {
    if (!is_hash(p)) return proof_invalid("a proof hash is not 32 bytes");
    if (sn == 0) return proof_invalid("proof is longer than the tree is deep");
    if ((fn & 1) != 0 || fn == sn) {
      r = node_hash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return proof_invalid("proof is shorter than the tree is deep");
  if (r != root_hash) return proof_invalid("recomputed root differs from the signed root");
  return ok_status();
}

Status verify_consistency(std::uint64_t m, std::uint64_t n, std::span<const std::string> proof,
                          std::string_view old_root, std::string_view new_root) {
  if (m > n) return proof_invalid("older tree is larger than the newer one");
  if (!is_hash(old_root) || !is_hash(new_root)) return proof_invalid("roots must be 32 bytes");
  if (m == n) {
    if (!proof.empty()) return proof_invalid("equal sizes need an empty proof");
    if (old_root != new_root) return proof_invalid("same size, different roots: the log was rewritten");
    return ok_status();
  }
  if (m == 0) {
    if (!proof.empty()) return proof_invalid("the empty tree needs an empty proof");
    return ok_status();
  }
  if (proof.empty()) return proof_invalid("empty proof for different sizes");
  for (const std::string& p : proof) {
    if (!is_hash(p)) return proof_invalid("a proof hash is not 32 bytes");
  }
  std::vector<std::string> path(proof.begin(), proof.end());
  if (std::has_single_bit(m)) path.insert(path.begin(), std::string(old_root));
  std::uint64_t fn = m - 1;
  std::uint64_t sn = n - 1;
  while ((fn & 1) != 0) {
    fn >>= 1;
    sn >>= 1;
  }
  std::string fr = path[0];
  std::string sr = path[0];
  for (std::size_t i = 1; i < path.size(); ++i) {
    const std::string& c = path[i];
    if (sn == 0) return proof_invalid("proof is longer than the tree is deep");
    if ((fn & 1) != 0 || fn == sn) {
      fr = node_hash(c, fr);
      sr = node_hash(c, sr);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      sr = node_hash(sr, c);
    }
    fn >>= 1;
    sn >>= 1;
  }
  if (sn != 0) return proof_invalid("proof is shorter than the tree is deep");
  if (fr != old_root) return proof_invalid("proof does not lead to the older root");
  if (sr != new_root) return proof_invalid("proof does not lead to the newer root");
  return ok_status();
}

void InMemoryTree::append_leaf_hash(std::string hash) {
  if (levels_.empty()) levels_.emplace_back();
  levels_[0].push_back(std::move(hash));
  std::size_t level = 0;
  // A node completes at level k+1 whenever level k gets an even count.
  while (levels_[level].size() % 2 == 0) {
    const auto& row = levels_[level];
    std::string parent = node_hash(row[row.size() - 2], row[row.size() - 1]);
    if (levels_.size() == level + 1) levels_.emplace_back();
    levels_[level + 1].push_back(std::move(parent));
    ++level;
  }
}

Result<std::string> InMemoryTree::subtree_hash(unsigned level, std::uint64_t index) const {
  if (level >= levels_.size() || index >= levels_[level].size()) {
    return Error::permanent("not_found", "subtree (level " + std::to_string(level) + ", index " +
                                             std::to_string(index) + ") is not complete in a tree of " +
                                             std::to_string(size()) + " leaves");
  }
  return levels_[level][index];
}

}  // namespace songda::evidence
