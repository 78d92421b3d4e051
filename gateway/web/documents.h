// Where the party pages get a document's bytes: a content-addressed directory
// (SONGDA_DOCUMENT_DIR) holding each document as a file named by its SHA-256
// (lowercase hex, no extension) — the hash the case event already carries.
// The case management system (or an operator's sync job) drops files there.
//
// Every read hashes the bytes it is about to serve and refuses them when they
// do not match the event's sha256, so what a party downloads is provably the
// document the court submitted, and RETRIEVED evidence records the hash of the
// bytes actually served. Why a directory and not the event's `url`: the party
// page is public-facing; fetching arbitrary URLs from it would add outbound
// network, latency and SSRF exposure to a path parties hit directly, and the
// court's document server may not be reachable from the gateway's network zone.
//
// Ownership: keeps the path only. Thread-safety: const methods, safe from any thread.
#pragma once

#include <cstdint>
#include <string>

#include "gateway/core/event.h"
#include "gateway/core/result.h"

namespace songda::web {

struct ServedDocument {
  std::string bytes;
  std::string sha256_hex;    // of `bytes`
  std::string content_type;  // sniffed from the bytes
};

class DocumentDirectory {
 public:
  explicit DocumentDirectory(std::string dir) : dir_(std::move(dir)) {}

  // Errors: document_unavailable (no directory configured, no file, unreadable, larger than max_bytes),
  // document_mismatch (the file's bytes do not hash to doc.sha256: never served).
  [[nodiscard]] Result<ServedDocument> load(const Document& doc) const;
  // True when load() would find a file (does not hash it).
  [[nodiscard]] bool has(const Document& doc) const;
  [[nodiscard]] const std::string& dir() const { return dir_; }

  static constexpr std::uint64_t kMaxBytes = 64ULL * 1024 * 1024;

 private:
  std::string dir_;
};

// True for 64 lowercase hex digits (the only file names the directory serves).
bool is_sha256_hex(const std::string& s);

}  // namespace songda::web
