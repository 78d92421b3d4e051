// A small synchronous HTTP client for the channel adapters: one request in, one
// response out, no exceptions. `HttpClient` is the interface the adapters talk
// to (tests put a fake there); `CurlHttpClient` is the libcurl implementation.
//
// Errors: a transport failure (DNS, connect, TLS, timeout, reset, a response
// over the size limit) is HttpResponse{status = 0, error = "<what happened>"};
// any HTTP status, 4xx and 5xx included, is a response (status, body), and the
// caller classifies it. Redirects are not followed (a provider API never
// redirects; following one would resend a signed request elsewhere).
//
// Ownership: requests and responses are plain values owned by the caller.
// CurlHttpClient owns a pool of libcurl easy handles; a handle is reused by the
// next request (on any thread), so connections to a provider stay alive.
//
// Thread-safety: CurlHttpClient::send may be called from any number of threads
// at once (each call takes its own easy handle from the pool). libcurl itself is
// initialised once per process (curl_global_init under std::call_once).
// No C headers here: curl.h stays in the .cc files.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace songda {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method = "GET";  // GET | POST | PUT | DELETE | ...
  std::string url;             // absolute: http(s)://host[:port]/path?query
  HttpHeaders headers;         // sent as given ("Name: value"); Content-Type belongs here
  std::string body;            // sent when non-empty (or for POST/PUT, even when empty)
  int timeout_ms = 5000;       // whole request, connect included
};

struct HttpResponse {
  int status = 0;       // HTTP status; 0 = transport error or timeout (see `error`)
  std::string body;     // the response body, verbatim
  HttpHeaders headers;  // response headers, names as sent by the server
  std::string error;    // set when status == 0: what went wrong, for logs and outcomes

  [[nodiscard]] bool transport_error() const { return status == 0; }
  // First header of that name (case-insensitive); empty when absent.
  [[nodiscard]] std::string header(std::string_view name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  // Performs the request. Never throws; transport failures come back as status 0.
  virtual HttpResponse send(const HttpRequest& request) = 0;
};

struct CurlHttpOptions {
  std::string ca_file;  // extra CA bundle (PEM); empty = the system's
  std::string user_agent = "songda/0.1";
  int connect_timeout_ms = 3000;             // capped by the request's timeout_ms
  std::size_t max_response_bytes = 4 << 20;  // a larger answer is a transport error
  std::size_t max_idle_handles = 16;         // easy handles (and their connections) kept for reuse
};

class CurlHttpClient final : public HttpClient {
 public:
  explicit CurlHttpClient(CurlHttpOptions options = {});
  ~CurlHttpClient() override;
  CurlHttpClient(const CurlHttpClient&) = delete;
  CurlHttpClient& operator=(const CurlHttpClient&) = delete;

  HttpResponse send(const HttpRequest& request) override;

 private:
  struct Pool;
  CurlHttpOptions options_;
  std::unique_ptr<Pool> pool_;
};

// curl_global_init(CURL_GLOBAL_DEFAULT) exactly once per process; every user of
// libcurl in Songda (HTTP, SMTP) calls this before its first easy handle.
void ensure_curl_global_init();

}  // namespace songda
