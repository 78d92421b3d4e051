#include "channels/sms/segments.h"

namespace songda::sms {
namespace {

constexpr char32_t kInvalid = 0xFFFD;

// Decodes one code point at s[i] and advances i; a malformed sequence yields
// U+FFFD and advances one byte.
char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t len = 0;
  char32_t cp = 0;
  if (c < 0x80) {
    ++i;
    return c;
  }
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    ++i;
    return kInvalid;
  }
  if (i + len > s.size()) {
    ++i;
    return kInvalid;
  }
  for (std::size_t k = 1; k < len; ++k) {
    const auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) {
      ++i;
      return kInvalid;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += len;
  return cp;
}

// GSM 03.38 basic character set beyond ASCII letters, digits and 0x20-0x3F
// (which are all in it, '$' included), as Unicode code points; ESC excluded.
constexpr char32_t kGsm7BasicOther[] = {
    U'@', U'_', U'\n', U'\r', U'£', U'¥', U'è', U'é', U'ù', U'ì', U'ò', U'Ç', U'Ø', U'ø', U'Å',
    U'å', U'Δ', U'Φ',  U'Γ',  U'Λ', U'Ω', U'Π', U'Ψ', U'Σ', U'Θ', U'Ξ', U'Æ', U'æ', U'ß', U'É',
    U'¤', U'¡', U'Ä',  U'Ö',  U'Ñ', U'Ü', U'§', U'¿', U'ä', U'ö', U'ñ', U'ü', U'à',
};

// GSM 03.38 extension table: sent as ESC + character, so each counts 2.
constexpr char32_t kGsm7Extension[] = {U'|', U'^', U'{', U'}', U'[', U']', U'~', U'\\', U'\f', U'€'};

template <std::size_t N>
bool contains(const char32_t (&table)[N], char32_t cp) {
  for (const char32_t c : table) {
    if (c == cp) return true;
  }
  return false;
}

bool gsm7_basic(char32_t cp) {
  if ((cp >= U'A' && cp <= U'Z') || (cp >= U'a' && cp <= U'z') || (cp >= 0x20 && cp <= 0x3F)) return true;
  return contains(kGsm7BasicOther, cp);
}

bool gsm7_extension(char32_t cp) { return contains(kGsm7Extension, cp); }

int segments_for(std::size_t units, std::size_t single, std::size_t per_segment) {
  if (units == 0) return 0;
  if (units <= single) return 1;
  return static_cast<int>((units + per_segment - 1) / per_segment);
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < s.size();) {
    next_code_point(s, i);
    ++n;
  }
  return n;
}

}  // namespace

bool is_gsm7(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const char32_t cp = next_code_point(text, i);
    if (!gsm7_basic(cp) && !gsm7_extension(cp)) return false;
  }
  return true;
}

SmsLength measure_mainland(std::string_view sign_name, std::string_view content) {
  SmsLength out;
  // 【 and 】 are one character each.
  out.characters = code_points(content) + (sign_name.empty() ? 0 : code_points(sign_name) + 2);
  out.segments = segments_for(out.characters, 70, 67);
  out.encoding = Encoding::kUcs2;
  out.too_long = out.characters > kMainlandMaxCharacters;
  return out;
}

SmsLength measure_international(std::string_view text) {
  SmsLength out;
  if (is_gsm7(text)) {
    std::size_t septets = 0;
    for (std::size_t i = 0; i < text.size();) septets += gsm7_extension(next_code_point(text, i)) ? 2 : 1;
    out.characters = septets;
    out.segments = segments_for(septets, 160, 153);
    out.encoding = Encoding::kGsm7;
    return out;
  }
  std::size_t units = 0;
  for (std::size_t i = 0; i < text.size();) units += next_code_point(text, i) > 0xFFFF ? 2 : 1;
  out.characters = units;
  out.segments = segments_for(units, 70, 67);
  out.encoding = Encoding::kUcs2;
  return out;
}

}  // namespace songda::sms
