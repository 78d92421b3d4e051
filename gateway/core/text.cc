#include "gateway/core/text.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>
#include <ctime>

namespace songda {

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    // ASCII eight bytes at a time: most of what is checked (ids, keys, URLs, hex) is ASCII.
    std::uint64_t word = 0;
    while (i + sizeof word <= n) {
      std::memcpy(&word, s.data() + i, sizeof word);
      if ((word & 0x8080808080808080ULL) != 0) break;
      i += sizeof word;
    }
    if (i >= n) break;
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

std::string repair_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
    if (len != 0 && i + len <= s.size() && is_valid_utf8(s.substr(i, len))) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::size_t utf8_length(std::string_view s) {
  std::size_t n = 0;
  for (char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

bool append_json_string(std::string& out, std::string_view s) {
  if (!is_valid_utf8(s)) return false;
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the bytes not yet appended that need no escape (appended in one go)
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(s, run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:  // the other controls
        out += "\\u00";
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 0xF]);
    }
  }
  out.append(s, run, s.size() - run);
  out.push_back('"');
  return true;
}

std::string mask_phone(std::string_view phone) {
  if (phone.size() < 8) return std::string(phone.size(), '*');  // below 8 the head/tail split would underflow
  std::string out(phone);
  const std::size_t keep_tail = 4;
  const std::size_t keep_head = phone.size() - keep_tail - 4;
  for (std::size_t i = keep_head; i < phone.size() - keep_tail; ++i) out[i] = '*';
  return out;
}

std::string masked_message_id(std::string_view id) {
  const auto colon = id.rfind(':');
  if (colon == std::string_view::npos) return std::string(id);
  const std::string_view tail = id.substr(colon + 1);
  const bool number = tail.size() >= 7 && std::all_of(tail.begin(), tail.end(),
                                                      [](char ch) { return (ch >= '0' && ch <= '9') || ch == '+'; });
  return number ? std::string(id.substr(0, colon + 1)) + mask_phone(tail) : std::string(id);
}

std::string mask_address_in(std::string_view text, std::string_view channel, std::string_view address) {
  std::string out(text);
  if (address.size() < 4) return out;
  const std::string masked = mask_address(channel, address);
  auto ascii_lower = [](std::string_view v) {
    std::string l(v);
    std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return l;
  };
  auto mask_all = [&](std::string_view what) {
    const std::string needle = ascii_lower(what);
    std::string hay = ascii_lower(out);  // same length as `out`: only ASCII letters change
    for (std::size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + masked.size())) {
      out.replace(at, needle.size(), masked);
      hay.replace(at, needle.size(), masked);
    }
  };
  mask_all(address);
  if (address.starts_with("+86") && address.size() > 7) mask_all(address.substr(3));
  return out;
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (text.starts_with('[')) {  // [::1]:8080
    const std::size_t close = text.find("]:");
    if (close == std::string_view::npos || close < 2) return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // bare IPv6 needs brackets
  }
  if (host.empty() || port.empty() || port.size() > 5) return std::nullopt;
  if (std::any_of(host.begin(), host.end(),
                  [](char ch) { return ch == ' ' || ch == '/' || ch == '\t' || ch == '[' || ch == ']'; })) {
    return std::nullopt;
  }
  if (!std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return std::nullopt;
  const int n = std::stoi(std::string(port));
  if (n > 65535) return std::nullopt;
  return HostPort{std::string(host), n};
}

std::string HostPort::authority() const {
  const std::string h = host.find(':') == std::string::npos ? host : "[" + host + "]";
  return h + ":" + std::to_string(port);
}

std::string mask_email(std::string_view email) {
  const auto at = email.find('@');
  if (at == std::string_view::npos || at == 0) return "***";
  return std::string(email.substr(0, 1)) + "***" + std::string(email.substr(at));
}

std::string mask_address(std::string_view channel, std::string_view address) {
  if (channel == "sms") return mask_phone(address);
  if (channel == "email") return mask_email(address);
  if (address.size() <= 4) return "***";
  return std::string(address.substr(0, 4)) + "***";
}

std::string mask_personal_data(std::string_view text) {
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto is_alnum = [&](char c) { return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z'); };
  const auto in_local = [&](char c) { return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; };
  const auto in_domain = [&](char c) { return is_alnum(c) || c == '.' || c == '-'; };
  // Masks the runs of 7 or more digits in a word that is not an email address.
  const auto append_word = [&](std::string& out, std::string_view word) {
    std::size_t k = 0;
    while (k < word.size()) {
      std::size_t end = k;
      while (end < word.size() && is_digit(word[end])) ++end;
      if (end == k) {
        out += word[k++];
        continue;
      }
      const std::string_view run = word.substr(k, end - k);
      if (run.size() >= 15) {
        // longer than any phone number (+86 ones are 13 digits): a national ID (15 or 18) or a bank card, of
        // which mask_phone would leave most digits; only the first 3 and the last 2 are kept
        out +=
            std::string(run.substr(0, 3)) + std::string(run.size() - 5, '*') + std::string(run.substr(run.size() - 2));
      } else {
        out += run.size() >= 7 ? mask_phone(run) : std::string(run);
      }
      k = end;
    }
  };
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    if (!in_local(text[i])) {
      out += text[i++];
      continue;
    }
    std::size_t end = i;
    while (end < text.size() && in_local(text[end])) ++end;
    if (end < text.size() && text[end] == '@') {
      std::size_t dom = end + 1;
      while (dom < text.size() && in_domain(text[dom])) ++dom;
      if (text.substr(end + 1, dom - end - 1).find('.') != std::string_view::npos) {
        out += mask_email(text.substr(i, dom - i));
        i = dom;
        continue;
      }
    }
    append_word(out, text.substr(i, end - i));
    i = end;
  }
  return out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

std::string rfc3339_utc(std::int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  int millis = static_cast<int>(unix_ms % 1000);
  if (millis < 0) {  // floor, not truncation, for instants before the epoch
    millis += 1000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace songda

#include <cstdlib>
#include <filesystem>

namespace songda {
std::string resource_path(const std::string& relative) {
  if (const char* home = std::getenv("SONGDA_HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/" + relative;
  }
  if (std::filesystem::exists(relative)) return relative;
  return std::string(SONGDA_SOURCE_DIR) + "/" + relative;
}
}  // namespace songda
