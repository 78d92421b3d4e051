// CurlHttpClient against a tiny local cpp-httplib server on an ephemeral port:
// status, body and headers both ways, non-2xx statuses as responses, a timeout
// and a refused connection as status 0 with an error text, and handles reused
// across threads. Also the shared adapter helpers (link extraction, env, parallel_for).
#include "channels/http/http_client.h"

#include <gtest/gtest.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

#include "channels/http/channel_support.h"
#include "gateway/core/result.h"

namespace songda {
namespace {

class LocalServer {
 public:
  LocalServer() {
    server_.Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 201;
      res.set_header("X-Echo-Auth", req.get_header_value("Authorization"));
      res.set_header("X-Echo-Method", req.method);
      res.set_content(req.body, req.get_header_value("Content-Type"));
    });
    server_.Put("/echo", [](const httplib::Request& req, httplib::Response& res) {
      res.set_content(req.method + ":" + req.body, "text/plain");
    });
    server_.Get("/status/503", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content(R"({"Code":"ServiceUnavailable"})", "application/json");
    });
    server_.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1500));
      res.set_content("late", "text/plain");
    });
    server_.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(std::string(64 * 1024, 'x'), "text/plain");
    });
    server_.Get("/conn", [this](const httplib::Request& req, httplib::Response& res) {
      res.set_content(req.remote_addr + ":" + std::to_string(req.remote_port), "text/plain");
      ++hits_;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~LocalServer() {
    server_.stop();
    thread_.join();
  }
  [[nodiscard]] std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::atomic<int> hits_{0};

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

TEST(CurlHttpClient, PostsBodyAndHeadersAndReadsStatusBodyHeaders) {
  LocalServer server;
  CurlHttpClient client;
  HttpRequest req;
  req.method = "POST";
  req.url = server.url("/echo");
  req.headers = {{"Authorization", "TC3-HMAC-SHA256 Credential=x"}, {"Content-Type", "application/json"}};
  req.body = R"({"a":"短信"})";
  const HttpResponse resp = client.send(req);
  EXPECT_EQ(resp.status, 201);
  EXPECT_EQ(resp.body, req.body);
  EXPECT_TRUE(resp.error.empty());
  EXPECT_EQ(resp.header("x-echo-auth"), "TC3-HMAC-SHA256 Credential=x");
  EXPECT_EQ(resp.header("X-ECHO-METHOD"), "POST");
  EXPECT_EQ(resp.header("content-type"), "application/json");
  EXPECT_EQ(resp.header("absent"), "");
}

TEST(CurlHttpClient, PutSendsItsMethod) {
  LocalServer server;
  CurlHttpClient client;
  const HttpResponse resp = client.send({"PUT", server.url("/echo"), {{"Content-Type", "text/plain"}}, "x=1", 2000});
  EXPECT_EQ(resp.status, 200);
  EXPECT_EQ(resp.body, "PUT:x=1");
}

TEST(CurlHttpClient, ServerErrorIsAResponseNotATransportError) {
  LocalServer server;
  CurlHttpClient client;
  const HttpResponse resp = client.send({"GET", server.url("/status/503"), {}, "", 2000});
  EXPECT_EQ(resp.status, 503);
  EXPECT_FALSE(resp.transport_error());
  EXPECT_EQ(resp.body, R"({"Code":"ServiceUnavailable"})");
}

TEST(CurlHttpClient, TimeoutIsStatusZeroWithAnErrorText) {
  LocalServer server;
  CurlHttpClient client;
  const auto start = std::chrono::steady_clock::now();
  const HttpResponse resp = client.send({"GET", server.url("/slow"), {}, "", 200});
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(resp.status, 0);
  EXPECT_TRUE(resp.transport_error());
  EXPECT_NE(resp.error.find("Timeout"), std::string::npos) << resp.error;
  EXPECT_TRUE(resp.body.empty());
  EXPECT_LT(took, std::chrono::milliseconds(1200));
}

TEST(CurlHttpClient, RefusedConnectionIsStatusZero) {
  int port = 0;
  {
    httplib::Server probe;
    port = probe.bind_to_any_port("127.0.0.1");
  }  // closed again: nothing listens there now
  CurlHttpClient client;
  const HttpResponse resp = client.send({"GET", "http://127.0.0.1:" + std::to_string(port) + "/", {}, "", 1000});
  EXPECT_EQ(resp.status, 0);
  EXPECT_FALSE(resp.error.empty());
}

TEST(CurlHttpClient, OversizedAnswerIsATransportError) {
  LocalServer server;
  CurlHttpOptions options;
  options.max_response_bytes = 1024;
  CurlHttpClient client(options);
  const HttpResponse resp = client.send({"GET", server.url("/big"), {}, "", 2000});
  EXPECT_EQ(resp.status, 0);
  EXPECT_NE(resp.error.find("larger than 1024"), std::string::npos) << resp.error;
}

TEST(CurlHttpClient, ReusesTheConnectionAndServesManyThreads) {
  LocalServer server;
  CurlHttpClient client;
  const HttpResponse first = client.send({"GET", server.url("/conn"), {}, "", 2000});
  const HttpResponse second = client.send({"GET", server.url("/conn"), {}, "", 2000});
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.body, second.body) << "same client port: the keep-alive connection was reused";

  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        if (client.send({"GET", server.url("/conn"), {}, "", 2000}).status == 200) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 80);
}

// ---- Shared adapter helpers ----------------------------------------------------------

TEST(ChannelSupport, LastHttpUrlFindsTheLinkInChineseText) {
  EXPECT_EQ(last_http_url("请查看 https://court.example/r/abc.def 谢谢"), "https://court.example/r/abc.def");
  EXPECT_EQ(last_http_url("链接：http://a.example/x，请于三日内查看。"), "http://a.example/x");
  EXPECT_EQ(last_http_url("see http://a.example/1 and https://b.example/2."), "https://b.example/2");
  EXPECT_EQ(last_http_url("no link here"), "");
  EXPECT_EQ(last_http_url("dangling https://"), "");
  EXPECT_EQ(last_http_url("《https://a.example/x》"), "https://a.example/x");
  EXPECT_EQ(last_http_url("https://a.example/证据　下一句"), "https://a.example/证据");  // ideographic space
}

TEST(ChannelSupport, TemplateVarsAddBuiltIns) {
  Delivery d;
  d.params = {{"hearing_time", "2026-12-10 09:30"}, {"court_name", "overridden"}};
  d.court_name = "商丘市中级人民法院";
  d.case_number = "(2026)豫14民初123号";
  d.recipient_name = "张三";
  d.text = "张三：请查看 https://court.example/r/t1";
  const auto vars = delivery_template_vars(d);
  EXPECT_EQ(vars.at("hearing_time"), "2026-12-10 09:30");
  EXPECT_EQ(vars.at("court_name"), "商丘市中级人民法院");
  EXPECT_EQ(vars.at("case_number"), "(2026)豫14民初123号");
  EXPECT_EQ(vars.at("recipient_name"), "张三");
  EXPECT_EQ(vars.at("link"), "https://court.example/r/t1");
}

TEST(ChannelSupport, RequireEnvNamesTheMissingVariable) {
  const Getenv env = [](const char* name) -> const char* { return std::string(name) == "X_SET" ? "value" : nullptr; };
  EXPECT_EQ(require_env(env, "X_SET", "test"), "value");
  try {
    (void)require_env(env, "X_MISSING", "SMS provider a");
    FAIL() << "expected StartupError";
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("X_MISSING"), std::string::npos);
  }
  EXPECT_EQ(optional_env(env, "X_MISSING"), "");
}

TEST(ChannelSupport, ParallelForRunsEveryIndexOnce) {
  std::vector<std::atomic<int>> seen(100);
  parallel_for(seen.size(), 8, [&](std::size_t i) { ++seen[i]; });
  for (const auto& s : seen) EXPECT_EQ(s.load(), 1);
  std::vector<std::size_t> order;
  parallel_for(5, 1, [&](std::size_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
}

// An exception on a worker thread used to reach std::terminate; now the caller gets it, after every thread joined.
TEST(ChannelSupport, ParallelForHandsAWorkersExceptionToTheCaller) {
  std::atomic<int> finished{0};
  try {
    parallel_for(64, 4, [&](std::size_t i) {
      if (i == 5) throw std::out_of_range("item 5");
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      ++finished;
    });
    FAIL() << "expected the worker's exception";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "item 5");
  }
  const int at_return = finished.load();
  EXPECT_LT(at_return, 63) << "items kept starting after the failure";
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(finished.load(), at_return) << "a worker was still running after parallel_for returned";
}

}  // namespace
}  // namespace songda
