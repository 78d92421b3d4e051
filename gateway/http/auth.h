// API authentication: court-scoped API keys and the operator token.
//
// Keys come from the environment, never from YAML: SONGDA_API_KEYS_FILE names a
// file with one "court_id key" pair per line ('#' starts a comment), and
// SONGDA_API_KEYS may hold "court_id=key,court_id=key" (handy for demos and
// tests). SONGDA_ADMIN_TOKEN is the operator token that sees every court.
// Keys are kept only as SHA-256 digests and compared in constant time.
//
// Thread-safety: immutable after construction.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "gateway/core/result.h"

namespace songda {

struct Principal {
  std::string court_id;  // empty for the operator
  bool admin = false;
  [[nodiscard]] bool may_see(const std::string& court) const { return admin || court == court_id; }
};

class ApiKeys {
 public:
  ApiKeys() = default;
  // Reads SONGDA_API_KEYS_FILE, SONGDA_API_KEYS and SONGDA_ADMIN_TOKEN. Throws StartupError on an unreadable file
  // or a malformed line (naming file and line), a key or an operator token shorter than 16 characters.
  static ApiKeys from_environment(const std::function<const char*(const char*)>& getenv);

  void add_key(const std::string& court_id, const std::string& key);
  void set_admin_token(const std::string& token);

  // From an "Authorization: Bearer <key>" header value. nullopt = not authenticated.
  [[nodiscard]] std::optional<Principal> authenticate(const std::string& authorization_header) const;
  [[nodiscard]] std::size_t size() const { return by_digest_.size(); }

 private:
  std::map<std::string, std::string> by_digest_;  // sha256(key) -> court id
  std::string admin_digest_;
};

}  // namespace songda
