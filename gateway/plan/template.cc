#include "gateway/plan/template.h"

#include <algorithm>

namespace songda {

std::vector<std::string> template_placeholders(const std::string& text) {
  std::vector<std::string> names;
  std::size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string::npos) {
    const auto end = text.find("}}", pos + 2);
    if (end == std::string::npos) break;
    std::string name = text.substr(pos + 2, end - pos - 2);
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(std::move(name));
    pos = end + 2;
  }
  return names;
}

Result<std::string> render_template(const std::string& template_name, const std::string& text,
                                    const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(text.size() + 64);
  std::vector<std::string> missing;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto open = text.find("{{", pos);
    if (open == std::string::npos) {
      out.append(text, pos, std::string::npos);
      break;
    }
    out.append(text, pos, open - pos);
    const auto close = text.find("}}", open + 2);
    if (close == std::string::npos) {
      return Error::permanent("template_invalid", "template '" + template_name + "' has '{{' without '}}'");
    }
    const std::string name = text.substr(open + 2, close - open - 2);
    const auto it = vars.find(name);
    if (it == vars.end()) {
      if (std::find(missing.begin(), missing.end(), name) == missing.end()) missing.push_back(name);
    } else {
      out += it->second;
    }
    pos = close + 2;
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += (list.empty() ? "" : ", ") + m;
    return Error::permanent("template_param_missing", "template '" + template_name + "' needs " + list +
                                                          ", which the event does not provide; add them to params");
  }
  return out;
}

}  // namespace songda
