// Songda's HTTP API (cpp-httplib): health, readiness, metrics, deliveries,
// cases, in-app inboxes. Every /v1 call needs "Authorization: Bearer <key>";
// a court key sees only its court's cases (403 otherwise), the operator token
// sees all. Errors are JSON: {"error":{"code","message"}}.
//
// Routes are added by modules through the Router (proof, callbacks, console ...)
// before start(). Thread-safety: handlers run on the server's thread pool; all
// state they touch is thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "gateway/config/config.h"
#include "gateway/core/text.h"
#include "gateway/http/auth.h"
#include "gateway/store/store.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace songda {

struct HealthProbes {
  std::function<bool()> kafka;     // broker metadata answers
  std::function<bool()> redis;     // PING answers
  std::function<bool()> stopping;  // the process is draining after a signal: take it out of the load balancer
};

// Helpers shared by every module that adds routes.
void send_json(httplib::Response& res, int status, const nlohmann::json& body);
void send_error(httplib::Response& res, int status, const std::string& code, const std::string& message);

// The JSON a clerk sees for one delivery (addresses masked).
nlohmann::json delivery_view_json(const DeliveryView& v);

// A whole-number query parameter within [lo, hi]; `fallback` when it is absent; nullopt when it is anything else
// (the route answers 400: every paged route refuses a bad value rather than guess one).
std::optional<int> int_param(const httplib::Request& req, const char* name, int fallback, int lo, int hi);

// ?offset= (0 to max_offset, default 0) and ?limit= (1 to max_limit, default default_limit) of a paged route. When
// either is anything else the route's answer is already made: 400 invalid_request naming both ranges.
struct PageParams {
  int offset = 0;
  int limit = 0;
};
std::optional<PageParams> page_params(const httplib::Request& req, httplib::Response& res, int default_limit,
                                      int max_limit, int max_offset);

// The JSON a clerk sees for one case, in the courts `who` may see: {"case_number", "deliveries": [...], "count",
// "unreachable": [{event_id, recipient_id, name, role, court_id, at}]} (recipients no delivery could be planned
// for, to be served by other means). Errors: "forbidden" (the case is only another court's), the store's.
Result<nlohmann::json> case_view_json(DeliveryStore& store, const Principal& who, const std::string& case_number);

class ApiServer {
 public:
  ApiServer(const HttpConfig& config, DeliveryStore& store, ApiKeys keys, HealthProbes probes,
            std::function<std::string()> metrics_text);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // The underlying server, for modules that add routes before start().
  httplib::Server& raw();
  // Authenticates a request; on failure writes 401 and returns nullopt.
  std::optional<Principal> authenticate(const httplib::Request& req, httplib::Response& res) const;

  // Evidence recorded when an inbox message is first read (set by the ledger at start-up).
  void set_read_evidence(std::function<std::vector<EvidenceLeaf>(const Delivery&, std::int64_t now_ms)> fn) {
    read_evidence_ = std::move(fn);
  }

  // Server-Sent Events streams each hold an HTTP worker for as long as they are open. Every route that streams
  // takes a slot here first: at most http.threads / 2 are open at once (none with one thread), across routes, so the
  // rest of the API (provider callbacks, cancel, /readyz) keeps workers. False, with 503 too_many_streams and
  // Retry-After written, when none is free; a true is paired with one close_stream() when the stream ends.
  bool open_stream(httplib::Response& res);
  void close_stream() { streams_.fetch_sub(1); }
  [[nodiscard]] int open_streams() const { return streams_.load(); }

  // Binds (port 0 = any free port) and serves on a background thread. Throws StartupError if it cannot bind.
  void start();
  [[nodiscard]] int port() const { return port_; }
  [[nodiscard]] std::string host() const { return host_; }  // as bound: an IPv6 address without brackets
  // host:port for a URL ("[::1]:8080" for IPv6).
  [[nodiscard]] std::string authority() const { return HostPort{host_, port_}.authority(); }
  void stop();

 private:
  void add_routes();
  const HttpConfig& config_;
  DeliveryStore& store_;
  ApiKeys keys_;
  HealthProbes probes_;
  std::function<std::string()> metrics_text_;
  std::function<std::vector<EvidenceLeaf>(const Delivery&, std::int64_t)> read_evidence_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string host_;
  int port_ = 0;
  std::atomic<int> streams_{0};
};

}  // namespace songda
