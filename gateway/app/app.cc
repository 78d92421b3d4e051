#include "gateway/app/app.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <thread>

#include "channels/email/email_channel.h"
#include "channels/http/http_client.h"
#include "channels/inapp/inapp_channel.h"
#include "channels/sms/sms_channel.h"
#include "channels/wechat/wechat_channel.h"
#include "gateway/app/metrics.h"
#include "gateway/broadcast/service.h"
#include "gateway/core/contain.h"
#include "gateway/core/crypto.h"
#include "gateway/core/link.h"
#include "gateway/core/text.h"
#include "gateway/dispatch/quiet_hours.h"
#include "gateway/evidence/checkpoint.h"
#include "gateway/ledger/evidence_makers.h"
#include "gateway/ledger/proof_service.h"
#include "gateway/ledger/redis_log.h"
#include "gateway/web/web_service.h"

namespace songda {
namespace {
constexpr std::int64_t kLinkLifetimeS = 90LL * 24 * 3600;  // a served party may open the document for 90 days
}

App::App(Config config, AppOptions options) : config_(std::move(config)), options_(std::move(options)) {
  if (options_.schema_path.empty()) options_.schema_path = EventValidator::default_schema_path();
  if (options_.link_secret.empty()) {
    const char* s = std::getenv("SONGDA_LINK_SECRET");
    if (options_.ephemeral_evidence_key && (s == nullptr || std::string_view(s).size() < 16)) {
      // The demo and in-process tests: links live as long as this process, like its evidence key.
      spdlog::warn("SONGDA_LINK_SECRET is not set: party links are signed with a key made for this process");
      options_.link_secret = random_bytes(32);
    } else {
      options_.link_secret = link_secret_from_environment(std::getenv);
    }
  }
  // Every SMS, WeChat message and e-mail carries a link to the party page; it must be an address parties can
  // open. Falling back to the listen address (http://0.0.0.0:8080/r/…, http://127.0.0.1:8080/r/…) would send
  // dead links, and the texts are rendered at ingest, so fixing the setting later does not repair them.
  std::string& base = config_.http.public_base_url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  if (!base.empty() && !base.starts_with("https://") && !base.starts_with("http://")) {
    throw StartupError("http.public_base_url / SONGDA_PUBLIC_BASE_URL must be an http:// or https:// URL, got \"" +
                       base + "\"");
  }
  if (base.empty() && !options_.ephemeral_evidence_key) {
    throw StartupError(
        "http.public_base_url is not set: the links sent to parties would point at the listen address (" +
        config_.http.listen +
        "), which their phones cannot open. Hint: set http.public_base_url, or SONGDA_PUBLIC_BASE_URL, to the "
        "address parties reach this gateway at (e.g. https://songda.court.example)");
  }
  auto ep = parse_redis_url(config_.redis.url);
  if (!ep.ok()) throw StartupError(ep.error().message);
  redis_ = std::make_unique<RedisPool>(ep.value(), config_.redis.pool_size, config_.redis.timeout_ms);
  store_ = std::make_unique<DeliveryStore>(*redis_);
  validator_ = std::make_unique<EventValidator>(options_.schema_path, config_.kafka.max_event_bytes);
  producer_ = std::make_unique<KafkaProducer>(config_.kafka);
  dlq_ = std::make_unique<KafkaDeadLetters>(*producer_);

  PlanOptions plan_options;
  plan_options.link_for = [this](const std::string& id) { return link_for(id); };
  ingest_ = std::make_unique<IngestPipeline>(config_, *validator_, *store_, *dlq_, plan_options, ingest_counters_);

  // Channels, registered here and nowhere else. A configured channel whose secrets are missing stops start-up.
  channels_.push_back(std::make_unique<InAppChannel>(*store_));
  http_client_ = std::make_unique<CurlHttpClient>();
  RetryPolicy retry;
  retry.max_attempts = config_.dispatch.max_attempts;
  retry.base_ms = config_.dispatch.retry_base_ms;
  retry.max_ms = config_.dispatch.retry_max_ms;
  dispatcher_ = std::make_unique<Dispatcher>(*store_, config_.dispatch, retry, dispatch_counters_);
  std::map<std::string, std::string> receipt_namespace;  // provider name -> how its receipts name deliveries
  std::string wechat_token;
  if (!config_.channels.sms.providers.empty()) {
    sms::SmsChannelOptions sms_options;
    sms_options.take_tokens = [this](const std::string& provider, double rate, std::size_t wanted) -> std::size_t {
      if (rate <= 0) return wanted;
      auto n = store_->take_tokens("sms:" + provider, rate, static_cast<long long>(wanted));
      if (!n.ok()) return 0;  // Redis unreachable: nothing else can be recorded either; retried later
      return static_cast<std::size_t>(n.value());
    };
    auto sms = std::make_unique<sms::SmsChannel>(config_.channels.sms, *http_client_, std::getenv, sms_options);
    sms_ = sms.get();
    channels_.push_back(std::move(sms));
    double rate = 0;
    for (const auto& p : config_.channels.sms.providers) {
      receipt_namespace[p.name] = p.kind;
      rate += p.rate_per_sec;
    }
    dispatcher_->set_channel_rate(kChannelSms, rate);
  }
  if (config_.channels.wechat.enabled) {
    auto wx = std::make_unique<wechat::WechatChannel>(config_.channels.wechat, *http_client_, *redis_, std::getenv);
    wechat_token = wx->callback_token();
    channels_.push_back(std::move(wx));
    receipt_namespace["wechat-oa"] = "wechat";
    receipt_namespace["wechat-mp"] = "wechat";
    dispatcher_->set_channel_rate(kChannelWechat, config_.channels.wechat.rate_per_sec);
  }
  if (config_.channels.email.enabled) {
    channels_.push_back(std::make_unique<email::EmailChannel>(config_.channels.email, std::getenv));
    dispatcher_->set_channel_rate(kChannelEmail, config_.channels.email.rate_per_sec);
  }
  dispatcher_->set_quiet_hours(config_.quiet_hours);
  ingest_->set_on_queued([this](const std::string& channel) { dispatcher_->wake(channel); });
  dispatcher_->set_receipt_key([receipt_namespace](const SendOutcome& o) -> std::string {
    const auto it = receipt_namespace.find(o.provider);
    if (it == receipt_namespace.end() || o.provider_message_id.empty()) return "";
    return it->second + ":" + o.provider_message_id;
  });
  ingest_->set_due_policy([this](const Delivery& d, std::int64_t now) {
    return quiet_hours_release(config_.quiet_hours, d.channel, d.urgent, now);
  });
  receipts_ = std::make_unique<ReceiptProcessor>(*store_, receipt_counters_);
  timers_ = std::make_unique<FallbackTimers>(*store_);

  // The evidence log: every lifecycle step appends a record in the same Redis call that changes the state;
  // one instance at a time (a Redis lease) signs checkpoints and publishes them to Kafka as witness.
  const bool have_key = std::getenv("SONGDA_EVIDENCE_KEY_FILE") != nullptr;
  const bool ephemeral = options_.ephemeral_evidence_key && !have_key;
  ledger::EvidenceContext ctx;
  if (ephemeral) {
    const char* salt = std::getenv("SONGDA_EVIDENCE_SALT");
    ctx.salt = salt != nullptr ? salt : to_hex(random_bytes(16));
  } else {
    ctx = ledger::evidence_context_from_environment(std::getenv);
  }
  ledger::SignerSetup signer = [&] {
    if (!ephemeral) return ledger::signer_from_environment(std::getenv);
    auto pair = evidence::generate_key_pair();
    if (!pair.ok()) throw StartupError("cannot make an evidence key: " + pair.error().message);
    auto key = evidence::load_private_key_pem(pair->private_pem);
    if (!key.ok()) throw StartupError("cannot load the evidence key: " + key.error().message);
    ledger::CheckpointerConfig cc;
    cc.origin = "songda-demo";
    cc.interval_ms = 500;
    spdlog::warn("evidence log signed with a key made for this process (demo/test only)");
    return ledger::SignerSetup{std::move(key.value()), cc};
  }();
  ledger::install_evidence(*ingest_, *dispatcher_, *receipts_, *timers_, *store_, ctx);
  auto pem = signer.key.public_key().public_pem();
  if (!pem.ok()) throw StartupError("cannot export the evidence public key: " + pem.error().message);
  evidence_public_pem_ = pem.value();
  const evidence::SigningKey bundle_key = signer.key;  // bundles are attested with the log's key
  checkpointer_ = std::make_unique<ledger::Checkpointer>(
      *redis_, std::move(signer.key), signer.config,
      ledger::kafka_checkpoint_publisher(*producer_, config_.kafka.checkpoint_topic, signer.config.origin));
  // Before signing as a new signer: what the witnesses last saw, so a Redis restored from an older backup cannot
  // make it publish a second history.
  checkpointer_->set_witness(
      ledger::kafka_checkpoint_witness(config_.kafka, config_.kafka.checkpoint_topic, signer.config.origin));

  HealthProbes probes;
  probes.redis = [this] {
    auto r = redis_->command({"PING"});
    return r.ok() && r->str == "PONG";
  };
  probes.kafka = [this] { return producer_->reachable(1000); };
  probes.stopping = [this] { return stop_.load(); };  // from begin_stop() on; the API answers until the end
  http_ = std::make_unique<ApiServer>(config_.http, *store_, ApiKeys::from_environment(std::getenv), probes,
                                      [this] { return metrics_text(); });
  CallbackSecrets secrets;
  if (const char* key = std::getenv("SONGDA_CALLBACK_KEY"); key != nullptr) secrets.sms_key = key;
  if (!config_.channels.sms.providers.empty() && secrets.sms_key.size() < 16) {
    throw StartupError(
        "SMS receipts need SONGDA_CALLBACK_KEY (16+ characters): it is the ?key= secret of the "
        "receipt callback URLs registered with the providers");
  }
  secrets.wechat_token = wechat_token;
  register_callbacks(*http_, *receipts_, receipt_counters_, secrets);
  http_->set_read_evidence([](const Delivery& d, std::int64_t now) { return ledger::read_evidence(d, now); });
  proofs_ = std::make_unique<ledger::ProofService>(*redis_, *store_, bundle_key, ledger::ProofOptions{3});
  ledger::register_proof_routes(*http_, *proofs_);
  // Lawyer-group broadcasts: groups, the leased fan-out worker (same evidence and quiet hours as ingest), routes,
  // and notice.broadcast events that name a group.
  broadcasts_ =
      std::make_unique<broadcast::BroadcastService>(*redis_, *store_, config_, plan_options, broadcast::FanoutOptions{},
                                                    [this](const std::string& ch) { return has_channel(ch); });
  broadcasts_->fanout().set_evidence(ctx);
  broadcasts_->fanout().set_due_policy([this](const Delivery& d, std::int64_t now) {
    return quiet_hours_release(config_.quiet_hours, d.channel, d.urgent, now);
  });
  broadcasts_->register_routes(*http_);
  ingest_->set_broadcast_starter(
      [this](const CaseEvent& e, std::int64_t now) { return broadcasts_->start_from_event(e, now); });
  web::WebOptions web_options;
  web_options.link_secret = options_.link_secret;
  web_options.document_dir = options_.document_dir;
  if (const char* dir = std::getenv("SONGDA_DOCUMENT_DIR"); web_options.document_dir.empty() && dir != nullptr) {
    web_options.document_dir = dir;
  }
  web_ = std::make_unique<web::WebService>(*http_, *store_, proofs_.get(), web_options);
  web_->register_routes();
}

App::~App() { stop(); }  // members below need the complete ledger types, hence out of line

bool App::has_channel(const std::string& name) const {
  return std::any_of(channels_.begin(), channels_.end(), [&](const auto& c) { return c->name() == name; });
}

std::string App::link_for(const std::string& delivery_id) const {
  std::string base = config_.http.public_base_url;
  if (base.empty()) base = "http://" + config_.http.listen;  // demo and in-process tests only (see App::App)
  return base + "/r/" + sign_link_token(options_.link_secret, delivery_id, now_unix_ms() / 1000 + kLinkLifetimeS);
}

std::string App::metrics_text() {
  auto counter = [](std::string name, std::string help, const std::atomic<std::uint64_t>& v) {
    return MetricSource{std::move(name), std::move(help), true, [&v] { return static_cast<double>(v.load()); }};
  };
  std::vector<MetricSource> sources = {
      counter("songda_ingest_messages_total", "Kafka messages handled", ingest_counters_.messages),
      counter("songda_ingest_events_accepted_total", "New events recorded", ingest_counters_.accepted),
      counter("songda_ingest_events_duplicate_total", "Redelivered events recognised as duplicates",
              ingest_counters_.duplicates),
      counter("songda_ingest_events_rejected_total", "Messages sent to the DLQ", ingest_counters_.rejected),
      counter("songda_ingest_batches_total", "Ingest batches (one Redis round trip each)", ingest_counters_.batches),
      counter("songda_deliveries_planned_total", "Deliveries recorded", ingest_counters_.deliveries),
      counter("songda_dispatch_sent_total", "Deliveries accepted by a provider", dispatch_counters_.sent),
      counter("songda_dispatch_delivered_total", "Deliveries that reached the recipient's system",
              dispatch_counters_.delivered),
      counter("songda_dispatch_retries_total", "Attempts scheduled again", dispatch_counters_.retried),
      counter("songda_dispatch_failed_total", "Deliveries that failed for good", dispatch_counters_.failed),
      counter("songda_dispatch_in_doubt_asked_total",
              "Attempts cut off by a crash whose fate was asked of the provider before sending again",
              dispatch_counters_.in_doubt_asked),
      counter("songda_dispatch_in_doubt_found_total", "Attempts cut off by a crash that the provider had (not resent)",
              dispatch_counters_.in_doubt_found),
      counter("songda_receipts_received_total", "Provider receipts received", receipt_counters_.received),
      counter("songda_receipts_applied_total", "Receipts matched to a delivery", receipt_counters_.applied),
      counter("songda_receipts_unknown_total", "Receipts naming no known delivery when they came (parked)",
              receipt_counters_.unknown),
      counter("songda_receipts_applied_later_total", "Parked receipts applied once their delivery was known",
              receipt_counters_.applied_later),
      counter("songda_receipts_given_up_total",
              "Parked receipts that still named no delivery after 7 days (moved to sd:rcpt:unmatched)",
              receipt_counters_.given_up),
      MetricSource{"songda_receipts_parked", "Receipts parked now, waiting for their delivery to be known", false,
                   [this] {
                     auto n = store_->parked_receipt_count();
                     return n.ok() ? static_cast<double>(n.value()) : -1.0;
                   }},
      counter("songda_callbacks_forged_total",
              "Callbacks refused for a missing or wrong key or signature, or a signature reused with another body",
              receipt_counters_.forged),
      counter("songda_receipts_refused_total", "Elements of authenticated receipt pushes that did not parse (logged)",
              receipt_counters_.refused),
      MetricSource{"songda_fallbacks_released_total",
                   "Fallback deliveries sent because the first channel did not arrive", true,
                   [this] { return static_cast<double>(timers_->released()); }},
      MetricSource{"songda_fallbacks_cancelled_total", "Fallback deliveries not needed", true,
                   [this] { return static_cast<double>(timers_->cancelled()); }},
      MetricSource{"songda_internal_errors_total",
                   "Unexpected exceptions contained (a bug: the log has each one; the loop or message went on)", true,
                   [] { return static_cast<double>(internal_errors()); }},
      MetricSource{"songda_redis_round_trips_total", "Redis round trips made by this process", true,
                   [] { return static_cast<double>(redis_round_trips()); }},
      counter("songda_broadcast_pages_total", "Broadcast fan-out pages recorded by this process",
              broadcasts_->fanout().stats().pages),
      counter("songda_broadcast_pages_resumed_total", "Broadcast pages found already recorded (resumed after a crash)",
              broadcasts_->fanout().stats().pages_resumed),
      counter("songda_broadcast_deliveries_total", "Deliveries planned for broadcast members",
              broadcasts_->fanout().stats().deliveries),
      counter("songda_broadcast_cancelled_total", "Broadcast deliveries cancelled before they were sent",
              broadcasts_->fanout().stats().cancelled),
      MetricSource{"songda_evidence_checkpoint_tree_size",
                   "Leaves in the newest evidence checkpoint this instance knows (signed, or witnessed)", false,
                   [this] { return static_cast<double>(checkpointer_->stats().last_tree_size); }},
      MetricSource{"songda_evidence_signer_errors_total",
                   "Signing rounds that failed (Redis, a log that does not extend the last checkpoint, witnesses)",
                   true, [this] { return static_cast<double>(checkpointer_->stats().errors); }},
      MetricSource{"songda_evidence_witness_conflicts_total",
                   "Signing leases refused because Redis's evidence log is not the history the witnesses saw "
                   "(critical: restored from another backup?)",
                   true, [this] { return static_cast<double>(checkpointer_->stats().witness_conflicts); }},
  };
  for (const auto& ch : channels_) {
    const std::string name(ch->name());
    sources.push_back(MetricSource{"songda_queue_" + name + "_length", "Deliveries waiting in the " + name + " queue",
                                   false, [this, name] {
                                     auto n = store_->queue_length(name);
                                     return n.ok() ? static_cast<double>(n.value()) : -1.0;
                                   }});
  }
  std::vector<LabelledMetricSource> labelled;
  if (sms_ != nullptr) {
    using Stats = sms::SmsChannel::ProviderStats;
    auto per_provider = [this, &labelled](std::string name, std::string help, bool is_counter,
                                          std::function<double(const Stats&)> value) {
      labelled.push_back(LabelledMetricSource{std::move(name), std::move(help), is_counter, "provider",
                                              [this, value = std::move(value)] {
                                                std::vector<LabelledValue> out;
                                                for (const auto& p : sms_->stats())
                                                  out.push_back({p.provider, value(p)});
                                                return out;
                                              }});
    };
    per_provider("songda_sms_provider_requests_total", "Requests sent to the SMS provider", true,
                 [](const Stats& p) { return static_cast<double>(p.requests); });
    per_provider("songda_sms_provider_faults_total",
                 "Requests that counted against the provider's circuit (errors, timeouts)", true,
                 [](const Stats& p) { return static_cast<double>(p.faults); });
    per_provider("songda_sms_provider_failovers_total", "Deliveries handed on from this provider to the next", true,
                 [](const Stats& p) { return static_cast<double>(p.failovers); });
    per_provider("songda_sms_provider_circuit_open",
                 "1 while the provider's circuit is open or half-open (not used, or on trial)", false,
                 [](const Stats& p) { return p.circuit == "closed" ? 0.0 : 1.0; });
  }
  return render_metrics(sources, labelled);
}

void App::start() {
  if (started_) return;
  started_ = true;
  http_->start();
  for (auto& ch : channels_) {
    Channel* c = ch.get();
    threads_.emplace_back([this, c] { dispatcher_->run(*c, stop_); });
  }
  threads_.emplace_back([this] { timers_->run(stop_, 200); });
  threads_.emplace_back([this] { broadcasts_->fanout().run(stop_); });
  threads_.emplace_back([this] {
    while (!stop_.load()) {
      if (auto n = contain("retry", [&] { return receipts_->retry_parked(now_unix_ms()); }); !n.ok()) {
        spdlog::warn("receipts: parked receipts not retried: {} ({})", n.error().message, n.error().code);
      }
      for (int i = 0; i < 10 && !stop_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  checkpointer_->start();
  if (sms_ != nullptr) {
    threads_.emplace_back([this] {
      while (!stop_.load()) {
        auto checked = contain("receipt silence check", [&] {
          check_receipt_silence(now_unix_ms());
          return ok_status();
        });
        if (!checked.ok()) spdlog::error("{} ({})", checked.error().message, checked.error().code);
        for (int i = 0; i < 50 && !stop_.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    });
  }
  if (options_.consume) {
    consumer_ = std::make_unique<KafkaConsumer>(config_.kafka);
    threads_.emplace_back([this] { run_ingest_loop(*consumer_, *ingest_, config_.kafka, stop_); });
  }
  const auto ep = parse_redis_url(config_.redis.url);
  spdlog::info("songda: consuming {} from {}; redis {}:{}; http {}:{}", config_.kafka.topic, config_.kafka.brokers,
               ep.ok() ? ep->host : "?", ep.ok() ? ep->port : 0, http_->host(), http_->port());
}

void App::check_receipt_silence(std::int64_t now_ms) {
  if (sms_ == nullptr) return;
  for (const auto& p : config_.channels.sms.providers) {
    auto n = store_->sent_without_receipt(p.name, now_ms - static_cast<std::int64_t>(p.receipt_timeout_s) * 1000);
    // A few lost receipts happen; several overdue at once means the provider's reports (or sends) stall.
    if (n.ok() && n.value() >= 5) {
      spdlog::warn("sms provider {}: {} deliveries without a receipt for {} s; failing over", p.name, n.value(),
                   p.receipt_timeout_s);
      sms_->report_receipt_silence(p.name);
    }
  }
}

void App::stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  begin_stop();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  consumer_.reset();
  checkpointer_->stop();
  broadcasts_->stop();
  web_->stop();
  http_->stop();
  spdlog::info("songda: stopped; {} messages, {} events accepted, {} duplicates, {} refused",
               ingest_counters_.messages.load(), ingest_counters_.accepted.load(), ingest_counters_.duplicates.load(),
               ingest_counters_.rejected.load());
}

}  // namespace songda
