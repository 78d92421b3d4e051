// A scripted HttpClient for the channel tests: records every request and
// answers through a handler the test sets. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "channels/http/http_client.h"

namespace songda::testing {

class FakeHttp final : public HttpClient {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  explicit FakeHttp(Handler handler = {}) : handler_(std::move(handler)) {}
  void set_handler(Handler h) {
    std::lock_guard lock(mu_);
    handler_ = std::move(h);
  }
  HttpResponse send(const HttpRequest& request) override {
    Handler h;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
      h = handler_;
    }
    const int now = ++in_flight_;
    int seen = max_in_flight_.load();
    while (now > seen && !max_in_flight_.compare_exchange_weak(seen, now)) {
    }
    HttpResponse r = h ? h(request) : HttpResponse{0, "", {}, "no handler"};
    --in_flight_;
    return r;
  }
  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<HttpRequest> requests_to(const std::string& url_prefix) const {
    std::vector<HttpRequest> out;
    for (auto& r : requests()) {
      if (r.url.rfind(url_prefix, 0) == 0) out.push_back(r);
    }
    return out;
  }
  void clear() {
    std::lock_guard lock(mu_);
    requests_.clear();
  }
  int max_in_flight() const { return max_in_flight_.load(); }

 private:
  mutable std::mutex mu_;
  Handler handler_;
  std::vector<HttpRequest> requests_;
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
};

inline std::string header_of(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return {};
}

}  // namespace songda::testing
