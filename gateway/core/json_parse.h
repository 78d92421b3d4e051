// Parsing JSON that comes from outside (Kafka events, HTTP bodies, provider callbacks, bundles given to the
// verifier) with a nesting limit. nlohmann's parser itself does not recurse, but dump(), the evidence canonical
// form (JCS) and valijson recurse once per level: an event of 100,000 nested arrays (200 KB, well under the size
// limit) overflowed the stack and ended the process, and with it every instance the partition moved to.
//
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace songda {

// Deeper than any document Songda reads (a case event is 4 levels deep).
inline constexpr int kMaxJsonDepth = 64;

struct ParsedJson {
  nlohmann::json value;  // discarded when the text is not JSON or is nested too deep
  bool too_deep = false;
};

// nlohmann::json::parse(text, nullptr, false), except that a document with more than max_depth nested arrays
// and objects is refused (value discarded, too_deep set) without building its deep part.
ParsedJson parse_json_limited(std::string_view text, int max_depth = kMaxJsonDepth);

// parse_json_limited(text).value: a discarded value for text that is not JSON or is nested too deep.
nlohmann::json parse_json(std::string_view text);

// j[key] when j is an object holding a string there, else "": reading a field of JSON from outside without
// trusting its type.
std::string string_member(const nlohmann::json& j, const char* key);

}  // namespace songda
