// What the real channel adapters (SMS, WeChat, email) share besides HTTP:
// reading secrets from the environment once at start-up, finding the link in a
// rendered text, the built-in template variables, and running a few sends in
// parallel on the calling thread plus helpers.
//
// Ownership: plain functions over values. Thread-safety: all thread-safe;
// parallel_for joins every thread it starts before it returns; if fn throws, no further items start and the first
// exception is rethrown to the caller once all have joined (a worker thread must not end the process).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "gateway/core/event.h"

namespace songda {

// getenv, injected so tests can give secrets without touching the process environment.
using Getenv = std::function<const char*(const char*)>;
// Milliseconds since the Unix epoch (tests inject a fake clock).
using UnixMsClock = std::function<std::int64_t()>;

// The value of `name`, which must be set and non-empty; otherwise StartupError
// "<what>: environment variable <name> is not set; hint: ...".
std::string require_env(const Getenv& getenv, const std::string& name, std::string_view what);
// The value of `name`, or "" when unset.
std::string optional_env(const Getenv& getenv, const std::string& name);

// The last http:// or https:// URL in `text` (up to the next whitespace or
// CJK/ASCII closing punctuation), or "" when there is none. The planner renders
// the signed document link into the text; the adapters need it on its own
// (WeChat `url`, the HTML <a>, the SMS template variable `link`).
std::string last_http_url(std::string_view text);

// The variables a provider-side template may use: the delivery's params plus
// the built-ins court_name, case_number, recipient_name and link (the
// built-ins win over params of the same name, as in the planner).
std::map<std::string, std::string> delivery_template_vars(const Delivery& d);

// Calls fn(i) for i in [0, n) on up to `max_threads` threads (the caller's
// thread is one of them) and returns when all calls have returned. fn must not
// throw. max_threads <= 1 runs everything on the caller's thread, in order.
void parallel_for(std::size_t n, std::size_t max_threads, const std::function<void(std::size_t)>& fn);

}  // namespace songda
