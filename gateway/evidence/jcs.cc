#include "gateway/evidence/jcs.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "gateway/core/text.h"

namespace songda::evidence {
namespace {

using Json = nlohmann::json;

Error jcs_error(std::string message) { return Error::permanent("jcs", std::move(message)); }

// Walks the code points of UTF-8 text, calling emit(code point) for each; false on malformed
// input (overlong forms, surrogates, values past U+10FFFF, truncated sequences).
template <typename Emit>
bool for_each_code_point(std::string_view s, Emit&& emit) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 1;
    std::uint32_t cp = c;
    if (c >= 0x80) {
      if ((c & 0xE0) == 0xC0) {
        len = 2;
        cp = c & 0x1Fu;
      } else if ((c & 0xF0) == 0xE0) {
        len = 3;
        cp = c & 0x0Fu;
      } else if ((c & 0xF8) == 0xF0) {
        len = 4;
        cp = c & 0x07u;
      } else {
        return false;
      }
      if (i + len > s.size()) return false;
      for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return false;
        cp = (cp << 6) | (cc & 0x3Fu);
      }
      if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    }
    emit(cp);
    i += len;
  }
  return true;
}

// UTF-8 text as UTF-16 code units (the order JCS sorts member names in); nullopt when malformed.
std::optional<std::u16string> utf16_units(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
  const bool ok = for_each_code_point(s, [&out](std::uint32_t cp) {
    if (cp >= 0x10000) {
      const std::uint32_t v = cp - 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (v >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (v & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
  });
  if (!ok) return std::nullopt;
  return out;
}

// JSON.stringify's escaping (append_json_string), for valid UTF-8 only.
Status append_string(std::string& out, std::string_view s) {
  if (!append_json_string(out, s)) {
    return jcs_error("string is not valid UTF-8; hint: decode the source text correctly first");
  }
  return ok_status();
}

// Shortest round-trip digits and decimal exponent of a finite, non-zero |d|:
// d = 0.DIGITS × 10^point (ECMAScript's s and n, with k = digits.size()).
struct Decimal {
  std::string digits;
  int point = 0;
};

Decimal shortest_decimal(double magnitude) {
  std::array<char, 64> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), magnitude, std::chars_format::scientific);
  const std::string_view text(buf.data(), static_cast<std::size_t>(res.ptr - buf.data()));  // "d.ddde±XX"
  const std::size_t e = text.find('e');
  Decimal out;
  for (const char c : text.substr(0, e)) {
    if (c != '.') out.digits.push_back(c);
  }
  while (out.digits.size() > 1 && out.digits.back() == '0') out.digits.pop_back();
  int exponent = 0;
  std::string_view exp_text = text.substr(e + 1);
  if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  out.point = exponent + 1;
  return out;
}

// ECMAScript Number::toString(x) steps 6–10 for the digits s (k of them) and n.
std::string es_layout(const Decimal& d) {
  const int k = static_cast<int>(d.digits.size());
  const int n = d.point;
  if (k <= n && n <= 21) return d.digits + std::string(static_cast<std::size_t>(n - k), '0');
  if (0 < n && n <= 21) {
    return d.digits.substr(0, static_cast<std::size_t>(n)) + "." + d.digits.substr(static_cast<std::size_t>(n));
  }
  if (-6 < n && n <= 0) return "0." + std::string(static_cast<std::size_t>(-n), '0') + d.digits;
  const int e = n - 1;
  std::string out = d.digits.substr(0, 1);
  if (k > 1) out += "." + d.digits.substr(1);
  out += e < 0 ? "e-" : "e+";
  out += std::to_string(e < 0 ? -e : e);
  return out;
}

Status append_value(std::string& out, const Json& v);

Status append_member(std::string& out, bool first, const Json::object_t::value_type& member) {
  if (!first) out.push_back(',');
  // append_string fails only on bad UTF-8; for a name, say so
  if (!append_string(out, member.first)) return jcs_error("object member name is not valid UTF-8");
  out.push_back(':');
  return append_value(out, member.second);
}

// JCS orders member names by their UTF-16 code units. nlohmann keeps them in a std::map, ordered by
// their UTF-8 bytes, which is code point order; the two orders differ only where a name holds a code
// point past U+FFFF (a surrogate pair sorts before U+E000–U+FFFF), i.e. a 4-byte UTF-8 sequence
// (lead byte 0xF0 or above). Without one the map's order is used as it is, with no copy.
Status append_object(std::string& out, const Json& v) {
  const auto& object = v.get_ref<const Json::object_t&>();
  const bool map_order_is_jcs_order = std::none_of(object.begin(), object.end(), [](const auto& member) {
    return std::any_of(member.first.begin(), member.first.end(),
                       [](char c) { return static_cast<unsigned char>(c) >= 0xF0; });
  });
  out.push_back('{');
  if (map_order_is_jcs_order) {
    bool first = true;
    for (const auto& member : object) {
      if (auto s = append_member(out, first, member); !s) return s;
      first = false;
    }
  } else {
    std::vector<std::pair<std::u16string, const Json::object_t::value_type*>> members;
    members.reserve(object.size());
    for (const auto& member : object) {
      auto units = utf16_units(member.first);
      if (!units) return jcs_error("object member name is not valid UTF-8");
      members.emplace_back(std::move(*units), &member);
    }
    std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    bool first = true;
    for (const auto& [units, member] : members) {
      if (auto s = append_member(out, first, *member); !s) return s;
      first = false;
    }
  }
  out.push_back('}');
  return ok_status();
}

Status append_array(std::string& out, const Json& v) {
  out.push_back('[');
  bool first = true;
  for (const auto& element : v) {
    if (!first) out.push_back(',');
    first = false;
    if (auto s = append_value(out, element); !s) return s;
  }
  out.push_back(']');
  return ok_status();
}

Status append_value(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null:
      out += "null";
      return ok_status();
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      return ok_status();
    case Json::value_t::number_integer:
      out += std::to_string(v.get<std::int64_t>());
      return ok_status();
    case Json::value_t::number_unsigned:
      out += std::to_string(v.get<std::uint64_t>());
      return ok_status();
    case Json::value_t::number_float: {
      auto text = format_double(v.get<double>());
      if (!text) return text.error();
      out += *text;
      return ok_status();
    }
    case Json::value_t::string:
      return append_string(out, v.get_ref<const std::string&>());
    case Json::value_t::object:
      return append_object(out, v);
    case Json::value_t::array:
      return append_array(out, v);
    case Json::value_t::binary:
    case Json::value_t::discarded:
      break;
  }
  return jcs_error("value has no JSON text form (binary or discarded)");
}

}  // namespace

Result<std::string> format_double(double d) {
  if (!std::isfinite(d)) return jcs_error("NaN and Infinity have no JSON form; hint: store such values as strings");
  if (d == 0.0) return std::string("0");  // also -0
  std::string out = d < 0 ? "-" : "";
  out += es_layout(shortest_decimal(std::fabs(d)));
  return out;
}

Status append_canonical(std::string& out, const nlohmann::json& value) { return append_value(out, value); }

Status append_canonical_string(std::string& out, std::string_view value) { return append_string(out, value); }

Result<std::string> canonicalize(const nlohmann::json& value) {
  std::string out;
  out.reserve(512);  // an evidence record's canonical form is a few hundred bytes
  if (auto s = append_value(out, value); !s) return s.error();
  return out;
}

}  // namespace songda::evidence
