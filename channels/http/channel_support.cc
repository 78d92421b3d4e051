#include "channels/http/channel_support.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/core/result.h"

namespace songda {

std::string require_env(const Getenv& getenv, const std::string& name, std::string_view what) {
  const char* v = getenv ? getenv(name.c_str()) : nullptr;
  if (v == nullptr || *v == '\0') {
    throw StartupError(std::string(what) + ": environment variable " + name +
                       " is not set; hint: export it (secrets never live in the YAML; credentials_env names the "
                       "prefix)");
  }
  return v;
}

std::string optional_env(const Getenv& getenv, const std::string& name) {
  const char* v = getenv ? getenv(name.c_str()) : nullptr;
  return v == nullptr ? std::string() : std::string(v);
}

namespace {

// Where a URL ends: ASCII whitespace, quotes and brackets, and the CJK
// punctuation that follows a link in a Chinese sentence.
bool url_ends_at(std::string_view text, std::size_t i, std::size_t* skip) {
  static constexpr std::string_view kAsciiStops = " \t\r\n\"'<>()[]{}";
  if (kAsciiStops.find(text[i]) != std::string_view::npos) return true;
  *skip = 1;
  if (static_cast<unsigned char>(text[i]) < 0x80) return false;  // every stop below starts with a byte past ASCII
  static constexpr std::string_view kCjkStops[] = {"，", "。", "；", "：", "！", "？", "、", "）", "（",
                                                   "】", "【", "“",  "”",  "‘",  "’",  "《", "》", "　"};
  for (const auto stop : kCjkStops) {
    if (text.substr(i, stop.size()) == stop) return true;
  }
  return false;
}

}  // namespace

std::string last_http_url(std::string_view text) {
  std::size_t best = std::string_view::npos;
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t a = text.find("http://", pos);
    const std::size_t b = text.find("https://", pos);
    const std::size_t at = std::min(a, b);
    if (at == std::string_view::npos) break;
    best = at;
    pos = at + 7;
  }
  if (best == std::string_view::npos) return {};
  std::size_t end = best;
  while (end < text.size()) {
    std::size_t skip = 0;
    if (url_ends_at(text, end, &skip)) break;
    end += skip;
  }
  // A sentence-ending ASCII dot or comma is not part of the URL.
  while (end > best && (text[end - 1] == '.' || text[end - 1] == ',')) --end;
  const std::string_view url = text.substr(best, end - best);
  if (url == "http://" || url == "https://") return {};
  return std::string(url);
}

std::map<std::string, std::string> delivery_template_vars(const Delivery& d) {
  std::map<std::string, std::string> vars = d.params;
  vars["court_name"] = d.court_name;
  vars["case_number"] = d.case_number;
  vars["recipient_name"] = d.recipient_name;
  vars["link"] = last_http_url(d.text);
  return vars;
}

void parallel_for(std::size_t n, std::size_t max_threads, const std::function<void(std::size_t)>& fn) {
  if (n == 0) return;
  if (max_threads <= 1 || n == 1) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::mutex failed_mu;
  std::exception_ptr failed;
  auto worker = [&] {
    try {
      for (std::size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
    } catch (...) {
      next.store(n);  // no new items; those already started finish
      const std::lock_guard lock(failed_mu);
      if (!failed) failed = std::current_exception();
    }
  };
  {
    const std::size_t extra = std::min(n, max_threads) - 1;
    std::vector<std::jthread> threads;
    threads.reserve(extra);
    for (std::size_t t = 0; t < extra; ++t) threads.emplace_back(worker);
    worker();
  }  // jthreads join here
  if (failed) std::rethrow_exception(failed);
}

}  // namespace songda
