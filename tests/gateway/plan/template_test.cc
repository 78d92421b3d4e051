// Unit tests for gateway/plan/template: {{name}} rendering and its errors.
#include "gateway/plan/template.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace songda {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

TEST(RenderTemplate, ReplacesEveryPlaceholder) {
  const auto r =
      render_template("summons", "{{recipient_name}}：您好。{{court_name}}定于{{hearing_time}}在{{courtroom}}开庭。",
                      {{"recipient_name", "张三"},
                       {"court_name", "商丘市中级人民法院"},
                       {"hearing_time", "2026-12-10 09:30"},
                       {"courtroom", "第三法庭"}});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value(), "张三：您好。商丘市中级人民法院定于2026-12-10 09:30在第三法庭开庭。");
}

TEST(RenderTemplate, RepeatedAndAdjacentPlaceholders) {
  const auto r = render_template("t", "{{a}}{{b}}{{a}}", {{"a", "x"}, {"b", "y"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "xyx");
}

TEST(RenderTemplate, TextWithoutPlaceholdersIsUnchanged) {
  EXPECT_EQ(render_template("t", "请按时到庭。", {}).value(), "请按时到庭。");
  EXPECT_EQ(render_template("t", "", {}).value(), "");
  EXPECT_EQ(render_template("t", "a } b }} c {", {}).value(), "a } b }} c {");
}

TEST(RenderTemplate, EmptyValueIsNotMissing) {
  const auto r = render_template("t", "[{{link}}]", {{"link", ""}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "[]");
}

TEST(RenderTemplate, ValuesAreNotExpandedAgain) {
  // A party's name is data, never template syntax.
  const auto r = render_template("t", "{{recipient_name}}", {{"recipient_name", "{{secret}}"}, {"secret", "x"}});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), "{{secret}}");
}

TEST(RenderTemplate, AllMissingParamsInOneError) {
  const auto r =
      render_template("hearing_notice", "{{hearing_time}} {{courtroom}} {{hearing_time}} {{judge}} {{court_name}}",
                      {{"court_name", "商丘市中级人民法院"}});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "template_param_missing");
  EXPECT_FALSE(r.error().retryable);
  EXPECT_THAT(r.error().message, AllOf(HasSubstr("hearing_notice"), HasSubstr("hearing_time, courtroom, judge")));
  EXPECT_THAT(r.error().message, ::testing::Not(HasSubstr("court_name")));
}

TEST(RenderTemplate, UnterminatedPlaceholderIsInvalid) {
  for (const char* text : {"您好 {{recipient_name", "{{", "{{a}} and {{b", "x {{ }"}) {
    const auto r = render_template("broken", text, {{"a", "1"}, {"b", "2"}, {"recipient_name", "张三"}});
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, "template_invalid") << text;
    EXPECT_THAT(r.error().message, HasSubstr("broken"));
  }
}

TEST(TemplatePlaceholders, ListsNamesInOrderOfFirstAppearance) {
  EXPECT_THAT(template_placeholders("{{court_name}}传票：{{recipient_name}}，{{court_name}}，{{link}}"),
              ElementsAre("court_name", "recipient_name", "link"));
  EXPECT_THAT(template_placeholders("no placeholders"), IsEmpty());
  EXPECT_THAT(template_placeholders(""), IsEmpty());
}

TEST(TemplatePlaceholders, StopsAtAnUnterminatedPlaceholder) {
  EXPECT_THAT(template_placeholders("{{a}} {{b"), ElementsAre("a"));
}

}  // namespace
}  // namespace songda
