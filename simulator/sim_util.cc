#include "simulator/sim_util.h"

#include <cstdio>
#include <ctime>

#include "gateway/core/crypto.h"

namespace songda::sim {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

}  // namespace

std::string form_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_form(std::string_view s) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!s.empty()) {
    const auto amp = s.find('&');
    const std::string_view pair = s.substr(0, amp);
    s = amp == std::string_view::npos ? std::string_view{} : s.substr(amp + 1);
    if (pair.empty()) continue;
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) {
      out.emplace_back(form_decode(pair), std::string{});
    } else {
      out.emplace_back(form_decode(pair.substr(0, eq)), form_decode(pair.substr(eq + 1)));
    }
  }
  return out;
}

std::string beijing_time(std::int64_t unix_ms) {
  std::int64_t secs = unix_ms / 1000;
  if (unix_ms % 1000 < 0) --secs;
  const auto t = static_cast<std::time_t>(secs + 8 * 3600);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

bool is_rpc_timestamp(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SSZ
  if (s.size() != 20) return false;
  static constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:ddZ";
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (kShape[i] == 'd') {
      if (s[i] < '0' || s[i] > '9') return false;
    } else if (s[i] != kShape[i]) {
      return false;
    }
  }
  const int month = (s[5] - '0') * 10 + (s[6] - '0');
  const int day = (s[8] - '0') * 10 + (s[9] - '0');
  const int hour = (s[11] - '0') * 10 + (s[12] - '0');
  const int minute = (s[14] - '0') * 10 + (s[15] - '0');
  const int second = (s[17] - '0') * 10 + (s[18] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 60;
}

std::optional<std::pair<std::string, std::string>> split_e164(std::string_view phone) {
  if (phone.size() < 3 || phone[0] != '+' || !all_digits(phone.substr(1))) return std::nullopt;
  const std::string_view digits = phone.substr(1);
  std::size_t cc = 2;
  const char a = digits[0];
  const char b = digits[1];
  if (a == '1' || a == '7') {
    cc = 1;
  } else if ((a == '2' && b != '0' && b != '7' && b != '8') || (a == '3' && (b == '5' || b == '7' || b == '8')) ||
             (a == '4' && b == '2') || (a == '5' && (b == '0' || b == '9')) ||
             (a == '6' && (b == '7' || b == '8' || b == '9')) || (a == '8' && (b == '5' || b == '7' || b == '8')) ||
             (a == '9' && (b == '6' || b == '7' || b == '9'))) {
    cc = 3;
  }
  if (digits.size() <= cc) return std::nullopt;
  return std::make_pair(std::string(digits.substr(0, cc)), std::string(digits.substr(cc)));
}

std::string uuid4() {
  std::string b = random_bytes(16);
  b[6] = static_cast<char>((static_cast<unsigned char>(b[6]) & 0x0F) | 0x40);
  b[8] = static_cast<char>((static_cast<unsigned char>(b[8]) & 0x3F) | 0x80);
  const std::string h = to_hex(b);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-" + h.substr(12, 4) + "-" + h.substr(16, 4) + "-" + h.substr(20);
}

std::optional<BaseUrl> split_base_url(std::string_view url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  const std::string_view scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") return std::nullopt;
  const std::string_view rest = url.substr(scheme_end + 3);
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (authority.empty()) return std::nullopt;
  BaseUrl out;
  out.scheme_host_port = std::string(scheme) + "://" + std::string(authority);
  if (slash != std::string_view::npos) {
    std::string_view prefix = rest.substr(slash);
    while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
    out.path_prefix = std::string(prefix);
  }
  return out;
}

}  // namespace songda::sim
