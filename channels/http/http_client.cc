#include "channels/http/http_client.h"

#include <algorithm>
#include <cctype>
#include <mutex>

#include "channels/http/curl_handles.h"

namespace songda {

void ensure_curl_global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::string HttpResponse::header(std::string_view name) const {
  auto eq = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& [k, v] : headers) {
    if (eq(k, name)) return v;
  }
  return {};
}

// Idle easy handles: a handle keeps its connection cache across curl_easy_reset,
// so the next request to the same host reuses the TCP/TLS connection.
struct CurlHttpClient::Pool {
  std::mutex mu;
  std::vector<curl::Easy> idle;
};

namespace {

struct Sink {
  std::string* body;
  std::size_t limit;
  bool overflow = false;
};

std::size_t write_body(char* data, std::size_t size, std::size_t nmemb, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const std::size_t n = size * nmemb;
  if (sink->body->size() + n > sink->limit) {
    sink->overflow = true;
    return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
  }
  sink->body->append(data, n);
  return n;
}

std::string trim(std::string_view s) {
  std::size_t b = 0;
  std::size_t e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return std::string(s.substr(b, e - b));
}

std::size_t write_header(char* data, std::size_t size, std::size_t nmemb, void* user) {
  auto* headers = static_cast<HttpHeaders*>(user);
  const std::size_t n = size * nmemb;
  const std::string_view line(data, n);
  if (line.rfind("HTTP/", 0) == 0) {
    headers->clear();  // a new response (e.g. after 100 Continue): keep only the last one's headers
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos) {
    headers->emplace_back(trim(line.substr(0, colon)), trim(line.substr(colon + 1)));
  }
  return n;
}

}  // namespace

CurlHttpClient::CurlHttpClient(CurlHttpOptions options)
    : options_(std::move(options)), pool_(std::make_unique<Pool>()) {
  ensure_curl_global_init();
}

CurlHttpClient::~CurlHttpClient() = default;

HttpResponse CurlHttpClient::send(const HttpRequest& request) {
  HttpResponse response;
  curl::Easy easy;
  {
    std::lock_guard lock(pool_->mu);
    if (!pool_->idle.empty()) {
      easy = std::move(pool_->idle.back());
      pool_->idle.pop_back();
    }
  }
  if (easy) {
    curl_easy_reset(easy.get());
  } else {
    easy.reset(curl_easy_init());
    if (!easy) {
      response.error = "curl_easy_init failed (out of memory?)";
      return response;
    }
  }
  CURL* h = easy.get();

  curl::Slist headers;
  for (const auto& [name, value] : request.headers) {
    std::string line = name;
    line.append(": ").append(value);
    if (!headers.append(line)) {
      response.error = "cannot build the request headers (out of memory?)";
      return response;
    }
  }
  // libcurl would add "Expect: 100-continue" to larger POSTs: one more round trip for nothing.
  headers.append("Expect:");

  char errbuf[CURL_ERROR_SIZE] = {};
  Sink sink{&response.body, options_.max_response_bytes};
  const long timeout = std::max(1, request.timeout_ms);
  const long connect_timeout = std::min<long>(timeout, std::max(1, options_.connect_timeout_ms));

  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");  // whatever libcurl can decode
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &write_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &write_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response.headers);
  if (!options_.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, options_.ca_file.c_str());

  const bool has_body =
      !request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH";
  if (has_body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, request.body.data());
    if (request.method != "POST") curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  const CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
  } else {
    response.status = 0;
    response.body.clear();
    response.headers.clear();
    if (sink.overflow) {
      response.error = "response larger than " + std::to_string(options_.max_response_bytes) + " bytes";
    } else {
      response.error = std::string(curl_easy_strerror(rc));
      if (errbuf[0] != '\0') response.error += std::string(": ") + errbuf;
    }
  }
  // Detach everything that pointed at this call's locals before the handle goes back.
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, static_cast<curl_slist*>(nullptr));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
  {
    std::lock_guard lock(pool_->mu);
    if (pool_->idle.size() < options_.max_idle_handles) pool_->idle.push_back(std::move(easy));
  }
  return response;
}

}  // namespace songda
