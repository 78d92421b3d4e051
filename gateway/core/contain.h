// The last line of the error policy (core/result.h): an exception that escapes anyway, from a bug or from a
// library throwing where it was not expected, is turned into Error "internal_error" at the top of each
// background loop and per message, instead of reaching std::terminate and ending the process.
//
// What happens next is the caller's: a loop logs it, backs off and goes on (a dispatch batch cut off this way is
// resumed by its lease, as after a crash); ingest sends the one message to the DLQ with the reason. Every
// contained exception is counted (songda_internal_errors_total): any count above zero is a bug to report.
//
// Thread-safety: safe from any thread.
#pragma once

#include <cstdint>
#include <exception>
#include <string_view>
#include <type_traits>

#include "gateway/core/result.h"

namespace songda {

// Exceptions contained since the process started.
std::uint64_t internal_errors();

// Counts the exception and describes it: Error{"internal_error", "<where>: unexpected <type>: <what>. Hint: ...",
// retryable}. Phone numbers and email addresses in what() are masked (it may quote the input).
Error internal_error(std::string_view where, const std::exception_ptr& ep);

// The same for a fault found without an exception (what Songda wrote does not read back): counted, masked,
// Error{"internal_error", "<where>: <what>. Hint: ..."}.
Error internal_error(std::string_view where, std::string_view what);

// f() for a Result-returning f, with any exception it throws returned as internal_error(where, ...).
template <typename F>
auto contain(std::string_view where, F&& f) -> std::invoke_result_t<F> {
  try {
    return std::forward<F>(f)();
  } catch (...) {
    return internal_error(where, std::current_exception());
  }
}

}  // namespace songda
