#include "gateway/core/crypto.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <memory>
#include <stdexcept>

namespace songda {
namespace {

// OpenSSL 3 looks an algorithm up (locks, property query) on every EVP_Digest given a legacy EVP_sha256();
// a digest fetched once does not (OpenSSL's "explicit fetching"). Fetched on first use, kept for the process.
using FetchedMd = std::unique_ptr<EVP_MD, decltype(&EVP_MD_free)>;

FetchedMd fetch(const char* name) {
  FetchedMd md(EVP_MD_fetch(nullptr, name, nullptr), &EVP_MD_free);
  if (!md) throw std::runtime_error(std::string("EVP_MD_fetch failed for ") + name);
  return md;
}

const EVP_MD* sha256_md() {
  static const FetchedMd md = fetch("SHA2-256");
  return md.get();
}

const EVP_MD* sha1_md() {
  static const FetchedMd md = fetch("SHA1");
  return md.get();
}

std::string digest(const EVP_MD* md, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), out.data(), &len, md, nullptr) != 1) {
    throw std::runtime_error("EVP_Digest failed");  // only on OpenSSL misconfiguration
  }
  return {reinterpret_cast<const char*>(out.data()), len};
}

// HMAC() looks up the MAC and its digest by name on every call (OpenSSL 3's EVP_Q_mac: 3.5 % of the gateway's
// CPU in bench/). A context with its digest set is made once per digest; each call duplicates it.
using MacCtx = std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)>;

MacCtx hmac_template(const char* digest_name) {
  const std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr), &EVP_MAC_free);
  if (!mac) throw std::runtime_error("EVP_MAC_fetch failed for HMAC");
  MacCtx ctx(EVP_MAC_CTX_new(mac.get()), &EVP_MAC_CTX_free);  // holds its own reference to the MAC
  std::string name(digest_name);
  const std::array<OSSL_PARAM, 2> params{OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, name.data(), 0),
                                         OSSL_PARAM_construct_end()};
  if (!ctx || EVP_MAC_CTX_set_params(ctx.get(), params.data()) != 1) {
    throw std::runtime_error(std::string("HMAC set-up failed for ") + digest_name);
  }
  return ctx;
}

std::string hmac(const EVP_MAC_CTX* tmpl, std::string_view key, std::string_view data) {
  // An empty key is a key (HMAC pads it with zeros); a null one would mean "keep the previous key".
  static constexpr unsigned char kNoBytes = 0;
  const auto* key_bytes = key.empty() ? &kNoBytes : reinterpret_cast<const unsigned char*>(key.data());
  const MacCtx ctx(EVP_MAC_CTX_dup(tmpl), &EVP_MAC_CTX_free);
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  std::size_t len = 0;
  if (!ctx || EVP_MAC_init(ctx.get(), key_bytes, key.size(), nullptr) != 1 ||
      EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1) {
    throw std::runtime_error("HMAC failed");  // only on OpenSSL misconfiguration
  }
  return {reinterpret_cast<const char*>(out.data()), len};
}

const EVP_MAC_CTX* hmac_sha256_ctx() {
  static const MacCtx ctx = hmac_template("SHA2-256");
  return ctx.get();
}

const EVP_MAC_CTX* hmac_sha1_ctx() {
  static const MacCtx ctx = hmac_template("SHA1");
  return ctx.get();
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string sha256_raw(std::string_view data) { return digest(sha256_md(), data); }
std::string sha256_hex(std::string_view data) { return to_hex(sha256_raw(data)); }
std::string sha1_raw(std::string_view data) { return digest(sha1_md(), data); }
std::string sha1_hex(std::string_view data) { return to_hex(sha1_raw(data)); }
std::string hmac_sha256_raw(std::string_view key, std::string_view data) { return hmac(hmac_sha256_ctx(), key, data); }
std::string hmac_sha1_raw(std::string_view key, std::string_view data) { return hmac(hmac_sha1_ctx(), key, data); }

std::string to_hex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '\0');
  std::size_t i = 0;
  for (const unsigned char c : bytes) {
    out[i++] = kDigits[c >> 4];
    out[i++] = kDigits[c & 0xF];
  }
  return out;
}

std::string from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0) return {};
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    const int hi = hex_value(hex[i]);
    const int lo = hex_value(hex[i + 1]);
    if (hi < 0 || lo < 0) return {};
    out.push_back(static_cast<char>((hi << 4) | lo));
  }
  return out;
}

std::string base64_encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

std::string base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return {};
  std::string out(3 * text.size() / 4, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return {};
  std::size_t len = static_cast<std::size_t>(n);
  if (!text.empty() && text.back() == '=') --len;
  if (text.size() > 1 && text[text.size() - 2] == '=') --len;
  out.resize(len);
  // EVP_DecodeBlock reads '=' inside the text as a zero digit; accept only canonical input.
  if (base64_encode(out) != text) return {};
  return out;
}

std::string base64url_encode(std::string_view bytes) {
  std::string s = base64_encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

std::string base64url_decode(std::string_view text) {
  std::string s(text);
  for (char& c : s) {
    if (c == '-') {
      c = '+';
    } else if (c == '_') {
      c = '/';
    } else if (c == '+' || c == '/' || c == '=') {
      return {};
    }
  }
  if (s.size() % 4 == 1) return {};
  while (s.size() % 4 != 0) s.push_back('=');
  return base64_decode(s);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_bytes(std::size_t n) {
  std::string out(n, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("RAND_bytes failed");
  }
  return out;
}

}  // namespace songda
