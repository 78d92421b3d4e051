#include "gateway/web/pages.h"

#include <gtest/gtest.h>

#include "gateway/core/link.h"

namespace songda::web {
namespace {

constexpr const char* kSecret = "0123456789abcdef0123456789abcdef";
constexpr std::int64_t kNow = 1'800'000'000;

TEST(Tokens, PartyTokenNamesItsDelivery) {
  const auto t = sign_token(kSecret, TokenKind::kParty, "sd-0123", kNow + 60);
  auto v = verify_token(kSecret, TokenKind::kParty, t, kNow);
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v.value(), "sd-0123");
  // The App's own links (sign_link_token with the bare delivery id) are party tokens.
  auto app = verify_token(kSecret, TokenKind::kParty, sign_link_token(kSecret, "sd-0123", kNow + 60), kNow);
  ASSERT_TRUE(app.ok());
  EXPECT_EQ(app.value(), "sd-0123");
}

TEST(Tokens, ExpiredForgedAndMalformedAreRefused) {
  const auto t = sign_token(kSecret, TokenKind::kParty, "sd-0123", kNow - 1);
  EXPECT_EQ(verify_token(kSecret, TokenKind::kParty, t, kNow).error().code, "link_expired");
  EXPECT_EQ(verify_token("another-secret-of-32-bytes-xxxxx", TokenKind::kParty, t, kNow - 10).error().code,
            "link_forged");
  std::string flipped = sign_token(kSecret, TokenKind::kParty, "sd-0123", kNow + 60);
  flipped[2] = flipped[2] == 'A' ? 'B' : 'A';  // another delivery id, same MAC
  EXPECT_EQ(verify_token(kSecret, TokenKind::kParty, flipped, kNow).error().code, "link_forged");
  EXPECT_EQ(verify_token(kSecret, TokenKind::kParty, "no-dot-here", kNow).error().code, "link_malformed");
  EXPECT_EQ(verify_token(kSecret, TokenKind::kParty, "", kNow).error().code, "link_malformed");
}

TEST(Tokens, OneKindCannotBeUsedAsAnother) {
  const auto inbox = sign_token(kSecret, TokenKind::kInbox, "u-zhangsan", kNow + 60);
  const auto cert = sign_token(kSecret, TokenKind::kCertificate, "sd-0123", kNow + 60);
  const auto party = sign_token(kSecret, TokenKind::kParty, "sd-0123", kNow + 60);
  EXPECT_EQ(verify_token(kSecret, TokenKind::kInbox, inbox, kNow).value(), "u-zhangsan");
  EXPECT_EQ(verify_token(kSecret, TokenKind::kCertificate, cert, kNow).value(), "sd-0123");
  EXPECT_EQ(verify_token(kSecret, TokenKind::kParty, inbox, kNow).error().code, "link_malformed");
  EXPECT_EQ(verify_token(kSecret, TokenKind::kParty, cert, kNow).error().code, "link_malformed");
  EXPECT_EQ(verify_token(kSecret, TokenKind::kCertificate, party, kNow).error().code, "link_malformed");
  EXPECT_EQ(verify_token(kSecret, TokenKind::kInbox, cert, kNow).error().code, "link_malformed");
}

TEST(TokenErrorPage, ExpiredIs410ForgedIs403InChinese) {
  const auto expired = token_error_page(Error::permanent("link_expired", "x"));
  EXPECT_EQ(expired.status, 410);
  EXPECT_NE(expired.html.find("链接已过期"), std::string::npos);
  const auto forged = token_error_page(Error::permanent("link_forged", "x"));
  EXPECT_EQ(forged.status, 403);
  EXPECT_NE(forged.html.find("链接无效"), std::string::npos);
  EXPECT_EQ(token_error_page(Error::permanent("link_malformed", "x")).status, 403);
}

PartyNotice notice() {
  PartyNotice n;
  n.token = "TOKEN.MAC";
  n.court_name = "商丘市中级人民法院";
  n.case_number = "(2026)豫14民初123号";
  n.title = "传票<script>alert(1)</script>";
  n.text = "张三：请于2026-12-10到庭。详情 https://songda.court.example/r/TOKEN.MAC 。";
  n.recipient_name = "张三";
  n.document = Document{"DOC-1", "传票", std::string(64, 'a'), "", 2};
  n.document_available = true;
  n.status = "DELIVERED";
  return n;
}

TEST(PartyPage, ShowsNoticeDocumentAndAckButtonEscaped) {
  const auto html = render_party_page(notice());
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("传票&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("(2026)豫14民初123号"), std::string::npos);
  EXPECT_NE(html.find("href=\"/r/TOKEN.MAC/document\""), std::string::npos);
  EXPECT_NE(html.find("action=\"/r/TOKEN.MAC/ack\""), std::string::npos);
  EXPECT_NE(html.find("确认收到"), std::string::npos);
  EXPECT_NE(html.find("（共 2 页）"), std::string::npos);
  EXPECT_EQ(html.find("https://songda.court.example/r/"), std::string::npos) << "the page's own link is cut out";
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos) << "no external URL on the page";
}

// What a link scanner gets: who it is from and for, and one button; none of the notice or its document.
TEST(PartyPage, TheLandingShowsOnlyTheHeaderAndTheOpenButtonEscaped) {
  const auto html = render_party_landing(notice());
  EXPECT_EQ(html.find("<script>alert"), std::string::npos);
  EXPECT_NE(html.find("传票&lt;script&gt;"), std::string::npos);
  EXPECT_NE(html.find("(2026)豫14民初123号"), std::string::npos);
  EXPECT_NE(html.find("商丘市中级人民法院"), std::string::npos);
  EXPECT_NE(html.find("<form method=\"post\" action=\"/r/TOKEN.MAC/open\""), std::string::npos);
  EXPECT_NE(html.find("id=\"open\""), std::string::npos);
  EXPECT_EQ(html.find("请于2026-12-10到庭"), std::string::npos) << "the notice text is on the landing";
  EXPECT_EQ(html.find("/document"), std::string::npos);
  EXPECT_EQ(html.find("/ack"), std::string::npos);
  EXPECT_EQ(html.find(std::string(64, 'a')), std::string::npos);
}

TEST(PartyPage, ANoticeIsShownOnGetOnceOpenedOrWhenItsDeliveryWasCancelled) {
  for (const char* s : {"READ", "ACKNOWLEDGED", "CANCELLED"}) EXPECT_TRUE(party_notice_opened(s)) << s;
  for (const char* s : {"ACCEPTED", "SENT", "DELIVERED", "FAILED", ""}) EXPECT_FALSE(party_notice_opened(s)) << s;
}

TEST(PartyPage, AcknowledgedHasNoButtonAndSaysWhen) {
  auto n = notice();
  n.status = "ACKNOWLEDGED";
  n.acknowledged_ms = 1'764'291'600'000;  // 2025-11-28T01:00:00Z = 09:00 Beijing
  const auto html = render_party_page(n);
  EXPECT_EQ(html.find("id=\"ack-form\""), std::string::npos);
  EXPECT_NE(html.find("您已确认收到"), std::string::npos);
  EXPECT_NE(html.find("2025-11-28 09:00（北京时间）"), std::string::npos);
}

TEST(PartyPage, DocumentNotAvailableOrAbsent) {
  auto n = notice();
  n.document_available = false;
  EXPECT_NE(render_party_page(n).find("文书暂不能在线查看"), std::string::npos);
  n.document.reset();
  EXPECT_NE(render_party_page(n).find("本通知没有附带文书"), std::string::npos);
}

TEST(StripLinks, RemovesOnlyPartyLinks) {
  EXPECT_EQ(strip_links("请查看 https://a.example/r/abc.DEF-_ 。"), "请查看 。");
  EXPECT_EQ(strip_links("链接http://127.0.0.1:8080/r/x.y"), "链接");
  EXPECT_EQ(strip_links("官网 https://court.example/about 欢迎"), "官网 https://court.example/about 欢迎");
  EXPECT_EQ(strip_links("两个 http://a/r/1 和 http://b/r/2"), "两个 和");
}

TEST(Sse, FramesEveryLine) {
  EXPECT_EQ(sse_message("deliveries", "{\"a\":1}"), "event: deliveries\ndata: {\"a\":1}\n\n");
  EXPECT_EQ(sse_message("", "a\nb"), "data: a\ndata: b\n\n");
}

TEST(Sniff, KnownTypes) {
  EXPECT_EQ(sniff_content_type("%PDF-1.4\n"), "application/pdf");
  EXPECT_EQ(sniff_content_type("传票正文"), "text/plain; charset=utf-8");
  EXPECT_EQ(sniff_content_type(std::string("\xff\xfe\x00", 3)), "application/octet-stream");
}

// WebKit (Safari, WeChat on iOS) shows a blank page for a PDF served under `sandbox` or with object-src 'none'
// (which default-src 'none' implies); text and images keep the sandbox.
TEST(DocumentCsp, APdfIsNotSandboxedSoWebKitCanShowItAndOtherDocumentsAre) {
  const std::string pdf = document_csp(sniff_content_type("%PDF-1.7\n"));
  EXPECT_EQ(pdf.find("sandbox"), std::string::npos) << pdf;
  EXPECT_EQ(pdf.find("default-src"), std::string::npos) << pdf;
  EXPECT_EQ(pdf.find("object-src"), std::string::npos) << pdf;
  EXPECT_NE(pdf.find("frame-ancestors 'none'"), std::string::npos) << pdf;
  for (const std::string bytes : {"传票正文", "\x89PNG\r\n\x1a\n", "<html><script>alert(1)</script>"}) {
    const std::string csp = document_csp(sniff_content_type(bytes));
    EXPECT_TRUE(csp.starts_with("sandbox;")) << bytes << ": " << csp;
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  }
}

TEST(PercentEncode, Utf8FileName) { EXPECT_EQ(percent_encode("传票 1.pdf"), "%E4%BC%A0%E7%A5%A8%201.pdf"); }

}  // namespace
}  // namespace songda::web
