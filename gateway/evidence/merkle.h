// RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and their
// verification, over any store that can hand out the hashes of COMPLETE
// subtrees.
//
// Hashes are raw 32-byte SHA-256 strings (not hex). A complete subtree is named
// by NodeId{level, index}: it covers leaves [index·2^level, (index+1)·2^level).
// Any Merkle Tree Hash MTH(D[a:b]) that RFC 9162 needs for a root or a proof is
// the right fold of O(log n) complete subtrees, so a store answers a proof in
// O(log n) lookups. For a store behind the network (Redis) use the batched
// form: needed_nodes_for_*() lists every NodeId up front, the store fetches
// them in one round trip, and *_from(NodeMap) computes the answer.
//
// Ownership: NodeSource implementations own their storage; the free functions
// keep nothing. Thread-safety: the free functions are pure; InMemoryTree is a
// plain value (concurrent const use is safe, appends need external locking).
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/result.h"

namespace songda::evidence {

inline constexpr std::size_t kHashSize = 32;

std::string leaf_hash(std::string_view data);                          // SHA-256(0x00 ‖ data)
std::string node_hash(std::string_view left, std::string_view right);  // SHA-256(0x01 ‖ left ‖ right)
std::string empty_root();                                              // MTH({}) = SHA-256("")

struct NodeId {
  unsigned level = 0;
  std::uint64_t index = 0;
  friend bool operator==(const NodeId& a, const NodeId& b) { return a.level == b.level && a.index == b.index; }
  friend bool operator<(const NodeId& a, const NodeId& b) {
    return a.level != b.level ? a.level < b.level : a.index < b.index;
  }
};
using NodeMap = std::map<NodeId, std::string>;

// A read view of an append-only tree's complete subtrees.
class NodeSource {
 public:
  virtual ~NodeSource() = default;
  // Number of leaves. Errors are the store's (e.g. "redis_unavailable", retryable).
  [[nodiscard]] virtual Result<std::uint64_t> tree_size() const = 0;
  // Hash of a complete subtree. Error "not_found" if it is not complete (yet).
  [[nodiscard]] virtual Result<std::string> subtree_hash(unsigned level, std::uint64_t index) const = 0;
  // Many at once; the default asks subtree_hash() one by one. Stores override
  // this to answer in one round trip. Fails as a whole if any node is missing.
  [[nodiscard]] virtual Result<NodeMap> subtree_hashes(std::span<const NodeId> ids) const;
};

// The complete subtrees whose hashes each computation reads (sorted, unique).
// Empty when the arguments are out of range (the *_from functions then fail).
std::vector<NodeId> needed_nodes_for_root(std::uint64_t size);
std::vector<NodeId> needed_nodes_for_inclusion(std::uint64_t index, std::uint64_t size);
std::vector<NodeId> needed_nodes_for_consistency(std::uint64_t m, std::uint64_t n);

// Computations from fetched nodes. Errors: "invalid_argument" (index ≥ size,
// m > n, m == 0 for a proof), "not_found" (a needed node is absent from the map).
Result<std::string> root_from(const NodeMap& nodes, std::uint64_t size);
Result<std::vector<std::string>> inclusion_proof_from(const NodeMap& nodes, std::uint64_t index, std::uint64_t size);
Result<std::vector<std::string>> consistency_proof_from(const NodeMap& nodes, std::uint64_t m, std::uint64_t n);

// Convenience: one subtree_hashes() call, after checking `size`/`n` against
// source.tree_size(). Errors as above plus "out_of_range" and the store's.
Result<std::string> root(const NodeSource& source, std::uint64_t size);
Result<std::vector<std::string>> inclusion_proof(const NodeSource& source, std::uint64_t index, std::uint64_t size);
Result<std::vector<std::string>> consistency_proof(const NodeSource& source, std::uint64_t m, std::uint64_t n);

// RFC 9162 §2.1.3.2. ok, or Error "proof_invalid" whose message says why.
Status verify_inclusion(std::string_view leaf_hash, std::uint64_t index, std::uint64_t size,
                        std::span<const std::string> proof, std::string_view root);

// RFC 9162 §2.1.4.2, plus the trivial cases: m == n needs an empty proof and
// equal roots; m == 0 (the empty tree) needs an empty proof.
Status verify_consistency(std::uint64_t m, std::uint64_t n, std::span<const std::string> proof,
                          std::string_view old_root, std::string_view new_root);

// Keeps every complete subtree hash of every level in memory.
class InMemoryTree final : public NodeSource {
 public:
  void append_leaf_hash(std::string hash);  // a 32-byte leaf hash
  void append_leaf(std::string_view data) { append_leaf_hash(leaf_hash(data)); }
  [[nodiscard]] std::uint64_t size() const { return levels_.empty() ? 0 : levels_[0].size(); }

  [[nodiscard]] Result<std::uint64_t> tree_size() const override { return size(); }
  [[nodiscard]] Result<std::string> subtree_hash(unsigned level, std::uint64_t index) const override;

 private:
  std::vector<std::vector<std::string>> levels_;  // levels_[k][i] = NodeId{k, i}
};

}  // namespace songda::evidence
