// The error policy's last line: exceptions become Error "internal_error", counted, with personal data masked.
#include "gateway/core/contain.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>

#include "gateway/core/text.h"

namespace songda {
namespace {

TEST(Contain, PassesTheResultThroughWhenNothingIsThrown) {
  const auto before = internal_errors();
  auto ok = contain("test", [] { return Result<int>(7); });
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value(), 7);
  auto refused = contain("test", [] { return Result<int>(Error::permanent("schema", "bad")); });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, "schema");
  EXPECT_EQ(internal_errors(), before) << "an Error returned is not an internal error";
}

TEST(Contain, TurnsAnExceptionIntoAnInternalErrorThatNamesWhereAndWhat) {
  const auto before = internal_errors();
  auto r = contain("dispatch sms", []() -> Status { throw std::out_of_range("map::at"); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "internal_error");
  EXPECT_TRUE(r.error().retryable);
  EXPECT_EQ(r.error().message,
            "dispatch sms: unexpected std::out_of_range: map::at. Hint: this is a bug in Songda; report it with this "
            "message");
  EXPECT_EQ(internal_errors(), before + 1);
}

TEST(Contain, MasksWhatALibraryQuotedFromTheInput) {
  // nlohmann's parse errors end with the token read so far ("last read: '...'").
  for (const std::string text : {"{\"mobile\": \"13812345678\n\"}", "{\"email\": \"zhang.san@court.cn"}) {
    auto r = contain("ingest", [&]() -> Status {
      const auto j = nlohmann::json::parse(text);
      return j.is_object() ? ok_status() : Error::permanent("x", "not an object");
    });
    ASSERT_FALSE(r.ok()) << text;
    const std::string& m = r.error().message;
    EXPECT_NE(m.find("detail::parse_error: [json.exception.parse_error.101]"), std::string::npos) << m;
    EXPECT_NE(m.find("last read"), std::string::npos) << m;
    EXPECT_EQ(m.find("13812345678"), std::string::npos) << m;
    EXPECT_EQ(m.find("zhang.san"), std::string::npos) << m;
    EXPECT_TRUE(m.find("138****5678") != std::string::npos || m.find("z***@court.cn") != std::string::npos) << m;
  }
}

TEST(Contain, DescribesAThrownValueThatIsNotAStdException) {
  auto r = contain("fallback timers", []() -> Result<int> { throw 42; });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("fallback timers: unexpected an exception that is not a std::exception.", 0), 0u)
      << r.error().message;
}

TEST(Contain, AFaultFoundWithoutAnExceptionIsCountedAndMasked) {
  const auto before = internal_errors();
  const Error e = internal_error("dispatch sms: delivery d1", "its stored record does not read: +8613812345678");
  EXPECT_EQ(internal_errors(), before + 1);
  EXPECT_EQ(e.code, "internal_error");
  EXPECT_EQ(e.message.rfind("dispatch sms: delivery d1: its stored record does not read: ", 0), 0u) << e.message;
  EXPECT_EQ(e.message.find("13812345678"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("Hint: this is a bug in Songda"), std::string::npos);
}

TEST(Contain, CutsALongMessageAndKeepsItUtf8) {
  // The cut falls inside 豫 (bytes 299-301).
  auto r =
      contain("x", []() -> Status { throw std::runtime_error(std::string(299, 'a') + "豫" + std::string(400, 'b')); });
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.error().message.size(), 450u);
  EXPECT_NE(r.error().message.find("a\xEF\xBF\xBD..."), std::string::npos) << "the cut byte is U+FFFD";
  EXPECT_TRUE(is_valid_utf8(r.error().message));
}

}  // namespace
}  // namespace songda
