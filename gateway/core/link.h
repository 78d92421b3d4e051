// Signed party links (/r/{token}): a token binds one delivery id and an expiry,
// signed with HMAC-SHA256 under a secret from the environment. Not guessable,
// not transferable to another delivery, useless after expiry.
// Token = base64url(delivery_id "." expiry_unix_s) "." base64url(first 16 bytes of the MAC).
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
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

// SONGDA_LINK_SECRET (16+ bytes). Throws StartupError with a hint when it is unset or shorter: links signed with
// a key made up at start-up would all be refused as forged after a restart, or by another instance.
std::string link_secret_from_environment(const std::function<const char*(const char*)>& getenv);

// Removes every party link ("http(s)://…/r/<token>") from a message text: for a page that already is that link, and
// for readers who must not hold it (a party link lets whoever has it record READ and ACKNOWLEDGED).
std::string strip_links(std::string text);

}  // namespace songda
