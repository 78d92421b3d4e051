#include "gateway/core/link.h"

#include "gateway/core/crypto.h"

namespace songda {

std::string sign_link_token(const std::string& secret, const std::string& delivery_id, std::int64_t expires_unix_s) {
  const std::string payload = delivery_id + "." + std::to_string(expires_unix_s);
  const std::string mac = hmac_sha256_raw(secret, payload).substr(0, 16);
  return base64url_encode(payload) + "." + base64url_encode(mac);
}

Result<LinkClaims> verify_link_token(const std::string& secret, const std::string& token, std::int64_t now_unix_s) {
  const auto dot = token.find('.');
  if (dot == std::string::npos || token.size() > 256)
    return Error::permanent("link_malformed", "this link is not valid");
  const std::string payload = base64url_decode(token.substr(0, dot));
  const std::string mac = base64url_decode(token.substr(dot + 1));
  if (payload.empty() || mac.size() != 16) return Error::permanent("link_malformed", "this link is not valid");
  if (!constant_time_equal(mac, hmac_sha256_raw(secret, payload).substr(0, 16))) {
    return Error::permanent("link_forged", "this link was not issued by the court");
  }
  const auto sep = payload.rfind('.');
  if (sep == std::string::npos) return Error::permanent("link_malformed", "this link is not valid");
  LinkClaims claims;
  claims.delivery_id = payload.substr(0, sep);
  try {
    claims.expires_unix_s = std::stoll(payload.substr(sep + 1));
  } catch (...) {
    return Error::permanent("link_malformed", "this link is not valid");
  }
  if (now_unix_s > claims.expires_unix_s) return Error::permanent("link_expired", "this link has expired");
  return claims;
}

std::string link_secret_from_environment(const std::function<const char*(const char*)>& getenv) {
  const char* secret = getenv("SONGDA_LINK_SECRET");
  if (secret == nullptr || std::string_view(secret).size() < 16) {
    throw StartupError(
        "SONGDA_LINK_SECRET is unset or shorter than 16 bytes; it signs the party links (/r/{token}) in every message. "
        "Hint: generate one with `openssl rand -hex 32`, give every instance the same one and keep it: links "
        "already sent are checked with it for 90 days");
  }
  return secret;
}

std::string strip_links(std::string text) {
  auto url_char = [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u > 0x20 && u < 0x7f && c != '"' && c != '<' && c != '>';
  };
  std::size_t from = 0;
  while (true) {
    const auto http = text.find("http", from);
    if (http == std::string::npos) break;
    if (text.compare(http, 7, "http://") != 0 && text.compare(http, 8, "https://") != 0) {
      from = http + 4;
      continue;
    }
    auto end = http;
    while (end < text.size() && url_char(text[end])) ++end;
    const std::string url = text.substr(http, end - http);
    if (url.find("/r/") == std::string::npos) {
      from = end;
      continue;
    }
    if (end < text.size() && text[end] == ' ') ++end;
    text.erase(http, end - http);
    from = http;
  }
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n')) text.pop_back();
  return text;
}

}  // namespace songda
