#include "gateway/http/auth.h"

#include <cctype>
#include <fstream>
#include <sstream>

#include "gateway/core/crypto.h"

namespace songda {
namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}
}  // namespace

void ApiKeys::add_key(const std::string& court_id, const std::string& key) {
  if (key.size() < 16) throw StartupError("API key for " + court_id + " is shorter than 16 characters");
  const auto [it, inserted] = by_digest_.emplace(sha256_hex(key), court_id);
  if (!inserted && it->second != court_id) {
    throw StartupError("the same API key is given for courts " + it->second + " and " + court_id);
  }
}

void ApiKeys::set_admin_token(const std::string& token) {
  // The operator token sees every court: at least as long as a court's key.
  if (!token.empty() && token.size() < 16) throw StartupError("SONGDA_ADMIN_TOKEN is shorter than 16 characters");
  admin_digest_ = token.empty() ? "" : sha256_hex(token);
}

ApiKeys ApiKeys::from_environment(const std::function<const char*(const char*)>& getenv) {
  ApiKeys keys;
  if (const char* path = getenv("SONGDA_API_KEYS_FILE"); path != nullptr && *path != '\0') {
    std::ifstream in(path);
    if (!in) throw StartupError(std::string("cannot read SONGDA_API_KEYS_FILE ") + path);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      line = trim(line.substr(0, line.find('#')));
      if (line.empty()) continue;
      std::istringstream ss(line);
      std::string court;
      std::string key;
      std::string extra;
      if (!(ss >> court >> key) || (ss >> extra) || key.size() < 16) {
        throw StartupError(std::string(path) + ":" + std::to_string(n) +
                           ": expected 'court_id key' with a key of at least 16 characters");
      }
      keys.add_key(court, key);
    }
  }
  if (const char* list = getenv("SONGDA_API_KEYS"); list != nullptr && *list != '\0') {
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
      item = trim(item);
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 >= item.size()) {
        throw StartupError("SONGDA_API_KEYS: expected court_id=key pairs separated by commas");
      }
      keys.add_key(item.substr(0, eq), item.substr(eq + 1));
    }
  }
  if (const char* admin = getenv("SONGDA_ADMIN_TOKEN"); admin != nullptr && *admin != '\0') keys.set_admin_token(admin);
  return keys;
}

std::optional<Principal> ApiKeys::authenticate(const std::string& header) const {
  static const std::string kBearer = "bearer ";
  if (header.size() <= kBearer.size()) return std::nullopt;
  for (std::size_t i = 0; i < kBearer.size(); ++i) {  // the scheme is case-insensitive (RFC 7235)
    if (std::tolower(static_cast<unsigned char>(header[i])) != kBearer[i]) return std::nullopt;
  }
  const std::string digest = sha256_hex(trim(header.substr(kBearer.size())));
  if (!admin_digest_.empty() && constant_time_equal(digest, admin_digest_)) return Principal{"", true};
  // Digests are of secret keys, so a map lookup by digest leaks nothing useful about the key.
  const auto it = by_digest_.find(digest);
  if (it == by_digest_.end()) return std::nullopt;
  return Principal{it->second, false};
}

}  // namespace songda
