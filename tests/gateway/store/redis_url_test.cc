#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "gateway/store/redis.h"

namespace songda {
namespace {

// SONGDA_REDIS_PASSWORD overrides the URL's password; these tests read the URL alone.
class RedisUrl : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* pw = std::getenv("SONGDA_REDIS_PASSWORD"); pw != nullptr) saved_ = pw;
    unsetenv("SONGDA_REDIS_PASSWORD");
  }
  void TearDown() override {
    if (saved_) setenv("SONGDA_REDIS_PASSWORD", saved_->c_str(), 1);
  }
  std::optional<std::string> saved_;
};

TEST_F(RedisUrl, ReadsHostPortAndDb) {
  const auto ep = parse_redis_url("redis://redis.internal:6380/3");
  ASSERT_TRUE(ep.ok()) << ep.error().message;
  EXPECT_EQ(ep->host, "redis.internal");
  EXPECT_EQ(ep->port, 6380);
  EXPECT_EQ(ep->db, 3);
  EXPECT_TRUE(ep->username.empty());
  EXPECT_TRUE(ep->password.empty());
}

TEST_F(RedisUrl, APasswordAloneIsTheDefaultUsers) {
  const auto ep = parse_redis_url("redis://:s3cret@127.0.0.1:6379/0");
  ASSERT_TRUE(ep.ok());
  EXPECT_TRUE(ep->username.empty());
  EXPECT_EQ(ep->password, "s3cret");
}

// A Redis 6 ACL user: AUTH user password, not AUTH password (which would authenticate the default user).
TEST_F(RedisUrl, AUserBeforeThePasswordIsAnAclUser) {
  const auto ep = parse_redis_url("redis://songda:s3cret@127.0.0.1:6379/0");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->username, "songda");
  EXPECT_EQ(ep->password, "s3cret");
}

TEST_F(RedisUrl, TheEnvironmentPasswordWins) {
  setenv("SONGDA_REDIS_PASSWORD", "from-env", 1);
  const auto ep = parse_redis_url("redis://songda:in-url@127.0.0.1:6379/0");
  ASSERT_TRUE(ep.ok());
  EXPECT_EQ(ep->username, "songda");
  EXPECT_EQ(ep->password, "from-env");
}

TEST_F(RedisUrl, AnErrorNeverShowsTheCredentials) {
  for (const char* bad :
       {"rediss://songda:s3cret@h:6379/0", "redis://songda:s3cret@h:port/0", "redis://songda:s3cret@h:6379/db"}) {
    const auto ep = parse_redis_url(bad);
    ASSERT_FALSE(ep.ok()) << bad;
    EXPECT_EQ(ep.error().code, "config") << bad;
    EXPECT_EQ(ep.error().message.find("s3cret"), std::string::npos) << ep.error().message;
    EXPECT_EQ(ep.error().message.find("songda:"), std::string::npos) << ep.error().message;
  }
}

}  // namespace
}  // namespace songda
