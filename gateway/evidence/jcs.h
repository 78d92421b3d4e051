// RFC 8785 JSON Canonicalization Scheme (JCS): the one byte form of a JSON
// value that evidence records are hashed and signed in. Object members are
// sorted by their names' UTF-16 code units, strings are escaped exactly as
// ECMAScript's JSON.stringify does, doubles use the ECMAScript shortest
// round-trip form (Number.prototype.toString) and no whitespace is emitted.
//
// Integers held by nlohmann::json as int64/uint64 are written exactly (all
// decimal digits). Within ±2^53 that is what JCS prescribes; beyond it JCS
// would round through a double, so evidence should keep integers in that range
// (unix milliseconds, sizes and indexes all are).
//
// Ownership: returns fresh strings, keeps nothing. Pure functions, no shared
// state: thread-safe. Never throw.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "gateway/core/result.h"

namespace songda::evidence {

// The canonical UTF-8 bytes of `value`.
// Errors (code "jcs"): NaN or infinite numbers, strings or names that are not
// valid UTF-8, or a "discarded" value.
Result<std::string> canonicalize(const nlohmann::json& value);

// Appends the canonical bytes of `value` (or of one string) to `out`, for writers that lay out a
// known object themselves (EvidenceRecord::canonical). Same errors; `out` is then partly written.
Status append_canonical(std::string& out, const nlohmann::json& value);
Status append_canonical_string(std::string& out, std::string_view value);

// One double as ECMAScript's Number.prototype.toString writes it
// ("1e+30", "4.5", "0.002", "1e-7", -0 → "0"). Error (code "jcs") for NaN/Inf.
Result<std::string> format_double(double d);

}  // namespace songda::evidence
