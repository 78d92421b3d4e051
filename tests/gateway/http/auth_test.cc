// Unit tests for gateway/http/auth: court-scoped API keys and the operator token.
// The environment is injected as a map, so nothing here touches the real one.
#include "gateway/http/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

namespace songda {
namespace {

using ::testing::HasSubstr;

constexpr const char* kZyKey = "zy-key-0123456789abcdef";
constexpr const char* kJsKey = "js-key-fedcba9876543210";
constexpr const char* kAdmin = "admin-token-0000111122223333";

using Env = std::map<std::string, std::string>;

class FakeEnv {
 public:
  explicit FakeEnv(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  std::function<const char*(const char*)> fn() const {
    return [this](const char* name) -> const char* {
      const auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

// A keys file in a fresh temp directory, removed at the end of the test.
class KeysFile {
 public:
  explicit KeysFile(const std::string& content) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() / ("songda-auth-" + std::to_string(::getpid()) + "-" + info->name());
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "api-keys").string();
    std::ofstream(path_) << content;
  }
  ~KeysFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::filesystem::path dir_;
  std::string path_;
};

ApiKeys two_courts_and_admin() {
  ApiKeys keys;
  keys.add_key("HN-SQ-ZY", kZyKey);
  keys.add_key("HN-ZZ-JS", kJsKey);
  keys.set_admin_token(kAdmin);
  return keys;
}

TEST(ApiKeys, CourtKeyAuthenticatesAsItsCourt) {
  const ApiKeys keys = two_courts_and_admin();
  const auto zy = keys.authenticate(std::string("Bearer ") + kZyKey);
  ASSERT_TRUE(zy.has_value());
  EXPECT_EQ(zy->court_id, "HN-SQ-ZY");
  EXPECT_FALSE(zy->admin);
  EXPECT_TRUE(zy->may_see("HN-SQ-ZY"));
  EXPECT_FALSE(zy->may_see("HN-ZZ-JS"));
  EXPECT_FALSE(zy->may_see(""));

  const auto js = keys.authenticate(std::string("Bearer ") + kJsKey);
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(js->court_id, "HN-ZZ-JS");
  EXPECT_FALSE(js->may_see("HN-SQ-ZY"));
}

TEST(ApiKeys, AdminTokenSeesEveryCourt) {
  const auto p = two_courts_and_admin().authenticate(std::string("Bearer ") + kAdmin);
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->admin);
  EXPECT_EQ(p->court_id, "");
  EXPECT_TRUE(p->may_see("HN-SQ-ZY"));
  EXPECT_TRUE(p->may_see("ANY-COURT"));
}

TEST(ApiKeys, SurroundingWhitespaceInTheHeaderIsIgnored) {
  const auto p = two_courts_and_admin().authenticate(std::string("Bearer ") + kZyKey + "  \r\n");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->court_id, "HN-SQ-ZY");
}

TEST(ApiKeys, AnythingElseIsNotAuthenticated) {
  const ApiKeys keys = two_courts_and_admin();
  const std::string zy = kZyKey;
  for (const std::string& header :
       {std::string(), std::string("Bearer"), std::string("Bearer "), std::string("Bearer    "),
        std::string("Bearer wrong-key-0123456789"), "Bearer " + zy.substr(0, zy.size() - 1),  // prefix of a key
        "Bearer " + zy + "x",                                                                 // key plus a character
        "Basic " + zy, std::string("Basic x"), zy,                                            // no scheme
        "Token " + zy, "Bearer" + zy}) {
    EXPECT_FALSE(keys.authenticate(header).has_value()) << "'" << header << "'";
  }
}

TEST(ApiKeys, NoAdminTokenMeansNoAdmin) {
  ApiKeys keys;
  keys.add_key("HN-SQ-ZY", kZyKey);
  keys.set_admin_token("");
  EXPECT_FALSE(keys.authenticate("Bearer x").has_value());
  EXPECT_FALSE(keys.authenticate(std::string("Bearer ") + kAdmin).has_value());
  EXPECT_TRUE(keys.authenticate(std::string("Bearer ") + kZyKey).has_value());
}

// The operator token sees every court: a short one is refused at start-up, as a court's short key is.
TEST(ApiKeys, AShortAdminTokenIsRefused) {
  const FakeEnv env(Env{{"SONGDA_ADMIN_TOKEN", "admin"}});
  EXPECT_THROW(ApiKeys::from_environment(env.fn()), StartupError);
  const FakeEnv ok(Env{{"SONGDA_ADMIN_TOKEN", "0123456789abcdef"}});
  EXPECT_TRUE(ApiKeys::from_environment(ok.fn()).authenticate("Bearer 0123456789abcdef").has_value());
}

TEST(ApiKeys, EmptyEnvironmentHasNoKeys) {
  const FakeEnv env(Env{});
  const ApiKeys keys = ApiKeys::from_environment(env.fn());
  EXPECT_EQ(keys.size(), 0u);
  EXPECT_FALSE(keys.authenticate(std::string("Bearer ") + kZyKey).has_value());
  EXPECT_FALSE(keys.authenticate(std::string("Bearer ") + kAdmin).has_value());
}

TEST(ApiKeys, EmptyVariablesAreIgnored) {
  const FakeEnv env(Env{{"SONGDA_API_KEYS_FILE", ""}, {"SONGDA_API_KEYS", ""}, {"SONGDA_ADMIN_TOKEN", ""}});
  const ApiKeys keys = ApiKeys::from_environment(env.fn());
  EXPECT_EQ(keys.size(), 0u);
  EXPECT_FALSE(keys.authenticate("Bearer x").has_value());
}

TEST(ApiKeys, KeysFileWithCommentsAndBlankLines) {
  const KeysFile file(std::string("# court_id key\n"
                                  "\n"
                                  "HN-SQ-ZY ") +
                      kZyKey +
                      "\n"
                      "   \t\n"
                      "  HN-ZZ-JS\t" +
                      kJsKey +
                      "   # Jinshui district court\r\n"
                      "# HN-XX-XX commented-out-key-000000\n");
  const FakeEnv env(Env{{"SONGDA_API_KEYS_FILE", file.path()}, {"SONGDA_ADMIN_TOKEN", kAdmin}});
  const ApiKeys keys = ApiKeys::from_environment(env.fn());
  EXPECT_EQ(keys.size(), 2u);
  ASSERT_TRUE(keys.authenticate(std::string("Bearer ") + kZyKey).has_value());
  EXPECT_EQ(keys.authenticate(std::string("Bearer ") + kZyKey)->court_id, "HN-SQ-ZY");
  ASSERT_TRUE(keys.authenticate(std::string("Bearer ") + kJsKey).has_value());
  EXPECT_EQ(keys.authenticate(std::string("Bearer ") + kJsKey)->court_id, "HN-ZZ-JS");
  EXPECT_FALSE(keys.authenticate("Bearer commented-out-key-000000").has_value());
  const auto admin = keys.authenticate(std::string("Bearer ") + kAdmin);
  ASSERT_TRUE(admin.has_value());
  EXPECT_TRUE(admin->admin);
}

TEST(ApiKeys, MalformedKeysFileLineNamesFileAndLine) {
  const std::string lines[] = {
      "HN-SQ-ZY",                                    // no key
      "HN-SQ-ZY short-key",                          // key under 16 characters
      std::string("HN-SQ-ZY ") + kZyKey + " extra",  // three fields
  };
  for (const std::string& bad : lines) {
    const KeysFile file(std::string("# keys\n\nHN-ZZ-JS ") + kJsKey + "\n" + bad + "\n");
    const FakeEnv env(Env{{"SONGDA_API_KEYS_FILE", file.path()}});
    try {
      (void)ApiKeys::from_environment(env.fn());
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const StartupError& e) {
      EXPECT_THAT(e.what(), HasSubstr(file.path() + ":4")) << bad;
    }
  }
}

TEST(ApiKeys, UnreadableKeysFileIsAStartupErrorNamingIt) {
  const FakeEnv env(Env{{"SONGDA_API_KEYS_FILE", "/nonexistent/songda/api-keys"}});
  try {
    (void)ApiKeys::from_environment(env.fn());
    FAIL() << "expected StartupError";
  } catch (const StartupError& e) {
    EXPECT_THAT(e.what(), HasSubstr("/nonexistent/songda/api-keys"));
  }
}

TEST(ApiKeys, KeysFromTheEnvironmentList) {
  const FakeEnv env(Env{{"SONGDA_API_KEYS", std::string("HN-SQ-ZY=") + kZyKey + " , HN-ZZ-JS=" + kJsKey}});
  const ApiKeys keys = ApiKeys::from_environment(env.fn());
  EXPECT_EQ(keys.size(), 2u);
  const auto zy = keys.authenticate(std::string("Bearer ") + kZyKey);
  const auto js = keys.authenticate(std::string("Bearer ") + kJsKey);
  ASSERT_TRUE(zy.has_value());
  ASSERT_TRUE(js.has_value());
  EXPECT_EQ(zy->court_id, "HN-SQ-ZY");
  EXPECT_EQ(js->court_id, "HN-ZZ-JS");
}

TEST(ApiKeys, KeyMayContainEqualsSigns) {
  // Base64 keys end in '='; only the first '=' separates court from key.
  const FakeEnv env(Env{{"SONGDA_API_KEYS", "HN-SQ-ZY=c29uZ2RhLWtleS0xMjM0NTY="}});
  const auto p = ApiKeys::from_environment(env.fn()).authenticate("Bearer c29uZ2RhLWtleS0xMjM0NTY=");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->court_id, "HN-SQ-ZY");
}

TEST(ApiKeys, MalformedEnvironmentListIsAStartupError) {
  for (const char* bad : {"HN-SQ-ZY", "=key-0123456789abcdef", "HN-SQ-ZY=", "HN-SQ-ZY=key-0123456789abcdef,,",
                          "HN-SQ-ZY key-0123456789abcdef"}) {
    const FakeEnv env(Env{{"SONGDA_API_KEYS", bad}});
    try {
      (void)ApiKeys::from_environment(env.fn());
      ADD_FAILURE() << "accepted: " << bad;
    } catch (const StartupError& e) {
      EXPECT_THAT(e.what(), HasSubstr("SONGDA_API_KEYS")) << bad;
    }
  }
}

TEST(ApiKeys, FileAndListCombine) {
  const KeysFile file(std::string("HN-SQ-ZY ") + kZyKey + "\n");
  const FakeEnv env(Env{{"SONGDA_API_KEYS_FILE", file.path()}, {"SONGDA_API_KEYS", std::string("HN-ZZ-JS=") + kJsKey}});
  const ApiKeys keys = ApiKeys::from_environment(env.fn());
  EXPECT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys.authenticate(std::string("Bearer ") + kZyKey)->court_id, "HN-SQ-ZY");
  EXPECT_EQ(keys.authenticate(std::string("Bearer ") + kJsKey)->court_id, "HN-ZZ-JS");
}

}  // namespace
}  // namespace songda
