#include "gateway/web/assets.h"

#include <gtest/gtest.h>

#include <string>

namespace songda::web {
namespace {

TEST(Assets, ConsoleAndPartyFilesAreEmbedded) {
  for (const char* name :
       {"console.html", "console.js", "console.css", "party.css", "party.js", "inbox.html", "inbox.js"}) {
    const Asset* a = find_asset(name);
    ASSERT_NE(a, nullptr) << name;
    EXPECT_FALSE(a->body.empty()) << name;
    EXPECT_EQ(a->etag.size(), 18U) << name;
  }
  EXPECT_EQ(find_asset("console.html")->content_type, "text/html; charset=utf-8");
  EXPECT_EQ(find_asset("console.js")->content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(find_asset("nope.js"), nullptr);
}

TEST(Assets, NoExternalUrlsNoInlineScript) {
  // Works with no internet, and a strict CSP (script-src 'self') holds: no CDN, no inline <script> bodies.
  for (const char* name : {"console.html", "console.js", "console.css", "party.css", "inbox.html", "inbox.js"}) {
    const std::string body(find_asset(name)->body);
    EXPECT_EQ(body.find("http://"), std::string::npos) << name;
    EXPECT_EQ(body.find("https://"), std::string::npos) << name;
    EXPECT_EQ(body.find("//cdn"), std::string::npos) << name;
    EXPECT_EQ(body.find("<script>"), std::string::npos) << name;
    EXPECT_EQ(body.find(" style=\""), std::string::npos) << name;
    EXPECT_EQ(body.find("innerHTML"), std::string::npos) << name << ": build nodes with textContent";
  }
}

}  // namespace
}  // namespace songda::web
