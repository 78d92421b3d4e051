// SMS length and billing rules (shared/reference/provider-apis.md, "SMS length
// and billing"), computed before sending so the planner and the adapters know
// the billed count and refuse texts the provider would refuse.
//
//   Mainland China: "【" + signature + "】" + content; every character counts 1
//   (code points); at most 500; up to 70 is one message, longer texts go in
//   67-character segments.
//   International: pure GSM-7 is 160 / 153 per segment, the extension
//   characters | ^ € { } [ ] ~ \ (and form feed) counting 2; any other character
//   switches the whole text to UCS-2 at 70 / 67, counted in UTF-16 units (a
//   character outside the BMP, such as most emoji, takes 2).
//
// Invalid UTF-8 bytes count as one character each (they would be replaced).
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <string_view>

namespace songda::sms {

enum class Encoding { kGsm7, kUcs2 };

struct SmsLength {
  std::size_t characters = 0;  // as billed: code points (mainland), septets (GSM-7) or UTF-16 units (UCS-2)
  int segments = 0;            // billed messages; 0 for an empty text
  Encoding encoding = Encoding::kUcs2;
  bool too_long = false;  // over the provider's limit (mainland: 500 characters)
};

inline constexpr std::size_t kMainlandMaxCharacters = 500;

// Mainland text as the handset shows it. An empty sign_name means `content`
// already holds the signature (nothing is added). Encoding is reported as UCS-2.
SmsLength measure_mainland(std::string_view sign_name, std::string_view content);

// International text (no signature added).
SmsLength measure_international(std::string_view text);

// True when every character of `text` is in the GSM 03.38 basic or extension table.
bool is_gsm7(std::string_view text);

}  // namespace songda::sms
