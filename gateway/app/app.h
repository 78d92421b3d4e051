// The wiring of one Songda process: every component is built here, in one
// place, from the immutable Config, and started and stopped in order.
//
//   start(): HTTP API, dispatch threads (one per channel), ingest thread.
//   stop():  ingest stops consuming and commits what it recorded; dispatch
//            finishes its current batch (anything unfinished is resumed by
//            its lease); HTTP stops. Safe to call twice.
//
// Thread-safety: start()/stop() from one thread; accessors are for tests and
// the demo.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "channels/channel.h"
#include "gateway/config/config.h"
#include "gateway/dispatch/dispatcher.h"
#include "gateway/dispatch/timers.h"
#include "gateway/http/server.h"
#include "gateway/ingest/ingest.h"
#include "gateway/ingest/kafka.h"
#include "gateway/ingest/validator.h"
#include "gateway/receipts/receipts.h"
#include "gateway/store/redis.h"
#include "gateway/store/store.h"

namespace songda {

class HttpClient;
namespace ledger {
class Checkpointer;
class ProofService;
}  // namespace ledger
namespace sms {
class SmsChannel;
}
namespace broadcast {
class BroadcastService;
}
namespace web {
class WebService;
}

struct AppOptions {
  std::string schema_path;  // default: the source tree's schema
  bool consume = true;      // false: no Kafka consumer (HTTP and dispatch only)
  std::string
      link_secret;  // default: SONGDA_LINK_SECRET (required; a per-process key only with ephemeral_evidence_key)
  // Demo and in-process tests only: without SONGDA_EVIDENCE_KEY_FILE / SONGDA_EVIDENCE_SALT, sign the evidence log
  // with a key made for this process (its public key is served at /v1/evidence/public-key). `songda run` never does.
  bool ephemeral_evidence_key = false;
  // Documents served to parties by SHA-256 (gateway/web/documents.h); default: SONGDA_DOCUMENT_DIR.
  std::string document_dir;
};

class App {
 public:
  // Builds every component; throws StartupError with a hint when something is wrong.
  App(Config config, AppOptions options);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  void start();
  // Opens the circuit of SMS providers whose receipts stopped arriving (called by a background loop).
  void check_receipt_silence(std::int64_t now_ms);
  // Begins the drain: the loops finish what they hold and end, /readyz answers 503 "stopping"; the HTTP API keeps
  // answering. stop() begins it too, then waits for the loops and closes everything.
  void begin_stop() { stop_.store(true); }
  void stop();

  [[nodiscard]] const Config& config() const { return config_; }
  DeliveryStore& store() { return *store_; }
  ApiServer& http() { return *http_; }
  IngestCounters& ingest_counters() { return ingest_counters_; }
  ReceiptCounters& receipt_counters() { return receipt_counters_; }
  DispatchCounters& dispatch_counters() { return dispatch_counters_; }
  // True when this process dispatches the channel (deliveries on other channels wait in their queue).
  [[nodiscard]] bool has_channel(const std::string& name) const;
  [[nodiscard]] std::string link_for(const std::string& delivery_id) const;
  // Lawyer-group broadcasts (gateway/broadcast): groups, fan-out, progress.
  broadcast::BroadcastService& broadcasts() { return *broadcasts_; }
  // The console, party pages and inbox page (gateway/web).
  web::WebService& web() { return *web_; }
  std::string metrics_text();
  [[nodiscard]] const std::string& evidence_public_key_pem() const { return evidence_public_pem_; }

 private:
  Config config_;
  AppOptions options_;
  std::atomic<bool> stop_{false};
  IngestCounters ingest_counters_;
  DispatchCounters dispatch_counters_;
  std::unique_ptr<RedisPool> redis_;
  std::unique_ptr<DeliveryStore> store_;
  std::unique_ptr<EventValidator> validator_;
  std::unique_ptr<KafkaProducer> producer_;
  std::unique_ptr<KafkaDeadLetters> dlq_;
  std::unique_ptr<KafkaConsumer> consumer_;
  std::unique_ptr<IngestPipeline> ingest_;
  std::vector<std::unique_ptr<Channel>> channels_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<HttpClient> http_client_;
  sms::SmsChannel* sms_ = nullptr;  // owned by channels_
  ReceiptCounters receipt_counters_;
  std::unique_ptr<ReceiptProcessor> receipts_;
  std::unique_ptr<FallbackTimers> timers_;
  std::unique_ptr<ledger::Checkpointer> checkpointer_;
  std::unique_ptr<ledger::ProofService> proofs_;
  std::string evidence_public_pem_;
  std::unique_ptr<web::WebService> web_;                     // before http_: outlives the server whose routes use it
  std::unique_ptr<broadcast::BroadcastService> broadcasts_;  // before http_: outlives the server using its routes
  std::unique_ptr<ApiServer> http_;
  std::vector<std::thread> threads_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace songda
