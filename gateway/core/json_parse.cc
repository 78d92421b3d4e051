#include "gateway/core/json_parse.h"

namespace songda {

ParsedJson parse_json_limited(std::string_view text, int max_depth) {
  ParsedJson out;
  // The callback sees each value with the number of arrays and objects around it; refusing one that opens too
  // deep skips its content as it is read (the parser does not recurse), so the deep part is never built.
  out.value = nlohmann::json::parse(
      text.begin(), text.end(),
      [&out, max_depth](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
        if (depth >= max_depth && (event == nlohmann::json::parse_event_t::object_start ||
                                   event == nlohmann::json::parse_event_t::array_start)) {
          out.too_deep = true;
        }
        return !out.too_deep;
      },
      false);
  if (out.too_deep) out.value = nlohmann::json(nlohmann::json::value_t::discarded);
  return out;
}

nlohmann::json parse_json(std::string_view text) { return parse_json_limited(text).value; }

std::string string_member(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);  // end() for a value that is not an object
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

}  // namespace songda
