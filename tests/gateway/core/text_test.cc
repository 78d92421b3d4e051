// Unit tests for gateway/core/text: UTF-8 checks (the ingest gate), masking of
// personal data in logs and the API, and timestamp formatting.
#include "gateway/core/text.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

namespace songda {
namespace {

TEST(Utf8, AcceptsAsciiCjkAndEmoji) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("summons.issued"));
  EXPECT_TRUE(is_valid_utf8("商丘市中级人民法院"));
  EXPECT_TRUE(is_valid_utf8("(2026)豫14民初123号"));
  EXPECT_TRUE(is_valid_utf8("\xF0\x9F\x98\x80"));          // U+1F600 emoji
  EXPECT_TRUE(is_valid_utf8("张三 \xF0\x9F\x93\x84 ok"));  // mixed
  EXPECT_TRUE(is_valid_utf8(std::string("a\0b", 3)));      // NUL is a valid code point
}

// ASCII is checked eight bytes at a time: a bad byte anywhere after, between or inside such runs is still found.
TEST(Utf8, FindsABadByteAfterLongAsciiRuns) {
  const std::string ascii16 = "abcdefghijklmnop";
  EXPECT_TRUE(is_valid_utf8(ascii16 + "商" + ascii16 + "x"));
  EXPECT_FALSE(is_valid_utf8(ascii16 + "\xFF"));
  EXPECT_FALSE(is_valid_utf8(ascii16 + "\xE5\x95"));  // truncated at the end
  EXPECT_FALSE(is_valid_utf8(ascii16 + "商" + ascii16 + "\xC0\xAF" + ascii16));
  for (std::size_t at = 0; at < 20; ++at) {  // every offset against the eight-byte stride
    std::string s(20, 'a');
    s[at] = '\x80';
    EXPECT_FALSE(is_valid_utf8(s)) << at;
  }
}

TEST(Utf8, AcceptsBoundaryCodePoints) {
  EXPECT_TRUE(is_valid_utf8("\x7F"));              // U+007F
  EXPECT_TRUE(is_valid_utf8("\xC2\x80"));          // U+0080, smallest 2-byte
  EXPECT_TRUE(is_valid_utf8("\xE0\xA0\x80"));      // U+0800, smallest 3-byte
  EXPECT_TRUE(is_valid_utf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  EXPECT_TRUE(is_valid_utf8("\xEE\x80\x80"));      // U+E000, just above the surrogates
  EXPECT_TRUE(is_valid_utf8("\xF0\x90\x80\x80"));  // U+10000, smallest 4-byte
  EXPECT_TRUE(is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF, the last code point
}

TEST(Utf8, RejectsLoneContinuationByte) {
  EXPECT_FALSE(is_valid_utf8("\x80"));
  EXPECT_FALSE(is_valid_utf8("abc\xBF"));
  EXPECT_FALSE(is_valid_utf8("\xE5\x95\x86\x86"));  // 商 followed by a stray continuation
}

TEST(Utf8, RejectsOverlongForms) {
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));  // '/' in 2 bytes
  EXPECT_FALSE(is_valid_utf8("\xC1\xBF"));
  EXPECT_FALSE(is_valid_utf8("\xE0\x80\xAF"));      // '/' in 3 bytes
  EXPECT_FALSE(is_valid_utf8("\xF0\x80\x80\xAF"));  // '/' in 4 bytes
  EXPECT_FALSE(is_valid_utf8("\xC0\x80"));          // "modified UTF-8" NUL
}

TEST(Utf8, RejectsSurrogates) {
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));              // U+D800
  EXPECT_FALSE(is_valid_utf8("\xED\xBF\xBF"));              // U+DFFF
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\xBD\xED\xB8\x80"));  // CESU-8 pair for an emoji
}

TEST(Utf8, RejectsTruncatedSequences) {
  EXPECT_FALSE(is_valid_utf8("\xE5\x95"));      // 商 without its last byte
  EXPECT_FALSE(is_valid_utf8("\xF0\x9F\x98"));  // emoji without its last byte
  EXPECT_FALSE(is_valid_utf8("\xC2"));
  EXPECT_FALSE(
      is_valid_utf8("\xE5\x95"
                    "a"));  // interrupted by ASCII
}

TEST(Utf8, RejectsBeyondU10FFFFAndInvalidLeadBytes) {
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(is_valid_utf8("\xF7\xBF\xBF\xBF"));  // U+1FFFFF
  EXPECT_FALSE(is_valid_utf8("\xF8\x88\x80\x80\x80"));
  EXPECT_FALSE(is_valid_utf8("\xFE"));
  EXPECT_FALSE(is_valid_utf8("\xFF"));
}

TEST(RepairUtf8, KeepsValidTextAndReplacesEachBadByte) {
  EXPECT_EQ(repair_utf8("传票 ok 😀"), "传票 ok 😀");
  EXPECT_EQ(repair_utf8("550 \xD3\xDC ok"), "550 \uFFFD\uFFFD ok");  // GBK bytes
  EXPECT_EQ(repair_utf8("\xE4\xBC"), "\uFFFD\uFFFD");                // a truncated 传
  EXPECT_EQ(repair_utf8("a\xC0\xAF"
                        "b"),
            "a\uFFFD\uFFFD"
            "b");  // an overlong "/"
  EXPECT_TRUE(is_valid_utf8(repair_utf8("\xFF\xFE\xED\xA0\x80")));
}

TEST(AppendJsonString, EscapesAsJsonStringifyAndRefusesBadUtf8) {
  std::string out = "x";
  EXPECT_TRUE(append_json_string(out, std::string("q\"b\\n\n\x01\x7f/张", 12)));
  EXPECT_EQ(out, "x\"q\\\"b\\\\n\\n\\u0001\x7f/张\"");
  std::string bad;
  EXPECT_FALSE(append_json_string(bad, "\xE5\xBC"));
}

TEST(Utf8Length, CountsCodePoints) {
  EXPECT_EQ(utf8_length(""), 0u);
  EXPECT_EQ(utf8_length("abc"), 3u);
  EXPECT_EQ(utf8_length("商丘市"), 3u);
  EXPECT_EQ(utf8_length("\xF0\x9F\x98\x80"
                        "a"),
            2u);
  EXPECT_EQ(utf8_length("(2026)豫14民初123号"), 15u);
}

TEST(MaskPhone, KeepsPrefixAndLastFour) {
  EXPECT_EQ(mask_phone("+8613800000000"), "+86138****0000");
  EXPECT_EQ(mask_phone("13800001234"), "138****1234");
}

TEST(MaskPhone, ShortNumbersAreFullyHidden) {
  EXPECT_EQ(mask_phone(""), "");
  EXPECT_EQ(mask_phone("12345"), "*****");
  EXPECT_EQ(mask_phone("123456"), "******");
  EXPECT_EQ(mask_phone("1234567"), "*******");  // was returned unmasked (size_t underflow)
  EXPECT_EQ(mask_phone("12345678"), "****5678");
}

// The schema accepts mobiles of 5 to 20 digits; none may come out of the mask readable.
TEST(MaskPhone, NeverRevealsTheWholeNumber) {
  const std::string digits = "98765432109876543210";
  for (std::size_t n = 5; n <= digits.size(); ++n) {
    const std::string phone = digits.substr(0, n);
    const std::string masked = mask_phone(phone);
    EXPECT_EQ(masked.size(), phone.size()) << phone;
    EXPECT_GE(std::count(masked.begin(), masked.end(), '*'), 4) << phone << " -> " << masked;
    if (n >= 8) {
      EXPECT_EQ(masked.substr(n - 4), phone.substr(n - 4)) << phone;  // last four stay readable for the clerk
    }
  }
}

TEST(MaskEmail, KeepsFirstLetterAndDomain) {
  EXPECT_EQ(mask_email("zhang.san@court.cn"), "z***@court.cn");
  EXPECT_EQ(mask_email("a@b.cn"), "a***@b.cn");
}

TEST(MaskEmail, MalformedIsFullyHidden) {
  EXPECT_EQ(mask_email("no-at-sign"), "***");
  EXPECT_EQ(mask_email("@court.cn"), "***");
  EXPECT_EQ(mask_email(""), "***");
}

TEST(MaskAddress, ChoosesTheMaskByChannel) {
  EXPECT_EQ(mask_address("sms", "+8613800000000"), "+86138****0000");
  EXPECT_EQ(mask_address("email", "zhang.san@court.cn"), "z***@court.cn");
  EXPECT_EQ(mask_address("wechat", "oAbc1234567890xyz"), "oAbc***");  // openid keeps 4 characters
  EXPECT_EQ(mask_address("inapp", "u-zhangsan"), "u-zh***");
  EXPECT_EQ(mask_address("wechat", "oAbc"), "***");
  EXPECT_EQ(mask_address("inapp", "u1"), "***");
}

// Log lines quoting a library's message (what() of a parse error may carry the input) hide the personal data.
TEST(MaskPersonalData, HidesPhoneNumbersAndEmailAddressesInFreeText) {
  EXPECT_EQ(mask_personal_data(
                "syntax error while parsing value - invalid literal; last read: '{\"mobile\":+8613812345678x'"),
            "syntax error while parsing value - invalid literal; last read: '{\"mobile\":+86138****5678x'");
  EXPECT_EQ(mask_personal_data("550 <zhang.san@court.cn>: mailbox unavailable"),
            "550 <z***@court.cn>: mailbox unavailable");
  EXPECT_EQ(mask_personal_data("tel13812345678,mail a@b.cn."), "tel138****5678,mail a***@b.cn.");
  EXPECT_EQ(mask_personal_data("1234567"), "*******");
  // A national ID number (18 characters, the last may be X) or a bank card keeps only its ends.
  EXPECT_EQ(mask_personal_data("id 41010219900101123X"), "id 410************23X");
  EXPECT_EQ(mask_personal_data("card 6222021234567890123"), "card 622**************23");
}

TEST(MaskPersonalData, KeepsShortNumbersAndTextWithoutAddresses) {
  EXPECT_EQ(mask_personal_data("type_error.316 at byte 123456 of 2026-11-28"),
            "type_error.316 at byte 123456 of 2026-11-28");
  EXPECT_EQ(mask_personal_data("user@localhost and @court.cn"), "user@localhost and @court.cn");
  EXPECT_EQ(mask_personal_data("豫14民初123号 张三"), "豫14民初123号 张三");
  EXPECT_EQ(mask_personal_data(""), "");
}

TEST(Rfc3339Utc, FormatsKnownInstants) {
  EXPECT_EQ(rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(rfc3339_utc(1795827600123), "2026-11-28T01:00:00.123Z");  // 09:00:00.123 in Beijing
  EXPECT_EQ(rfc3339_utc(951868799999), "2000-02-29T23:59:59.999Z");
  EXPECT_EQ(rfc3339_utc(951868800000), "2000-03-01T00:00:00.000Z");
}

// Milliseconds before the epoch must still give a valid RFC 3339 time; today
// the millisecond part comes out negative ("...00:00:00.-01Z").
TEST(Rfc3339Utc, InstantsBeforeTheEpoch) {
  EXPECT_EQ(rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(rfc3339_utc(-1000), "1969-12-31T23:59:59.000Z");
}

TEST(MaskAddressIn, MasksTheRecipientsOwnAddressHoweverTheServerWroteIt) {
  EXPECT_EQ(mask_address_in("550 5.1.1 <Zhang.San@Court.CN>: User unknown", "email", "zhang.san@court.cn"),
            "550 5.1.1 <z***@court.cn>: User unknown");
  EXPECT_EQ(mask_address_in("isv.MOBILE_NUMBER_ILLEGAL 13800000001 and +8613800000001", "sms", "+8613800000001"),
            "isv.MOBILE_NUMBER_ILLEGAL +86138****0001 and +86138****0001");
  EXPECT_EQ(mask_address_in("nothing personal here", "email", "a@b.cn"), "nothing personal here");
  EXPECT_EQ(mask_address_in("短 a@b", "email", "a@b"), "短 a@b");  // shorter than 4: not masked (nor a real address)
}

// http.listen: what config check accepts is what the server binds. "[::1]:8080" used to pass the check and then
// fail to bind, because the server's own parser kept the brackets in the host.
TEST(HostPort, IPv6IsBoundWithoutItsBracketsAndShownWithThem) {
  const auto v6 = parse_host_port("[::1]:8080");
  ASSERT_TRUE(v6.has_value());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->authority(), "[::1]:8080");
  const auto v4 = parse_host_port("0.0.0.0:0");
  ASSERT_TRUE(v4.has_value());
  EXPECT_EQ(v4->host, "0.0.0.0");
  EXPECT_EQ(v4->port, 0);
  EXPECT_EQ(v4->authority(), "0.0.0.0:0");
  EXPECT_EQ(parse_host_port("gateway.court.example:443")->host, "gateway.court.example");
}

TEST(HostPort, RefusesWhatCannotBeBound) {
  for (const char* bad : {"8080", "localhost", ":8080", "::1:8080", "[::1]8080", "[]:80", "[::1:80", "host:99999",
                          "host:", "host:8o", "a b:80", "[[::1]]:80"}) {
    EXPECT_FALSE(parse_host_port(bad).has_value()) << bad;
  }
}

TEST(NowUnixMs, IsAfter2024) { EXPECT_GT(now_unix_ms(), 1704067200000); }

TEST(ResourcePath, FindsTheShippedSchema) {
  const std::string path = resource_path("schemas/case-event.v1.schema.json");
  EXPECT_NE(path.find("schemas/case-event.v1.schema.json"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(path)) << path;
}

}  // namespace
}  // namespace songda
