// songda: one binary, subcommands. Thin: parses arguments and calls the modules.
#include <httplib.h>
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "gateway/app/app.h"
#include "gateway/app/demo.h"
#include "gateway/app/logging.h"
#include "gateway/config/config.h"
#include "gateway/core/text.h"
#include "gateway/ledger/verify_cli.h"

namespace {

constexpr const char* kUsage = R"(songda — court e-service gateway

usage:
  songda run [--config FILE]          consume case events, deliver, serve the HTTP API
  songda demo [--serve] [--config FILE]
                                      the whole pipeline on an in-process Kafka and the Redis
                                      named by SONGDA_REDIS_URL; prints what happened
  songda config check FILE            report every problem in a config file (file:line:column)
  songda verify BUNDLE --pubkey FILE [--document FILE] [--since CHECKPOINT --consistency PROOF]
                [--tsa-ca FILE] [--json]
                                      check a proof of service offline (--json: the checks as JSON);
                                      exit 0 when every check holds, 1 when one fails, 2 when it cannot run
  songda keygen --out DIR             make the court's evidence signing key (court.key, mode 0600) and court.pub
  songda ledger check [--redis URL] [--pubkey FILE] [--repair-levels] [--json]
                                      recompute the evidence log in Redis (SONGDA_REDIS_URL unless --redis)
                                      from its stored records and compare hashes, tree levels and checkpoints
                                      (their signatures too with --pubkey); --repair-levels rewrites the tree
                                      levels sd:ev:lvl:* from the leaf hashes; exit 0 OK, 1 mismatch, 2 error
  songda healthcheck [--url URL]      GET URL/healthz (default http://127.0.0.1:<port of SONGDA_HTTP_LISTEN>):
                                      exit 0 on 200, 1 otherwise (the container's HEALTHCHECK)
  songda version

environment (README.md, "Environment"):
  SONGDA_KAFKA_BROKERS, SONGDA_REDIS_URL, SONGDA_HTTP_LISTEN, SONGDA_PUBLIC_BASE_URL (override the config file)
  SONGDA_KAFKA_SASL_PASSWORD, SONGDA_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET, SONGDA_KAFKA_SASL_OAUTHBEARER_CONFIG,
  SONGDA_KAFKA_SSL_KEY_PASSWORD, SONGDA_KAFKA_SSL_KEYSTORE_PASSWORD, SONGDA_KAFKA_SSL_KEY_PEM (librdkafka secrets)
  SONGDA_REDIS_PASSWORD, SONGDA_API_KEYS_FILE, SONGDA_API_KEYS, SONGDA_ADMIN_TOKEN, SONGDA_LINK_SECRET,
  SONGDA_CALLBACK_KEY, SONGDA_EVIDENCE_KEY_FILE, SONGDA_EVIDENCE_SALT, SONGDA_EVIDENCE_ORIGIN,
  SONGDA_EVIDENCE_CHECKPOINT_MS, SONGDA_DOCUMENT_DIR, SONGDA_HOME, SONGDA_LOG_LEVEL, provider keys
`songda run` needs SONGDA_PUBLIC_BASE_URL (or http.public_base_url), SONGDA_LINK_SECRET, SONGDA_EVIDENCE_KEY_FILE,
SONGDA_EVIDENCE_SALT, SONGDA_CALLBACK_KEY (16+ characters) when SMS providers are configured, and the keys
each configured channel requires.
)";

std::string option(std::vector<std::string>& args, const std::string& name, const std::string& fallback) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name && i + 1 < args.size()) {
      std::string v = args[i + 1];
      args.erase(args.begin() + static_cast<long>(i), args.begin() + static_cast<long>(i) + 2);
      return v;
    }
  }
  return fallback;
}

// What is left of a subcommand's arguments after its options were taken: nothing, or the command ends with 2.
// (`--config=FILE` or a misspelt option would otherwise leave the default config in use without a word.)
bool no_leftovers(const std::string& cmd, const std::vector<std::string>& args) {
  if (args.empty()) return true;
  std::cerr << "songda " << cmd << ": unexpected argument '" << args.front() << "'\n" << kUsage;
  return false;
}

bool flag(std::vector<std::string>& args, const std::string& name) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == name) {
      args.erase(args.begin() + static_cast<long>(i));
      return true;
    }
  }
  return false;
}

// GET <url>/healthz (default: loopback on the port of SONGDA_HTTP_LISTEN, else 8080): 0 on 200, 1 otherwise, 2 on
// wrong arguments. For the container's HEALTHCHECK, which has no curl.
int healthcheck(std::vector<std::string>& args) {
  std::string url = option(args, "--url", "");
  if (!no_leftovers("healthcheck", args)) return 2;
  if (url.empty()) {
    const char* listen = std::getenv("SONGDA_HTTP_LISTEN");
    const auto hp = songda::parse_host_port(listen != nullptr && *listen != '\0' ? listen : "127.0.0.1:8080");
    if (!hp) {
      std::cerr << "songda healthcheck: SONGDA_HTTP_LISTEN is not host:port; give --url http://HOST:PORT\n";
      return 2;
    }
    std::string host = hp->host;
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";  // listening on every address: ask loopback
    if (host == "::") host = "::1";
    url = "http://" + songda::HostPort{host, hp->port}.authority();
  }
  httplib::Client cli(url);
  cli.set_connection_timeout(2);
  cli.set_read_timeout(2);
  const auto r = cli.Get("/healthz");
  if (r && r->status == 200) return 0;
  std::cerr << "songda healthcheck: " << url << "/healthz "
            << (r ? "answered " + std::to_string(r->status) : std::string("did not answer")) << "\n";
  return 1;
}

std::string log_level() {
  const char* l = std::getenv("SONGDA_LOG_LEVEL");
  return l != nullptr ? l : "info";
}

int config_check(const std::string& path) {
  auto loaded = songda::load_config_file(path);
  for (const auto& issue : loaded.issues) std::cerr << issue.to_string() << "\n";
  if (!loaded.config) {
    std::cerr << loaded.issues.size() << " problem(s) in " << path << "\n";
    return 1;
  }
  std::cout << path << ": OK (" << loaded.config->routes.size() << " routes, " << loaded.config->templates.size()
            << " templates)\n";
  const auto placeholders = songda::example_placeholders(*loaded.config);
  for (const auto& p : placeholders) std::cerr << "warning: " << p << ": the example's placeholder\n";
  if (!placeholders.empty()) {
    std::cerr << "warning: songda run refuses to start with these placeholders on a real provider's endpoint; put "
                 "in the court's own template codes and ids\n";
  }
  return 0;
}

int run(const std::string& path) {
  auto loaded = songda::load_config_file(path);
  if (!loaded.config) {
    for (const auto& issue : loaded.issues) spdlog::error("{}", issue.to_string());
    return 2;
  }
  songda::Config config = *loaded.config;
  songda::apply_env_overrides(config, std::getenv);
  if (const auto placeholders = songda::example_placeholders(config); !placeholders.empty()) {
    for (const auto& p : placeholders) spdlog::error("{}: {}", path, p);
    spdlog::error(
        "{}: the example's placeholders are set for a real provider (every send would be refused); put in "
        "the court's own template codes and ids, as the provider's console shows them",
        path);
    return 2;
  }

  // Signals go to one waiting thread, never to worker threads.
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);

  songda::App app(config, songda::AppOptions{});
  app.start();
  int sig = 0;
  sigwait(&set, &sig);
  spdlog::info("songda: {} received; finishing in-flight work (a second one ends the process at once)", strsignal(sig));
  // A second signal does not wait for the drain: nothing is lost (Kafka offsets are stored only after their events
  // are recorded, deliveries are leased), it is only taken up again by the next start.
  std::thread([set] {
    int again = 0;
    sigwait(&set, &again);
    spdlog::warn("songda: {} received again; exiting without finishing in-flight work", strsignal(again));
    spdlog::shutdown();
    std::_Exit(130);
  }).detach();
  app.stop();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string cmd = args[0];
  args.erase(args.begin());
  try {
    if (cmd == "version") {
      std::cout << "songda 0.1.0\n";
      return 0;
    }
    if (cmd == "config") {
      if (args.size() != 2 || args[0] != "check") {
        std::cerr << "usage: songda config check FILE\n";
        return 2;
      }
      return config_check(args[1]);
    }
    if (cmd == "healthcheck") return healthcheck(args);
    if (cmd == "verify") return songda::ledger::run_verify(args, std::cout);
    if (cmd == "keygen") return songda::ledger::run_keygen(args, std::cout);
    if (cmd == "ledger") {
      if (args.empty() || args[0] != "check") {
        std::cerr << "usage: songda ledger check [--redis URL] [--pubkey FILE] [--repair-levels] [--json]\n";
        return 2;
      }
      args.erase(args.begin());
      return songda::ledger::run_ledger_check(args, std::cout);
    }
    if (cmd == "run") {
      songda::setup_logging(log_level(), true);
      const std::string path = option(args, "--config", songda::resource_path("config/gateway.yaml"));
      if (!no_leftovers(cmd, args)) return 2;
      return run(path);
    }
    if (cmd == "demo") {
      songda::setup_logging(std::getenv("SONGDA_LOG_LEVEL") != nullptr ? log_level() : "warn", false);
      songda::DemoOptions o;
      o.serve = flag(args, "--serve");
      o.config_path = option(args, "--config", "");
      if (!no_leftovers(cmd, args)) return 2;
      return songda::run_demo(o);
    }
  } catch (const songda::StartupError& e) {
    std::cerr << "songda: " << e.what() << "\n";
    return 2;
  }
  std::cerr << "songda: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}
