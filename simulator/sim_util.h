// Small helpers of the provider simulator that the protocol libraries do not
// have because a client never needs them: decoding form bodies and query
// strings, the Beijing-time stamps receipts carry, E.164 splitting for Tencent
// receipts, URL splitting for the callback base, ids, and the sliding-window
// set used for Aliyun nonces and WeChat client_msg_id.
//
// Ownership: everything returned is a value the caller owns; ExpiringMap owns
// copies of its keys and values.
// Thread-safety: the free functions are pure and thread-safe. ExpiringMap is
// not synchronised: its owner locks around it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace songda::sim {

// application/x-www-form-urlencoded decoding: %XX -> byte, '+' -> space. A
// malformed escape is kept verbatim (the signature check then fails, as it
// would at the provider).
std::string form_decode(std::string_view s);

// "a=1&b=2" -> {{"a","1"},{"b","2"}}, names and values decoded, order kept;
// a pair without '=' gets an empty value; empty pairs are skipped.
std::vector<std::pair<std::string, std::string>> parse_form(std::string_view s);

// Unix ms -> "2017-01-01 08:00:00", Beijing time (UTC+8), as both SMS providers' receipts write it.
std::string beijing_time(std::int64_t unix_ms);

// "2017-07-12T02:42:19Z": the format of Aliyun's RPC Timestamp.
bool is_rpc_timestamp(std::string_view s);

// "+8613800000000" -> {"86", "13800000000"}: the country code by the ITU
// numbering plan (1 and 7 are one digit; the 3-digit zones 21x-29x, 35x-38x,
// 42x, 50x, 59x, 67x-69x, 85x, 87x-88x, 96x-99x; others two). nullopt when
// not "+" followed by digits.
std::optional<std::pair<std::string, std::string>> split_e164(std::string_view phone);

// A random version-4 UUID, lower case ("2b7c...-...").
std::string uuid4();

// A base URL "http://host:port/prefix" split into what httplib::Client takes
// ("http://host:port") and the path prefix without a trailing '/' ("/prefix" or "").
struct BaseUrl {
  std::string scheme_host_port;
  std::string path_prefix;
};
std::optional<BaseUrl> split_base_url(std::string_view url);

// Keys remembered for a time window, each with a value; lookups do not
// refresh a key. Memory is bounded by what arrives within one window.
template <typename V>
class ExpiringMap {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ExpiringMap(std::chrono::milliseconds window) : window_(window) {}

  // The value stored for `key` if it is still remembered.
  const V* find(const std::string& key, Clock::time_point now) {
    evict(now);
    const auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second.second;
  }
  // Remembers key -> value from `now` (replaces an existing value and restarts its window).
  void put(const std::string& key, V value, Clock::time_point now) {
    evict(now);
    map_[key] = {now, std::move(value)};
    order_.emplace_back(now, key);
  }
  void clear() {
    map_.clear();
    order_.clear();
  }
  [[nodiscard]] std::size_t size() const { return map_.size(); }

 private:
  void evict(Clock::time_point now) {
    while (!order_.empty() && now - order_.front().first > window_) {
      const auto it = map_.find(order_.front().second);
      if (it != map_.end() && it->second.first == order_.front().first) map_.erase(it);
      order_.pop_front();
    }
  }
  std::chrono::milliseconds window_;
  std::unordered_map<std::string, std::pair<Clock::time_point, V>> map_;
  std::deque<std::pair<Clock::time_point, std::string>> order_;
};

}  // namespace songda::sim
