#include "gateway/evidence/json_fields.h"

#include <algorithm>

#include "gateway/core/crypto.h"

namespace songda::evidence::detail {

bool is_strict_hex(std::string_view text, std::size_t n) {
  return text.size() == 2 * n &&
         std::all_of(text.begin(), text.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

std::optional<std::string> strict_hex(std::string_view text, std::size_t n) {
  if (!is_strict_hex(text, n)) return std::nullopt;
  return from_hex(text);
}

std::optional<std::string> strict_base64(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::string raw = base64_decode(text);
  if (raw.empty() || base64_encode(raw) != text) return std::nullopt;
  return raw;
}

Error FieldReader::error(const std::string& message) const {
  return Error::permanent("schema", where_ + ": " + message);
}

Status FieldReader::expect_members(std::initializer_list<std::string_view> required,
                                   std::initializer_list<std::string_view> optional) const {
  if (!j_.is_object()) return error("is not a JSON object");
  for (const std::string_view key : required) {
    if (!j_.contains(key)) return error("member \"" + std::string(key) + "\" is missing");
  }
  for (const auto& item : j_.items()) {
    const std::string& key = item.key();
    const auto known = [&key](std::string_view k) { return k == key; };
    if (std::none_of(required.begin(), required.end(), known) &&
        std::none_of(optional.begin(), optional.end(), known)) {
      return error("unknown member \"" + key + "\"");
    }
  }
  return ok_status();
}

Result<std::string> FieldReader::string(std::string_view key) const {
  const auto it = j_.find(key);
  if (it == j_.end() || !it->is_string()) return error("\"" + std::string(key) + "\" must be a string");
  return it->get<std::string>();
}

Result<std::string> FieldReader::nonempty_string(std::string_view key) const {
  auto s = string(key);
  if (s.ok() && s->empty()) return error("\"" + std::string(key) + "\" must not be empty");
  return s;
}

Result<std::uint64_t> FieldReader::uint(std::string_view key) const {
  const auto it = j_.find(key);
  // Text parses non-negative integers as unsigned; values built in code may be signed.
  const bool non_negative =
      it != j_.end() && (it->is_number_unsigned() || (it->is_number_integer() && it->get<std::int64_t>() >= 0));
  if (!non_negative) {
    return error("\"" + std::string(key) + "\" must be a non-negative integer");
  }
  return it->get<std::uint64_t>();
}

Result<std::int64_t> FieldReader::int64(std::string_view key) const {
  const auto it = j_.find(key);
  if (it == j_.end() || !it->is_number_integer()) return error("\"" + std::string(key) + "\" must be an integer");
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
    return error("\"" + std::string(key) + "\" is too large");
  }
  return it->get<std::int64_t>();
}

Result<std::string> FieldReader::hex_bytes(std::string_view key, std::size_t n) const {
  auto s = string(key);
  if (!s) return s.error();
  auto raw = strict_hex(*s, n);
  if (!raw) return error("\"" + std::string(key) + "\" must be " + std::to_string(2 * n) + " lowercase hex digits");
  return *raw;
}

Result<std::string> FieldReader::base64_bytes(std::string_view key) const {
  auto s = string(key);
  if (!s) return s.error();
  auto raw = strict_base64(*s);
  if (!raw) return error("\"" + std::string(key) + "\" must be canonical, non-empty base64");
  return *raw;
}

Result<std::vector<std::string>> FieldReader::string_array(std::string_view key) const {
  const auto it = j_.find(key);
  if (it == j_.end() || !it->is_array()) return error("\"" + std::string(key) + "\" must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : *it) {
    if (!e.is_string()) return error("\"" + std::string(key) + "\" must be an array of strings");
    out.push_back(e.get<std::string>());
  }
  return out;
}

}  // namespace songda::evidence::detail
