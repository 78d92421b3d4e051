// songda_broadcast_bench: how long a lawyer-group broadcast takes, and what it costs the providers.
//
// In process: the App (HTTP API, fan-out worker, dispatch, receipts, evidence) on a real redis-server and Kafka
// broker, SMS played by the provider simulator (signatures checked, receipts pushed back). Imports a group of N
// members over HTTP, starts one broadcast (channels inapp + sms by default) and reports:
//   fan-out     time until every member is planned and recorded (pages of 500, one record_batch each)
//   dispatched  time until no delivery waits any more (every SMS handed to a provider)
//   delivered   time until every delivery is DELIVERED (SMS by the provider's receipt)
//   provider requests per member, numbers accepted twice, peak members held in memory, RSS growth.
// Not a test: run it by hand, e.g.
//
//   tests/services/with-services --kafka --redis -- build/songda_broadcast_bench --members 10000
//
// Options: --members N (10000) --channels inapp,sms --sms-rate R (per provider per second; 5000)
//          --redis URL (default $SONGDA_TEST_REDIS_URL, db 9; FLUSHed first)
//          --fanout-only 1: the fan-out alone, RSS sampled after every page (no App, no Kafka needed).
// Thread-safety: a program.
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/app/app.h"
#include "gateway/broadcast/service.h"
#include "gateway/core/text.h"
#include "simulator/simulator.h"

namespace {

using namespace songda;
using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

long rss_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// The fan-out alone (no dispatch, no HTTP, no simulator): time, Redis round trips and the process's RSS while it
// plans and records every member, sampled after every page, against the RSS with the group loaded.
int fanout_only_bench(const Config& config, const RedisEndpoint& ep, int members) {
  RedisPool pool(ep, 4, 10000);
  DeliveryStore store(pool);
  broadcast::FanoutOptions fo;
  fo.pages_per_pass = 1;
  broadcast::BroadcastService svc(pool, store, config, {}, fo, nullptr);
  svc.fanout().set_evidence(ledger::EvidenceContext{"bench-evidence-salt-0123456789"});
  std::vector<broadcast::Member> group;
  std::string csv = "id,name,firm,mobile,app_user,consent_basis,consent_scope\n";
  for (int i = 0; i < members; ++i) {
    const std::string id = "L" + std::to_string(1000000 + i);
    csv += id + ",律师" + std::to_string(i) + ",律所" + std::to_string(i % 34) + ",+86136" +
           std::to_string(10000000 + i) + ",app-" + id + ",confirmed,notice.broadcast\n";
  }
  auto parsed = broadcast::parse_members_csv(csv);
  csv.clear();
  csv.shrink_to_fit();
  if (!parsed.ok()) return 1;
  broadcast::GroupInfo g{"bench", "bench", "HN-SQ-ZY", "商丘市中级人民法院", 0, 0, 0};
  if (!svc.groups().put(g, parsed->members, now_unix_ms()).ok()) return 1;
  parsed->members.clear();
  parsed->members.shrink_to_fit();
  auto spec = broadcast::spec_from_request({{"id", "bench-fanout"},
                                            {"group_id", "bench"},
                                            {"params", {{"notice_title", "t"}, {"notice_text", "x"}}},
                                            {"channels", {"inapp", "sms"}}},
                                           config);
  if (!spec.ok()) return 1;
  spec->court_id = "HN-SQ-ZY";
  if (!svc.start(spec.value(), now_unix_ms()).ok()) return 1;
  const long rss0 = rss_kib();
  long rss_peak = rss0;
  const std::uint64_t trips0 = redis_round_trips();
  const auto t0 = Clock::now();
  while (true) {
    auto r = svc.fanout().run_once(now_unix_ms());
    if (!r.ok()) return 1;
    rss_peak = std::max(rss_peak, rss_kib());
    auto b = svc.broadcasts().get("bench-fanout");
    if (!b.ok() || !b.value() || b.value()->state != "running") break;
  }
  const double secs = since(t0);
  std::printf(
      "| fan-out only, %d members (inapp + sms, with evidence) | %.2f s (%.0f members/s), %llu Redis round "
      "trips, peak members in memory %llu, RSS %ld -> peak %ld KiB (+%ld) |\n",
      members, secs, members / secs, static_cast<unsigned long long>(redis_round_trips() - trips0),
      static_cast<unsigned long long>(svc.fanout().stats().peak_in_flight.load()), rss0, rss_peak, rss_peak - rss0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int members = 10000;
  std::string channels = "inapp,sms";
  double sms_rate = 5000;
  std::string redis = env_or("SONGDA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0");
  bool fanout_only = false;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const std::string v = argv[i + 1];
    if (k == "--members") members = std::stoi(v);
    if (k == "--channels") channels = v;
    if (k == "--sms-rate") sms_rate = std::stod(v);
    if (k == "--redis") redis = v;
    if (k == "--fanout-only") fanout_only = v == "1" || v == "true";
  }
  if (std::getenv("SONGDA_TEST_REDIS_URL") != nullptr && redis == std::getenv("SONGDA_TEST_REDIS_URL")) {
    redis = redis.substr(0, redis.rfind('/')) + "/9";
  }
  const std::string brokers = env_or("SONGDA_TEST_KAFKA_BROKERS", "127.0.0.1:9092");
  auto loaded = load_config_file(resource_path("config/gateway.yaml"));
  if (!loaded.config) {
    std::fprintf(stderr, "config/gateway.yaml does not load\n");
    return 2;
  }
  Config config = *loaded.config;
  config.kafka.brokers = brokers;
  config.kafka.checkpoint_topic = "songda.bench.checkpoints";
  config.redis.url = redis;
  config.redis.pool_size = 16;
  config.http.listen = "127.0.0.1:0";
  config.dispatch.poll_ms = 5;
  config.quiet_hours.enabled = false;
  config.channels.email.enabled = false;
  spdlog::set_level(spdlog::level::warn);

  auto ep = parse_redis_url(redis);
  if (!ep.ok()) return 2;
  auto conn = RedisConnection::connect(ep.value(), 5000);
  if (!conn.ok() || !conn.value()->command({"FLUSHDB"}).ok()) {
    std::fprintf(stderr, "cannot reach Redis at %s (run under tests/services/with-services --kafka --redis)\n",
                 redis.c_str());
    return 2;
  }
  if (fanout_only) return fanout_only_bench(config, ep.value(), members);

  sim::SimulatorOptions so;
  so.aliyun.receipt.delay_ms = 50;
  so.tencent.receipt.delay_ms = 50;
  so.threads = 32;
  sim::Simulator simulator(so);
  simulator.start();
  sim::export_default_credentials();
  setenv("SONGDA_API_KEYS", "HN-SQ-ZY=bench-court-key-000000001", 1);
  for (auto& p : config.channels.sms.providers) {
    p.endpoint = simulator.base_url();
    p.rate_per_sec = sms_rate;
    p.concurrency = 16;
  }
  config.channels.wechat.endpoint = simulator.base_url();

  AppOptions opts;
  opts.consume = false;
  opts.ephemeral_evidence_key = true;
  App app(config, opts);
  app.start();
  simulator.set_callback_base("http://127.0.0.1:" + std::to_string(app.http().port()));
  httplib::Client cli("127.0.0.1", app.http().port());
  cli.set_read_timeout(120, 0);
  const httplib::Headers auth{{"Authorization", "Bearer bench-court-key-000000001"}};

  cli.Put("/v1/groups/bench", auth,
          Json{{"name", "bench"}, {"court", {{"id", "HN-SQ-ZY"}, {"name", "商丘市中级人民法院"}}}}.dump(),
          "application/json");
  std::string csv = "id,name,firm,mobile,app_user,consent_basis,consent_scope\n";
  for (int i = 0; i < members; ++i) {
    const std::string id = "L" + std::to_string(1000000 + i);
    csv += id + ",律师" + std::to_string(i) + ",律所" + std::to_string(i % 34) + ",+86136" +
           std::to_string(10000000 + i) + ",app-" + id + ",confirmed,notice.broadcast\n";
  }
  const auto ti = Clock::now();
  auto imp = cli.Post("/v1/groups/bench/members:import", auth, csv, "text/csv");
  const double import_s = since(ti);
  if (!imp || imp->status != 200) {
    std::fprintf(stderr, "import failed: %s\n", imp ? imp->body.c_str() : "no answer");
    return 1;
  }
  Json chs = Json::array();
  for (std::size_t at = 0; at <= channels.size();) {
    const auto comma = channels.find(',', at);
    chs.push_back(channels.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  const auto sim0 = simulator.stats(true);
  const std::uint64_t trips0 = redis_round_trips();
  const long rss0 = rss_kib();
  const auto t0 = Clock::now();
  auto started = cli.Post("/v1/broadcasts", auth,
                          Json{{"id", "bench-1"},
                               {"group_id", "bench"},
                               {"params", {{"notice_title", "网上立案指引"}, {"notice_text", "自12月1日起……"}}},
                               {"channels", chs}}
                              .dump(),
                          "application/json");
  if (!started || started->status != 202) {
    std::fprintf(stderr, "start failed: %s\n", started ? started->body.c_str() : "no answer");
    return 1;
  }
  double fanout_s = 0, dispatched_s = 0, delivered_s = 0;
  long rss_peak = rss0;
  Json p;
  while (since(t0) < 900) {
    auto r = cli.Get("/v1/broadcasts/bench-1", auth);
    if (r && r->status == 200) p = Json::parse(r->body);
    rss_peak = std::max(rss_peak, rss_kib());
    if (fanout_s == 0 && p.contains("fanout") && p["fanout"]["complete"] == true) fanout_s = since(t0);
    if (fanout_s > 0 && dispatched_s == 0 && p["waiting"] == 0) dispatched_s = since(t0);
    if (fanout_s > 0 && p["counts"]["DELIVERED"].get<long long>() >= p["deliveries"].get<long long>()) {
      delivered_s = since(t0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto sim1 = simulator.stats(true);
  auto delta = [&](const char* what) {
    return sim1["aliyun"][what].get<long long>() + sim1["tencent"][what].get<long long>() -
           sim0["aliyun"][what].get<long long>() - sim0["tencent"][what].get<long long>();
  };
  const long long requests = delta("requests");
  const long long accepted = delta("accepted");
  const auto& fs = app.broadcasts().fanout().stats();
  std::printf("\n## Broadcast bench: %d members, channels %s, SMS rate %.0f/s per provider\n\n", members,
              channels.c_str(), sms_rate);
  std::printf("| measure | value |\n|---|---|\n");
  std::printf("| import of %d members (CSV over HTTP) | %.2f s |\n", members, import_s);
  std::printf("| fan-out (all members planned and recorded) | %.2f s (%.0f members/s) |\n", fanout_s,
              fanout_s > 0 ? members / fanout_s : 0.0);
  std::printf("| dispatched (nothing waiting; every SMS handed to a provider) | %.2f s |\n", dispatched_s);
  std::printf("| delivered (every delivery DELIVERED, SMS by receipt) | %.2f s |\n", delivered_s);
  std::printf("| deliveries | %lld |\n", p.value("deliveries", 0LL));
  std::printf("| SMS provider requests | %lld for %lld numbers: %.3f per member |\n", requests, accepted,
              accepted > 0 ? static_cast<double>(requests) / static_cast<double>(accepted) : 0.0);
  std::printf("| numbers accepted twice | %lld |\n",
              sim1["aliyun"]["duplicate_count"].get<long long>() + sim1["tencent"]["duplicate_count"].get<long long>());
  std::printf("| fan-out pages / Redis round trips for them | %llu / %llu |\n",
              static_cast<unsigned long long>(fs.pages.load()), static_cast<unsigned long long>(fs.redis_calls.load()));
  std::printf("| Redis round trips, whole process, per member | %.1f |\n",
              static_cast<double>(redis_round_trips() - trips0) / members);
  std::printf("| peak members in memory (fan-out) | %llu |\n",
              static_cast<unsigned long long>(fs.peak_in_flight.load()));
  std::printf("| RSS before / peak (whole process, incl. simulator) | %ld / %ld KiB (+%ld) |\n", rss0, rss_peak,
              rss_peak - rss0);
  app.stop();
  simulator.stop();
  return delivered_s > 0 ? 0 : 1;
}
