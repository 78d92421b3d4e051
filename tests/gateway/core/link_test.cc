// Unit tests for gateway/core/link: the signed /r/{token} links sent to parties.
#include "gateway/core/link.h"

#include <gtest/gtest.h>

#include <string>

#include "gateway/core/crypto.h"

namespace songda {
namespace {

constexpr const char* kSecret = "link-secret-for-tests-0123456789";
constexpr std::int64_t kExpiry = 1795827600;  // 2026-11-28T01:00:00Z
constexpr std::int64_t kBefore = kExpiry - 3600;

struct Parts {
  std::string payload;  // encoded
  std::string mac;      // encoded
};

Parts split(const std::string& token) {
  const auto dot = token.find('.');
  return {token.substr(0, dot), token.substr(dot + 1)};
}

TEST(LinkToken, RoundTrip) {
  const std::string token = sign_link_token(kSecret, "sd-0123456789abcdef0123456789abcdef", kExpiry);
  const auto claims = verify_link_token(kSecret, token, kBefore);
  ASSERT_TRUE(claims.ok()) << claims.error().code;
  EXPECT_EQ(claims->delivery_id, "sd-0123456789abcdef0123456789abcdef");
  EXPECT_EQ(claims->expires_unix_s, kExpiry);
}

TEST(LinkToken, IsUrlSafeAndDeterministic) {
  const std::string token = sign_link_token(kSecret, "sd-abc", kExpiry);
  EXPECT_EQ(token.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."),
            std::string::npos)
      << token;
  EXPECT_EQ(token, sign_link_token(kSecret, "sd-abc", kExpiry));
}

TEST(LinkToken, DeliveryIdWithDotsRoundTrips) {
  const auto claims = verify_link_token(kSecret, sign_link_token(kSecret, "a.b.c", kExpiry), kBefore);
  ASSERT_TRUE(claims.ok());
  EXPECT_EQ(claims->delivery_id, "a.b.c");
  EXPECT_EQ(claims->expires_unix_s, kExpiry);
}

TEST(LinkToken, ValidUpToAndIncludingTheExpirySecond) {
  const std::string token = sign_link_token(kSecret, "sd-abc", kExpiry);
  EXPECT_TRUE(verify_link_token(kSecret, token, kExpiry).ok());
  const auto late = verify_link_token(kSecret, token, kExpiry + 1);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, "link_expired");
  EXPECT_FALSE(late.error().retryable);
}

TEST(LinkToken, TamperedPayloadIsForged) {
  const std::string token = sign_link_token(kSecret, "sd-abc", kExpiry);
  const Parts p = split(token);
  // Same MAC, a longer life.
  const std::string extended = base64url_encode("sd-abc." + std::to_string(kExpiry + 86400 * 365)) + "." + p.mac;
  const auto r1 = verify_link_token(kSecret, extended, kBefore);
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.error().code, "link_forged");
  // Same MAC, someone else's delivery.
  const std::string other = base64url_encode("sd-xyz." + std::to_string(kExpiry)) + "." + p.mac;
  const auto r2 = verify_link_token(kSecret, other, kBefore);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, "link_forged");
}

TEST(LinkToken, TamperedMacIsForged) {
  const std::string token = sign_link_token(kSecret, "sd-abc", kExpiry);
  const Parts p = split(token);
  std::string mac = base64url_decode(p.mac);
  ASSERT_EQ(mac.size(), 16u);
  for (std::size_t i : {std::size_t{0}, std::size_t{7}, std::size_t{15}}) {
    std::string bad = mac;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    const auto r = verify_link_token(kSecret, p.payload + "." + base64url_encode(bad), kBefore);
    ASSERT_FALSE(r.ok()) << "byte " << i;
    EXPECT_EQ(r.error().code, "link_forged") << "byte " << i;
  }
}

TEST(LinkToken, OtherSecretIsForged) {
  const std::string token = sign_link_token("another-secret-entirely-000000000", "sd-abc", kExpiry);
  const auto r = verify_link_token(kSecret, token, kBefore);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "link_forged");
}

TEST(LinkToken, ForgeryIsReportedEvenWhenExpired) {
  // An attacker learns nothing about expiry from a token the court never issued.
  const std::string token = sign_link_token("another-secret-entirely-000000000", "sd-abc", kExpiry);
  const auto r = verify_link_token(kSecret, token, kExpiry + 10);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "link_forged");
}

TEST(LinkToken, TokenForOneDeliveryNeverVerifiesAsAnother) {
  const std::string a = sign_link_token(kSecret, "sd-aaaa", kExpiry);
  const std::string b = sign_link_token(kSecret, "sd-bbbb", kExpiry);
  EXPECT_NE(a, b);
  const auto ca = verify_link_token(kSecret, a, kBefore);
  ASSERT_TRUE(ca.ok());
  EXPECT_EQ(ca->delivery_id, "sd-aaaa");
  EXPECT_NE(ca->delivery_id, "sd-bbbb");
  // Splicing A's payload with B's MAC (and the reverse) is refused.
  const Parts pa = split(a);
  const Parts pb = split(b);
  const auto ab = verify_link_token(kSecret, pa.payload + "." + pb.mac, kBefore);
  const auto ba = verify_link_token(kSecret, pb.payload + "." + pa.mac, kBefore);
  ASSERT_FALSE(ab.ok());
  ASSERT_FALSE(ba.ok());
  EXPECT_EQ(ab.error().code, "link_forged");
  EXPECT_EQ(ba.error().code, "link_forged");
}

TEST(LinkToken, GarbageIsMalformed) {
  const std::string too_long = sign_link_token(kSecret, std::string(300, 'x'), kExpiry);
  for (const std::string& garbage :
       {std::string(), std::string("no-dot-here"), std::string("."), std::string("abc."), std::string(".abc"),
        std::string("!!!.???"), std::string("c2QtYWJj.c2hvcnQ"), std::string(1000, 'A'), too_long}) {
    const auto r = verify_link_token(kSecret, garbage, kBefore);
    ASSERT_FALSE(r.ok()) << garbage;
    EXPECT_EQ(r.error().code, "link_malformed") << garbage;
  }
}

TEST(LinkToken, SignedPayloadWithoutExpiryIsMalformed) {
  // A correctly MACed payload that is not "id.expiry" is still refused, not crashed on.
  for (const std::string payload : {"no-expiry", "sd-abc.tomorrow", "sd-abc.", "sd-abc.99999999999999999999999"}) {
    const std::string token =
        base64url_encode(payload) + "." + base64url_encode(hmac_sha256_raw(kSecret, payload).substr(0, 16));
    const auto r = verify_link_token(kSecret, token, kBefore);
    ASSERT_FALSE(r.ok()) << payload;
    EXPECT_EQ(r.error().code, "link_malformed") << payload;
  }
}

// Before, `songda run` without the secret signed links with a key made at start-up: after a restart, or on another
// instance, every link already sent was refused as 「此链接不是法院签发的有效送达链接」.
TEST(LinkSecret, SongdaRunNeedsOneFromTheEnvironment) {
  const auto env = [](const char* v) {
    return [v](const char* name) { return std::string_view(name) == "SONGDA_LINK_SECRET" ? v : nullptr; };
  };
  for (const char* missing : {static_cast<const char*>(nullptr), "", "fifteen-bytes-."}) {
    try {
      (void)link_secret_from_environment(env(missing));
      FAIL() << "accepted " << (missing == nullptr ? "no secret" : missing);
    } catch (const StartupError& e) {
      EXPECT_NE(std::string(e.what()).find("SONGDA_LINK_SECRET"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("Hint:"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(link_secret_from_environment(env("sixteen-bytes-ok")), "sixteen-bytes-ok");
}

}  // namespace
}  // namespace songda
