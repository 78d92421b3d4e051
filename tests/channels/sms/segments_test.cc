// SMS length rules of provider-apis.md: mainland 70 / 67 with the 【signature】,
// 500 at most; international GSM-7 160 / 153 with double-count characters,
// otherwise UCS-2 70 / 67.
#include "channels/sms/segments.h"

#include <gtest/gtest.h>

#include <string>

namespace songda::sms {
namespace {

std::string repeat(std::string_view s, std::size_t n) {
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST(MainlandSegments, SeventyIsOneSeventyOneIsTwo) {
  EXPECT_EQ(measure_mainland("", repeat("字", 70)).segments, 1);
  EXPECT_EQ(measure_mainland("", repeat("字", 71)).segments, 2);
  const SmsLength l = measure_mainland("", repeat("字", 71));
  EXPECT_EQ(l.characters, 71u);
  EXPECT_EQ(l.encoding, Encoding::kUcs2);
  EXPECT_FALSE(l.too_long);
}

TEST(MainlandSegments, HundredSixtyChineseCharactersAreThree) {
  EXPECT_EQ(measure_mainland("", repeat("通", 160)).segments, 3);
  EXPECT_EQ(measure_mainland("", repeat("通", 134)).segments, 2);
  EXPECT_EQ(measure_mainland("", repeat("通", 135)).segments, 3);
}

TEST(MainlandSegments, SignatureWithBracketsCounts) {
  // 【法院】 = 4 characters.
  EXPECT_EQ(measure_mainland("法院", repeat("字", 66)).characters, 70u);
  EXPECT_EQ(measure_mainland("法院", repeat("字", 66)).segments, 1);
  EXPECT_EQ(measure_mainland("法院", repeat("字", 67)).segments, 2);
}

TEST(MainlandSegments, EveryCharacterCountsOneIncludingAscii) {
  EXPECT_EQ(measure_mainland("", repeat("a", 70)).segments, 1);
  EXPECT_EQ(measure_mainland("", repeat("a", 71)).segments, 2);
  EXPECT_EQ(measure_mainland("", "案号(2026)京0105民初123号").characters, 19u);
}

TEST(MainlandSegments, AtMost500Characters) {
  EXPECT_FALSE(measure_mainland("法院", repeat("字", 496)).too_long);
  const SmsLength l = measure_mainland("法院", repeat("字", 497));
  EXPECT_EQ(l.characters, 501u);
  EXPECT_TRUE(l.too_long);
}

TEST(MainlandSegments, EmptyIsNothing) {
  EXPECT_EQ(measure_mainland("", "").segments, 0);
  EXPECT_EQ(measure_mainland("法院", "").segments, 1);
}

TEST(InternationalSegments, Gsm7Is160Then153) {
  EXPECT_EQ(measure_international(repeat("a", 160)).segments, 1);
  EXPECT_EQ(measure_international(repeat("a", 161)).segments, 2);
  EXPECT_EQ(measure_international(repeat("a", 306)).segments, 2);
  EXPECT_EQ(measure_international(repeat("a", 307)).segments, 3);
  EXPECT_EQ(measure_international(repeat("a", 161)).encoding, Encoding::kGsm7);
}

TEST(InternationalSegments, EuroAndExtensionCharactersCountTwo) {
  const SmsLength euro = measure_international("€");
  EXPECT_EQ(euro.characters, 2u);
  EXPECT_EQ(euro.encoding, Encoding::kGsm7);
  EXPECT_EQ(measure_international(repeat("a", 159) + "€").characters, 161u);
  EXPECT_EQ(measure_international(repeat("a", 159) + "€").segments, 2);
  EXPECT_EQ(measure_international(repeat("€", 80)).segments, 1);
  EXPECT_EQ(measure_international("|^{}[]~\\").characters, 16u);
}

TEST(InternationalSegments, Gsm7BasicSetIncludesItsAccentsAndGreek) {
  const SmsLength l =
      measure_international("Hello @£$¥ èéùìò Ç Øø Åå ΔΦΓΛΩΠΨΣΘΞ ÆæßÉ ¤¡¿§ ÄÖÑÜäöñüà _!?#%&'()*+,-./:;<=>");
  EXPECT_EQ(l.encoding, Encoding::kGsm7);
  EXPECT_TRUE(is_gsm7("Court notice: hearing at 09:30, room 3.\r\n"));
}

TEST(InternationalSegments, AnyOtherCharacterSwitchesToUcs2) {
  EXPECT_EQ(measure_international("Hello 你好").encoding, Encoding::kUcs2);
  EXPECT_EQ(measure_international("Hello 你好").characters, 8u);
  EXPECT_EQ(measure_international("`").encoding, Encoding::kUcs2);  // backtick is not GSM-7
  EXPECT_EQ(measure_international("ç").encoding, Encoding::kUcs2);  // only Ç is
  EXPECT_EQ(measure_international(repeat("ç", 70)).segments, 1);
  EXPECT_EQ(measure_international(repeat("ç", 71)).segments, 2);
  EXPECT_EQ(measure_international(repeat("ç", 134)).segments, 2);
  EXPECT_EQ(measure_international(repeat("ç", 135)).segments, 3);
  // In UCS-2 the euro sign is one unit, not two.
  EXPECT_EQ(measure_international("€ç").characters, 2u);
}

TEST(InternationalSegments, CharactersOutsideTheBmpTakeTwoUnits) {
  EXPECT_EQ(measure_international("\xF0\x9F\x98\x80").characters, 2u);  // 😀
  EXPECT_EQ(measure_international(repeat("\xF0\x9F\x98\x80", 35)).segments, 1);
  EXPECT_EQ(measure_international(repeat("\xF0\x9F\x98\x80", 36)).segments, 2);
}

TEST(InternationalSegments, InvalidBytesCountOneEachAndAreNotGsm7) {
  const SmsLength l = measure_international("ab\xFF");
  EXPECT_EQ(l.encoding, Encoding::kUcs2);
  EXPECT_EQ(l.characters, 3u);
  EXPECT_EQ(measure_mainland("", "\xE4\xB8").characters, 2u);  // truncated sequence
}

TEST(InternationalSegments, EmptyIsNothing) { EXPECT_EQ(measure_international("").segments, 0); }

}  // namespace
}  // namespace songda::sms
