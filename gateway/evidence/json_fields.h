// Internal to songda_evidence: strict readers for the evidence JSON shapes.
// Evidence is parsed strictly (unknown members refused, hex lowercase only,
// base64 canonical only) so that every byte of a serialized proof carries
// meaning: two different texts never parse to the same value unnoticed.
// Ownership: a FieldReader refers to the JSON it reads (which must outlive
// it). Pure functions; thread-safe; never throw.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"

namespace songda::evidence::detail {

// `where` names the object in messages ("checkpoint", "record ev-…").
class FieldReader {
 public:
  FieldReader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}

  // Refuses a non-object or any member outside required ∪ optional; requires `required`.
  Status expect_members(std::initializer_list<std::string_view> required,
                        std::initializer_list<std::string_view> optional = {}) const;

  [[nodiscard]] bool has(std::string_view key) const { return j_.contains(key); }
  Result<std::string> string(std::string_view key) const;  // any string (may be empty)
  Result<std::string> nonempty_string(std::string_view key) const;
  Result<std::uint64_t> uint(std::string_view key) const;                    // integer ≥ 0
  Result<std::int64_t> int64(std::string_view key) const;                    // integer
  Result<std::string> hex_bytes(std::string_view key, std::size_t n) const;  // lowercase hex of n bytes → raw
  Result<std::string> base64_bytes(std::string_view key) const;              // canonical base64 → raw, non-empty
  Result<std::vector<std::string>> string_array(std::string_view key) const;

  [[nodiscard]] Error error(const std::string& message) const;

 private:
  const nlohmann::json& j_;
  std::string where_;
};

// Lowercase hex of exactly n bytes → raw; nullopt otherwise.
std::optional<std::string> strict_hex(std::string_view text, std::size_t n);
// Whether text is lowercase hex of exactly n bytes (strict_hex without decoding it).
bool is_strict_hex(std::string_view text, std::size_t n);
// Base64 that re-encodes to itself → raw; nullopt otherwise (or when empty).
std::optional<std::string> strict_base64(std::string_view text);

}  // namespace songda::evidence::detail
