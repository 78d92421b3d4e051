// EmailChannel without a real mail server: the message pieces (RFC 2047,
// RFC 5322 date, HTML), start-up checks, and SMTP transactions against a
// scripted loopback server: the final answer to DATA captured as evidence,
// 5xx permanent with the server's text verbatim, 4xx retryable, no server and
// a missing STARTTLS retryable.
#include "channels/email/email_channel.h"

#include <gtest/gtest.h>

#include <map>

#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "tests/channels/email/smtp_test_util.h"

namespace songda::email {
namespace {

using Kind = SendOutcome::Kind;
using songda::testing::ScriptedSmtpServer;

const char* no_env(const char*) { return nullptr; }

EmailConfig config_for(const std::string& url, const std::string& starttls = "none") {
  EmailConfig c;
  c.enabled = true;
  c.smtp_url = url;
  c.starttls = starttls;
  c.from = "noreply@court.example";
  c.from_name = "商丘市中级人民法院";
  c.credentials_env = "SMTP_TEST";
  c.timeout_ms = 5000;
  c.concurrency = 1;
  return c;
}

Delivery delivery(std::string id = "sd-mail-1") {
  Delivery d;
  d.id = std::move(id);
  d.channel = "email";
  d.address = "zhang.san@example.cn";
  d.recipient_name = "张三";
  d.title = "商丘市中级人民法院传票";
  d.text = "张三：您好。\n请于2026-12-10 09:30到庭。文书：https://court.example/r/tok-1 。";
  return d;
}

EmailChannelOptions fixed_clock() {
  EmailChannelOptions o;
  o.now_ms = [] { return std::int64_t{1795000000000}; };
  return o;
}

// ---- Pieces ---------------------------------------------------------------------------------

TEST(EmailPieces, Rfc2047EncodesUtf8InWordsOfAtMost75Characters) {
  EXPECT_EQ(rfc2047_encode("Summons"), "Summons");
  EXPECT_EQ(rfc2047_encode("传票"), "=?UTF-8?B?" + base64_encode("传票") + "?=");
  const std::string long_title = "商丘市中级人民法院关于(2026)豫14民初123号案件的开庭传票及举证通知书";
  const std::string enc = rfc2047_encode(long_title);
  std::string decoded;
  std::size_t pos = 0;
  while (pos < enc.size()) {
    auto end = enc.find(' ', pos);
    if (end == std::string::npos) end = enc.size();
    const std::string word = enc.substr(pos, end - pos);
    EXPECT_LE(word.size(), 75u);
    ASSERT_EQ(word.rfind("=?UTF-8?B?", 0), 0u);
    const std::string payload = base64_decode(word.substr(10, word.size() - 12));
    EXPECT_TRUE(is_valid_utf8(payload)) << "a word must not split a character";
    decoded += payload;
    pos = end + 1;
  }
  EXPECT_EQ(decoded, long_title);
  EXPECT_EQ(songda::testing::decode_rfc2047(enc), long_title);
  EXPECT_NE(rfc2047_encode("a =?x?= trick"), "a =?x?= trick");
}

TEST(EmailPieces, DateIsRfc5322Utc) {
  EXPECT_EQ(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
  EXPECT_EQ(rfc5322_date(1795000000000), "Wed, 18 Nov 2026 11:06:40 +0000");
}

TEST(EmailPieces, HtmlEscapesTheTextAndLinksTheLink) {
  EXPECT_EQ(html_escape(R"(<b>&"x'</b>)"), "&lt;b&gt;&amp;&quot;x&#39;&lt;/b&gt;");
  const std::string html =
      html_body("传票 <1>", "第一行 <script>\n见 https://c.example/r/a?x=1&y=2 。", "https://c.example/r/a?x=1&y=2");
  EXPECT_NE(html.find("<title>传票 &lt;1&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("第一行 &lt;script&gt;<br>"), std::string::npos);
  EXPECT_NE(html.find(R"(<a href="https://c.example/r/a?x=1&amp;y=2">https://c.example/r/a?x=1&amp;y=2</a>)"),
            std::string::npos)
      << html;
  EXPECT_EQ(html.find("<script>"), std::string::npos);
}

TEST(EmailPieces, AddressesAndDomains) {
  EXPECT_EQ(message_id_domain("noreply@court.example"), "court.example");
  EXPECT_EQ(message_id_domain("nobody"), "songda");
  EXPECT_TRUE(plausible_address("a.b@c.cn"));
  EXPECT_FALSE(plausible_address("a@b.cn>\r\nRCPT TO:<x@y>"));
  EXPECT_FALSE(plausible_address("a b@c.cn"));
  EXPECT_FALSE(plausible_address("@c.cn"));
  EXPECT_FALSE(plausible_address("a@b@c"));
}

// ---- Start-up ---------------------------------------------------------------------------------

TEST(EmailStartup, RefusesBadConfigAndAUserWithoutPassword) {
  EXPECT_THROW(EmailChannel(config_for("http://x"), no_env), StartupError);
  EXPECT_THROW(EmailChannel(config_for("smtp://127.0.0.1:25", "maybe"), no_env), StartupError);
  EmailConfig bad_from = config_for("smtp://127.0.0.1:25");
  bad_from.from = "Court <noreply@court.example>";
  EXPECT_THROW(EmailChannel(bad_from, no_env), StartupError);
  const Getenv user_only = [](const char* n) -> const char* {
    return std::string(n) == "SMTP_TEST_USER" ? "mailer" : nullptr;
  };
  try {
    EmailChannel ch(config_for("smtp://127.0.0.1:25"), user_only);
    FAIL() << "expected StartupError";
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("SMTP_TEST_PASSWORD"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(EmailChannel(config_for("smtps://127.0.0.1:465", "required"), no_env));
}

// ---- SMTP transactions -------------------------------------------------------------------------

TEST(EmailSmtp, DeliveredWithTheFinalDataAnswerAsEvidence) {
  ScriptedSmtpServer server;
  EmailChannel channel(config_for(server.url()), no_env, fixed_clock());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].kind, Kind::kDelivered) << out[0].code << " " << out[0].message;
  EXPECT_EQ(out[0].provider, "smtp");
  EXPECT_EQ(out[0].provider_message_id, "<sd-mail-1@court.example>");
  EXPECT_EQ(out[0].code, "250");
  EXPECT_EQ(out[0].raw, "250 2.0.0 Ok: queued as 4F2B1C0A9E");
  EXPECT_EQ(out[0].message, out[0].raw);

  const auto cmds = server.commands();
  EXPECT_NE(std::find(cmds.begin(), cmds.end(), "MAIL FROM:<noreply@court.example>"), cmds.end());
  EXPECT_NE(std::find(cmds.begin(), cmds.end(), "RCPT TO:<zhang.san@example.cn>"), cmds.end());
  ASSERT_EQ(server.messages().size(), 1u);
  const auto m = songda::testing::parse_message(server.messages()[0]);
  EXPECT_EQ(m.headers.at("message-id"), "<sd-mail-1@court.example>");
  EXPECT_EQ(m.headers.at("x-songda-delivery"), "sd-mail-1");
  EXPECT_EQ(m.headers.at("date"), "Wed, 18 Nov 2026 11:06:40 +0000");
  EXPECT_EQ(songda::testing::decode_rfc2047(m.headers.at("subject")), d.title);
  EXPECT_EQ(songda::testing::decode_rfc2047(m.headers.at("from")), "商丘市中级人民法院 <noreply@court.example>");
  EXPECT_EQ(songda::testing::decode_rfc2047(m.headers.at("to")), "张三 <zhang.san@example.cn>");
  EXPECT_EQ(m.content_type.rfind("multipart/alternative", 0), 0u) << m.content_type;
  ASSERT_EQ(m.parts.size(), 2u);
  EXPECT_EQ(m.parts[0].headers.at("content-type"), "text/plain; charset=utf-8");
  EXPECT_EQ(m.parts[0].body, d.text);
  EXPECT_EQ(m.parts[1].headers.at("content-type"), "text/html; charset=utf-8");
  EXPECT_NE(m.parts[1].body.find(R"(<a href="https://court.example/r/tok-1">)"), std::string::npos);
}

TEST(EmailSmtp, ConnectionIsReusedForTheNextMessage) {
  ScriptedSmtpServer server;
  EmailChannel channel(config_for(server.url()), no_env, fixed_clock());
  const std::vector<Delivery> ds = {delivery("sd-a"), delivery("sd-b"), delivery("sd-c")};
  const auto out = channel.send(ds);
  for (const auto& o : out) EXPECT_EQ(o.kind, Kind::kDelivered) << o.message;
  EXPECT_EQ(server.messages().size(), 3u);
  const auto cmds = server.commands();
  EXPECT_EQ(std::count_if(cmds.begin(), cmds.end(), [](const auto& c) { return c.rfind("EHLO", 0) == 0; }), 1);
}

TEST(EmailSmtp, RecipientRefused5xxIsPermanentWithTheServersTextVerbatim) {
  ScriptedSmtpServer server;
  server.rcpt_reply = "550 5.1.1 <zhang.san@example.cn>: Recipient address rejected: User unknown";
  EmailChannel channel(config_for(server.url()), no_env, fixed_clock());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "550");
  EXPECT_EQ(out[0].message, "550 5.1.1 <zhang.san@example.cn>: Recipient address rejected: User unknown");
  EXPECT_TRUE(server.messages().empty());
}

TEST(EmailSmtp, Greylisted4xxIsRetryable) {
  ScriptedSmtpServer server;
  server.rcpt_reply = "450 4.2.0 <zhang.san@example.cn>: Recipient address rejected: Greylisted";
  EmailChannel channel(config_for(server.url()), no_env, fixed_clock());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "450");
  EXPECT_NE(out[0].message.find("Greylisted"), std::string::npos);
}

TEST(EmailSmtp, ContentRefusedAtEndOfDataIsPermanent) {
  ScriptedSmtpServer server;
  server.data_final_reply = "554 5.7.1 Message rejected as spam";
  EmailChannel channel(config_for(server.url()), no_env, fixed_clock());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "554");
  EXPECT_EQ(out[0].message, "554 5.7.1 Message rejected as spam");
}

TEST(EmailSmtp, NoServerIsRetryable) {
  int port = 0;
  {
    ScriptedSmtpServer probe;
    port = probe.port();
  }
  EmailChannel channel(config_for("smtp://127.0.0.1:" + std::to_string(port)), no_env, fixed_clock());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_EQ(out[0].code, "smtp_transport");
  EXPECT_FALSE(out[0].message.empty());
}

TEST(EmailSmtp, StarttlsRequiredButNotOfferedIsRetryableAndSendsNothing) {
  ScriptedSmtpServer server;
  EmailChannel channel(config_for(server.url(), "required"), no_env, fixed_clock());
  const Delivery d = delivery();
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kRetryable);
  EXPECT_TRUE(server.messages().empty());
  const auto cmds = server.commands();
  EXPECT_EQ(std::count_if(cmds.begin(), cmds.end(), [](const auto& c) { return c.rfind("MAIL", 0) == 0; }), 0);
}

TEST(EmailSmtp, ABadRecipientAddressIsPermanentBeforeAnySmtp) {
  ScriptedSmtpServer server;
  EmailChannel channel(config_for(server.url()), no_env, fixed_clock());
  Delivery d = delivery();
  d.address = "x@y.cn>\r\nRCPT TO:<evil@z.cn";
  const auto out = channel.send(std::span(&d, 1));
  EXPECT_EQ(out[0].kind, Kind::kPermanent);
  EXPECT_EQ(out[0].code, "invalid_address");
  EXPECT_TRUE(server.commands().empty());
}

}  // namespace
}  // namespace songda::email
