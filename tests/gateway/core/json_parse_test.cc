#include "gateway/core/json_parse.h"

#include <gtest/gtest.h>

#include <string>

namespace songda {
namespace {

std::string nested(int levels, char open, char close) {
  return std::string(static_cast<std::size_t>(levels), open) + std::string(static_cast<std::size_t>(levels), close);
}

TEST(ParseJson, SixtyFourLevelsAreReadAndOneMoreIsRefused) {
  const auto ok = parse_json_limited(nested(kMaxJsonDepth, '[', ']'));
  EXPECT_FALSE(ok.too_deep);
  EXPECT_FALSE(ok.value.is_discarded());
  const auto deep = parse_json_limited(nested(kMaxJsonDepth + 1, '[', ']'));
  EXPECT_TRUE(deep.too_deep);
  EXPECT_TRUE(deep.value.is_discarded());
  std::string objects;
  for (int i = 0; i <= kMaxJsonDepth; ++i) objects += "{\"a\":";
  objects += "1" + std::string(kMaxJsonDepth + 1, '}');
  EXPECT_TRUE(parse_json_limited(objects).too_deep);
}

TEST(ParseJson, AHundredThousandLevelsAreRefusedWithoutBuildingThem) {
  const auto deep = parse_json_limited("{\"ok\":1,\"x\":" + nested(100000, '[', ']') + "}");
  EXPECT_TRUE(deep.too_deep);
  EXPECT_TRUE(deep.value.is_discarded());
}

TEST(ParseJson, BracketsInStringsAreNotNesting) {
  const auto j = parse_json("{\"text\":\"" + nested(1000, '[', ']') + "\",\"n\":[1,[2,{\"k\":[3]}]]}");
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j["n"][1][1]["k"][0], 3);
  EXPECT_EQ(j["text"].get<std::string>().size(), 2000u);
}

TEST(ParseJson, WhatIsNotJsonIsDiscardedAndNotTooDeep) {
  const auto bad = parse_json_limited("{\"a\":");
  EXPECT_TRUE(bad.value.is_discarded());
  EXPECT_FALSE(bad.too_deep);
  EXPECT_EQ(parse_json("[1,2]"), nlohmann::json::array({1, 2}));
}

TEST(ParseJson, StringMemberReadsOnlyAStringOfAnObject) {
  const auto j = parse_json(R"({"id":"D-1","n":5,"z":null})");
  EXPECT_EQ(string_member(j, "id"), "D-1");
  EXPECT_EQ(string_member(j, "n"), "");
  EXPECT_EQ(string_member(j, "z"), "");
  EXPECT_EQ(string_member(j, "missing"), "");
  EXPECT_EQ(string_member(parse_json("[1]"), "id"), "");
}

}  // namespace
}  // namespace songda
