// The console's and party pages' static files (gateway/web/assets/), embedded
// into the binary at build time by CMake (embed_assets.cmake), so the binary
// and the container image need nothing beside them and the pages work with no
// internet. Immutable data; thread-safe.
#pragma once

#include <string_view>

namespace songda::web {

struct Asset {
  std::string_view name;  // file name, e.g. "console.js"
  std::string_view content_type;
  std::string_view body;
  std::string_view etag;  // quoted: "\"<first 16 hex of SHA-256>\""
};

// nullptr when there is no such asset.
const Asset* find_asset(std::string_view name);

}  // namespace songda::web
