// Renders Songda's message templates: text with {{name}} placeholders, names of
// [a-z0-9_]+. Pure; thread-safe.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gateway/core/result.h"

namespace songda {

// Replaces every {{name}} with vars[name]. A placeholder with no value is an
// error (code template_param_missing) naming the template and every missing name.
Result<std::string> render_template(const std::string& template_name, const std::string& text,
                                    const std::map<std::string, std::string>& vars);

// The placeholder names a template uses, in order of first appearance.
std::vector<std::string> template_placeholders(const std::string& text);

}  // namespace songda
