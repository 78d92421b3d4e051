// Signed party links (/r/{token}): a token binds one delivery id and an expiry,
// signed with HMAC-SHA256 under a secret from the environment. Not guessable,
// not transferable to another delivery, useless after expiry.
// Token = base64url(delivery_id "." expiry_unix_s) "." base64url(first 16 bytes of the MAC).
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <string>

#include "gateway/core/result.h"

namespace songda {

struct LinkClaims {
  std::string delivery_id;
  std::int64_t expires_unix_s = 0;
};

std::string sign_link_token(const std::string& secret, const std::string& delivery_id, std::int64_t expires_unix_s);
// Error codes: link_malformed, link_forged, link_expired.
Result<LinkClaims> verify_link_token(const std::string& secret, const std::string& token, std::int64_t now_unix_s);

}  // namespace songda
