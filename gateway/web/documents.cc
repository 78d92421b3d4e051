#include "gateway/web/documents.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gateway/core/crypto.h"
#include "gateway/web/pages.h"

namespace songda::web {

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

namespace {
std::filesystem::path path_of(const std::string& dir, const Document& doc) {
  return std::filesystem::path(dir) / doc.sha256;
}
}  // namespace

bool DocumentDirectory::has(const Document& doc) const {
  if (dir_.empty() || !is_sha256_hex(doc.sha256)) return false;
  std::error_code ec;
  return std::filesystem::is_regular_file(path_of(dir_, doc), ec);
}

Result<ServedDocument> DocumentDirectory::load(const Document& doc) const {
  if (dir_.empty()) return Error::permanent("document_unavailable", "no document directory is configured");
  if (!is_sha256_hex(doc.sha256)) return Error::permanent("document_unavailable", "the document has no valid sha256");
  const auto p = path_of(dir_, doc);
  std::error_code ec;
  const auto size = std::filesystem::file_size(p, ec);
  if (ec) return Error::permanent("document_unavailable", "document " + doc.id + " is not in the document directory");
  if (size > kMaxBytes) return Error::permanent("document_unavailable", "document " + doc.id + " is too large");
  std::ifstream in(p, std::ios::binary);
  if (!in) return Error::permanent("document_unavailable", "document " + doc.id + " cannot be read");
  std::ostringstream ss;
  ss << in.rdbuf();
  ServedDocument out;
  out.bytes = ss.str();
  out.sha256_hex = sha256_hex(out.bytes);
  if (out.sha256_hex != doc.sha256) {
    return Error::permanent("document_mismatch",
                            "the stored file of document " + doc.id + " does not match the sha256 the court submitted");
  }
  out.content_type = sniff_content_type(out.bytes);
  return out;
}

}  // namespace songda::web
