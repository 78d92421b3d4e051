// RFC 8785 canonicalization against the RFC's published examples.
#include "gateway/evidence/jcs.h"

#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

namespace songda::evidence {
namespace {

using Json = nlohmann::json;

std::string canon(const Json& j) {
  auto r = canonicalize(j);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : std::string();
}

std::string canon_text(const std::string& text) { return canon(Json::parse(text)); }

// RFC 8785 §3.2.2 / the reference implementation's sample.
TEST(Jcs, RfcSampleObject) {
  const std::string input = R"({
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
    "literals": [null, true, false]
  })";
  EXPECT_EQ(canon_text(input),
            "{\"literals\":[null,true,false],\"numbers\":[333333333.3333333,1e+30,4.5,0.002,1e-27],"
            "\"string\":\"\xe2\x82\xac$\\u000f\\nA'B\\\"\\\\\\\\\\\"/\"}");
}

// RFC 8785 §3.2.3: names sort by UTF-16 code units, which puts the emoji
// (a surrogate pair, 0xD83D…) before U+FB33 — the opposite of UTF-8 byte order.
TEST(Jcs, RfcSortingExample) {
  const std::string input = R"({
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\ud83d\ude00": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis"
  })";
  EXPECT_EQ(canon_text(input),
            "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\xc2\x80\":\"Control\","
            "\"\xc3\xb6\":\"Latin Small Letter O With Diaeresis\",\"\xe2\x82\xac\":\"Euro Sign\","
            "\"\xf0\x9f\x98\x80\":\"Emoji: Grinning Face\",\"\xef\xac\xb3\":\"Hebrew Letter Dalet With Dagesh\"}");
}

// Without a name past U+FFFF, UTF-16 order is code point order: multi-byte names
// (2- and 3-byte UTF-8) still sort the RFC's way, nested objects too.
TEST(Jcs, BmpNamesSortByCodePoint) {
  EXPECT_EQ(canon_text(R"({"\ufb33": 1, "\u20ac": 2, "a": {"\u00f6": 3, "\u0080": 4}, "\u00f6": 5})"),
            "{\"a\":{\"\xc2\x80\":4,\"\xc3\xb6\":3},\"\xc3\xb6\":5,\"\xe2\x82\xac\":2,\"\xef\xac\xb3\":1}");
}

TEST(Jcs, NestedObjectsAreSortedAndArraysKeepOrder) {
  EXPECT_EQ(canon_text(R"({"b": [3, {"z": 1, "a": 2}], "a": {"y": null, "x": "s"}})"),
            R"({"a":{"x":"s","y":null},"b":[3,{"a":2,"z":1}]})");
  EXPECT_EQ(canon(Json::object()), "{}");
  EXPECT_EQ(canon(Json::array()), "[]");
}

TEST(Jcs, StringEscapingFollowsJsonStringify) {
  EXPECT_EQ(canon(Json("\b\f\n\r\t\"\\/")), R"("\b\f\n\r\t\"\\/")");
  EXPECT_EQ(canon(Json(std::string("\x01\x1f", 2))), R"("\u0001\u001f")");
  EXPECT_EQ(canon(Json("\x7f")), "\"\x7f\"");                  // DEL is not escaped
  EXPECT_EQ(canon(Json("\xe2\x80\xa8")), "\"\xe2\x80\xa8\"");  // nor U+2028
  EXPECT_EQ(canon(Json("商丘市中级人民法院")), "\"商丘市中级人民法院\"");
}

struct NumberRow {
  std::uint64_t bits;
  const char* expected;
};

// RFC 8785 Appendix B.
TEST(Jcs, RfcAppendixBNumbers) {
  const NumberRow rows[] = {
      {0x0000000000000000, "0"},
      {0x8000000000000000, "0"},
      {0x0000000000000001, "5e-324"},
      {0x8000000000000001, "-5e-324"},
      {0x7fefffffffffffff, "1.7976931348623157e+308"},
      {0xffefffffffffffff, "-1.7976931348623157e+308"},
      {0x4340000000000000, "9007199254740992"},
      {0xc340000000000000, "-9007199254740992"},
      {0x4430000000000000, "295147905179352830000"},
      {0x44b52d02c7e14af5, "9.999999999999997e+22"},
      {0x44b52d02c7e14af6, "1e+23"},
      {0x44b52d02c7e14af7, "1.0000000000000001e+23"},
      {0x444b1ae4d6e2ef4e, "999999999999999700000"},
      {0x444b1ae4d6e2ef4f, "999999999999999900000"},
      {0x444b1ae4d6e2ef50, "1e+21"},
      {0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
      {0x3eb0c6f7a0b5ed8d, "0.000001"},
      {0x41b3de4355555553, "333333333.3333332"},
      {0x41b3de4355555554, "333333333.33333325"},
      {0x41b3de4355555555, "333333333.3333333"},
      {0x41b3de4355555556, "333333333.3333334"},
      {0x41b3de4355555557, "333333333.33333343"},
      {0xbecbf647612f3696, "-0.0000033333333333333333"},
      {0x43143ff3c1cb0959, "1424953923781206.2"},
  };
  for (const auto& row : rows) {
    const double d = std::bit_cast<double>(row.bits);
    auto text = format_double(d);
    ASSERT_TRUE(text.ok()) << std::hex << row.bits;
    EXPECT_EQ(*text, row.expected) << std::hex << row.bits;
    EXPECT_EQ(canon(Json(d)), row.expected);
  }
}

TEST(Jcs, BriefNumberExamples) {
  EXPECT_EQ(*format_double(1e30), "1e+30");
  EXPECT_EQ(*format_double(4.5), "4.5");
  EXPECT_EQ(*format_double(0.002), "0.002");
  EXPECT_EQ(*format_double(333333333.33333329), "333333333.3333333");
  EXPECT_EQ(*format_double(1e-7), "1e-7");
  EXPECT_EQ(*format_double(-0.0), "0");
  EXPECT_EQ(*format_double(4.0), "4");
  EXPECT_EQ(*format_double(1e21), "1e+21");
  EXPECT_EQ(*format_double(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(*format_double(0.1), "0.1");
  EXPECT_EQ(*format_double(-1.5e-10), "-1.5e-10");
}

TEST(Jcs, IntegersAreExact) {
  EXPECT_EQ(canon(Json(std::int64_t{9007199254740993})), "9007199254740993");
  EXPECT_EQ(canon(Json(std::int64_t{-42})), "-42");
  EXPECT_EQ(canon(Json(std::numeric_limits<std::uint64_t>::max())), "18446744073709551615");
  EXPECT_EQ(canon(Json(std::numeric_limits<std::int64_t>::min())), "-9223372036854775808");
}

TEST(Jcs, RejectsNonFiniteAndInvalidUtf8) {
  EXPECT_FALSE(format_double(std::numeric_limits<double>::quiet_NaN()).ok());
  EXPECT_FALSE(format_double(std::numeric_limits<double>::infinity()).ok());
  EXPECT_FALSE(format_double(std::bit_cast<double>(std::uint64_t{0x7fffffffffffffff})).ok());
  const Json nested = {{"a", {1, std::numeric_limits<double>::infinity()}}};
  auto r = canonicalize(nested);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "jcs");
  EXPECT_FALSE(canonicalize(Json(std::string("\xff"))).ok());
  EXPECT_FALSE(canonicalize(Json(std::string("\xed\xa0\x80"))).ok());                         // an encoded surrogate
  EXPECT_FALSE(canonicalize(Json(std::string("\xc0\xaf"))).ok());                             // overlong
  EXPECT_FALSE(canonicalize(Json{{std::string("\xe2\x82"), 1}}).ok());                        // truncated name
  EXPECT_FALSE(canonicalize(Json{{std::string("\xf8\x88\x80\x80\x80"), 1}, {"a", 2}}).ok());  // 5-byte form
  EXPECT_FALSE(canonicalize(Json{{std::string("\xf0\x9f\x98"), 1}}).ok());                    // truncated 4-byte name
  // names are named as such, whether their order needed the UTF-16 sort or not
  EXPECT_EQ(canonicalize(Json{{std::string("\xe2\x82"), 1}}).error().message, "object member name is not valid UTF-8");
  EXPECT_EQ(canonicalize(Json{{std::string("\xf0\x9f\x98"), 1}}).error().message,
            "object member name is not valid UTF-8");
}

// Property: the text always parses back to the same double, and is never longer than needed.
TEST(Jcs, RandomDoublesRoundTrip) {
  std::mt19937_64 rng(8785);
  for (int i = 0; i < 20000; ++i) {
    const double d = std::bit_cast<double>(rng());
    if (!std::isfinite(d)) continue;
    auto text = format_double(d);
    ASSERT_TRUE(text.ok());
    double back = 0;
    const auto res = std::from_chars(text->data(), text->data() + text->size(), back);
    ASSERT_EQ(res.ec, std::errc()) << *text;
    EXPECT_EQ(back == 0 ? 0.0 : back, d == 0 ? 0.0 : d) << *text;
    EXPECT_EQ(text->find('E'), std::string::npos);
  }
}

TEST(Jcs, SameValueDifferentSpellingsCanonicalizeAlike) {
  EXPECT_EQ(canon_text(R"({"a":1.0E2,"b":"\u0041"})"), canon_text(R"({ "b" : "A", "a" : 100 })"));
}

}  // namespace
}  // namespace songda::evidence
