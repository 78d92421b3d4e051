// A JSON object written member by member into a string, for the few records the hot path writes once per
// delivery (the delivery record, the batches handed to the Redis scripts). Building an nlohmann::json tree
// only to dump it cost the gateway ~10 % of its CPU in bench/run's profile (bench/README.md item 23).
//
// Values are escaped by append_json_string, so the text equals nlohmann's dump() of the same object when the
// members are added in the order nlohmann keeps them (sorted by name). Invalid UTF-8 in a name or a value
// makes close() return false (nlohmann's dump() would throw).
//
// Ownership: writes into the caller's string. Thread-safety: one writer per thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "gateway/core/text.h"

namespace songda {

class JsonObjectWriter {
 public:
  // Opens the object ('{') at the end of `out`.
  explicit JsonObjectWriter(std::string& out) : out_(out) { out_.push_back('{'); }

  JsonObjectWriter& string(std::string_view name, std::string_view value) {
    member(name);
    ok_ = append_json_string(out_, value) && ok_;
    return *this;
  }
  JsonObjectWriter& integer(std::string_view name, std::int64_t value) {
    member(name);
    out_ += std::to_string(value);
    return *this;
  }
  JsonObjectWriter& boolean(std::string_view name, bool value) {
    member(name);
    out_ += value ? "true" : "false";
    return *this;
  }
  // Writes the name of a member whose value the caller writes next (e.g. with a nested writer).
  std::string& nested(std::string_view name) {
    member(name);
    return out_;
  }
  // Closes the object ('}'); the writer must not be used after. False when a name or value was not UTF-8.
  bool close() {
    out_.push_back('}');
    return ok_;
  }
  // Records the outcome of a nested writer.
  void merge(bool nested_ok) { ok_ = ok_ && nested_ok; }

 private:
  void member(std::string_view name) {
    if (!first_) out_.push_back(',');
    first_ = false;
    ok_ = append_json_string(out_, name) && ok_;
    out_.push_back(':');
  }

  std::string& out_;
  bool first_ = true;
  bool ok_ = true;
};

// Appends a JSON array with one object per item: write(JsonObjectWriter&, item) adds the item's members and
// returns false to stop. False when a write stopped or a name or value was not UTF-8 (`out` is then partly
// written).
template <typename Items, typename Write>
bool append_object_array(std::string& out, const Items& items, Write&& write) {
  out.push_back('[');
  bool first = true;
  for (const auto& item : items) {
    if (!first) out.push_back(',');
    first = false;
    JsonObjectWriter object(out);
    const bool wrote = write(object, item);
    if (!object.close() || !wrote) return false;
  }
  out.push_back(']');
  return true;
}

}  // namespace songda
