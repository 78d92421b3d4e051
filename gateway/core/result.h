// Songda's one error policy, as a value type.
//
// Start-up (config, wiring) fails fast: it throws songda::StartupError with a
// message that names the file and the fix. The per-message path never throws
// across a module boundary: functions return Result<T>, whose Error carries a
// stable machine code (used as the DLQ header and HTTP error code), a message
// for a human that ends with a hint where one helps, and whether retrying the
// same input may succeed. Library errors (librdkafka, hiredis, curl, OpenSSL)
// are translated into Error once, at the boundary that calls the library.
// An exception that escapes anyway is contained at the top of each loop and
// per message (core/contain.h) as Error "internal_error".
//
// Thread-safety: plain values; safe to copy between threads.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <variant>

namespace songda {

struct Error {
  std::string code;     // stable, snake_case: "invalid_json", "schema", "conflict", "redis_unavailable", ...
  std::string message;  // for a person; says what to do next where that helps
  bool retryable = false;

  static Error permanent(std::string c, std::string m) { return Error{std::move(c), std::move(m), false}; }
  static Error transient(std::string c, std::string m) { return Error{std::move(c), std::move(m), true}; }
};

// A value or an Error. Deliberately small: ok(), value(), error().
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT(google-explicit-constructor)
  Result(Error error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &std::get<T>(v_); }
  const T* operator->() const { return &std::get<T>(v_); }
  T& operator*() & { return std::get<T>(v_); }
  const T& operator*() const& { return std::get<T>(v_); }

  [[nodiscard]] const Error& error() const { return std::get<Error>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation with no value.
struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

// Thrown only during start-up (configuration, wiring); never on the message path.
class StartupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace songda
