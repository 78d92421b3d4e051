// Signed tree heads ("checkpoints") of the evidence log: Ed25519 keys, signing,
// verification, JSON form, and RFC 3161 timestamp tokens over a checkpoint.
//
// The signed body is the transparency-dev checkpoint text (three mandatory
// lines) plus one extension line carrying the time. Exactly these bytes, UTF-8,
// each line ending in a single "\n", nothing else:
//
//     <origin>\n                 e.g. "songda/HN-SQ-ZY" (non-empty, no "\n")
//     <tree_size>\n              decimal, no leading zeros ("0" for empty)
//     <base64(root_hash)>\n      standard base64 with padding of the 32-byte root
//     timestamp <unix_ms>\n      decimal milliseconds since the Unix epoch (UTC)
//
//   e.g. "songda/HN-SQ-ZY\n17\nq1w…A=\ntimestamp 1764291600000\n".
//
// The Ed25519 signature (pure Ed25519, RFC 8032, no pre-hash) is over those
// bytes. key_id = lowercase hex of the first 8 bytes of SHA-256(raw 32-byte
// public key). An RFC 3161 token can be attached later without touching what
// the key signed: its message imprint is SHA-256(signed body) — ask the TSA
// for a stamp of the signed body text with `sha256`.
//
// Ownership: SigningKey/VerifyKey share an immutable OpenSSL key (copies are
// cheap); no OpenSSL type appears in this header. Thread-safety: keys and all
// functions are safe to use from several threads. Nothing throws.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"

namespace songda::evidence {

class VerifyKey {
 public:
  [[nodiscard]] const std::string& raw() const;     // 32 bytes
  [[nodiscard]] const std::string& key_id() const;  // 16 lowercase hex
  [[nodiscard]] Result<std::string> public_pem() const;
  // ok, or Error "signature_invalid".
  [[nodiscard]] Status verify(std::string_view message, std::string_view signature) const;

  struct Impl;
  explicit VerifyKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const Impl> impl_;
};

class SigningKey {
 public:
  [[nodiscard]] const VerifyKey& public_key() const;
  [[nodiscard]] const std::string& key_id() const { return public_key().key_id(); }
  [[nodiscard]] Result<std::string> sign(std::string_view message) const;  // 64 bytes

  struct Impl;
  explicit SigningKey(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

 private:
  std::shared_ptr<const Impl> impl_;
};

struct KeyPairPem {
  std::string private_pem;  // PKCS#8, unencrypted
  std::string public_pem;   // SubjectPublicKeyInfo
};

Result<KeyPairPem> generate_key_pair();
// Writes a fresh pair; the private file gets mode 0600. Refuses to overwrite
// an existing file (Error "exists").
Status generate_key_pair_files(const std::string& private_pem_path, const std::string& public_pem_path);

// Errors: "key_invalid" (not PEM, not Ed25519), "io" (file unreadable).
Result<SigningKey> load_private_key_pem(std::string_view pem);
Result<VerifyKey> load_public_key_pem(std::string_view pem);
Result<SigningKey> load_private_key_file(const std::string& path);
Result<VerifyKey> load_public_key_file(const std::string& path);

std::string key_id_of(std::string_view raw_public_key);

struct Checkpoint {
  std::string origin;
  std::uint64_t tree_size = 0;
  std::string root_hash;  // 32 raw bytes
  std::int64_t timestamp_ms = 0;
  std::string key_id;                    // 16 hex
  std::string signature;                 // 64 raw bytes
  std::optional<std::string> tsa_token;  // RFC 3161 DER (TimeStampToken or TimeStampResp)
};

// The exact bytes the key signs (see the header comment).
std::string signed_body(const Checkpoint& c);

// Errors: "invalid_argument" (origin empty or multi-line, root not 32 bytes), "crypto".
Result<Checkpoint> sign_checkpoint(std::string origin, std::uint64_t tree_size, std::string root_hash,
                                   std::int64_t timestamp_ms, const SigningKey& key);
// ok, or Error "checkpoint_invalid" saying which check failed (key id, signature, shape).
Status verify_checkpoint(const Checkpoint& c, const VerifyKey& key);

// {"origin","tree_size","root_hash"(hex),"timestamp"(unix ms),"key_id","signature"(base64),
//  "tsa_token"?(base64 DER)}. Parsing is strict: unknown members, uppercase hex
// and non-canonical base64 are refused (Error "schema").
nlohmann::json to_json(const Checkpoint& c);
Result<Checkpoint> checkpoint_from_json(const nlohmann::json& j);

// What an RFC 3161 token says.
struct TsaTimestamp {
  std::int64_t gen_time_ms = 0;  // TSTInfo genTime (second precision)
  std::string serial_hex;
  std::string policy_oid;
};

// Full verification: the token (TimeStampToken or TimeStampResp, DER) is a
// granted stamp whose message imprint is the hash of `signed_body` and whose
// signer chains to `ca_cert_pem` (one or more PEM certificates) with the
// timeStamping key usage. Error "tsa_invalid" with OpenSSL's reason.
Result<TsaTimestamp> verify_tsa_token(std::string_view token_der, std::string_view signed_body,
                                      std::string_view ca_cert_pem);
// Without a trust anchor: parses the token and checks only that its imprint
// is the hash of `signed_body` (the TSA's signature is NOT checked).
Result<TsaTimestamp> inspect_tsa_token(std::string_view token_der, std::string_view signed_body);

}  // namespace songda::evidence
