#include "tests/e2e/e2e_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace songda::e2e {
namespace {

// The path execve needs: `name` itself when it has a slash, else the first executable match on PATH.
std::string find_executable(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

}  // namespace

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
                           std::string out_path, std::string err_path)
    : out_path_(std::move(out_path)), err_path_(err_path.empty() ? out_path_ : std::move(err_path)) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  for (const auto& a : argv) cmdline_ += (cmdline_.empty() ? "" : " ") + a;

  std::vector<std::string> env_strings;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string name = kv.substr(0, kv.find('='));
    if (name.rfind("SONGDA_", 0) == 0 && name != "SONGDA_HOME" && name.rfind("SONGDA_TEST_", 0) != 0) continue;
    if (env.count(name) != 0) continue;
    env_strings.push_back(kv);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argvp;
  for (auto& s : args) argvp.push_back(s.data());
  argvp.push_back(nullptr);

  const std::string exe = find_executable(argv[0]);
  if (exe.empty()) throw std::runtime_error("cannot start " + cmdline_ + ": " + argv[0] + " not found");
  const int out_fd = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int err_fd =
      err_path_ == out_path_ ? -1 : ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (out_fd < 0 || null_fd < 0 || (err_path_ != out_path_ && err_fd < 0)) {
    for (const int fd : {out_fd, err_fd, null_fd}) {
      if (fd >= 0) ::close(fd);
    }
    throw std::runtime_error("cannot open the output files of " + cmdline_);
  }
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    // The child: only async-signal-safe calls until execve.
    ::setpgid(0, 0);                     // own process group: a terminal's Ctrl-C does not reach it
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // dies with the test, even when the test itself is killed
    if (::getppid() != parent) ::_exit(127);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (const int sig : {SIGTERM, SIGINT, SIGPIPE, SIGHUP}) ::sigaction(sig, &dfl, nullptr);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::dup2(null_fd, 0);
    ::dup2(out_fd, 1);
    ::dup2(err_fd >= 0 ? err_fd : out_fd, 2);
    ::execve(exe.c_str(), argvp.data(), envp.data());
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(out_fd);
  ::close(null_fd);
  if (err_fd >= 0) ::close(err_fd);
  if (pid_ < 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + cmdline_ + ": fork: " + std::strerror(fork_errno));
  }
}

ChildProcess::~ChildProcess() { kill_and_reap(); }

bool ChildProcess::running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  const pid_t r = waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  return r == 0;
}

void ChildProcess::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

void ChildProcess::kill_and_reap() {
  if (pid_ <= 0 || status_) return;
  ::kill(pid_, SIGKILL);
  int st = 0;
  while (waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
  }
  status_ = st;
}

std::string ChildProcess::describe() const { return cmdline_; }

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return "signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  }
  return "wait status " + std::to_string(status);
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/songda-e2e.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + std::string(std::strerror(errno)));
  path_ = tmpl;
  const char* k = std::getenv("SONGDA_E2E_KEEP");
  keep_ = k != nullptr && std::string(k) == "1";
  if (keep_) std::fprintf(stderr, "[ info ] SONGDA_E2E_KEEP=1: keeping %s\n", path_.c_str());
}

TempDir::~TempDir() {
  if (keep_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    throw std::runtime_error("bind failed");
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::string file_tail(const std::string& path, std::size_t max_bytes) {
  std::string s = read_file(path);
  if (s.size() <= max_bytes) return s;
  s = s.substr(s.size() - max_bytes);
  const auto nl = s.find('\n');
  return "[...]\n" + (nl == std::string::npos ? s : s.substr(nl + 1));
}

void replace_once(std::string& text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  if (at == std::string::npos) throw std::runtime_error("replace_once: '" + from + "' not found");
  if (text.find(from, at + 1) != std::string::npos)
    throw std::runtime_error("replace_once: '" + from + "' is ambiguous");
  text.replace(at, from.size(), to);
}

void set_yaml_value(std::string& yaml, const std::string& section, const std::string& key, const std::string& value) {
  std::size_t pos = 0;
  bool in_section = false;
  while (pos < yaml.size()) {
    std::size_t end = yaml.find('\n', pos);
    if (end == std::string::npos) end = yaml.size();
    const std::string line = yaml.substr(pos, end - pos);
    const bool top_level = !line.empty() && line[0] != ' ' && line[0] != '#';
    if (top_level) {
      if (in_section) break;
      in_section = line.rfind(section + ":", 0) == 0;
    } else if (in_section && line.rfind("  " + key + ":", 0) == 0) {
      yaml.replace(pos, end - pos, "  " + key + ": " + value);
      return;
    }
    pos = end + 1;
  }
  throw std::runtime_error("set_yaml_value: no " + section + "." + key + " in the config");
}

std::optional<double> metric_value(const std::string& exposition, const std::string& name) {
  std::istringstream in(exposition);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind(name, 0) != 0) continue;
    const std::string rest = line.substr(name.size());
    if (rest.empty() || rest[0] != ' ') continue;
    try {
      return std::stod(rest.substr(1));
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

bool is_rfc3339(const std::string& s) {
  static const std::regex re(
      R"(^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$)");
  return std::regex_match(s, re);
}

const std::map<std::string, std::string>& provider_env() {
  static const std::map<std::string, std::string> env = {
      {"SONGDA_ALIYUN_ACCESS_KEY_ID", "e2e-aliyun-access-key-id"},
      {"SONGDA_ALIYUN_ACCESS_KEY_SECRET", "e2e-aliyun-access-key-secret"},
      {"SONGDA_TENCENT_SECRET_ID", "AKIDe2etest0000000000000000000000000"},
      {"SONGDA_TENCENT_SECRET_KEY", "e2e-tencent-secret-key"},
      {"SONGDA_WECHAT_APP_SECRET", "e2e-wechat-app-secret"},
      {"SONGDA_WECHAT_CALLBACK_TOKEN", "e2e-wechat-callback-token"},
      {"SONGDA_CALLBACK_KEY", "e2e-callback-key-0123456789"},
  };
  return env;
}

}  // namespace songda::e2e
