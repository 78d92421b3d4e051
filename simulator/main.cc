// songda-provider-sim: runs the provider simulator (Aliyun SMS, Tencent SMS,
// WeChat) until SIGINT or SIGTERM. The first line on stdout is
// "listening http://127.0.0.1:PORT" (scripts read the port from it); logs go
// to stderr. Credentials come from the environment (see --help).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "simulator/simulator.h"

namespace {

constexpr const char* kUsage =
    R"(usage: songda-provider-sim [--listen HOST:PORT] [--callback-base URL] [--threads N] [--seed N]

Plays Aliyun SMS (POST/GET /), Tencent SMS (POST / with TC3 headers) and WeChat
(/cgi-bin/...) on one loopback port, and pushes receipts to
URL/callbacks/{aliyun/sms-report,tencent/sms-status,wechat}. Control API under /_sim/
(simulator/README.md).

  --listen HOST:PORT    loopback address; PORT 0 picks a free port (default 127.0.0.1:0)
  --callback-base URL   Songda's base URL, e.g. http://127.0.0.1:8080 (default: no receipts
                        until POST /_sim/config {"callback_base": ...})
  --threads N           HTTP worker threads (default 16)
  --seed N              seed of the error/timeout draws (default: random)

Environment (defaults are the simulator's test credentials):
  SONGDA_ALIYUN_ACCESS_KEY_ID, SONGDA_ALIYUN_ACCESS_KEY_SECRET
  SONGDA_TENCENT_SECRET_ID, SONGDA_TENCENT_SECRET_KEY
  SONGDA_WECHAT_APP_SECRET (any appid is accepted with it), SONGDA_WECHAT_CALLBACK_TOKEN
  SONGDA_CALLBACK_KEY (the ?key= of the SMS receipt URLs)
)";

bool parse_int(const std::string& s, long long min, long long max, long long& out) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < min || v > max) return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_color_mt("provider-sim"));
  songda::sim::SimulatorOptions options = songda::sim::options_from_environment();
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "songda-provider-sim: " << arg << " needs a value\n" << kUsage;
        std::exit(2);
      }
      return argv[++i];
    };
    long long n = 0;
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--listen") {
      const std::string listen = value();
      const auto colon = listen.rfind(':');
      if (colon == std::string::npos || !parse_int(listen.substr(colon + 1), 0, 65535, n)) {
        std::cerr << "songda-provider-sim: --listen must be HOST:PORT, got " << listen << "\n";
        return 2;
      }
      options.listen_host = listen.substr(0, colon);
      if (options.listen_host.size() > 2 && options.listen_host.front() == '[' && options.listen_host.back() == ']') {
        options.listen_host = options.listen_host.substr(1, options.listen_host.size() - 2);
      }
      options.listen_port = static_cast<int>(n);
    } else if (arg == "--callback-base") {
      options.callback_base = value();
    } else if (arg == "--threads") {
      if (!parse_int(value(), 1, 4096, n)) {
        std::cerr << "songda-provider-sim: --threads must be 1..4096\n";
        return 2;
      }
      options.threads = static_cast<int>(n);
    } else if (arg == "--seed") {
      if (!parse_int(value(), 0, (1LL << 62), n)) {
        std::cerr << "songda-provider-sim: --seed must be a non-negative integer\n";
        return 2;
      }
      options.seed = static_cast<std::uint64_t>(n);
    } else {
      std::cerr << "songda-provider-sim: unknown argument " << arg << "\n" << kUsage;
      return 2;
    }
  }

  // Block SIGINT/SIGTERM before any thread starts, so only sigwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  songda::sim::Simulator simulator(options);
  try {
    simulator.start();
  } catch (const std::exception& e) {
    std::cerr << "songda-provider-sim: " << e.what() << "\n";
    return 1;
  }
  std::printf("listening %s\n", simulator.base_url().c_str());
  std::fflush(stdout);
  spdlog::info("provider simulator on {}; receipts to {}", simulator.base_url(),
               options.callback_base.empty() ? "(none yet)" : options.callback_base);

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: stopping", sig);
  simulator.stop();
  return 0;
}
