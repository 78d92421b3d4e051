// RAII holders for libcurl's C handles (CURL*, curl_slist*, curl_mime*), shared
// by the HTTP client and the SMTP channel. Private to channels/: it includes
// curl.h, so only .cc files include it, never a public header.
//
// Thread-safety: a handle is used by one thread at a time (libcurl's rule).
#pragma once

#include <curl/curl.h>

#include <memory>
#include <string>

namespace songda::curl {

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using Easy = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

// A curl_slist that frees itself; append() keeps ownership here.
class Slist {
 public:
  // Returns false when libcurl could not allocate (the list is unchanged).
  bool append(const std::string& line) {
    curl_slist* next = curl_slist_append(list_.get(), line.c_str());
    if (next == nullptr) return false;
    if (!list_) list_.reset(next);  // the first append returns the new head; later ones return the same head
    return true;
  }
  [[nodiscard]] curl_slist* get() const { return list_.get(); }

 private:
  std::unique_ptr<curl_slist, SlistDeleter> list_;
};

struct MimeDeleter {
  void operator()(curl_mime* m) const { curl_mime_free(m); }
};
using Mime = std::unique_ptr<curl_mime, MimeDeleter>;

}  // namespace songda::curl
