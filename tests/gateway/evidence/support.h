// Shared helpers for the evidence tests: valid records of every type, a temp
// directory, and a local RFC 3161 TSA made with the `openssl` command line.
// Not thread-safe (tests run one at a time).
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"
#include "gateway/evidence/record.h"

namespace songda::evidence::testing {

inline constexpr std::int64_t kT0 = 1764291600000;  // 2025-11-28T01:00:00Z
inline constexpr const char* kEventId = "b3c1e0de-0000-4000-8000-000000000001";
inline constexpr const char* kCourt = "HN-SQ-ZY";
inline constexpr const char* kCase = "(2026)豫14民初123号";
inline constexpr const char* kRecipient = "P-001";

// Minimal valid details for each type (consent basis given for CONSENT_RECORDED).
nlohmann::json details_for(EvidenceType type, const std::string& basis = "provided");

// A valid record of kEventId/kCourt/kCase for recipient `recipient` on `channel`;
// its id is made from `discriminator` (default: the event time).
EvidenceRecord make_record(const std::string& channel, EvidenceType type, std::int64_t event_time,
                           nlohmann::json details = nullptr, const std::string& recipient = kRecipient,
                           std::string discriminator = "");

std::string delivery_of(const std::string& channel, const std::string& recipient = kRecipient);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

bool have_openssl_cli();

// A throw-away CA and TSA certificate in a temp dir, driven by `openssl ts`.
class LocalTsa {
 public:
  // Error "setup" when a command fails (its output is in the message).
  static Result<LocalTsa> create(const std::filesystem::path& dir);
  [[nodiscard]] const std::string& ca_pem() const { return ca_pem_; }
  // The DER TimeStampToken (token_only) or TimeStampResp for SHA-256 of `data`.
  Result<std::string> stamp(const std::string& data, bool token_only) const;

 private:
  explicit LocalTsa(std::filesystem::path dir) : dir_(std::move(dir)) {}
  std::filesystem::path dir_;
  std::string ca_pem_;
};

Result<std::string> read_file(const std::filesystem::path& p);

}  // namespace songda::evidence::testing
