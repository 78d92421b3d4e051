// EmailChannel against Debian's aiosmtpd (tests/services/with-services --smtp;
// skipped when SONGDA_TEST_SMTP_PORT is unset). STARTTLS required: against
// the TLS sink named by SONGDA_TEST_SMTP_CA when the runner started one
// (SONGDA_SMTP_TLS=1), else against one this test starts itself with
// `SONGDA_SMTP_TLS=1 tests/services/smtp.sh`. The stored Maildir file is then
// parsed: Message-ID, multipart/alternative with both parts, the link, the
// Chinese subject. Plain SMTP (starttls none) goes to the shared sink.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "channels/email/email_channel.h"
#include "gateway/core/crypto.h"
#include "tests/channels/email/smtp_test_util.h"

namespace songda::email {
namespace {

namespace fs = std::filesystem;
using Kind = SendOutcome::Kind;

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

const char* no_env(const char*) { return nullptr; }

// Runs a shell command; returns its stdout lines, or nullopt when it failed.
std::optional<std::vector<std::string>> run_lines(const std::string& cmd) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return std::nullopt;
  std::vector<std::string> lines;
  char buf[4096];
  while (std::fgets(buf, sizeof buf, p) != nullptr) {
    std::string line(buf);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    lines.push_back(line);
  }
  if (::pclose(p) != 0) return std::nullopt;
  return lines;
}

struct Sink {
  std::string host;
  int port = 0;
  std::string maildir;
  std::string ca;
};

// The message file in maildir/new holding `message_id`, waiting up to `wait` (aiosmtpd stores a message before it
// answers 250, so a message the server refused is looked for once, with no wait).
std::string find_message(const std::string& maildir, const std::string& message_id,
                         std::chrono::milliseconds wait = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + wait;
  do {
    for (const auto& entry : fs::directory_iterator(fs::path(maildir) / "new")) {
      std::ifstream in(entry.path(), std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      const std::string text = ss.str();
      if (text.find(message_id) != std::string::npos) return text;
    }
    if (wait.count() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  return {};
}

class AiosmtpdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (env_or_empty("SONGDA_TEST_SMTP_PORT").empty()) {
      GTEST_SKIP() << "SONGDA_TEST_SMTP_PORT not set (tests/services/with-services --smtp)";
    }
    shared_.host = env_or_empty("SONGDA_TEST_SMTP_HOST");
    shared_.port = std::stoi(env_or_empty("SONGDA_TEST_SMTP_PORT"));
    shared_.maildir = env_or_empty("SONGDA_TEST_SMTP_MAILDIR");
    shared_.ca = env_or_empty("SONGDA_TEST_SMTP_CA");
  }

  void TearDown() override {
    if (!own_dir_.empty()) {
      (void)run_lines(std::string(SONGDA_SOURCE_DIR) + "/tests/services/smtp.sh stop '" + own_dir_ + "'");
      std::error_code ec;
      fs::remove_all(own_dir_, ec);
    }
  }

  // A sink that offers STARTTLS: the shared one when it does, else our own.
  Sink tls_sink() {
    if (!shared_.ca.empty()) return shared_;
    std::string base = env_or_empty("SONGDA_TEST_RUN_DIR");
    if (base.empty()) base = fs::temp_directory_path().string();
    own_dir_ = base + "/tls-smtp-" + to_hex(random_bytes(4));
    fs::create_directories(own_dir_);
    const auto lines = run_lines("SONGDA_SMTP_TLS=1 " + std::string(SONGDA_SOURCE_DIR) +
                                 "/tests/services/smtp.sh start '" + own_dir_ + "'");
    if (!lines || lines->size() < 3) {
      ADD_FAILURE() << "could not start a STARTTLS aiosmtpd with tests/services/smtp.sh";
      return {};
    }
    Sink s;
    const std::string& addr = (*lines)[0];
    s.host = addr.substr(0, addr.rfind(':'));
    s.port = std::stoi(addr.substr(addr.rfind(':') + 1));
    s.maildir = (*lines)[1];
    s.ca = (*lines)[2];
    return s;
  }

  static EmailConfig config_for(const Sink& s, const std::string& starttls) {
    EmailConfig c;
    c.enabled = true;
    c.smtp_url = "smtp://" + s.host + ":" + std::to_string(s.port);
    c.starttls = starttls;
    c.from = "noreply@court.example";
    c.from_name = "商丘市中级人民法院";
    c.credentials_env = "SONGDA_TEST_NO_SMTP_AUTH";
    c.ca_file = starttls == "none" ? "" : s.ca;
    c.timeout_ms = 10000;
    return c;
  }

  static Delivery delivery(const std::string& id) {
    Delivery d;
    d.id = id;
    d.channel = "email";
    d.address = "lawyer.li@example.cn";
    d.recipient_name = "李律师";
    d.title = "商丘市中级人民法院关于(2026)豫14民初123号案件的开庭传票";
    d.text = "李律师：您好。\n(2026)豫14民初123号案件定于2026年12月10日09:30开庭。\n文书：https://court.example/r/" +
             id + "?sig=a1b2 。";
    return d;
  }

  Sink shared_;
  std::string own_dir_;
};

void expect_stored_message(const std::string& maildir, const Delivery& d) {
  const std::string message_id = "<" + d.id + "@court.example>";
  const std::string stored = find_message(maildir, message_id);
  ASSERT_FALSE(stored.empty()) << "no message with " << message_id << " in " << maildir << "/new";
  const auto m = songda::testing::parse_message(stored);
  EXPECT_EQ(m.headers.at("message-id"), message_id);
  EXPECT_EQ(m.headers.at("x-songda-delivery"), d.id);
  EXPECT_EQ(songda::testing::decode_rfc2047(m.headers.at("subject")), d.title);
  EXPECT_NE(songda::testing::decode_rfc2047(m.headers.at("from")).find("商丘市中级人民法院"), std::string::npos);
  EXPECT_NE(m.headers.at("x-rcptto").find("lawyer.li@example.cn"), std::string::npos);
  EXPECT_EQ(songda::testing::lower(m.content_type).rfind("multipart/alternative", 0), 0u) << m.content_type;
  ASSERT_EQ(m.parts.size(), 2u);
  EXPECT_EQ(songda::testing::lower(m.parts[0].headers.at("content-type")).rfind("text/plain", 0), 0u);
  EXPECT_EQ(songda::testing::lower(m.parts[1].headers.at("content-type")).rfind("text/html", 0), 0u);
  const std::string link = "https://court.example/r/" + d.id + "?sig=a1b2";
  EXPECT_EQ(m.parts[0].body, d.text);
  EXPECT_NE(m.parts[1].body.find("<a href=\"" + link + "\">"), std::string::npos) << m.parts[1].body;
}

TEST_F(AiosmtpdTest, StarttlsRequiredDeliversAChineseMessage) {
  const Sink sink = tls_sink();
  ASSERT_FALSE(sink.ca.empty());
  EmailChannel channel(config_for(sink, "required"), no_env);
  const Delivery d = delivery("sd-tls-" + to_hex(random_bytes(8)));
  const auto out = channel.send(std::span(&d, 1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::kDelivered) << out[0].code << " " << out[0].message;
  EXPECT_EQ(out[0].provider, "smtp");
  EXPECT_EQ(out[0].provider_message_id, "<" + d.id + "@court.example>");
  EXPECT_EQ(out[0].code, "250");
  EXPECT_EQ(out[0].raw.rfind("250 ", 0), 0u) << out[0].raw;
  expect_stored_message(sink.maildir, d);
}

TEST_F(AiosmtpdTest, StarttlsRequiredRefusesAnUntrustedCertificate) {
  const Sink sink = tls_sink();
  EmailConfig c = config_for(sink, "required");
  c.ca_file.clear();  // the system CAs do not know the throwaway certificate
  EmailChannel channel(c, no_env);
  const Delivery d = delivery("sd-untrusted-" + to_hex(random_bytes(8)));
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "smtp_transport");
}

TEST_F(AiosmtpdTest, PlainSmtpWorksToo) {
  EmailChannel channel(config_for(shared_, "none"), no_env);
  const Delivery d = delivery("sd-plain-" + to_hex(random_bytes(8)));
  const auto out = channel.send(std::span(&d, 1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::kDelivered) << out[0].code << " " << out[0].message;
  expect_stored_message(shared_.maildir, d);
}

// The refusals a real server gives (tests/services/smtp_policy.py answers them by recipient, with aiosmtpd's own
// SMTP): each reaches the delivery as the right kind, with the server's words, and nothing is stored.
TEST_F(AiosmtpdTest, ARefusedRecipientIsPermanentOrTriedAgainAsTheServerSaid) {
  struct Case {
    std::string address;
    Kind kind;
    std::string code;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"unknown-li@example.cn", Kind::kPermanent, "550",
       "550 5.1.1 <unknown-li@example.cn>: Recipient address rejected: User unknown"},
      {"greylist-li@example.cn", Kind::kRetryable, "450",
       "450 4.2.0 <greylist-li@example.cn>: Recipient address rejected: Greylisted"},
  };
  EmailChannel channel(config_for(shared_, "none"), no_env);
  for (const auto& c : cases) {
    Delivery d = delivery("sd-" + c.code + "-" + to_hex(random_bytes(8)));
    d.address = c.address;
    const auto out = channel.send(std::span(&d, 1));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, c.kind) << c.address << ": " << out[0].message;
    EXPECT_EQ(out[0].code, c.code) << c.address;
    EXPECT_EQ(out[0].message, c.message);
  }
}

TEST_F(AiosmtpdTest, AMessageRefusedAfterItsDataIsPermanentAndTheNextOneStillGoes) {
  EmailChannel channel(config_for(shared_, "none"), no_env);
  std::vector<Delivery> ds = {delivery("sd-554-" + to_hex(random_bytes(8))),
                              delivery("sd-after-554-" + to_hex(random_bytes(8)))};
  ds[0].address = "spam-li@example.cn";
  const auto out = channel.send(ds);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].kind, Kind::kPermanent) << out[0].message;
  EXPECT_EQ(out[0].code, "554");
  EXPECT_EQ(out[0].message, "554 5.7.1 Message rejected as spam");
  EXPECT_EQ(out[1].kind, Kind::kDelivered) << out[1].message;
  expect_stored_message(shared_.maildir, ds[1]);
  EXPECT_TRUE(find_message(shared_.maildir, "<" + ds[0].id + "@court.example>", std::chrono::milliseconds(0)).empty())
      << "the refused one is not stored";
}

TEST_F(AiosmtpdTest, StarttlsRequiredButNotOfferedSendsNothing) {
  if (!shared_.ca.empty()) GTEST_SKIP() << "the shared sink offers STARTTLS (SONGDA_SMTP_TLS=1)";
  EmailConfig c = config_for(shared_, "required");
  c.ca_file.clear();
  EmailChannel channel(c, no_env);
  const Delivery d = delivery("sd-notls-" + to_hex(random_bytes(8)));
  const auto out = channel.send(std::span(&d, 1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::kRetryable) << out[0].message;
  EXPECT_TRUE(find_message(shared_.maildir, "<" + d.id + "@court.example>", std::chrono::milliseconds(0)).empty())
      << "sent without TLS";
}

}  // namespace
}  // namespace songda::email
