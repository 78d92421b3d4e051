#include "gateway/core/contain.h"

#include <cxxabi.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <typeinfo>

#include "gateway/core/text.h"

namespace songda {

namespace {

std::atomic<std::uint64_t> g_internal_errors{0};

// Keeps a log line and a DLQ header short; what() of a parse error can quote a whole input.
constexpr std::size_t kMaxWhat = 300;

std::string demangled(const std::type_info& type) {
  int status = 0;
  const std::unique_ptr<char, decltype(&std::free)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status),
                                                         &std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

// Masked before cutting, so no number is cut below 7 digits.
std::string short_text(std::string_view what) {
  std::string text = mask_personal_data(what);
  if (text.size() > kMaxWhat) text = text.substr(0, kMaxWhat) + "...";
  return repair_utf8(text);
}

Error described(std::string_view where, std::string_view what) {
  return Error::transient("internal_error", std::string(where) + ": " + std::string(what) +
                                                ". Hint: this is a bug in Songda; report it with this message");
}

}  // namespace

std::uint64_t internal_errors() { return g_internal_errors.load(); }

Error internal_error(std::string_view where, std::string_view what) {
  g_internal_errors.fetch_add(1);
  return described(where, short_text(what));
}

Error internal_error(std::string_view where, const std::exception_ptr& ep) {
  g_internal_errors.fetch_add(1);
  std::string what = "an exception that is not a std::exception";
  try {
    if (ep) std::rethrow_exception(ep);
  } catch (const std::exception& e) {
    what = demangled(typeid(e)) + ": " + short_text(e.what());
  } catch (...) {
  }
  return described(where, "unexpected " + what);
}

}  // namespace songda
