// RFC 9162 proofs, checked against a naive recursive implementation of the
// RFC's own definitions (MTH, PATH, PROOF/SUBPROOF) written here.
#include "gateway/evidence/merkle.h"

#include <gtest/gtest.h>

#include <bit>
#include <map>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "gateway/core/crypto.h"

namespace songda::evidence {
namespace {

using Hashes = std::vector<std::string>;
using Leaves = std::span<const std::string>;  // leaf hashes D[0:n]

// --- The RFC's definitions, literally -------------------------------------------------------------------------

std::uint64_t k_of(std::uint64_t n) {  // largest power of two < n
  std::uint64_t k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// The definitions over one list of leaf hashes; MTH is memoized by (first
// leaf, length) only to keep the exhaustive tests fast.
class Naive {
 public:
  explicit Naive(const Hashes& leaves) : all_(leaves) {}

  std::string mth(Leaves d) {
    if (d.empty()) return sha256_raw("");
    if (d.size() == 1) return d[0];
    const auto key = std::pair(static_cast<std::size_t>(d.data() - all_.data()), d.size());
    if (const auto it = memo_.find(key); it != memo_.end()) return it->second;
    const auto k = k_of(d.size());
    return memo_[key] = node_hash(mth(d.subspan(0, k)), mth(d.subspan(k)));
  }

  Hashes path(std::uint64_t m, Leaves d) {
    if (d.size() == 1) return {};
    const auto k = k_of(d.size());
    Hashes out;
    if (m < k) {
      out = path(m, d.subspan(0, k));
      out.push_back(mth(d.subspan(k)));
    } else {
      out = path(m - k, d.subspan(k));
      out.push_back(mth(d.subspan(0, k)));
    }
    return out;
  }

  Hashes subproof(std::uint64_t m, Leaves d, bool b) {
    if (m == d.size()) return b ? Hashes{} : Hashes{mth(d)};
    const auto k = k_of(d.size());
    Hashes out;
    if (m <= k) {
      out = subproof(m, d.subspan(0, k), b);
      out.push_back(mth(d.subspan(k)));
    } else {
      out = subproof(m - k, d.subspan(k), false);
      out.push_back(mth(d.subspan(0, k)));
    }
    return out;
  }

  // Over the first n leaves.
  std::string mth(std::size_t n) { return mth(Leaves(all_.data(), n)); }
  Hashes path(std::uint64_t m, std::size_t n) { return path(m, Leaves(all_.data(), n)); }
  Hashes proof(std::uint64_t m, std::size_t n) { return subproof(m, Leaves(all_.data(), n), true); }

 private:
  const Hashes& all_;
  std::map<std::pair<std::size_t, std::size_t>, std::string> memo_;
};

// --- Helpers ----------------------------------------------------------------------------------------------------

Hashes random_leaves(std::size_t n, std::mt19937_64& rng) {
  Hashes out;
  for (std::size_t i = 0; i < n; ++i) out.push_back(leaf_hash("record-" + std::to_string(rng())));
  return out;
}

InMemoryTree tree_of(const Hashes& leaves) {
  InMemoryTree t;
  for (const auto& h : leaves) t.append_leaf_hash(h);
  return t;
}

std::string flip(std::string s, std::size_t byte, int bit) {
  s[byte] = static_cast<char>(s[byte] ^ (1 << bit));
  return s;
}

std::string h(const char* hex) { return from_hex(hex); }

// Counts calls, to show a proof costs O(log n) lookups and one batch.
class CountingSource final : public NodeSource {
 public:
  explicit CountingSource(const InMemoryTree& t) : t_(t) {}
  Result<std::uint64_t> tree_size() const override { return t_.tree_size(); }
  Result<std::string> subtree_hash(unsigned level, std::uint64_t index) const override {
    ++single;
    return t_.subtree_hash(level, index);
  }
  Result<NodeMap> subtree_hashes(std::span<const NodeId> ids) const override {
    ++batches;
    nodes += ids.size();
    return NodeSource::subtree_hashes(ids);
  }
  mutable int single = 0;
  mutable int batches = 0;
  mutable std::size_t nodes = 0;

 private:
  const InMemoryTree& t_;
};

// --- Known answers (RFC 6962 / certificate-transparency reference vectors) --------------------------------------

TEST(Merkle, ReferenceRoots) {
  const std::vector<std::string> inputs = {"",
                                           h("00"),
                                           h("10"),
                                           h("2021"),
                                           h("3031"),
                                           h("40414243"),
                                           h("5051525354555657"),
                                           h("606162636465666768696a6b6c6d6e6f")};
  const char* roots[] = {"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
                         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
                         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
                         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
                         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
                         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
  InMemoryTree t;
  EXPECT_EQ(to_hex(*root(t, 0)), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  for (std::size_t n = 0; n < inputs.size(); ++n) {
    t.append_leaf(inputs[n]);
    EXPECT_EQ(to_hex(*root(t, n + 1)), roots[n]) << "size " << n + 1;
  }
  auto p0 = inclusion_proof(t, 0, 8);
  ASSERT_TRUE(p0.ok());
  EXPECT_EQ(*p0, (Hashes{h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                         h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                         h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")}));
  auto p5 = inclusion_proof(t, 5, 8);
  ASSERT_TRUE(p5.ok());
  EXPECT_EQ(*p5, (Hashes{h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                         h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                         h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")}));
}

// --- Against the naive implementation ---------------------------------------------------------------------------

void check_tree(Naive& naive, const Hashes& leaves, std::size_t n, const InMemoryTree& t, bool every_m) {
  const std::string expected_root = naive.mth(n);
  auto r = root(t, n);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(*r, expected_root) << "size " << n;
  for (std::uint64_t i = 0; i < n; ++i) {
    auto p = inclusion_proof(t, i, n);
    ASSERT_TRUE(p.ok()) << p.error().message;
    ASSERT_EQ(*p, naive.path(i, n)) << "index " << i << " size " << n;
    ASSERT_TRUE(verify_inclusion(leaves[i], i, n, *p, expected_root).ok()) << i << "/" << n;
  }
  for (std::uint64_t m = 1; m < n; m = every_m ? m + 1 : m * 2 + 1) {
    auto p = consistency_proof(t, m, n);
    ASSERT_TRUE(p.ok()) << p.error().message;
    ASSERT_EQ(*p, naive.proof(m, n)) << "m " << m << " n " << n;
    ASSERT_TRUE(verify_consistency(m, n, *p, naive.mth(m), expected_root).ok()) << m << "->" << n;
  }
}

TEST(Merkle, ExhaustiveSmallTreesMatchTheRfcDefinitions) {
  std::mt19937_64 rng(9162);
  const Hashes leaves = random_leaves(300, rng);
  const InMemoryTree t = tree_of(leaves);
  Naive naive(leaves);
  for (std::size_t n = 1; n <= 300; ++n) check_tree(naive, leaves, n, t, n <= 64);
}

TEST(Merkle, RandomLargeTreesMatchTheRfcDefinitions) {
  std::mt19937_64 rng(6962);
  const Hashes leaves = random_leaves(5000, rng);
  const InMemoryTree t = tree_of(leaves);
  Naive naive(leaves);
  for (int round = 0; round < 6; ++round) {
    const std::size_t n = 301 + rng() % 4700;
    const std::string expected_root = naive.mth(n);
    ASSERT_EQ(*root(t, n), expected_root);
    for (int j = 0; j < 12; ++j) {
      const std::uint64_t i = rng() % n;
      auto p = inclusion_proof(t, i, n);
      ASSERT_TRUE(p.ok());
      ASSERT_EQ(*p, naive.path(i, n));
      ASSERT_TRUE(verify_inclusion(leaves[i], i, n, *p, expected_root).ok());
      const std::uint64_t m = 1 + rng() % n;
      auto c = consistency_proof(t, m, n);
      ASSERT_TRUE(c.ok());
      ASSERT_EQ(*c, naive.proof(m, n));
      ASSERT_TRUE(verify_consistency(m, n, *c, naive.mth(m), expected_root).ok());
    }
  }
}

TEST(Merkle, ProofsCostLogarithmicLookupsInOneBatch) {
  std::mt19937_64 rng(1);
  const Hashes leaves = random_leaves(5000, rng);
  const InMemoryTree t = tree_of(leaves);
  const CountingSource source(t);
  ASSERT_TRUE(inclusion_proof(source, 1234, 4999).ok());
  EXPECT_EQ(source.batches, 1);
  EXPECT_LE(source.nodes, 2u * 13u);  // ⌈log2 5000⌉ = 13
  ASSERT_TRUE(consistency_proof(source, 777, 4999).ok());
  EXPECT_EQ(source.batches, 2);
  EXPECT_LE(source.nodes, 4u * 13u);
  const auto ids = needed_nodes_for_root(4999);
  EXPECT_EQ(ids.size(), static_cast<std::size_t>(std::popcount(4999u)));
}

TEST(Merkle, BatchedPathEqualsDirectPath) {
  std::mt19937_64 rng(2);
  const Hashes leaves = random_leaves(777, rng);
  const InMemoryTree t = tree_of(leaves);
  const auto ids = needed_nodes_for_inclusion(500, 700);
  auto nodes = t.subtree_hashes(ids);
  ASSERT_TRUE(nodes.ok());
  EXPECT_EQ(*inclusion_proof_from(*nodes, 500, 700), *inclusion_proof(t, 500, 700));
  const auto cids = needed_nodes_for_consistency(300, 700);
  auto cnodes = t.subtree_hashes(cids);
  ASSERT_TRUE(cnodes.ok());
  EXPECT_EQ(*consistency_proof_from(*cnodes, 300, 700), *consistency_proof(t, 300, 700));
  auto missing = inclusion_proof_from(NodeMap{}, 500, 700);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, "not_found");
}

// --- Tampering --------------------------------------------------------------------------------------------------

TEST(Merkle, AnyFlippedBitBreaksInclusion) {
  std::mt19937_64 rng(3);
  const Hashes leaves = random_leaves(37, rng);
  const InMemoryTree t = tree_of(leaves);
  const std::uint64_t n = 37;
  const std::string r = *root(t, n);
  for (std::uint64_t i : {0u, 5u, 31u, 32u, 36u}) {
    const Hashes p = *inclusion_proof(t, i, n);
    for (std::size_t byte = 0; byte < kHashSize; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        EXPECT_FALSE(verify_inclusion(flip(leaves[i], byte, bit), i, n, p, r).ok());
        EXPECT_FALSE(verify_inclusion(leaves[i], i, n, p, flip(r, byte, bit)).ok());
        for (std::size_t k = 0; k < p.size(); ++k) {
          Hashes bad = p;
          bad[k] = flip(bad[k], byte, bit);
          EXPECT_FALSE(verify_inclusion(leaves[i], i, n, bad, r).ok());
        }
      }
    }
    // Wrong index, truncated or extended proof.
    for (std::uint64_t j = 0; j < n; ++j) {
      if (j != i) {
        EXPECT_FALSE(verify_inclusion(leaves[i], j, n, p, r).ok()) << i << " as " << j;
      }
    }
    // (A neighbouring tree size can share the proof's shape; that is why the
    // size is signed together with the root in the checkpoint.)
    EXPECT_FALSE(verify_inclusion(leaves[i], i, n, Hashes(p.begin(), p.end() - 1), r).ok());
    Hashes longer = p;
    longer.push_back(r);
    EXPECT_FALSE(verify_inclusion(leaves[i], i, n, longer, r).ok());
  }
  EXPECT_FALSE(verify_inclusion(leaves[0], 37, 37, Hashes{}, r).ok());
}

TEST(Merkle, AnyFlippedBitBreaksConsistency) {
  std::mt19937_64 rng(4);
  const Hashes leaves = random_leaves(50, rng);
  const InMemoryTree t = tree_of(leaves);
  for (auto [m, n] : {std::pair<std::uint64_t, std::uint64_t>{7, 50}, {8, 50}, {1, 50}, {32, 33}, {49, 50}}) {
    const Hashes p = *consistency_proof(t, m, n);
    const std::string r1 = *root(t, m);
    const std::string r2 = *root(t, n);
    ASSERT_TRUE(verify_consistency(m, n, p, r1, r2).ok());
    for (std::size_t byte = 0; byte < kHashSize; ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        EXPECT_FALSE(verify_consistency(m, n, p, flip(r1, byte, bit), r2).ok());
        EXPECT_FALSE(verify_consistency(m, n, p, r1, flip(r2, byte, bit)).ok());
        for (std::size_t k = 0; k < p.size(); ++k) {
          Hashes bad = p;
          bad[k] = flip(bad[k], byte, bit);
          EXPECT_FALSE(verify_consistency(m, n, bad, r1, r2).ok()) << m << "->" << n << " element " << k;
        }
      }
    }
    EXPECT_FALSE(verify_consistency(m, n, Hashes{}, r1, r2).ok());
    EXPECT_FALSE(verify_consistency(m + 1, n, p, r1, r2).ok());
  }
}

TEST(Merkle, TrivialAndInvalidConsistencyCases) {
  std::mt19937_64 rng(5);
  const InMemoryTree t = tree_of(random_leaves(10, rng));
  const std::string r = *root(t, 10);
  EXPECT_TRUE(verify_consistency(10, 10, Hashes{}, r, r).ok());
  EXPECT_FALSE(verify_consistency(10, 10, Hashes{}, r, *root(t, 9)).ok());
  EXPECT_TRUE(verify_consistency(0, 10, Hashes{}, empty_root(), r).ok());
  EXPECT_FALSE(verify_consistency(11, 10, Hashes{}, r, r).ok());
  EXPECT_TRUE(consistency_proof(t, 10, 10)->empty());
  EXPECT_EQ(consistency_proof(t, 0, 10).error().code, "invalid_argument");
  EXPECT_EQ(consistency_proof(t, 5, 11).error().code, "out_of_range");
  EXPECT_EQ(inclusion_proof(t, 10, 10).error().code, "invalid_argument");
  EXPECT_EQ(inclusion_proof(t, 3, 11).error().code, "out_of_range");
  EXPECT_EQ(t.subtree_hash(1, 5).error().code, "not_found");  // leaves 10..11 not complete
}

// A log that grows in chunks: each new checkpoint is consistent with the one
// before it and with the very first.
TEST(Merkle, ThousandSuccessiveSizesStayConsistent) {
  std::mt19937_64 rng(6);
  InMemoryTree t;
  t.append_leaf("genesis");
  const std::uint64_t first_size = 1;
  const std::string first_root = *root(t, 1);
  std::uint64_t prev_size = first_size;
  std::string prev_root = first_root;
  for (int step = 0; step < 1000; ++step) {
    const int chunk = 1 + static_cast<int>(rng() % 4);
    for (int c = 0; c < chunk; ++c) t.append_leaf("r" + std::to_string(rng()));
    const std::uint64_t n = t.size();
    const std::string r = *root(t, n);
    auto from_prev = consistency_proof(t, prev_size, n);
    ASSERT_TRUE(from_prev.ok());
    ASSERT_TRUE(verify_consistency(prev_size, n, *from_prev, prev_root, r).ok()) << prev_size << "->" << n;
    auto from_first = consistency_proof(t, first_size, n);
    ASSERT_TRUE(from_first.ok());
    ASSERT_TRUE(verify_consistency(first_size, n, *from_first, first_root, r).ok());
    prev_size = n;
    prev_root = r;
  }
  EXPECT_GT(t.size(), 1000u);
}

}  // namespace
}  // namespace songda::evidence
