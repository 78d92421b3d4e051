// Test helpers for the email channel: a scripted one-thread SMTP server on a
// loopback ephemeral port (answers chosen by the test, no TLS), and a small
// parser for the stored messages (headers unfolded, RFC 2047 words decoded,
// multipart bodies split and base64-decoded).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "gateway/core/crypto.h"

namespace songda::testing {

class ScriptedSmtpServer {
 public:
  std::string mail_reply = "250 2.1.0 Ok";
  std::string rcpt_reply = "250 2.1.5 Ok";
  std::string data_final_reply = "250 2.0.0 Ok: queued as 4F2B1C0A9E";

  ScriptedSmtpServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);  // NOLINT: the sockets API
    ::listen(fd_, 8);
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);  // NOLINT
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~ScriptedSmtpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  ScriptedSmtpServer(const ScriptedSmtpServer&) = delete;
  ScriptedSmtpServer& operator=(const ScriptedSmtpServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string url() const { return "smtp://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }
  std::vector<std::string> commands() {
    std::lock_guard lock(mu_);
    return commands_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      serve(c);
      ::close(c);
    }
  }

  static void say(int c, const std::string& line) {
    const std::string s = line + "\r\n";
    (void)::send(c, s.data(), s.size(), MSG_NOSIGNAL);
  }

  // Reads one line (without CRLF); false when the peer closed or we stop.
  bool read_line(int c, std::string& buf, std::string& line) {
    for (;;) {
      const auto nl = buf.find("\r\n");
      if (nl != std::string::npos) {
        line = buf.substr(0, nl);
        buf.erase(0, nl + 2);
        return true;
      }
      pollfd p{c, POLLIN, 0};
      const int r = ::poll(&p, 1, 50);
      if (stop_) return false;
      if (r <= 0) continue;
      char tmp[4096];
      const ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<std::size_t>(n));
    }
  }

  void serve(int c) {
    say(c, "220 fake.test ESMTP scripted");
    std::string buf;
    std::string line;
    while (read_line(c, buf, line)) {
      {
        std::lock_guard lock(mu_);
        commands_.push_back(line);
      }
      const std::string verb = line.substr(0, 4);
      if (verb == "EHLO" || verb == "HELO") {
        say(c, "250-fake.test");
        say(c, "250 8BITMIME");
      } else if (verb == "MAIL") {
        say(c, mail_reply);
      } else if (verb == "RCPT") {
        say(c, rcpt_reply);
      } else if (verb == "DATA") {
        say(c, "354 End data with <CR><LF>.<CR><LF>");
        std::string message;
        while (read_line(c, buf, line) && line != ".") message += line + "\r\n";
        {
          std::lock_guard lock(mu_);
          messages_.push_back(message);
        }
        say(c, data_final_reply);
      } else if (verb == "QUIT") {
        say(c, "221 2.0.0 Bye");
        return;
      } else if (verb == "RSET" || verb == "NOOP") {
        say(c, "250 2.0.0 Ok");
      } else {
        say(c, "502 5.5.2 Command not recognized");
      }
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> messages_;
  std::vector<std::string> commands_;
};

// ---- Parsing a stored message ------------------------------------------------------------

struct ParsedPart {
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;                            // decoded when base64
};

struct ParsedMessage {
  std::map<std::string, std::string> headers;  // lower-case names, unfolded
  std::string content_type;
  std::vector<ParsedPart> parts;  // the parts of the (first) multipart/alternative
};

inline std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

inline std::string strip_cr(std::string s) {
  std::string out;
  for (const char ch : s) {
    if (ch != '\r') out.push_back(ch);
  }
  return out;
}

// Splits "headers\n\nbody" and unfolds the headers.
inline std::map<std::string, std::string> parse_headers(const std::string& text, std::string* body) {
  const std::string s = strip_cr(text);
  const auto end = s.find("\n\n");
  const std::string head = s.substr(0, end);
  if (body != nullptr) *body = end == std::string::npos ? "" : s.substr(end + 2);
  std::map<std::string, std::string> out;
  std::string name;
  std::size_t pos = 0;
  while (pos < head.size()) {
    auto nl = head.find('\n', pos);
    if (nl == std::string::npos) nl = head.size();
    const std::string line = head.substr(pos, nl - pos);
    pos = nl + 1;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      if (!name.empty()) out[name] += " " + line.substr(line.find_first_not_of(" \t"));
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    name = lower(line.substr(0, colon));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    out[name] = value;
  }
  return out;
}

inline std::string param_of(const std::string& header, const std::string& param) {
  const auto at = lower(header).find(param + "=");
  if (at == std::string::npos) return {};
  std::string v = header.substr(at + param.size() + 1);
  if (!v.empty() && v[0] == '"') return v.substr(1, v.find('"', 1) - 1);
  return v.substr(0, v.find_first_of("; "));
}

inline std::string decode_base64_text(const std::string& text) {
  std::string compact;
  for (const char ch : text) {
    if (ch != '\n' && ch != '\r' && ch != ' ') compact.push_back(ch);
  }
  return base64_decode(compact);
}

// Concatenates the decoded =?UTF-8?B?...?= words (whitespace between words is dropped).
inline std::string decode_rfc2047(const std::string& value) {
  std::string out;
  std::size_t pos = 0;
  bool any = false;
  while (pos < value.size()) {
    const auto start = value.find("=?", pos);
    if (start == std::string::npos) {
      out += value.substr(pos);
      break;
    }
    const std::string between = value.substr(pos, start - pos);
    if (!any || between.find_first_not_of(" \t") != std::string::npos) out += between;
    const auto q1 = value.find('?', start + 2);
    const auto q2 = value.find('?', q1 + 1);
    const auto end = value.find("?=", q2 + 1);
    out += decode_base64_text(value.substr(q2 + 1, end - q2 - 1));
    any = true;
    pos = end + 2;
  }
  return out;
}

inline ParsedMessage parse_message(const std::string& text) {
  ParsedMessage m;
  std::string body;
  m.headers = parse_headers(text, &body);
  m.content_type = m.headers["content-type"];
  // Descend to the multipart/alternative (top level, or nested in multipart/mixed).
  std::string ct = m.content_type;
  for (int depth = 0; depth < 3; ++depth) {
    const std::string boundary = param_of(ct, "boundary");
    if (boundary.empty()) break;
    std::vector<ParsedPart> parts;
    std::size_t pos = body.find("--" + boundary);
    while (pos != std::string::npos) {
      const auto start = body.find('\n', pos) + 1;
      const auto next = body.find("--" + boundary, start);
      if (next == std::string::npos || start == 0) break;
      ParsedPart p;
      std::string part_body;
      p.headers = parse_headers(body.substr(start, next - start), &part_body);
      p.body = lower(p.headers["content-transfer-encoding"]) == "base64" ? decode_base64_text(part_body) : part_body;
      parts.push_back(std::move(p));
      pos = next;
      if (body.compare(next + 2 + boundary.size(), 2, "--") == 0) break;
    }
    if (lower(ct).rfind("multipart/alternative", 0) == 0) {
      m.parts = std::move(parts);
      break;
    }
    if (parts.empty()) break;
    ct = parts.front().headers["content-type"];
    std::string inner;
    // Nested: re-parse the first part's raw text as the new body.
    const auto first = body.find("--" + boundary);
    const auto first_start = body.find('\n', first) + 1;
    const auto first_end = body.find("--" + boundary, first_start);
    (void)parse_headers(body.substr(first_start, first_end - first_start), &inner);
    body = inner;
  }
  return m;
}

}  // namespace songda::testing
