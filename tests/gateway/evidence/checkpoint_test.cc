// Keys, signed tree heads, their JSON, and RFC 3161 tokens from a local TSA.
#include "gateway/evidence/checkpoint.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>

#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "tests/gateway/evidence/support.h"

namespace songda::evidence {
namespace {

using testing::TempDir;

std::string root32() {
  std::string r;
  for (int i = 0; i < 32; ++i) r.push_back(static_cast<char>(i + 1));
  return r;
}

SigningKey fresh_key() {
  auto pair = generate_key_pair();
  EXPECT_TRUE(pair.ok());
  auto key = load_private_key_pem(pair->private_pem);
  EXPECT_TRUE(key.ok());
  return *key;
}

// RFC 8032 §7.1 TEST 1, wrapped as PKCS#8 (302e020100300506032b657004220420 ‖ seed).
constexpr const char* kRfc8032Pem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIJ1hsZ3v/VpguoRK9JLsLMREScVpezJpGXA7rAMcrn9g\n"
    "-----END PRIVATE KEY-----\n";

TEST(Keys, Rfc8032KnownAnswer) {
  auto key = load_private_key_pem(kRfc8032Pem);
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(to_hex(key->public_key().raw()), "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  auto sig = key->sign("");
  ASSERT_TRUE(sig.ok());
  EXPECT_EQ(to_hex(*sig),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5"
            "f0595bbe24655141438e7a100b");
  EXPECT_EQ(key->key_id(), sha256_hex(key->public_key().raw()).substr(0, 16));
  EXPECT_TRUE(key->public_key().verify("", *sig).ok());
  EXPECT_EQ(key->public_key().verify("x", *sig).error().code, "signature_invalid");
}

TEST(Keys, GeneratedPairLoadsAndMatches) {
  auto pair = generate_key_pair();
  ASSERT_TRUE(pair.ok());
  auto priv = load_private_key_pem(pair->private_pem);
  auto pub = load_public_key_pem(pair->public_pem);
  ASSERT_TRUE(priv.ok());
  ASSERT_TRUE(pub.ok());
  EXPECT_EQ(priv->key_id(), pub->key_id());
  EXPECT_EQ(priv->key_id().size(), 16u);
  EXPECT_EQ(*priv->public_key().public_pem(), pair->public_pem);
  EXPECT_NE(fresh_key().key_id(), priv->key_id());
}

TEST(Keys, FilesArePrivateAndNeverOverwritten) {
  TempDir dir;
  const std::string priv = (dir.path() / "log.key").string();
  const std::string pub = (dir.path() / "log.pub").string();
  ASSERT_TRUE(generate_key_pair_files(priv, pub).ok());
  struct stat st {};
  ASSERT_EQ(::stat(priv.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto k = load_private_key_file(priv);
  auto p = load_public_key_file(pub);
  ASSERT_TRUE(k.ok());
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(k->key_id(), p->key_id());
  EXPECT_EQ(generate_key_pair_files(priv, pub).error().code, "exists");
  EXPECT_EQ(load_private_key_file((dir.path() / "missing").string()).error().code, "io");
}

TEST(Keys, RejectsOtherKeysAndGarbage) {
  EXPECT_EQ(load_private_key_pem("not a key").error().code, "key_invalid");
  EXPECT_EQ(load_public_key_pem("").error().code, "key_invalid");
  auto pair = generate_key_pair();
  EXPECT_EQ(load_public_key_pem(pair->private_pem).error().code, "key_invalid");
  EXPECT_EQ(load_private_key_pem(pair->public_pem).error().code, "key_invalid");
}

TEST(Checkpoint, SignedBodyIsTheDocumentedText) {
  Checkpoint c;
  c.origin = "songda/HN-SQ-ZY";
  c.tree_size = 17;
  c.root_hash = root32();
  c.timestamp_ms = testing::kT0;
  EXPECT_EQ(signed_body(c),
            "songda/HN-SQ-ZY\n17\nAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\ntimestamp 1764291600000\n");
}

TEST(Checkpoint, SignsAndVerifies) {
  const SigningKey key = fresh_key();
  auto c = sign_checkpoint("songda/HN-SQ-ZY", 17, root32(), testing::kT0, key);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->key_id, key.key_id());
  EXPECT_TRUE(verify_checkpoint(*c, key.public_key()).ok());
  EXPECT_TRUE(key.public_key().verify(signed_body(*c), c->signature).ok());
}

TEST(Checkpoint, EveryChangedFieldFailsWithAReason) {
  const SigningKey key = fresh_key();
  const Checkpoint good = *sign_checkpoint("songda/HN-SQ-ZY", 17, root32(), testing::kT0, key);
  auto expect_fails = [&](Checkpoint c, const char* what) {
    const Status s = verify_checkpoint(c, key.public_key());
    ASSERT_FALSE(s.ok()) << what;
    EXPECT_EQ(s.error().code, "checkpoint_invalid");
    EXPECT_FALSE(s.error().message.empty());
  };
  Checkpoint c = good;
  c.origin = "songda/HN-SQ-ZX";
  expect_fails(c, "origin");
  c = good;
  c.tree_size = 18;
  expect_fails(c, "size");
  c = good;
  c.root_hash[31] = static_cast<char>(c.root_hash[31] ^ 1);
  expect_fails(c, "root");
  c = good;
  c.timestamp_ms += 1;
  expect_fails(c, "timestamp");
  for (std::size_t i = 0; i < good.signature.size(); ++i) {
    c = good;
    c.signature[i] = static_cast<char>(c.signature[i] ^ 0x10);
    expect_fails(c, "signature");
  }
  c = good;
  c.key_id = "0000000000000000";
  expect_fails(c, "key id");
  const Status other = verify_checkpoint(good, fresh_key().public_key());
  ASSERT_FALSE(other.ok());
  EXPECT_NE(other.error().message.find("names key"), std::string::npos);
}

TEST(Checkpoint, RefusesMalformedInput) {
  const SigningKey key = fresh_key();
  EXPECT_EQ(sign_checkpoint("", 1, root32(), 0, key).error().code, "invalid_argument");
  EXPECT_EQ(sign_checkpoint("a\nb", 1, root32(), 0, key).error().code, "invalid_argument");
  EXPECT_EQ(sign_checkpoint("a", 1, "short", 0, key).error().code, "invalid_argument");
}

TEST(Checkpoint, JsonRoundTripIsStrict) {
  const SigningKey key = fresh_key();
  Checkpoint c = *sign_checkpoint("songda/HN-SQ-ZY", 17, root32(), testing::kT0, key);
  c.tsa_token = std::string("\x30\x03\x02\x01\x00", 5);
  const nlohmann::json j = to_json(c);
  auto back = checkpoint_from_json(j);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(to_json(*back), j);
  EXPECT_TRUE(verify_checkpoint(*back, key.public_key()).ok());

  auto refused = [](nlohmann::json bad) { return !checkpoint_from_json(bad).ok(); };
  nlohmann::json bad = j;
  bad["extra"] = 1;
  EXPECT_TRUE(refused(bad));
  bad = j;
  bad.erase("timestamp");
  EXPECT_TRUE(refused(bad));
  bad = j;
  std::string upper = j["root_hash"];
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  bad["root_hash"] = upper;
  EXPECT_TRUE(refused(bad));
  bad = j;
  std::string sig = j["signature"];  // 64 bytes → "…A==" style padding: change an unused low bit
  ASSERT_EQ(sig.substr(sig.size() - 2), "==");
  sig[sig.size() - 3] = static_cast<char>(sig[sig.size() - 3] ^ 1);
  bad["signature"] = sig;
  EXPECT_TRUE(refused(bad)) << "non-canonical base64 must be refused";
  bad = j;
  bad["tree_size"] = -1;
  EXPECT_TRUE(refused(bad));
  bad = j;
  bad["tree_size"] = 17.0;
  EXPECT_TRUE(refused(bad));
  bad = j;
  bad["tree_size"] = 17;  // a signed integer built in code is the same value
  EXPECT_TRUE(checkpoint_from_json(bad).ok());
}

// --- RFC 3161 ---------------------------------------------------------------------------------------------------

class Tsa : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::have_openssl_cli()) GTEST_SKIP() << "the `openssl` command is not installed; skipping RFC 3161 tests";
    auto tsa = testing::LocalTsa::create(dir_.path());
    ASSERT_TRUE(tsa.ok()) << tsa.error().message;
    tsa_.emplace(std::move(*tsa));
    key_.emplace(fresh_key());
    checkpoint_ = *sign_checkpoint("songda/HN-SQ-ZY", 17, root32(), testing::kT0, *key_);
  }

  TempDir dir_;
  std::optional<testing::LocalTsa> tsa_;
  std::optional<SigningKey> key_;
  Checkpoint checkpoint_;
};

TEST_F(Tsa, TokenOverTheSignedBodyVerifies) {
  const std::string body = signed_body(checkpoint_);
  for (const bool token_only : {true, false}) {
    auto der = tsa_->stamp(body, token_only);
    ASSERT_TRUE(der.ok()) << der.error().message;
    auto t = verify_tsa_token(*der, body, tsa_->ca_pem());
    ASSERT_TRUE(t.ok()) << t.error().message;
    EXPECT_EQ(t->policy_oid, "1.2.3.4.1");
    EXPECT_NEAR(static_cast<double>(t->gen_time_ms), static_cast<double>(now_unix_ms()), 120000.0);
    EXPECT_FALSE(t->serial_hex.empty());
    EXPECT_TRUE(inspect_tsa_token(*der, body).ok());
  }
}

TEST_F(Tsa, TokenForOtherDataDoesNotVerify) {
  const std::string body = signed_body(checkpoint_);
  auto other = tsa_->stamp(body + "x", true);
  ASSERT_TRUE(other.ok()) << other.error().message;
  auto t = verify_tsa_token(*other, body, tsa_->ca_pem());
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, "tsa_invalid");
  EXPECT_FALSE(inspect_tsa_token(*other, body).ok());
}

TEST_F(Tsa, UntrustedOrDamagedTokenDoesNotVerify) {
  const std::string body = signed_body(checkpoint_);
  auto der = tsa_->stamp(body, true);
  ASSERT_TRUE(der.ok());
  TempDir other_dir;
  auto other_tsa = testing::LocalTsa::create(other_dir.path());
  ASSERT_TRUE(other_tsa.ok());
  EXPECT_FALSE(verify_tsa_token(*der, body, other_tsa->ca_pem()).ok()) << "another CA must not be trusted";
  EXPECT_FALSE(verify_tsa_token(*der, body, "no certificate").ok());
  EXPECT_FALSE(verify_tsa_token("garbage", body, tsa_->ca_pem()).ok());
  std::string damaged = *der;
  damaged[damaged.size() - 10] = static_cast<char>(damaged[damaged.size() - 10] ^ 1);  // inside the signature
  EXPECT_FALSE(verify_tsa_token(damaged, body, tsa_->ca_pem()).ok());
}

TEST_F(Tsa, AttachingATokenLeavesTheSignatureValid) {
  const std::string body = signed_body(checkpoint_);
  auto der = tsa_->stamp(body, true);
  ASSERT_TRUE(der.ok());
  Checkpoint stamped = checkpoint_;
  stamped.tsa_token = *der;
  EXPECT_EQ(signed_body(stamped), body);
  EXPECT_TRUE(verify_checkpoint(stamped, key_->public_key()).ok());
  auto back = checkpoint_from_json(to_json(stamped));
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(verify_tsa_token(*back->tsa_token, signed_body(*back), tsa_->ca_pem()).ok());
}

}  // namespace
}  // namespace songda::evidence
