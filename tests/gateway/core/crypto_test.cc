// Unit tests for gateway/core/crypto: known digest and MAC vectors, and the
// encoders that ids, links and proofs are built from.
#include "gateway/core/crypto.h"

#include <gtest/gtest.h>

#include <string>

namespace songda {
namespace {

std::string all_bytes() {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  return s;
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Sha256, RawIs32BytesMatchingHex) {
  const std::string raw = sha256_raw("abc");
  ASSERT_EQ(raw.size(), 32u);
  EXPECT_EQ(to_hex(raw), sha256_hex("abc"));
}

TEST(Sha1, KnownVector) {
  EXPECT_EQ(sha1_hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(sha1_raw("abc").size(), 20u);
}

TEST(HmacSha256, Rfc4231TestCase1) {
  const std::string key(20, '\x0b');
  EXPECT_EQ(to_hex(hmac_sha256_raw(key, "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(HmacSha256, Rfc4231TestCase2) {
  EXPECT_EQ(to_hex(hmac_sha256_raw("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256, KeyLongerThanBlockRfc4231TestCase6) {
  const std::string key(131, '\xaa');
  EXPECT_EQ(to_hex(hmac_sha256_raw(key, "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(HmacSha256, EmptyKeyIsAKeyOfZeros) {
  EXPECT_EQ(to_hex(hmac_sha256_raw("", "")), "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_EQ(to_hex(hmac_sha256_raw(std::string_view(), "")), to_hex(hmac_sha256_raw("", "")));
  // and it does not reuse the key of the call before (value from Python's hmac module)
  EXPECT_EQ(to_hex(hmac_sha256_raw("Jefe", "x")), "30c1a252726d9f629121f7efb69852b3d25b3accb5410de2dfdd3b069eb51745");
  EXPECT_EQ(to_hex(hmac_sha256_raw("", "x")), "4cbc96099a6467ce002461f10549b4898265ebe6188b45efacc44293516e62c4");
}

TEST(HmacSha1, Rfc2202TestCase2) {
  EXPECT_EQ(to_hex(hmac_sha1_raw("Jefe", "what do ya want for nothing?")), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  EXPECT_EQ(to_hex(hmac_sha1_raw("", "abc")), "9b4a918f398d74d3e367970aba3cbe54e4d2b5d9");
}

TEST(Hex, EncodesLowercase) {
  EXPECT_EQ(to_hex(std::string("\x00\xff\x10\xab", 4)), "00ff10ab");
  EXPECT_EQ(to_hex(""), "");
}

TEST(Hex, RoundTripsEveryByte) {
  const std::string bytes = all_bytes();
  EXPECT_EQ(from_hex(to_hex(bytes)), bytes);
}

TEST(Hex, DecodesUppercase) { EXPECT_EQ(from_hex("00FF10AB"), std::string("\x00\xff\x10\xab", 4)); }

TEST(Hex, MalformedInputGivesEmpty) {
  EXPECT_EQ(from_hex("abc"), "");   // odd length
  EXPECT_EQ(from_hex("zz"), "");    // not hex
  EXPECT_EQ(from_hex("0g"), "");    // bad low nibble
  EXPECT_EQ(from_hex("g0"), "");    // bad high nibble
  EXPECT_EQ(from_hex("00 1"), "");  // whitespace
  EXPECT_EQ(from_hex("0x00"), "");  // prefix
}

TEST(Base64, Rfc4648Vectors) {
  const std::pair<std::string, std::string> cases[] = {{"", ""},
                                                       {"f", "Zg=="},
                                                       {"fo", "Zm8="},
                                                       {"foo", "Zm9v"},
                                                       {"foob", "Zm9vYg=="},
                                                       {"fooba", "Zm9vYmE="},
                                                       {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(base64_encode(plain), encoded) << plain;
    EXPECT_EQ(base64_decode(encoded), plain) << encoded;
  }
}

TEST(Base64, RoundTripsBinaryOfEveryLength) {
  const std::string bytes = all_bytes();
  for (std::size_t n = 0; n <= 40; ++n) {
    // Bytes 0xf8.. give '+' and '/' in the standard alphabet; mix them in.
    std::string chunk = bytes.substr(256 - n) + bytes.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(chunk)), chunk) << "length " << chunk.size();
  }
}

TEST(Base64, DecodedPaddingIsNotPartOfTheData) {
  // A decoded value must not carry trailing zero bytes from the padding.
  EXPECT_EQ(base64_decode("Zg==").size(), 1u);
  EXPECT_EQ(base64_decode("Zm8=").size(), 2u);
  EXPECT_EQ(base64_decode(base64_encode(std::string("\0\0", 2))), std::string("\0\0", 2));
}

TEST(Base64, MalformedInputGivesEmpty) {
  EXPECT_EQ(base64_decode("Zm9"), "");       // length not a multiple of 4
  EXPECT_EQ(base64_decode("Zm9v!A=="), "");  // character outside the alphabet
  EXPECT_EQ(base64_decode("Zm 9v"), "");     // space inside
  EXPECT_EQ(base64_decode("Zm9-"), "");      // base64url character in standard base64
}

// crypto.h promises "empty on malformed input"; '=' is only valid as the final
// one or two characters. OpenSSL's EVP_DecodeBlock treats '=' anywhere as a zero
// digit, so these decode to garbage today.
TEST(Base64, PaddingInsideTheTextIsMalformed) {
  EXPECT_EQ(base64_decode("Zm=v"), "");
  EXPECT_EQ(base64_decode("Zg==Zg=="), "");
  EXPECT_EQ(base64_decode("===="), "");
  EXPECT_EQ(base64_decode("Z==="), "");
}

TEST(Base64Url, UsesUrlSafeAlphabetWithoutPadding) {
  EXPECT_EQ(base64url_encode("\xfb\xff\xbf"), "-_-_");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_decode("-_-_"), "\xfb\xff\xbf");
  EXPECT_EQ(base64url_decode("Zg"), "f");
  EXPECT_EQ(base64url_decode("Zm8"), "fo");
}

TEST(Base64Url, RoundTripsBinaryOfEveryLength) {
  const std::string bytes = all_bytes();
  for (std::size_t n = 0; n <= 40; ++n) {
    std::string chunk = bytes.substr(256 - n) + bytes.substr(0, n);
    const std::string enc = base64url_encode(chunk);
    EXPECT_EQ(enc.find_first_of("+/="), std::string::npos) << enc;
    EXPECT_EQ(base64url_decode(enc), chunk) << "length " << chunk.size();
  }
}

TEST(Base64Url, MalformedInputGivesEmpty) {
  EXPECT_EQ(base64url_decode("Zm+v"), "");  // standard-alphabet '+'
  EXPECT_EQ(base64url_decode("Zm/v"), "");  // standard-alphabet '/'
  EXPECT_EQ(base64url_decode("Zg=="), "");  // padding is not used
  EXPECT_EQ(base64url_decode("Zm9v!"), "");
}

// One leftover character carries only 6 bits: no byte can be encoded that way,
// so no encoder produces it. Today "A" decodes to a single zero byte.
TEST(Base64Url, SingleLeftoverCharacterIsMalformed) {
  EXPECT_EQ(base64url_decode("A"), "");
  EXPECT_EQ(base64url_decode("Zm9vA"), "");
}

TEST(ConstantTimeEqual, ComparesContent) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("secret-key", "secret-key"));
  EXPECT_FALSE(constant_time_equal("secret-key", "secret-kez"));
  EXPECT_FALSE(constant_time_equal("Secret-key", "secret-key"));
  EXPECT_FALSE(constant_time_equal("secret", "secret-key"));  // prefix
  EXPECT_FALSE(constant_time_equal("secret-key", ""));
  EXPECT_TRUE(constant_time_equal(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(RandomBytes, GivesRequestedLengthAndVaries) {
  EXPECT_EQ(random_bytes(0).size(), 0u);
  const std::string a = random_bytes(32);
  const std::string b = random_bytes(32);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);  // 2^-256 chance of a false failure
}

}  // namespace
}  // namespace songda
