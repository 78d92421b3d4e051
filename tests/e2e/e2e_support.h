// Helpers for the end-to-end tier: child processes (the real `songda` binary,
// a private redis-server), temp dirs, free ports, small file and text utilities,
// and a few Redis/HTTP probes. For tests only; not thread-safe unless noted.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace songda::e2e {

// A child process (fork + execve; argv[0] is looked up on PATH when it has no
// slash): stdin is /dev/null, stdout and stderr are appended to files (the same
// file when err_path is empty). The child gets this process's environment minus
// every SONGDA_* variable (except SONGDA_HOME and SONGDA_TEST_*), plus `env`. It
// runs in a process group of its own, and gets SIGKILL when the thread that
// started it ends (PR_SET_PDEATHSIG), so a test killed by a ctest timeout
// leaves nothing behind. The destructor SIGKILLs and reaps it if it still runs.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               std::string out_path, std::string err_path = "");
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  [[nodiscard]] pid_t pid() const { return pid_; }
  // True while it has not exited (reaps it when it has).
  bool running();
  void signal(int sig);
  // Waits up to `timeout` for the exit; returns the raw wait status (WIFEXITED...), nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // SIGKILL and reap (no-op when already gone).
  void kill_and_reap();
  [[nodiscard]] const std::string& out_path() const { return out_path_; }
  [[nodiscard]] const std::string& err_path() const { return err_path_; }
  [[nodiscard]] std::string describe() const;  // argv joined, for messages

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string out_path_;
  std::string err_path_;
  std::string cmdline_;
};

// "exit 0", "exit 2", "signal 9 (Killed)", for messages.
std::string describe_wait_status(int status);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string file(const std::string& name) const { return path_ + "/" + name; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);
// The last `max_bytes` of a file (whole lines), "" when missing.
std::string file_tail(const std::string& path, std::size_t max_bytes = 24000);

// Replaces the one occurrence of `from` in `text`; throws when it occurs zero or several times.
void replace_once(std::string& text, const std::string& from, const std::string& to);

// Sets `key: value` in the top-level mapping `section` of a YAML text, in place of the key's existing line
// (its comment goes too). Throws when the section or key is not there. For the shipped config's simple
// two-level layout, not for YAML in general.
void set_yaml_value(std::string& yaml, const std::string& section, const std::string& key, const std::string& value);

// The value of an unlabelled Prometheus sample `name` in an exposition text, nullopt if absent.
std::optional<double> metric_value(const std::string& exposition, const std::string& name);

// Provider credentials and the receipt key for a songda child and a songda-provider-sim child, the same
// for both (never in the YAML).
const std::map<std::string, std::string>& provider_env();

// True when `s` is an RFC 3339 date-time (with a 'Z' or numeric offset).
bool is_rfc3339(const std::string& s);

// Polls `done` every `every` until it returns true or `timeout` passes. Returns the last result.
template <typename F>
bool wait_until(F&& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds every = std::chrono::milliseconds(50));

}  // namespace songda::e2e

#include <thread>

template <typename F>
bool songda::e2e::wait_until(F&& done, std::chrono::milliseconds timeout, std::chrono::milliseconds every) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}
