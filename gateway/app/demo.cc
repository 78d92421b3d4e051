#include "gateway/app/demo.h"

#include <httplib.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "gateway/app/app.h"
#include "gateway/broadcast/demo_step.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/ledger/verify_cli.h"
#include "gateway/web/web_service.h"
#include "simulator/simulator.h"

namespace songda {
namespace {

// The in-process mock cluster and the handle that owns it.
class MockKafka {
 public:
  MockKafka() {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (rk_ == nullptr) throw StartupError(std::string("mock Kafka: ") + err);
    cluster_ = rd_kafka_mock_cluster_new(rk_, 1);
    if (cluster_ == nullptr) throw StartupError("mock Kafka: cannot create the cluster");
  }
  ~MockKafka() {
    rd_kafka_mock_cluster_destroy(cluster_);
    rd_kafka_destroy(rk_);
  }
  MockKafka(const MockKafka&) = delete;
  MockKafka& operator=(const MockKafka&) = delete;
  void create_topic(const std::string& name, int partitions) {
    rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1);
  }
  [[nodiscard]] std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster_); }

 private:
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::atomic<bool> g_interrupted{false};
void on_signal(int /*sig*/) { g_interrupted.store(true); }

std::string pad(const std::string& s, std::size_t width) {
  const std::size_t len = utf8_length(s);
  // CJK characters take two columns in a terminal.
  std::size_t cols = 0;
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : 4;
    cols += n >= 3 ? 2 : 1;
    i += n;
  }
  (void)len;
  return s + std::string(cols < width ? width - cols : 1, ' ');
}

}  // namespace

int run_demo(const DemoOptions& opts) {
  using namespace sim;  // NOLINT(google-build-using-namespace): the simulator's names read better bare here
  const std::string config_path = opts.config_path.empty() ? resource_path("config/gateway.yaml") : opts.config_path;
  const std::string examples_dir = opts.examples_dir.empty() ? resource_path("schemas/examples") : opts.examples_dir;

  auto loaded = load_config_file(config_path);
  if (!loaded.config) {
    for (const auto& i : loaded.issues) std::cerr << i.to_string() << "\n";
    return 2;
  }
  Config config = *loaded.config;
  apply_env_overrides(config, std::getenv);
  MockKafka kafka;
  kafka.create_topic(config.kafka.topic, 4);
  kafka.create_topic(config.kafka.dlq_topic, 1);
  kafka.create_topic(config.kafka.checkpoint_topic, 1);
  config.kafka.brokers = kafka.bootstraps();
  config.kafka.group_id = "songda-demo";
  if (std::getenv("SONGDA_HTTP_LISTEN") == nullptr && !opts.serve) config.http.listen = "127.0.0.1:0";

  const char* admin_env = std::getenv("SONGDA_ADMIN_TOKEN");
  std::string admin = admin_env != nullptr ? admin_env : "";
  const bool admin_from_env = !admin.empty();  // then never printed: it may be a real deployment's token
  if (admin.empty()) {
    admin = "demo-" + to_hex(random_bytes(12));
    setenv("SONGDA_ADMIN_TOKEN", admin.c_str(), 1);
  }

  // A court-scoped API key for the clerk console (the operator token sees every court).
  std::string court_key;
  const std::string console_court = "HN-SQ-ZY";
  if (const char* keys = std::getenv("SONGDA_API_KEYS"); keys == nullptr || *keys == '\0') {
    court_key = "demo-court-" + to_hex(random_bytes(12));
    setenv("SONGDA_API_KEYS", (console_court + "=" + court_key).c_str(), 1);
  }

  // The documents parties download from their links, stored by SHA-256 (gateway/web/documents.h). The examples'
  // hashes are those of the sample bytes below, so the demo can serve them and prove what it served.
  std::string document_dir;
  if (const char* dir = std::getenv("SONGDA_DOCUMENT_DIR"); dir != nullptr && *dir != '\0') {
    document_dir = dir;
  } else {
    const auto dir_path = std::filesystem::temp_directory_path() / ("songda-demo-documents-" + to_hex(random_bytes(4)));
    std::filesystem::create_directories(dir_path);
    for (const std::string sample : {"test", "foo"}) std::ofstream(dir_path / sha256_hex(sample)) << sample;
    document_dir = dir_path.string();
  }

  // SMS and WeChat providers are played by our simulator (their documented wire formats, signatures checked,
  // receipts pushed back to our callbacks); email goes to a real SMTP server when SONGDA_DEMO_SMTP_URL names one.
  SimulatorOptions sim_options;
  sim_options.aliyun.receipt.delay_ms = 300;
  sim_options.tencent.receipt.delay_ms = 300;
  sim_options.wechat.receipt.delay_ms = 300;
  Simulator sim(sim_options);
  sim.start();
  export_default_credentials();
  for (auto& p : config.channels.sms.providers) {
    p.endpoint = sim.base_url();
    for (const auto& t : config.templates) {
      if (p.templates.find(t.first) == p.templates.end())
        p.templates[t.first] = p.kind == "aliyun" ? "SMS_100001" : "100001";
    }
  }
  config.channels.wechat.endpoint = sim.base_url();
  const char* smtp = std::getenv("SONGDA_DEMO_SMTP_URL");
  if (smtp != nullptr && *smtp != '\0') {
    config.channels.email.smtp_url = smtp;
    config.channels.email.starttls = "none";  // the demo's SMTP server is on loopback
    unsetenv("SONGDA_SMTP_USER");
  } else {
    config.channels.email.enabled = false;
  }
  config.quiet_hours.enabled = false;  // the demo runs at any hour
  for (auto& r : config.routes) {
    for (auto& f : r.fallback) f.after_s = 3;  // minutes in production; seconds here, to watch it happen
  }

  AppOptions app_options;
  app_options.ephemeral_evidence_key = true;
  app_options.document_dir = document_dir;
  App app(config, app_options);
  app.start();
  sim.set_callback_base("http://" + app.http().authority());

  // What the case systems publish: the examples, one redelivery, one malformed, one conflicting reuse.
  std::vector<OutgoingMessage> messages;
  std::set<std::string> cases;
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(examples_dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  nlohmann::json first;
  for (const auto& f : files) {
    const std::string body = read_file(f);
    auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded()) continue;
    if (first.is_null()) first = j;
    cases.insert(j["case"]["number"].get<std::string>());
    messages.push_back({config.kafka.topic, j["case"]["number"].get<std::string>(), body, {{"source", "demo"}}});
  }
  if (messages.empty()) {
    std::cerr << "no examples in " << examples_dir << "\n";
    return 2;
  }
  messages.push_back(messages.front());  // a redelivery: must not create deliveries twice
  messages.push_back({config.kafka.topic, "broken", "{\"schema\": \"songda.case-event/v1\", \"event_id\": ", {}});
  nlohmann::json conflicting = first;
  conflicting["case"]["title"] = "（被篡改的标题）";
  messages.push_back({config.kafka.topic, first["case"]["number"].get<std::string>(), conflicting.dump(), {}});
  const std::size_t expected_dlq = 2;

  KafkaProducer producer(config.kafka);
  // Publish the conflicting one after the original is recorded, so "first version wins" is what the demo shows.
  std::vector<OutgoingMessage> head(messages.begin(), messages.end() - 1);
  if (auto s = producer.produce_all(head); !s.ok()) {
    std::cerr << "cannot publish: " << s.error().message << "\n";
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(opts.timeout_s);
  while (app.ingest_counters().accepted.load() < files.size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (auto s = producer.produce_all({messages.back()}); !s.ok()) return 1;

  // Wait until every message is handled and every delivery reached the recipient's system.
  auto all_views = [&]() {
    std::vector<DeliveryView> out;
    for (const auto& c : cases) {
      auto courts = app.store().courts_of_case(c);
      if (!courts.ok()) continue;
      for (const auto& court : courts.value()) {
        auto list = app.store().case_deliveries(court, c);
        if (list.ok()) out.insert(out.end(), list->begin(), list->end());
      }
    }
    return out;
  };
  bool settled = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (app.ingest_counters().messages.load() >= messages.size()) {
      auto views = all_views();
      settled = !views.empty() && std::all_of(views.begin(), views.end(), [&](const DeliveryView& v) {
        return !app.has_channel(v.delivery.channel) || v.status == "DELIVERED" || v.status == "READ" ||
               v.status == "FAILED" || v.status == "CANCELLED";
      });
      if (settled) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  // A party opens an in-app message: through the HTTP API, as the app would.
  std::string opened;
  {
    auto views = all_views();
    for (const auto& v : views) {
      if (v.delivery.channel == kChannelInApp && v.status == "DELIVERED") {
        httplib::Client cli(app.http().host(), app.http().port());
        auto res = cli.Post("/v1/inbox/" + v.delivery.address + "/messages/" + v.delivery.id + "/read",
                            httplib::Headers{{"Authorization", "Bearer " + admin}}, "", "application/json");
        if (res && res->status == 200) opened = v.delivery.id;
        break;
      }
    }
  }

  // The DLQ, as an operator would read it.
  KafkaConfig dlq_reader = config.kafka;
  dlq_reader.topic = config.kafka.dlq_topic;
  dlq_reader.group_id = "songda-demo-dlq-reader";
  std::vector<KafkaMessage> dlq;
  {
    KafkaConsumer reader(dlq_reader);
    const auto dlq_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (dlq.size() < expected_dlq && std::chrono::steady_clock::now() < dlq_deadline) {
      auto batch = reader.poll_batch(10, 200);
      dlq.insert(dlq.end(), batch.begin(), batch.end());
    }
    reader.close();
  }

  const auto views = all_views();
  std::cout << "\nSongda demo — " << files.size() << " case events published to " << config.kafka.topic
            << " (mock Kafka " << config.kafka.brokers << "), plus 1 redelivery, 1 malformed, 1 conflicting\n\n";
  std::cout << pad("DELIVERY", 38) << pad("CASE", 24) << pad("RECIPIENT", 16) << pad("CHANNEL", 8) << pad("ADDRESS", 18)
            << pad("STATUS", 11) << "TIMELINE\n";
  for (const auto& v : views) {
    std::string timeline;
    for (const auto& h : v.history) {
      if (!timeline.empty()) timeline += " → ";
      timeline += h.status + " " + rfc3339_utc(h.at_ms).substr(11, 12);
    }
    std::cout << pad(v.delivery.id, 38) << pad(v.delivery.case_number, 24)
              << pad(v.delivery.recipient_name + "/" + v.delivery.recipient_role, 16) << pad(v.delivery.channel, 8)
              << pad(mask_address(v.delivery.channel, v.delivery.address), 18) << pad(v.status, 11) << timeline << "\n";
  }
  std::cout << "\nDead-letter queue " << config.kafka.dlq_topic << ":\n";
  for (const auto& m : dlq) {
    std::string code;
    std::string why;
    std::string off;
    for (const auto& [k, val] : m.headers) {
      if (k == "songda.error.code") code = val;
      if (k == "songda.error.message") why = val;
      if (k == "songda.source.offset") off = val;
    }
    std::cout << "  offset " << off << "  " << pad(code, 14) << why << "\n";
  }
  const auto& c = app.ingest_counters();
  std::cout << "\nIngest: " << c.messages.load() << " messages, " << c.accepted.load() << " events accepted, "
            << c.duplicates.load() << " duplicate(s) ignored, " << c.rejected.load() << " refused to the DLQ; "
            << views.size() << " deliveries\n";
  if (!opened.empty()) std::cout << "Opened in-app message " << opened << " via POST /v1/inbox/…/read → READ\n";
  const auto stats = sim.stats();
  for (const char* p : {"aliyun", "tencent", "wechat"}) {
    const auto& s = stats[p];
    std::cout << "Provider simulator " << p << ": " << s.value("requests", 0) << " request(s), "
              << s.value("accepted", 0) << " accepted, " << s.value("duplicate_count", 0) << " duplicate(s), "
              << s.value("receipts_acked", 0) << " receipt(s) acknowledged by Songda\n";
  }

  // A lawyer-group broadcast: a small group (one bad import row), one notice, its progress, one member's proof.
  broadcast::DemoStepOptions broadcast_step;
  broadcast_step.host = app.http().host();
  broadcast_step.port = app.http().port();
  broadcast_step.token = admin;
  broadcast_step.public_key_pem = app.evidence_public_key_pem();
  const bool broadcast_ok = broadcast::run_demo_step(broadcast_step, std::cout);

  // The proof of service of one delivery: fetched from the API as a clerk would, verified offline.
  bool verified = false;
  std::string certificate_path;
  {
    // Best: a document served through a provider (its receipt) to an address the party gave (served on
    // arrival); then any provider delivery that arrived; then whatever there is.
    const auto rank = [](const DeliveryView& v) {
      const auto& d = v.delivery;
      const bool arrived = v.status == "DELIVERED" && (d.channel == kChannelSms || d.channel == kChannelWechat);
      const bool served_on_arrival = d.consent_basis == "provided" || d.consent_basis == "confirmed";
      return (arrived ? 2 : 0) + (arrived && served_on_arrival && d.document ? 1 : 0);
    };
    const DeliveryView* pick = views.empty() ? nullptr : &views.front();
    for (const auto& v : views) {
      if (rank(v) > rank(*pick)) pick = &v;
    }
    if (pick != nullptr) {
      httplib::Client cli(app.http().host(), app.http().port());
      const httplib::Headers auth{{"Authorization", "Bearer " + admin}};
      const auto proof_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      auto bundle = cli.Get("/v1/deliveries/" + pick->delivery.id + "/proof", auth);
      while ((!bundle || bundle->status != 200) && std::chrono::steady_clock::now() < proof_deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the next checkpoint is at most 0.5 s away
        bundle = cli.Get("/v1/deliveries/" + pick->delivery.id + "/proof", auth);
      }
      auto html = cli.Get("/v1/deliveries/" + pick->delivery.id + "/proof.html", auth);
      if (bundle && bundle->status == 200 && html && html->status == 200) {
        const auto dir = std::filesystem::temp_directory_path() / ("songda-demo-proof-" + pick->delivery.id);
        std::filesystem::create_directories(dir);
        std::ofstream(dir / "bundle.json") << bundle->body;
        std::ofstream(dir / "court.pub") << app.evidence_public_key_pem();
        std::ofstream(dir / "certificate.html") << html->body;
        certificate_path = (dir / "certificate.html").string();
        std::cout << "\nProof of service of " << pick->delivery.id << " (" << pick->delivery.channel
                  << "), verified offline:\n  songda verify " << (dir / "bundle.json").string() << " --pubkey "
                  << (dir / "court.pub").string() << "\n";
        verified = ledger::run_verify({(dir / "bundle.json").string(), "--pubkey", (dir / "court.pub").string()},
                                      std::cout) == 0;
        std::cout << "电子送达凭证 (certificate): " << certificate_path << "\n";
      } else {
        std::cout << "\nproof of service not available: "
                  << (bundle ? std::to_string(bundle->status) + " " + bundle->body : std::string("no answer")) << "\n";
      }
    }
  }

  const bool ok =
      settled && dlq.size() == expected_dlq && c.duplicates.load() == 1 && !opened.empty() && verified && broadcast_ok;
  if (opts.serve) {
    const std::string base = "http://" + app.http().authority();
    const std::string shown_admin = admin_from_env ? std::string("$SONGDA_ADMIN_TOKEN") : admin;
    std::cout << "\nServing. Try:\n  curl -H \"Authorization: Bearer " << shown_admin << "\" " << base
              << "/v1/deliveries/" << (views.empty() ? std::string("ID") : views.front().delivery.id) << "\n  curl "
              << base << "/readyz\n  curl " << base << "/metrics\n";
    std::string console_case = "(2026)豫14民初123号";
    for (const auto& v : views) {
      if (v.delivery.court_id == console_court) {
        console_case = v.delivery.case_number;
        break;
      }
    }
    std::cout << "\nClerk console (in a browser): " << base << "/console/\n  sign in with the API key of "
              << console_court << ": " << (court_key.empty() ? std::string("(from SONGDA_API_KEYS)") : court_key)
              << "\n  or the operator token: " << shown_admin << "\n  then search the case number " << console_case
              << "\n";
    // A message that really went out (not a held fallback), with a document; SMS preferred, the console's court.
    const DeliveryView* party = nullptr;
    for (const auto& v : views) {
      const bool sent = v.status == "SENT" || v.status == "DELIVERED" || v.status == "READ";
      if (!sent || !v.delivery.document || v.delivery.channel == kChannelInApp) continue;
      if (party == nullptr || (v.delivery.court_id == console_court && v.delivery.channel == kChannelSms)) party = &v;
    }
    if (party != nullptr) {
      std::string link = app.link_for(party->delivery.id);
      if (config.http.public_base_url.empty()) link = base + link.substr(link.find("/r/"));
      std::cout << "Party link (the one in " << party->delivery.recipient_name << "'s " << party->delivery.channel
                << " message; 「查看通知」 records READ, the document RETRIEVED, 「确认收到」 ACKNOWLEDGED):\n  "
                << link << "\n";
    }
    for (const auto& v : views) {
      if (v.delivery.channel == kChannelInApp) {
        std::cout << "In-app inbox of " << v.delivery.recipient_name << " (live): " << base
                  << app.web().inbox_path(v.delivery.address, now_unix_ms() / 1000) << "\n";
        break;
      }
    }
    std::cout << "Ctrl-C to stop.\n" << std::flush;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    while (!g_interrupted.load()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  app.stop();
  sim.stop();
  if (!ok) {
    std::cerr << "demo: not everything happened as expected (settled=" << settled << ", verified=" << verified
              << ", dlq=" << dlq.size() << ", duplicates=" << c.duplicates.load() << ", opened=" << !opened.empty()
              << ", broadcast=" << broadcast_ok << ")\n";
    return 1;
  }
  return 0;
}

}  // namespace songda
