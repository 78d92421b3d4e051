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

namespace songda::evidence {
namespace {

using Json = nlohmann::json;

Error jcs_error(std::string message) { return Error::permanent("jcs", std::move(message)); }

// Decodes UTF-8 into UTF-16 code units; nullopt on malformed input (overlong
// forms, surrogates, values past U+10FFFF, truncated sequences).
std::optional<std::u16string> utf16_units(std::string_view s) {
  std::u16string out;
  out.reserve(s.size());
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
        return std::nullopt;
      }
      if (i + len > s.size()) return std::nullopt;
      for (std::size_t k = 1; k < len; ++k) {
        const auto cc = static_cast<unsigned char>(s[i + k]);
        if ((cc & 0xC0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (cc & 0x3Fu);
      }
      if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return std::nullopt;
      if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    }
    if (cp >= 0x10000) {
      const std::uint32_t v = cp - 0x10000;
      out.push_back(static_cast<char16_t>(0xD800 + (v >> 10)));
      out.push_back(static_cast<char16_t>(0xDC00 + (v & 0x3FF)));
    } else {
      out.push_back(static_cast<char16_t>(cp));
    }
    i += len;
  }
  return out;
}

// JSON.stringify's escaping: the two mandatory escapes, the five short forms,
// \u00xx (lowercase) for the other controls; everything else verbatim.
Status append_string(std::string& out, std::string_view s) {
  if (!utf16_units(s)) return jcs_error("string is not valid UTF-8; hint: decode the source text correctly first");
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
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

Status append_object(std::string& out, const Json& v) {
  std::vector<std::pair<std::u16string, const Json::object_t::value_type*>> members;
  members.reserve(v.size());
  for (const auto& member : v.get_ref<const Json::object_t&>()) {
    auto units = utf16_units(member.first);
    if (!units) return jcs_error("object member name is not valid UTF-8");
    members.emplace_back(std::move(*units), &member);
  }
  std::sort(members.begin(), members.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  out.push_back('{');
  bool first = true;
  for (const auto& [units, member] : members) {
    if (!first) out.push_back(',');
    first = false;
    if (auto s = append_string(out, member->first); !s) return s;
    out.push_back(':');
    if (auto s = append_value(out, member->second); !s) return s;
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

Result<std::string> canonicalize(const nlohmann::json& value) {
  std::string out;
  if (auto s = append_value(out, value); !s) return s.error();
  return out;
}

}  // namespace songda::evidence
