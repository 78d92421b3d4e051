// The YAML loader behind config.h. It never stops at the first problem: every
// section is checked, every bad value is reported with the file, line and
// column where it was written, and the result carries a Config only when the
// whole file is clean. Positions are 1-based; columns count characters (code
// points), not bytes, so they match what an editor shows on a line of Chinese
// template text.
//
// Pure apart from load_config_file reading one file; thread-safe (no shared state).

#include "gateway/config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <tuple>
#include <utility>

#include "channels/wechat/wechat_protocol.h"
#include "gateway/core/text.h"

namespace songda {

namespace {

// The event types a route may name: event v1's ten plus the court-notice broadcast.
constexpr std::array<std::string_view, 11> kEventTypes = {
    "case.filed",        "summons.issued",  "hearing.scheduled", "hearing.rescheduled",
    "hearing.cancelled", "document.served", "judgment.issued",   "payment.due",
    "mediation.invited", "notice.general",  "notice.broadcast"};
constexpr std::array<std::string_view, 4> kRoles = {"party", "lawyer", "agent", "other"};
constexpr std::array<std::string_view, 4> kChannels = {"inapp", "sms", "wechat", "email"};
constexpr std::array<std::string_view, 2> kSmsKinds = {"aliyun", "tencent"};
constexpr std::array<std::string_view, 2> kWechatKinds = {"official_account", "mini_program"};
constexpr std::array<std::string_view, 3> kStarttlsModes = {"required", "optional", "none"};
// The receipt states a fallback waits for (legal-e-service.md's evidence model).
constexpr std::array<std::string_view, 3> kReceiptStates = {"DELIVERED", "READ", "ACKNOWLEDGED"};

// Words that mark a key as holding a secret, and endings that mark it as naming
// where the secret lives instead (which is allowed).
constexpr std::array<std::string_view, 10> kSecretWords = {
    "password", "passwd", "secret", "token", "api_key", "apikey", "api-key", "access_key", "private_key", "credential"};
constexpr std::array<std::string_view, 8> kPointerEndings = {"_file",     ".file", "_path", ".path",
                                                             ".location", "_url",  ".url",  "_env"};

constexpr long long kKiB = 1024;
constexpr long long kMiB = 1024 * 1024;

template <typename Range>
std::string join(const Range& items, std::string_view sep = ", ") {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

template <typename Range>
bool contains(const Range& items, std::string_view value) {
  return std::find(std::begin(items), std::end(items), value) != std::end(items);
}

// Pieces joined into one string (inside loops, instead of a chain of temporaries).
template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }
bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The first `max_chars` code points of a UTF-8 string, with "…" when cut.
std::string utf8_prefix(std::string_view s, std::size_t max_chars) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == max_chars) return std::string(s.substr(0, i)) + "…";
      ++chars;
    }
  }
  return std::string(s);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// "; did you mean 'brokers'?" when one option is close to what was written, else "".
template <typename Range>
std::string did_you_mean(std::string_view written, const Range& options) {
  std::string best;
  std::size_t best_distance = 0;
  for (const auto& option : options) {
    const std::string_view o(option);
    const std::size_t d = edit_distance(lower(written), lower(o));
    if (best.empty() || d < best_distance) {
      best = std::string(o);
      best_distance = d;
    }
  }
  const std::size_t limit = std::max<std::size_t>(2, written.size() / 3);
  if (best.empty() || best == written || best_distance > limit) return "";  // distance 0: only the case differs
  return "; did you mean '" + best + "'?";
}

// Offset of the first byte that breaks UTF-8, or npos.
std::size_t first_invalid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    std::size_t len = 0;
    if (b < 0x80)
      len = 1;
    else if (b >= 0xC2 && b <= 0xDF)
      len = 2;
    else if (b >= 0xE0 && b <= 0xEF)
      len = 3;
    else if (b >= 0xF0 && b <= 0xF4)
      len = 4;
    else
      return i;
    if (i + len > s.size()) return i;
    for (std::size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return i;
    }
    i += len;
  }
  return std::string_view::npos;
}

// Collects issues and turns yaml-cpp marks (byte offsets) into 1-based line and character column.
class Checker {
 public:
  Checker(std::string file, std::string_view text) : file_(std::move(file)), text_(text) {}

  void add(const YAML::Mark& mark, std::string message) {
    if (mark.pos >= 0) {
      add_at(static_cast<std::size_t>(mark.pos), std::move(message));
    } else if (mark.line >= 0) {
      issues_.push_back(ConfigIssue{file_, mark.line + 1, mark.column + 1, std::move(message)});
    } else {
      add_unplaced(std::move(message));
    }
  }

  void add_at(std::size_t pos, std::string message) {
    const auto [line, column] = position(pos);
    issues_.push_back(ConfigIssue{file_, line, column, std::move(message)});
  }

  void add_unplaced(std::string message) { issues_.push_back(ConfigIssue{file_, 0, 0, std::move(message)}); }

  std::pair<int, int> position(std::size_t pos) const {
    pos = std::min(pos, text_.size());
    int line = 1;
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < pos; ++i) {
      if (text_[i] == '\n') {
        ++line;
        line_start = i + 1;
      }
    }
    int column = 1;
    for (std::size_t i = line_start; i < pos; ++i) {
      if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80) ++column;
    }
    return {line, column};
  }

  std::pair<int, int> position(const YAML::Mark& mark) const {
    if (mark.pos >= 0) return position(static_cast<std::size_t>(mark.pos));
    return {mark.line + 1, mark.column + 1};
  }

  // Remembers where every node starts, so a scalar's source span can be bounded.
  void index_nodes(const YAML::Node& node) {
    if (node.Mark().pos >= 0) node_starts_.push_back(static_cast<std::size_t>(node.Mark().pos));
    if (node.IsMap()) {
      for (const auto& kv : node) {
        index_nodes(kv.first);
        index_nodes(kv.second);
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node) index_nodes(item);
    }
  }
  void finish_index() { std::sort(node_starts_.begin(), node_starts_.end()); }

  // Where the `occurrence`-th (0-based) `marker` inside the scalar starting at `start` was
  // written; falls back to the scalar's start when the source spells it differently (escapes).
  std::size_t locate_in_scalar(std::size_t start, std::string_view marker, std::size_t occurrence) const {
    const auto next = std::upper_bound(node_starts_.begin(), node_starts_.end(), start);
    const std::size_t end = next == node_starts_.end() ? text_.size() : *next;
    const std::string_view span = text_.substr(std::min(start, text_.size()), end > start ? end - start : 0);
    std::size_t at = span.find(marker);
    for (std::size_t k = 0; k < occurrence && at != std::string_view::npos; ++k) at = span.find(marker, at + 1);
    return at == std::string_view::npos ? start : start + at;
  }

  std::vector<ConfigIssue> take_issues() {
    std::stable_sort(issues_.begin(), issues_.end(), [](const ConfigIssue& a, const ConfigIssue& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    return std::move(issues_);
  }

  bool has_issues() const { return !issues_.empty(); }

 private:
  std::string file_;
  std::string_view text_;
  std::vector<ConfigIssue> issues_;
  std::vector<std::size_t> node_starts_;
};

// Where to point for a value: an absent value (`key:` with nothing after it) points at its key.
YAML::Mark where(const YAML::Node& key, const YAML::Node& value) {
  if (value.IsNull() && (value.Mark().pos < 0 || value.Mark().line != key.Mark().line)) return key.Mark();
  return value.Mark();
}

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + utf8_prefix(n.Scalar(), 40) + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

bool is_secret_key(std::string_view key) {
  const std::string k = lower(key);
  for (const auto ending : kPointerEndings) {
    if (ends_with(k, ending)) return false;
  }
  for (const auto word : kSecretWords) {
    if (k.find(word) != std::string::npos) return true;
  }
  return false;
}

std::string env_name(std::string_view section, std::string_view key) {
  std::string out = "SONGDA_";
  auto append = [&out](std::string_view part) {
    for (const char ch : part) {
      if (ch >= 'a' && ch <= 'z')
        out.push_back(static_cast<char>(ch - 'a' + 'A'));
      else if ((ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        out.push_back(ch);
      else if (out.back() != '_')
        out.push_back('_');
    }
  };
  if (!section.empty() && section != key) {
    append(section);
    if (out.back() != '_') out.push_back('_');
  }
  append(key);
  return out;
}

// Names the environment variable only where Songda reads one; anywhere else it says where its secrets come from.
std::string secret_message(const std::string& path, std::string_view section, std::string_view key) {
  const std::string head = path + ": secrets do not belong in YAML; ";
  if (section == "redis" && key == "password") return head + "set SONGDA_REDIS_PASSWORD in the environment";
  if (section == "kafka" && is_kafka_secret(key)) return head + "set " + kafka_secret_env(key) + " in the environment";
  if (section == "kafka") {
    std::string names;
    for (const auto p : kKafkaSecretProperties) names += (names.empty() ? "" : ", ") + std::string(p);
    return head + "the Kafka secrets Songda takes (from the environment, SONGDA_KAFKA_<NAME>) are " + names;
  }
  return head + "Songda reads its secrets from the environment only (README, \"Environment\")";
}

void find_channel_secrets(Checker& c, const YAML::Node& channels);

// Reports every key that looks like it holds a secret, anywhere in the document. `hint`, when
// set, replaces the generic advice (channels name the environment variables their keys live in).
void find_secrets(Checker& c, const YAML::Node& node, const std::string& path, std::string_view section,
                  const std::string& hint = "") {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) continue;
      const std::string& key = kv.first.Scalar();
      std::string child = path;
      if (!child.empty()) child += '.';
      child += key;
      const std::string_view child_section = section.empty() ? std::string_view(key) : section;
      if (is_secret_key(key)) {
        c.add(kv.first.Mark(), hint.empty() ? secret_message(child, child_section, key)
                                            : cat(child, ": secrets do not belong in YAML; ", hint));
      } else if (path.empty() && key == "channels") {
        find_channel_secrets(c, kv.second);
      } else {
        find_secrets(c, kv.second, child, child_section, hint);
      }
    }
  } else if (node.IsSequence()) {
    std::size_t i = 0;
    for (const auto& item : node) find_secrets(c, item, path + "[" + std::to_string(i++) + "]", section, hint);
  }
}

// The scalar under `key` in a mapping, or `fallback`.
std::string scalar_or(const YAML::Node& map, const char* key, std::string fallback) {
  if (!map.IsMap()) return fallback;
  const YAML::Node value = map[key];
  return value.IsDefined() && value.IsScalar() && !value.Scalar().empty() ? value.Scalar() : fallback;
}

std::string env_hint(const std::string& prefix, std::string_view first, std::string_view second,
                     std::string_view where_prefix_is) {
  return "set " + prefix + "_" + std::string(first) + " and " + prefix + "_" + std::string(second) +
         " in the environment (the prefix is " + std::string(where_prefix_is) + ")";
}

// Secrets under channels: the advice names the variables the channel really reads.
void find_channel_secrets(Checker& c, const YAML::Node& channels) {
  if (!channels.IsMap()) return;
  const std::string generic = "set them in the environment variables named by each channel's credentials_env";
  for (const auto& kv : channels) {
    if (!kv.first.IsScalar()) continue;
    const std::string& key = kv.first.Scalar();
    const std::string path = "channels." + key;
    if (is_secret_key(key)) {
      c.add(kv.first.Mark(), cat(path, ": secrets do not belong in YAML; ", generic));
      continue;
    }
    const YAML::Node& section = kv.second;
    if (key == "wechat") {
      find_secrets(c, section, path, key,
                   env_hint(scalar_or(section, "credentials_env", WechatConfig{}.credentials_env), "APP_SECRET",
                            "CALLBACK_TOKEN", "channels.wechat.credentials_env"));
    } else if (key == "email") {
      find_secrets(c, section, path, key,
                   env_hint(scalar_or(section, "credentials_env", EmailConfig{}.credentials_env), "USER", "PASSWORD",
                            "channels.email.credentials_env"));
    } else if (key == "sms" && section.IsMap()) {
      for (const auto& skv : section) {
        if (!skv.first.IsScalar()) continue;
        const std::string& skey = skv.first.Scalar();
        const std::string spath = cat(path, ".", skey);
        if (is_secret_key(skey)) {
          c.add(skv.first.Mark(), cat(spath, ": secrets do not belong in YAML; ", generic));
        } else if (skey == "providers" && skv.second.IsSequence()) {
          std::size_t i = 0;
          for (const auto& provider : skv.second) {
            const std::string kind = scalar_or(provider, "kind", "");
            const std::string prefix = scalar_or(provider, "credentials_env", env_name("", kind));
            const std::string where_prefix = "this provider's credentials_env";
            std::string hint;
            if (kind == "tencent") {
              hint = env_hint(prefix, "SECRET_ID", "SECRET_KEY", where_prefix);
            } else if (kind == "aliyun") {
              hint = env_hint(prefix, "ACCESS_KEY_ID", "ACCESS_KEY_SECRET", where_prefix);
            } else {
              hint = "set the provider's keys in the environment, in variables that start with its credentials_env";
            }
            find_secrets(c, provider, spath + "[" + std::to_string(i++) + "]", key, hint);
          }
        } else {
          find_secrets(c, skv.second, spath, key, generic);
        }
      }
    } else {
      find_secrets(c, section, path, key, generic);
    }
  }
}

// ---- typed readers: each reports its own problem and returns nullopt -------------------------

std::optional<std::string> read_string(Checker& c, const YAML::Node& key, const YAML::Node& v, const std::string& path,
                                       bool required = true) {
  if (!v.IsScalar()) {
    if (v.IsNull() && !required) return std::string();
    std::string hint;
    if (v.IsMap() || v.IsSequence()) hint = " (text that starts with '{', '[' or contains ': ' must be in quotes)";
    c.add(where(key, v), path + ": expected a string, got " + describe(v) + hint);
    return std::nullopt;
  }
  if (required && trim(v.Scalar()).empty()) {
    c.add(where(key, v), path + ": must not be empty");
    return std::nullopt;
  }
  return v.Scalar();
}

std::string range_text(long long lo, long long hi) { return std::to_string(lo) + ".." + std::to_string(hi); }

std::optional<long long> parse_integer(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  long long value = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<int> read_int(Checker& c, const YAML::Node& key, const YAML::Node& v, const std::string& path, int lo,
                            int hi, std::string_view unit = "") {
  if (!v.IsScalar()) {
    c.add(where(key, v), path + ": expected an integer, got " + describe(v));
    return std::nullopt;
  }
  const auto value = parse_integer(v.Scalar());
  if (!value) {
    c.add(v.Mark(), path + ": expected an integer, got " + describe(v));
    return std::nullopt;
  }
  if (*value < lo || *value > hi) {
    std::string message = path + ": " + std::to_string(*value) + " is out of range (allowed: " + range_text(lo, hi);
    if (!unit.empty()) message += std::string(" ") + std::string(unit);
    c.add(v.Mark(), message + ")");
    return std::nullopt;
  }
  return static_cast<int>(*value);
}

// A byte size: "1048576", "64KiB", "1 MiB".
std::optional<std::size_t> read_size(Checker& c, const YAML::Node& key, const YAML::Node& v, const std::string& path,
                                     long long lo, long long hi) {
  const std::string expected = path + ": expected a size in bytes (e.g. 1048576, 512KiB or 1MiB), got ";
  if (!v.IsScalar()) {
    c.add(where(key, v), expected + describe(v));
    return std::nullopt;
  }
  std::string_view text = trim(v.Scalar());
  long long factor = 1;
  for (const auto& [suffix, f] : {std::pair<std::string_view, long long>{"KiB", kKiB}, {"MiB", kMiB}, {"B", 1}}) {
    if (ends_with(text, suffix)) {
      text = trim(text.substr(0, text.size() - suffix.size()));
      factor = f;
      break;
    }
  }
  const auto number = parse_integer(text);
  if (!number || *number > hi) {
    if (number && *number > 0) {
      c.add(v.Mark(), path + ": " + std::string(trim(v.Scalar())) + " is out of range (allowed: 1 KiB..16 MiB)");
    } else {
      c.add(v.Mark(), expected + describe(v));
    }
    return std::nullopt;
  }
  const long long bytes = *number * factor;
  if (bytes < lo || bytes > hi) {
    c.add(v.Mark(), path + ": " + std::string(trim(v.Scalar())) + " is out of range (allowed: 1 KiB..16 MiB, i.e. " +
                        range_text(lo, hi) + " bytes)");
    return std::nullopt;
  }
  return static_cast<std::size_t>(bytes);
}

std::optional<bool> read_bool(Checker& c, const YAML::Node& key, const YAML::Node& v, const std::string& path) {
  bool value = false;
  if (!v.IsScalar() || !YAML::convert<bool>::decode(v, value)) {
    c.add(where(key, v), path + ": expected true or false, got " + describe(v));
    return std::nullopt;
  }
  return value;
}

struct Item {
  std::string text;
  YAML::Mark mark;
};

// A list of strings; a single string counts as a list of one.
std::optional<std::vector<Item>> read_string_list(Checker& c, const YAML::Node& key, const YAML::Node& v,
                                                  const std::string& path) {
  std::vector<Item> items;
  if (v.IsScalar()) {
    items.push_back(Item{v.Scalar(), v.Mark()});
    return items;
  }
  if (v.IsNull()) return items;
  if (!v.IsSequence()) {
    c.add(where(key, v), path + ": expected a list such as [a, b], got " + describe(v));
    return std::nullopt;
  }
  bool ok = true;
  std::size_t i = 0;
  for (const auto& element : v) {
    if (!element.IsScalar()) {
      c.add(element.Mark(), path + "[" + std::to_string(i) + "]: expected a string, got " + describe(element));
      ok = false;
    } else {
      items.push_back(Item{element.Scalar(), element.Mark()});
    }
    ++i;
  }
  if (!ok) return std::nullopt;
  return items;
}

// ---- mappings ---------------------------------------------------------------------------------

struct Field {
  std::string_view name;
  std::function<void(const YAML::Node& key, const YAML::Node& value)> read;
};

// Walks one mapping: refuses duplicate and unknown keys, hands each known key to its reader.
// `path` names the mapping in messages ("kafka", "routes[2]"); empty means the top level.
// Returns false when the node is not a mapping at all.
bool walk_map(Checker& c, const YAML::Node& key, const YAML::Node& map, const std::string& path,
              const std::vector<Field>& fields) {
  if (map.IsNull()) return true;
  if (!map.IsMap()) {
    c.add(where(key, map),
          (path.empty() ? std::string("the top level") : path) + ": expected a mapping, got " + describe(map));
    return false;
  }
  std::vector<std::string_view> allowed;
  allowed.reserve(fields.size());
  for (const auto& f : fields) allowed.push_back(f.name);
  const std::string in = path.empty() ? std::string("at the top level") : "in " + path;

  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      c.add(kv.first.Mark(), "a key " + in + " must be a plain name, got " + describe(kv.first));
      continue;
    }
    const std::string& name = kv.first.Scalar();
    if (is_secret_key(name)) continue;  // reported once by find_secrets
    const auto [it, inserted] = seen.emplace(name, kv.first.Mark());
    if (!inserted) {
      std::string message = "duplicate key '" + name + "' ";
      message += in;
      message += " (first at line " + std::to_string(c.position(it->second).first) + "); keep one";
      c.add(kv.first.Mark(), std::move(message));
      continue;
    }
    const auto field = std::find_if(fields.begin(), fields.end(), [&](const Field& f) { return f.name == name; });
    if (field == fields.end()) {
      std::string message = "unknown key '" + name + "' ";
      message += in;
      message += "; allowed: " + join(allowed);
      message += did_you_mean(name, allowed);
      c.add(kv.first.Mark(), std::move(message));
      continue;
    }
    field->read(kv.first, kv.second);
  }
  return true;
}

// ---- sections ---------------------------------------------------------------------------------

bool valid_topic_name(std::string_view name) {
  if (name.empty() || name.size() > 249 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
           ch == '-';
  });
}

void read_kafka(Checker& c, const YAML::Node& key, const YAML::Node& node, KafkaConfig& k) {
  std::vector<std::pair<std::string, YAML::Mark>> topics;
  auto topic = [&](std::string_view name, std::string& out) {
    return Field{name, [&c, &out, &topics, name](const YAML::Node& fk, const YAML::Node& v) {
                   const std::string path = "kafka." + std::string(name);
                   if (auto s = read_string(c, fk, v, path)) {
                     if (!valid_topic_name(*s)) {
                       c.add(v.Mark(), path + ": '" + *s +
                                           "' is not a valid Kafka topic name (letters, digits, '.', '_', '-'; at "
                                           "most 249)");
                       return;
                     }
                     out = *s;
                     topics.emplace_back(std::string(name), v.Mark());
                   }
                 }};
  };
  walk_map(c, key, node, "kafka",
           {
               {"brokers",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  // "host:port,host:port" or a list of them.
                  std::vector<Item> items;
                  if (v.IsSequence()) {
                    auto list = read_string_list(c, fk, v, "kafka.brokers");
                    if (!list) return;
                    items = *list;
                  } else if (auto s = read_string(c, fk, v, "kafka.brokers")) {
                    std::stringstream split(*s);
                    for (std::string part; std::getline(split, part, ',');) items.push_back(Item{part, v.Mark()});
                  } else {
                    return;
                  }
                  std::vector<std::string> brokers;
                  for (const auto& item : items) {
                    const std::string_view b = trim(item.text);
                    if (b.empty() || b.find_first_of(" \t") != std::string_view::npos) {
                      c.add(item.mark, "kafka.brokers: '" + item.text +
                                           "' is not a broker address; write host:port, separated by commas");
                      return;
                    }
                    brokers.emplace_back(b);
                  }
                  if (brokers.empty()) {
                    c.add(where(fk, v), "kafka.brokers: name at least one broker (host:port)");
                    return;
                  }
                  k.brokers = join(brokers, ",");
                }},
               topic("topic", k.topic),
               topic("dlq_topic", k.dlq_topic),
               topic("checkpoint_topic", k.checkpoint_topic),
               {"group_id",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto s = read_string(c, fk, v, "kafka.group_id")) k.group_id = *s;
                }},
               {"batch_max",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "kafka.batch_max", 1, 10000, "messages")) k.batch_max = *n;
                }},
               {"batch_wait_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "kafka.batch_wait_ms", 0, 60000, "ms")) k.batch_wait_ms = *n;
                }},
               {"max_event_bytes",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_size(c, fk, v, "kafka.max_event_bytes", kKiB, 16 * kMiB)) k.max_event_bytes = *n;
                }},
               {"properties",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (v.IsNull()) return;
                  if (!v.IsMap()) {
                    c.add(where(fk, v),
                          "kafka.properties: expected a mapping of librdkafka settings "
                          "(e.g. {\"socket.keepalive.enable\": \"true\"}), got " +
                              describe(v));
                    return;
                  }
                  // Settings Songda owns itself: taking them from here would break its guarantees.
                  static const std::map<std::string, std::string, std::less<>> kOwned = {
                      {"bootstrap.servers", "set kafka.brokers instead"},
                      {"metadata.broker.list", "set kafka.brokers instead"},
                      {"group.id", "set kafka.group_id instead"},
                      {"enable.auto.commit", "Songda commits offsets itself, only after deliveries are recorded"},
                      {"enable.auto.offset.store", "Songda stores offsets itself, only after deliveries are recorded"},
                  };
                  std::set<std::string> seen;
                  for (const auto& kv : v) {
                    const std::string name = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
                    const std::string path = "kafka.properties." + name;
                    if (is_secret_key(name)) continue;  // reported by find_secrets
                    if (is_kafka_secret(name)) {        // a private key, an OAuth config: secrets all the same
                      c.add(kv.first.Mark(), secret_message(path, "kafka", name));
                      continue;
                    }
                    if (name.empty()) {
                      c.add(kv.first.Mark(), "kafka.properties: keys must be librdkafka setting names");
                      continue;
                    }
                    if (!seen.insert(name).second) {
                      c.add(kv.first.Mark(), "duplicate key '" + name + "' in kafka.properties; keep one");
                      continue;
                    }
                    if (const auto owned = kOwned.find(name); owned != kOwned.end()) {
                      c.add(kv.first.Mark(), path + ": not allowed here; " + owned->second);
                      continue;
                    }
                    if (!kv.second.IsScalar()) {
                      c.add(where(kv.first, kv.second), path + ": expected a value, got " + describe(kv.second));
                      continue;
                    }
                    if (lower(kv.second.Scalar()).find("password=") != std::string::npos) {
                      c.add(kv.second.Mark(), secret_message(path, "kafka", name));
                      continue;
                    }
                    k.properties[name] = kv.second.Scalar();
                  }
                }},
           });
  // The DLQ and the checkpoint topic must differ from the input topic, or Songda would read its own output.
  for (const auto& [name, mark] : topics) {
    if (name == "topic") continue;
    const std::string& value = name == "dlq_topic" ? k.dlq_topic : k.checkpoint_topic;
    if (value == k.topic) {
      c.add(mark, "kafka." + name + ": must differ from kafka.topic ('" + k.topic + "')");
    }
  }
}

void read_redis(Checker& c, const YAML::Node& key, const YAML::Node& node, RedisConfig& r) {
  walk_map(c, key, node, "redis",
           {
               {"url",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  auto s = read_string(c, fk, v, "redis.url");
                  if (!s) return;
                  if (!starts_with(*s, "redis://")) {
                    c.add(v.Mark(), "redis.url: expected redis://host:port/db, got '" + *s + "'");
                    return;
                  }
                  // redis://user:password@host — the password part is a secret.
                  const std::string_view rest = std::string_view(*s).substr(s->find("://") + 3);
                  const std::string_view authority = rest.substr(0, rest.find('/'));
                  const std::size_t at = authority.rfind('@');
                  if (at != std::string_view::npos && authority.substr(0, at).find(':') != std::string_view::npos) {
                    c.add(v.Mark(),
                          "redis.url: contains a password; secrets do not belong in YAML; set "
                          "SONGDA_REDIS_PASSWORD in the environment");
                    return;
                  }
                  r.url = *s;
                }},
               {"pool_size",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "redis.pool_size", 1, 256, "connections")) r.pool_size = *n;
                }},
               {"timeout_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "redis.timeout_ms", 1, 600000, "ms")) r.timeout_ms = *n;
                }},
           });
}

void read_http(Checker& c, const YAML::Node& key, const YAML::Node& node, HttpConfig& h) {
  walk_map(c, key, node, "http",
           {
               {"listen",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  auto s = read_string(c, fk, v, "http.listen");
                  if (!s) return;
                  if (!parse_host_port(*s)) {
                    c.add(v.Mark(),
                          "http.listen: expected host:port (e.g. 127.0.0.1:8080 or [::1]:8080), got '" + *s + "'");
                    return;
                  }
                  h.listen = *s;
                }},
               {"threads",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "http.threads", 1, 256)) h.threads = *n;
                }},
               {"public_base_url",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  auto s = read_string(c, fk, v, "http.public_base_url", false);
                  if (!s) return;
                  if (!s->empty() && !starts_with(*s, "http://") && !starts_with(*s, "https://")) {
                    c.add(v.Mark(),
                          "http.public_base_url: expected an http:// or https:// URL (the base of links "
                          "sent to parties), got '" +
                              *s + "'");
                    return;
                  }
                  std::string url = *s;
                  while (ends_with(url, "/")) url.pop_back();
                  h.public_base_url = url;
                }},
           });
}

void read_dispatch(Checker& c, const YAML::Node& key, const YAML::Node& node, DispatchConfig& d) {
  walk_map(c, key, node, "dispatch",
           {
               {"batch",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "dispatch.batch", 1, 10000, "deliveries")) d.batch = *n;
                }},
               {"lease_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "dispatch.lease_ms", 1, 86400000, "ms")) d.lease_ms = *n;
                }},
               {"poll_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "dispatch.poll_ms", 1, 60000, "ms")) d.poll_ms = *n;
                }},
               {"in_doubt_wait_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "dispatch.in_doubt_wait_ms", 0, 86400000, "ms")) {
                    d.in_doubt_wait_ms = *n;
                  }
                }},
               {"max_attempts",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "dispatch.max_attempts", 1, 100, "attempts")) d.max_attempts = *n;
                }},
               {"retry_base_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "dispatch.retry_base_ms", 1, 3600000, "ms")) d.retry_base_ms = *n;
                }},
               {"retry_max_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "dispatch.retry_max_ms", 1, 86400000, "ms")) d.retry_max_ms = *n;
                }},
           });
}

bool valid_placeholder_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_';
  });
}

std::string suggest_placeholder_name(std::string_view name) {
  std::string out;
  for (const char ch : trim(name)) {
    if (ch >= 'A' && ch <= 'Z')
      out.push_back(static_cast<char>(ch - 'A' + 'a'));
    else if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_')
      out.push_back(ch);
    else if (ch == ' ' || ch == '-' || ch == '.') {
      if (!out.empty() && out.back() != '_') out.push_back('_');
    }
  }
  return out;
}

std::size_t occurrences_before(std::string_view s, std::string_view marker, std::size_t before) {
  std::size_t n = 0;
  for (std::size_t at = s.find(marker); at != std::string_view::npos && at < before; at = s.find(marker, at + 1)) ++n;
  return n;
}

// Checks the {{name}} placeholders of one template text.
void check_placeholders(Checker& c, const YAML::Node& v, const std::string& path) {
  const std::string& s = v.Scalar();
  const auto start = static_cast<std::size_t>(std::max<long>(v.Mark().pos, 0));
  auto report = [&](std::size_t index, std::string_view marker, std::string message) {
    c.add_at(c.locate_in_scalar(start, marker, occurrences_before(s, marker, index)), path + ": " + std::move(message));
  };
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t open = s.find("{{", i);
    const std::size_t stray = s.find("}}", i);
    if (stray != std::string::npos && (open == std::string::npos || stray < open)) {
      report(stray, "}}", "'}}' without '{{' before it; a placeholder is written {{name}}");
      i = stray + 2;
      continue;
    }
    if (open == std::string::npos) break;
    const std::size_t close = s.find("}}", open + 2);
    const std::size_t next_open = s.find("{{", open + 2);
    if (close == std::string::npos || (next_open != std::string::npos && next_open < close)) {
      report(open, "{{",
             "'{{' without '}}' in '" + utf8_prefix(s.substr(open), 20) +
                 "'; close the placeholder, e.g. {{case_number}}");
      i = close == std::string::npos ? s.size() : next_open;
      continue;
    }
    const std::string_view name = std::string_view(s).substr(open + 2, close - open - 2);
    if (name.empty() || trim(name).empty()) {
      report(open, "{{", "empty placeholder '{{" + std::string(name) + "}}'; write a name, e.g. {{case_number}}");
    } else if (!valid_placeholder_name(name)) {
      std::string message = "placeholder '{{" + std::string(name) + "}}' has an invalid name; names must be [a-z0-9_]+";
      const std::string suggestion = suggest_placeholder_name(name);
      if (valid_placeholder_name(suggestion)) message += " (e.g. {{" + suggestion + "}})";
      report(open, "{{", std::move(message));
    }
    i = close + 2;
  }
}

bool valid_template_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' || ch == '-';
  });
}

void read_templates(Checker& c, const YAML::Node& key, const YAML::Node& node,
                    std::map<std::string, TemplateConfig>& templates) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    c.add(where(key, node), "templates: expected a mapping of name: {title, body, sms}, got " + describe(node));
    return;
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) {
      c.add(kv.first.Mark(), "templates: a template name must be a plain name, got " + describe(kv.first));
      continue;
    }
    const std::string& name = kv.first.Scalar();
    if (is_secret_key(name)) continue;  // reported by find_secrets
    const std::string path = "templates." + name;
    if (const auto existing = templates.find(name); existing != templates.end()) {
      c.add(kv.first.Mark(), "duplicate template '" + name + "' (first defined at line " +
                                 std::to_string(existing->second.line) + "); template names must be unique");
      continue;
    }
    TemplateConfig t;
    t.name = name;
    std::tie(t.line, t.column) = c.position(kv.first.Mark());
    if (!valid_template_name(name)) {
      c.add(kv.first.Mark(), path + ": template names must be [a-z0-9_.-]+");
    }
    bool has_title = false;
    bool has_body = false;
    auto text_field = [&](std::string_view field, std::string& out, bool& seen_flag) {
      return Field{field, [&c, &out, &seen_flag, path, field](const YAML::Node& fk, const YAML::Node& v) {
                     seen_flag = true;
                     const std::string field_path = path + "." + std::string(field);
                     if (auto s = read_string(c, fk, v, field_path)) {
                       out = *s;
                       check_placeholders(c, v, field_path);
                     }
                   }};
    };
    bool has_sms = false;
    const bool is_map = walk_map(c, kv.first, kv.second, path,
                                 {text_field("title", t.title, has_title), text_field("body", t.body, has_body),
                                  text_field("sms", t.sms, has_sms)});
    if (is_map) {
      if (!has_title) c.add(kv.first.Mark(), path + ": missing 'title' (used by in-app messages and email subjects)");
      if (!has_body) c.add(kv.first.Mark(), path + ": missing 'body'");
    }
    templates.emplace(name, std::move(t));  // kept even when faulty, so routes naming it are not also reported
  }
}

// ---- channels ---------------------------------------------------------------------------------

bool valid_env_prefix(std::string_view s) {
  return !s.empty() && s.front() >= 'A' && s.front() <= 'Z' && std::all_of(s.begin(), s.end(), [](char ch) {
    return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_';
  });
}

std::optional<std::string> read_env_prefix(Checker& c, const YAML::Node& key, const YAML::Node& v,
                                           const std::string& path) {
  auto s = read_string(c, key, v, path);
  if (!s) return std::nullopt;
  if (!valid_env_prefix(*s)) {
    std::string message = path + ": '" + *s +
                          "' is not an environment variable prefix (^[A-Z][A-Z0-9_]*$, e.g. SONGDA_ALIYUN); the keys "
                          "are read from variables that start with it";
    std::string upper;
    for (const char ch : trim(*s)) {
      if (ch >= 'a' && ch <= 'z')
        upper.push_back(static_cast<char>(ch - 'a' + 'A'));
      else if (ch == '-' || ch == '.' || ch == ' ')
        upper.push_back('_');
      else
        upper.push_back(ch);
    }
    if (valid_env_prefix(upper)) message += "; did you mean '" + upper + "'?";
    c.add(v.Mark(), std::move(message));
    return std::nullopt;
  }
  return s;
}

struct Url {
  std::string scheme;
  std::string userinfo;
  std::string host;  // without brackets for IPv6
};

// scheme://[userinfo@]host[:port][/...]; nullopt when it is not shaped like that.
std::optional<Url> parse_url(std::string_view text) {
  const std::size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return std::nullopt;
  Url url;
  url.scheme = lower(text.substr(0, sep));
  const std::string_view rest = text.substr(sep + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (const std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    url.userinfo = std::string(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  std::string_view port;
  if (starts_with(authority, "[")) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    url.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
      if (port.empty()) return std::nullopt;
    }
  } else {
    const std::size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      if (port.empty()) return std::nullopt;
    }
  }
  if (url.host.empty() || url.host.find_first_of(" \t\r\n") != std::string::npos) return std::nullopt;
  if (!port.empty()) {
    const auto number = parse_integer(port);
    if (!number || *number < 1 || *number > 65535 || port.front() == '+') return std::nullopt;
  }
  if (text.find_first_of(" \t\r\n") != std::string_view::npos) return std::nullopt;
  return url;
}

bool is_loopback_host(std::string_view host) {
  const std::string h = lower(host);
  if (h == "localhost" || h == "::1") return true;
  return starts_with(h, "127.") &&
         std::all_of(h.begin(), h.end(), [](char ch) { return (ch >= '0' && ch <= '9') || ch == '.'; });
}

// A provider's base URL: http:// or https://, no credentials in it, no trailing slash.
std::optional<std::string> read_endpoint(Checker& c, const YAML::Node& key, const YAML::Node& v,
                                         const std::string& path, std::string_view example) {
  auto s = read_string(c, key, v, path);
  if (!s) return std::nullopt;
  const auto url = parse_url(trim(*s));
  if (!url || (url->scheme != "http" && url->scheme != "https")) {
    c.add(v.Mark(), path + ": expected an http:// or https:// URL such as " + std::string(example) + ", got '" +
                        utf8_prefix(*s, 60) + "'");
    return std::nullopt;
  }
  if (!url->userinfo.empty()) {
    c.add(v.Mark(), path +
                        ": must not carry a user or password; keys come from the environment variables named by "
                        "credentials_env");
    return std::nullopt;
  }
  if (url->scheme == "http" && !is_loopback_host(url->host)) {
    c.add(v.Mark(), path +
                        ": http:// would carry the signed requests, access tokens, parties' numbers and messages to " +
                        url->host + " in clear text; use https:// (http:// is only for a simulator on loopback)");
    return std::nullopt;
  }
  std::string out(trim(*s));
  while (ends_with(out, "/")) out.pop_back();
  return out;
}

// Requests per second for a token bucket: a number above 0 (fractions allowed, e.g. 0.5).
std::optional<double> read_rate(Checker& c, const YAML::Node& key, const YAML::Node& v, const std::string& path) {
  const std::string expected = path + ": expected a number of requests per second (e.g. 50 or 0.5), got ";
  if (!v.IsScalar()) {
    c.add(where(key, v), expected + describe(v));
    return std::nullopt;
  }
  const std::string text(trim(v.Scalar()));
  const bool numeric = !text.empty() && std::all_of(text.begin(), text.end(), [](char ch) {
    return (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '+' || ch == 'e' || ch == 'E';
  });
  char* end = nullptr;
  const double value = numeric ? std::strtod(text.c_str(), &end) : 0.0;
  if (!numeric || end != text.c_str() + text.size() || !std::isfinite(value)) {
    c.add(v.Mark(), expected + describe(v));
    return std::nullopt;
  }
  if (value <= 0 || value > 100000) {
    c.add(v.Mark(), path + ": " + text + " is out of range (allowed: more than 0, at most 100000 per second)");
    return std::nullopt;
  }
  return value;
}

// "30s", "10m", "24h", "2d" or a plain number of seconds.
std::optional<long long> parse_duration(std::string_view text) {
  text = trim(text);
  long long factor = 1;
  if (!text.empty()) {
    switch (text.back()) {
      case 's':
        factor = 1;
        break;
      case 'm':
        factor = 60;
        break;
      case 'h':
        factor = 3600;
        break;
      case 'd':
        factor = 86400;
        break;
      default:
        factor = 0;
        break;
    }
    if (factor != 0) {
      text.remove_suffix(1);
      text = trim(text);
    } else {
      factor = 1;
    }
  }
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    return std::nullopt;
  }
  return *parse_integer(text) * factor;
}

std::string duration_text(long long seconds) {
  if (seconds % 86400 == 0) return std::to_string(seconds / 86400) + "d";
  if (seconds % 3600 == 0) return std::to_string(seconds / 3600) + "h";
  if (seconds % 60 == 0) return std::to_string(seconds / 60) + "m";
  return std::to_string(seconds) + "s";
}

std::optional<int> read_duration(Checker& c, const YAML::Node& key, const YAML::Node& v, const std::string& path,
                                 long long lo, long long hi) {
  const std::string expected = path + ": expected a duration such as 30s, 10m, 24h or a number of seconds, got ";
  if (!v.IsScalar()) {
    c.add(where(key, v), expected + describe(v));
    return std::nullopt;
  }
  const auto seconds = parse_duration(v.Scalar());
  if (!seconds) {
    c.add(v.Mark(), expected + describe(v));
    return std::nullopt;
  }
  if (*seconds < lo || *seconds > hi) {
    c.add(v.Mark(), path + ": " + std::string(trim(v.Scalar())) + " is out of range (allowed: " + duration_text(lo) +
                        ".." + duration_text(hi) + ")");
    return std::nullopt;
  }
  return static_cast<int>(*seconds);
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

// "22:00" or "8:00" -> minutes after midnight.
std::optional<int> parse_clock(std::string_view text) {
  text = trim(text);
  const std::size_t colon = text.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon > 2) return std::nullopt;
  const std::string_view hh = text.substr(0, colon);
  const std::string_view mm = text.substr(colon + 1);
  if (!all_digits(hh) || !all_digits(mm) || mm.size() != 2) return std::nullopt;
  const int hours = static_cast<int>(*parse_integer(hh));
  const int minutes = static_cast<int>(*parse_integer(mm));
  if (hours > 23 || minutes > 59) return std::nullopt;
  return hours * 60 + minutes;
}

std::string clock_text(int minutes) {
  const auto two = [](int n) { return (n < 10 ? "0" : "") + std::to_string(n); };
  return two(minutes / 60) + ":" + two(minutes % 60);
}

// "+08:00", "-05:30" -> minutes east of UTC (-12:00..+14:00).
std::optional<int> parse_utc_offset(std::string_view text) {
  text = trim(text);
  if (text.size() != 6 || (text[0] != '+' && text[0] != '-') || text[3] != ':') return std::nullopt;
  const std::string_view hh = text.substr(1, 2);
  const std::string_view mm = text.substr(4, 2);
  if (!all_digits(hh) || !all_digits(mm)) return std::nullopt;
  const int minutes = static_cast<int>(*parse_integer(hh) * 60 + *parse_integer(mm));
  if (*parse_integer(mm) > 59) return std::nullopt;
  const int signed_minutes = text[0] == '-' ? -minutes : minutes;
  if (signed_minutes < -12 * 60 || signed_minutes > 14 * 60) return std::nullopt;
  return signed_minutes;
}

// A one-of-several word, with the allowed ones and a suggestion when it is not one of them.
template <typename Range>
std::optional<std::string> read_choice(Checker& c, const YAML::Node& key, const YAML::Node& v, const std::string& path,
                                       const Range& options, std::string_view what) {
  auto s = read_string(c, key, v, path);
  if (!s) return std::nullopt;
  if (!contains(options, *s)) {
    c.add(v.Mark(), path + ": unknown " + std::string(what) + " '" + *s + "'; allowed: " + join(options) +
                        did_you_mean(*s, options));
    return std::nullopt;
  }
  return s;
}

bool valid_provider_name(std::string_view name) {
  return !name.empty() &&
         ((name.front() >= 'a' && name.front() <= 'z') || (name.front() >= '0' && name.front() <= '9')) &&
         std::all_of(name.begin(), name.end(), [](char ch) {
           return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
         });
}

bool has_line_break(std::string_view v) {
  return v.find_first_of("\r\n") != std::string_view::npos || v.find("\xC2\x85") != std::string_view::npos ||
         v.find("\xE2\x80\xA8") != std::string_view::npos || v.find("\xE2\x80\xA9") != std::string_view::npos;
}

struct NamedMark {
  std::string name;
  YAML::Mark mark;
};

// Where the parts of channels were written, for the checks that need routes and templates too.
struct ProviderDraft {
  std::string path;  // "channels.sms.providers[0]"
  YAML::Mark mark;
  std::optional<YAML::Mark> templates_key;
  std::vector<NamedMark> template_names;  // songda template names it has codes for
  std::vector<NamedMark> param_names;     // songda template names under template_params
  bool templates_readable = true;         // false: its templates were not a mapping (already reported)
};

struct ChannelsDraft {
  std::vector<ProviderDraft> providers;  // parallel to config.channels.sms.providers
  std::optional<YAML::Mark> wechat_key;
  std::optional<YAML::Mark> wechat_templates_key;
  std::vector<NamedMark> wechat_template_names;
  bool wechat_templates_readable = true;
};

// A songda-template-name -> value mapping (provider codes, WeChat templates): reports a
// non-mapping, non-plain or duplicate names, and hands each entry on. False when it is not a mapping.
bool read_named_map(Checker& c, const YAML::Node& key, const YAML::Node& v, const std::string& path,
                    std::string_view expected,
                    const std::function<void(const YAML::Node& name_key, const YAML::Node& value)>& read) {
  if (v.IsNull()) return true;
  if (!v.IsMap()) {
    c.add(where(key, v), path + ": expected " + std::string(expected) + ", got " + describe(v));
    return false;
  }
  std::map<std::string, YAML::Mark> seen;
  for (const auto& kv : v) {
    if (!kv.first.IsScalar()) {
      c.add(kv.first.Mark(), path + ": keys must be template names, got " + describe(kv.first));
      continue;
    }
    const std::string& name = kv.first.Scalar();
    if (is_secret_key(name)) continue;  // reported by find_secrets
    const auto [it, inserted] = seen.emplace(name, kv.first.Mark());
    if (!inserted) {
      c.add(kv.first.Mark(), cat("duplicate key '", name, "' in ", path, " (first at line ",
                                 std::to_string(c.position(it->second).first), "); keep one"));
      continue;
    }
    read(kv.first, kv.second);
  }
  return true;
}

void read_sms_provider(Checker& c, const YAML::Node& item, ProviderDraft& d, SmsProviderConfig& p,
                       YAML::Mark& name_mark) {
  const std::string& path = d.path;
  std::tie(p.line, p.column) = c.position(item.Mark());
  bool has_name = false;
  bool has_kind = false;
  bool kind_ok = false;
  bool has_endpoint = false;
  bool has_sign_name = false;
  bool has_region = false;
  bool has_credentials = false;
  std::optional<std::pair<YAML::Node, YAML::Node>> sdk_app_id;  // key, value
  std::optional<std::pair<YAML::Node, YAML::Node>> batch_max;
  std::vector<std::pair<YAML::Node, YAML::Node>> codes;  // template name key, code value
  std::optional<YAML::Node> region_value;
  std::optional<YAML::Node> params_key;  // `template_params`
  walk_map(
      c, item, item, path,
      {
          {"name",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             has_name = true;
             auto s = read_string(c, fk, v, path + ".name");
             if (!s) return;
             name_mark = v.Mark();
             if (!valid_provider_name(*s)) {
               c.add(v.Mark(), path + ".name: '" + utf8_prefix(*s, 40) +
                                   "' is not a provider name; names are [a-z0-9_.-]+ (e.g. aliyun-main), used in logs "
                                   "and metrics");
             }
             p.name = *s;
           }},
          {"kind",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             has_kind = true;
             if (auto s = read_choice(c, fk, v, path + ".kind", kSmsKinds, "SMS provider kind")) {
               p.kind = *s;
               kind_ok = true;
             }
           }},
          {"endpoint",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             has_endpoint = true;
             if (auto s = read_endpoint(c, fk, v, path + ".endpoint", "https://dysmsapi.aliyuncs.com")) p.endpoint = *s;
           }},
          {"priority",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             if (auto n = read_int(c, fk, v, path + ".priority", 1, 100, "(1 = preferred)")) p.priority = *n;
           }},
          {"weight",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             if (auto n = read_int(c, fk, v, path + ".weight", 0, 10000)) p.weight = *n;
           }},
          {"sign_name",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             has_sign_name = true;
             auto s = read_string(c, fk, v, path + ".sign_name");
             if (!s) return;
             if (s->find("【") != std::string::npos || s->find("】") != std::string::npos) {
               c.add(v.Mark(), path +
                                   ".sign_name: write the signature without 【】 (e.g. 商丘中院); the operator adds "
                                   "the brackets");
               return;
             }
             if (has_line_break(*s)) {
               c.add(v.Mark(), path + ".sign_name: must be one line");
               return;
             }
             p.sign_name = *s;
           }},
          {"region",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             has_region = true;
             auto s = read_string(c, fk, v, path + ".region");
             if (!s) return;
             const bool ok = std::all_of(s->begin(), s->end(), [](char ch) {
               return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
             });
             if (!ok || s->find('-') == std::string::npos) {
               c.add(v.Mark(), path + ".region: '" + utf8_prefix(*s, 40) +
                                   "' is not a region id (e.g. cn-hangzhou for Aliyun, ap-guangzhou for Tencent)");
               return;
             }
             p.region = *s;
             region_value = v;
           }},
          {"sdk_app_id",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             sdk_app_id.emplace(fk, v);
             auto s = read_string(c, fk, v, path + ".sdk_app_id");
             if (!s) return;
             if (!all_digits(*s)) {
               c.add(v.Mark(), path + ".sdk_app_id: '" + utf8_prefix(*s, 40) +
                                   "' is not a Tencent SmsSdkAppId (digits, e.g. \"1400000000\")");
               return;
             }
             p.sdk_app_id = *s;
           }},
          {"templates",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             d.templates_key = fk.Mark();
             d.templates_readable = read_named_map(
                 c, fk, v, path + ".templates",
                 "a mapping of songda template name: provider template code (e.g. {summons: SMS_123456})",
                 [&](const YAML::Node& nk, const YAML::Node& code) {
                   const std::string code_path = path + ".templates." + nk.Scalar();
                   d.template_names.push_back(NamedMark{nk.Scalar(), nk.Mark()});
                   // Kept even when faulty (the file is refused anyway), so routes sending this
                   // template are not also told the code is missing.
                   p.templates[nk.Scalar()] = code.IsScalar() ? code.Scalar() : std::string();
                   if (read_string(c, nk, code, code_path)) codes.emplace_back(nk, code);
                 });
           }},
          {"template_params",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             params_key = fk;
             read_named_map(c, fk, v, path + ".template_params",
                            "a mapping of songda template name: [variable, ...] (e.g. {summons: [case_number, "
                            "hearing_time]})",
                            [&](const YAML::Node& nk, const YAML::Node& list) {
                              const std::string list_path = cat(path, ".template_params.", nk.Scalar());
                              d.param_names.push_back(NamedMark{nk.Scalar(), nk.Mark()});
                              auto names = read_string_list(c, nk, list, list_path);
                              if (!names) return;
                              std::vector<std::string> out;
                              for (const auto& name : *names) {
                                if (!valid_placeholder_name(name.text)) {
                                  c.add(name.mark, cat(list_path, ": '", name.text,
                                                       "' is not a variable name; write the placeholder names "
                                                       "([a-z0-9_]+) whose values fill {1}, {2}, ... in order"));
                                }
                                out.push_back(name.text);
                              }
                              p.template_params[nk.Scalar()] = std::move(out);
                            });
           }},
          {"credentials_env",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             has_credentials = true;
             if (auto s = read_env_prefix(c, fk, v, path + ".credentials_env")) p.credentials_env = *s;
           }},
          {"concurrency",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             if (auto n = read_int(c, fk, v, path + ".concurrency", 1, 256, "requests in flight")) p.concurrency = *n;
           }},
          {"rate_per_sec",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             if (auto r = read_rate(c, fk, v, path + ".rate_per_sec")) p.rate_per_sec = *r;
           }},
          {"timeout_ms",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             if (auto n = read_int(c, fk, v, path + ".timeout_ms", 1, 600000, "ms")) p.timeout_ms = *n;
           }},
          {"batch_max", [&](const YAML::Node& fk, const YAML::Node& v) { batch_max.emplace(fk, v); }},
          {"receipt_timeout_s",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             if (auto n = read_int(c, fk, v, path + ".receipt_timeout_s", 1, 259200, "s; receipts come within 72 h")) {
               p.receipt_timeout_s = *n;
             }
           }},
      });
  if (!has_name)
    c.add(item.Mark(), path + ": missing 'name' (a unique name such as aliyun-main, used in logs and metrics)");
  if (!has_kind) c.add(item.Mark(), path + ": missing 'kind' (" + join(kSmsKinds, " or ") + ")");
  if (!has_endpoint) {
    c.add(item.Mark(),
          path + ": missing 'endpoint' (e.g. https://dysmsapi.aliyuncs.com or https://sms.tencentcloudapi.com)");
  }
  if (!has_sign_name) c.add(item.Mark(), path + ": missing 'sign_name' (the approved SMS signature, e.g. 商丘中院)");
  if (!has_credentials) {
    c.add(item.Mark(), path +
                           ": missing 'credentials_env' (the prefix of the environment variables holding its keys, "
                           "e.g. SONGDA_ALIYUN)");
  }
  if (!kind_ok) {
    if (batch_max) {
      if (auto n =
              read_int(c, batch_max->first, batch_max->second, path + ".batch_max", 0, 1000, "numbers per request")) {
        p.batch_max = *n;
      }
    }
    return;  // the kind-specific checks need a known kind
  }
  const bool tencent = p.kind == "tencent";
  if (batch_max) {
    const std::string unit = tencent ? "numbers per request: Tencent takes at most 200; 0 = that maximum"
                                     : "numbers per request: Aliyun takes at most 1000; 0 = that maximum";
    if (auto n = read_int(c, batch_max->first, batch_max->second, path + ".batch_max", 0, tencent ? 200 : 1000, unit)) {
      p.batch_max = *n;
    }
  }
  if (tencent) {
    if (!sdk_app_id)
      c.add(item.Mark(), path + ": missing 'sdk_app_id' (kind tencent needs its SmsSdkAppId, e.g. \"1400000000\")");
    if (!has_region) p.region = "ap-guangzhou";
    if (region_value && starts_with(p.region, "cn-")) {
      c.add(region_value->Mark(), path + ".region: '" + p.region +
                                      "' is an Aliyun region; Tencent SMS regions look like ap-guangzhou (the "
                                      "default), ap-beijing or ap-nanjing");
    }
  } else {
    if (sdk_app_id) {
      c.add(sdk_app_id->first.Mark(),
            path + ".sdk_app_id: only used by kind tencent; remove it from this aliyun provider");
    }
    if (params_key) {
      c.add(params_key->Mark(), path +
                                    ".template_params: only used by kind tencent; Aliyun's TemplateParam sends every "
                                    "variable by name, so remove it from this aliyun provider");
    }
  }
  for (const auto& [name_key, code] : codes) {
    const std::string& text = code.Scalar();
    const bool ok = tencent ? all_digits(text) : (starts_with(text, "SMS_") && all_digits(text.substr(4)));
    if (!ok) {
      c.add(code.Mark(), path + ".templates." + name_key.Scalar() + ": '" + utf8_prefix(text, 40) + "' is not " +
                             (tencent ? "a Tencent template ID (digits, e.g. 1234567)"
                                      : "an Aliyun template code (SMS_ and digits, e.g. SMS_123456)") +
                             "; use the code the provider approved for this template");
    }
  }
}

void read_sms(Checker& c, const YAML::Node& key, const YAML::Node& node, SmsConfig& s, ChannelsDraft& draft) {
  walk_map(c, key, node, "channels.sms",
           {
               {"circuit_failures",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "channels.sms.circuit_failures", 1, 1000, "consecutive errors")) {
                    s.circuit_failures = *n;
                  }
                }},
               {"circuit_open_s",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, "channels.sms.circuit_open_s", 1, 3600, "s")) s.circuit_open_s = *n;
                }},
               {"providers",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (v.IsNull()) return;
                  if (!v.IsSequence()) {
                    c.add(where(fk, v),
                          "channels.sms.providers: expected a list of {name, kind, endpoint, sign_name, "
                          "credentials_env, templates, ...}, got " +
                              describe(v));
                    return;
                  }
                  std::vector<YAML::Mark> name_marks;
                  std::size_t index = 0;
                  for (const auto& item : v) {
                    ProviderDraft d;
                    d.path = "channels.sms.providers[" + std::to_string(index++) + "]";
                    d.mark = item.Mark();
                    if (!item.IsMap()) {
                      c.add(item.Mark(),
                            d.path + ": expected a mapping {name, kind, endpoint, ...}, got " + describe(item));
                      continue;
                    }
                    SmsProviderConfig p;
                    YAML::Mark name_mark = item.Mark();
                    read_sms_provider(c, item, d, p, name_mark);
                    for (std::size_t j = 0; j < s.providers.size(); ++j) {
                      if (!p.name.empty() && s.providers[j].name == p.name) {
                        c.add(name_mark, d.path + ".name: duplicate provider name '" + p.name + "' (first at line " +
                                             std::to_string(c.position(name_marks[j]).first) +
                                             "); provider names must be unique");
                        break;
                      }
                    }
                    name_marks.push_back(name_mark);
                    s.providers.push_back(std::move(p));
                    draft.providers.push_back(std::move(d));
                  }
                  const bool any_weight = std::any_of(s.providers.begin(), s.providers.end(),
                                                      [](const SmsProviderConfig& p) { return p.weight > 0; });
                  if (!s.providers.empty() && !any_weight) {
                    c.add(fk.Mark(),
                          "channels.sms.providers: every provider has weight 0, so none would get any "
                          "traffic; give at least one a weight above 0");
                  }
                }},
           });
}

bool valid_wechat_app_id(std::string_view s) {
  return s.size() == 18 && starts_with(s, "wx") && std::all_of(s.begin() + 2, s.end(), [](char ch) {
           return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
         });
}

// WeChat data keys are a type and a number: thing1, time3, character_string2.
bool valid_wechat_field_key(std::string_view key) {
  std::size_t digits = 0;
  while (digits < key.size() && key[key.size() - 1 - digits] >= '0' && key[key.size() - 1 - digits] <= '9') ++digits;
  const std::string_view type = key.substr(0, key.size() - digits);
  return digits > 0 && !type.empty() && type.front() != '_' && type.back() != '_' &&
         std::all_of(type.begin(), type.end(), [](char ch) { return (ch >= 'a' && ch <= 'z') || ch == '_'; });
}

// The text of a field with its well-formed {{placeholders}} taken out.
std::string strip_placeholders(const std::string& s, bool& had_placeholder) {
  std::string out;
  std::size_t i = 0;
  had_placeholder = false;
  while (i < s.size()) {
    const std::size_t open = s.find("{{", i);
    if (open == std::string::npos) break;
    const std::size_t close = s.find("}}", open + 2);
    if (close == std::string::npos) break;
    out += s.substr(i, open - i);
    had_placeholder = true;
    i = close + 2;
  }
  out += s.substr(std::min(i, s.size()));
  return out;
}

struct WechatFieldDraft {
  std::string path;
  std::string key;
  YAML::Node value;
};

void read_wechat_template(Checker& c, const YAML::Node& name_key, const YAML::Node& node, WechatTemplateConfig& t,
                          std::vector<WechatFieldDraft>& fields) {
  const std::string path = "channels.wechat.templates." + name_key.Scalar();
  std::tie(t.line, t.column) = c.position(name_key.Mark());
  bool has_template_id = false;
  bool has_fields = false;
  const bool is_map = walk_map(
      c, name_key, node, path,
      {
          {"template_id",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             has_template_id = true;
             auto s = read_string(c, fk, v, path + ".template_id");
             if (!s) return;
             const bool ok = std::all_of(s->begin(), s->end(), [](char ch) {
               return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                      ch == '-';
             });
             if (!ok) {
               c.add(v.Mark(), path + ".template_id: '" + utf8_prefix(*s, 50) +
                                   "' is not a WeChat template id (letters, digits, '_' and '-', as shown in the "
                                   "WeChat admin console)");
               return;
             }
             t.template_id = *s;
           }},
          {"page",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             auto s = read_string(c, fk, v, path + ".page", false);
             if (!s) return;
             if (s->find_first_of(" \t\r\n") != std::string::npos || starts_with(*s, "http")) {
               c.add(v.Mark(), path + ".page: expected a mini-program page path such as pages/notice/index, got '" +
                                   utf8_prefix(*s, 50) + "'");
               return;
             }
             t.page = *s;
           }},
          {"fields",
           [&](const YAML::Node& fk, const YAML::Node& v) {
             has_fields = true;
             if (v.IsNull() || (v.IsMap() && v.size() == 0)) {
               c.add(where(fk, v), path +
                                       ".fields: a WeChat template needs at least one field, e.g. {thing1: "
                                       "\"{{court_name}}\"}");
               return;
             }
             if (!v.IsMap()) {
               c.add(where(fk, v), path +
                                       ".fields: expected a mapping of WeChat data key: text (e.g. {thing1: "
                                       "\"{{court_name}}\"}), got " +
                                       describe(v));
               return;
             }
             std::set<std::string> seen;
             for (const auto& kv : v) {
               if (!kv.first.IsScalar()) {
                 c.add(kv.first.Mark(), path + ".fields: keys must be WeChat data keys, got " + describe(kv.first));
                 continue;
               }
               const std::string& field = kv.first.Scalar();
               if (is_secret_key(field)) continue;  // reported by find_secrets
               const std::string field_path = cat(path, ".fields.", field);
               if (!seen.insert(field).second) {
                 c.add(kv.first.Mark(), cat("duplicate key '", field, "' in ", path, ".fields; keep one"));
                 continue;
               }
               if (!valid_wechat_field_key(field)) {
                 c.add(kv.first.Mark(), field_path +
                                            ": not a WeChat data key; keys are the field's type and number as the "
                                            "template shows them, e.g. thing1, time3, character_string2");
                 continue;
               }
               auto s = read_string(c, kv.first, kv.second, field_path);
               if (!s) continue;
               check_placeholders(c, kv.second, field_path);
               t.fields[field] = *s;
               fields.push_back(WechatFieldDraft{field_path, field, kv.second});
             }
           }},
      });
  if (is_map && !has_template_id) {
    c.add(name_key.Mark(), path + ": missing 'template_id' (the id WeChat gave the template, from the admin console)");
  }
  if (is_map && !has_fields) {
    c.add(name_key.Mark(), path + ": missing 'fields' (WeChat data key: text, e.g. {thing1: \"{{court_name}}\"})");
  }
}

// The field length and line-break rules, on what the loader can see: the whole text when it
// has no placeholders, else the literal part (the filled-in value is checked again at send time).
void check_wechat_fields(Checker& c, const std::vector<WechatFieldDraft>& fields, const std::string& kind) {
  for (const auto& f : fields) {
    const std::string& text = f.value.Scalar();
    bool had_placeholder = false;
    const std::string literal = strip_placeholders(text, had_placeholder);
    if (literal.find("{{") != std::string::npos || literal.find("}}") != std::string::npos) continue;  // reported
    if (had_placeholder && literal.empty()) continue;
    const Status st = kind == "mini_program" ? wechat::check_subscribe_field(f.key, literal)
                                             : wechat::check_template_field(f.key, literal);
    if (st.ok()) continue;
    if (had_placeholder) {
      c.add(f.value.Mark(), f.path + ": the text around the placeholders alone breaks the rule: " + st.error().message +
                                " (the value with the placeholders filled in is checked at send "
                                "time)");
    } else {
      c.add(f.value.Mark(), f.path + ": " + st.error().message);
    }
  }
}

void read_wechat(Checker& c, const YAML::Node& key, const YAML::Node& node, WechatConfig& w, ChannelsDraft& draft) {
  draft.wechat_key = key.Mark();
  const std::string path = "channels.wechat";
  bool has_app_id = false;
  std::vector<WechatFieldDraft> fields;
  walk_map(c, key, node, path,
           {
               {"enabled",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto b = read_bool(c, fk, v, path + ".enabled")) w.enabled = *b;
                }},
               {"kind",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto s = read_choice(c, fk, v, path + ".kind", kWechatKinds, "WeChat kind")) w.kind = *s;
                }},
               {"app_id",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  has_app_id = true;
                  auto s = read_string(c, fk, v, path + ".app_id");
                  if (!s) return;
                  if (!valid_wechat_app_id(*s)) {
                    c.add(v.Mark(), path + ".app_id: '" + utf8_prefix(*s, 40) +
                                        "' is not a WeChat AppID (wx and 16 hexadecimal digits, e.g. "
                                        "wx0123456789abcdef)");
                    return;
                  }
                  w.app_id = *s;
                }},
               {"endpoint",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto s = read_endpoint(c, fk, v, path + ".endpoint", "https://api.weixin.qq.com"))
                    w.endpoint = *s;
                }},
               {"credentials_env",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto s = read_env_prefix(c, fk, v, path + ".credentials_env")) w.credentials_env = *s;
                }},
               {"concurrency",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, path + ".concurrency", 1, 256, "requests in flight"))
                    w.concurrency = *n;
                }},
               {"rate_per_sec",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto r = read_rate(c, fk, v, path + ".rate_per_sec")) w.rate_per_sec = *r;
                }},
               {"timeout_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, path + ".timeout_ms", 1, 600000, "ms")) w.timeout_ms = *n;
                }},
               {"templates",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  draft.wechat_templates_key = fk.Mark();
                  draft.wechat_templates_readable = read_named_map(
                      c, fk, v, path + ".templates", "a mapping of songda template name: {template_id, page, fields}",
                      [&](const YAML::Node& nk, const YAML::Node& tv) {
                        draft.wechat_template_names.push_back(NamedMark{nk.Scalar(), nk.Mark()});
                        WechatTemplateConfig t;
                        read_wechat_template(c, nk, tv, t, fields);
                        w.templates[nk.Scalar()] = std::move(t);
                      });
                }},
           });
  if (w.enabled && !has_app_id) {
    c.add(key.Mark(), path + ": enabled, but app_id is missing (the account's AppID, e.g. wx0123456789abcdef)");
  }
  check_wechat_fields(c, fields, w.kind);
}

bool valid_email_address(std::string_view s) {
  const std::size_t at = s.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= s.size() || s.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  const std::string_view local = s.substr(0, at);
  const std::string_view domain = s.substr(at + 1);
  const bool local_ok = std::all_of(local.begin(), local.end(), [](char ch) {
    const auto u = static_cast<unsigned char>(ch);
    return u > 0x20 && u < 0x7F && std::string_view("<>()[]\\,;:\"").find(ch) == std::string_view::npos;
  });
  const bool domain_ok = domain.front() != '.' && domain.back() != '.' && domain.front() != '-' &&
                         std::all_of(domain.begin(), domain.end(), [](char ch) {
                           return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                                  ch == '.' || ch == '-';
                         });
  return local_ok && domain_ok;
}

void read_email(Checker& c, const YAML::Node& key, const YAML::Node& node, EmailConfig& e) {
  const std::string path = "channels.email";
  std::optional<YAML::Node> url_value;
  std::optional<YAML::Node> starttls_value;
  walk_map(c, key, node, path,
           {
               {"enabled",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto b = read_bool(c, fk, v, path + ".enabled")) e.enabled = *b;
                }},
               {"smtp_url",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  auto s = read_string(c, fk, v, path + ".smtp_url");
                  if (!s) return;
                  const auto url = parse_url(trim(*s));
                  if (!url || (url->scheme != "smtp" && url->scheme != "smtps")) {
                    c.add(v.Mark(), path + ".smtp_url: expected smtp://host:587 (STARTTLS) or smtps://host:465, got '" +
                                        utf8_prefix(*s, 60) + "'");
                    return;
                  }
                  e.smtp_url = std::string(trim(*s));
                  url_value = v;
                }},
               {"starttls",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto s = read_choice(c, fk, v, path + ".starttls", kStarttlsModes, "starttls mode")) {
                    e.starttls = *s;
                    starttls_value = v;
                  }
                }},
               {"from",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  auto s = read_string(c, fk, v, path + ".from");
                  if (!s) return;
                  if (!valid_email_address(trim(*s))) {
                    c.add(v.Mark(), path + ".from: '" + utf8_prefix(*s, 60) +
                                        "' is not an email address; write the bare address (e.g. "
                                        "noreply@court.example) and the display name in from_name");
                    return;
                  }
                  e.from = std::string(trim(*s));
                }},
               {"from_name",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  auto s = read_string(c, fk, v, path + ".from_name", false);
                  if (!s) return;
                  if (has_line_break(*s) || std::any_of(s->begin(), s->end(), [](char ch) {
                        return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7F;
                      })) {
                    c.add(v.Mark(), path +
                                        ".from_name: must be one line without control characters (it becomes the "
                                        "From header)");
                    return;
                  }
                  e.from_name = *s;
                }},
               {"credentials_env",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto s = read_env_prefix(c, fk, v, path + ".credentials_env")) e.credentials_env = *s;
                }},
               {"ca_file",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto s = read_string(c, fk, v, path + ".ca_file", false)) e.ca_file = *s;
                }},
               {"concurrency",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, path + ".concurrency", 1, 256, "connections")) e.concurrency = *n;
                }},
               {"rate_per_sec",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto r = read_rate(c, fk, v, path + ".rate_per_sec")) e.rate_per_sec = *r;
                }},
               {"timeout_ms",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_int(c, fk, v, path + ".timeout_ms", 1, 600000, "ms")) e.timeout_ms = *n;
                }},
           });
  const auto url = parse_url(e.smtp_url);
  if (!url) return;
  if (url_value && !url->userinfo.empty()) {
    const std::string vars = e.credentials_env + "_USER and " + e.credentials_env + "_PASSWORD";
    if (url->userinfo.find(':') != std::string::npos) {
      c.add(url_value->Mark(), path + ".smtp_url: contains a password; secrets do not belong in YAML; set " + vars +
                                   " in the environment");
    } else {
      c.add(url_value->Mark(), path + ".smtp_url: the user name belongs in " + e.credentials_env +
                                   "_USER in the environment, not in the URL");
    }
  }
  // Only for a channel that sends (a disabled one may keep an old setting).
  if (e.enabled && e.starttls == "optional" && url->scheme == "smtp" && !is_loopback_host(url->host) &&
      starttls_value) {
    c.add(starttls_value->Mark(),
          path + ".starttls: 'optional' sends mail to " + url->host +
              " in clear text whenever STARTTLS is not offered, and anyone on the way can remove the offer; use "
              "required, or smtps:// on port 465");
  }
  if (e.starttls == "none" && url->scheme == "smtp" && !is_loopback_host(url->host) && starttls_value) {
    c.add(starttls_value->Mark(),
          path + ".starttls: 'none' would send mail to " + url->host +
              " in clear text, so parties' personal data and the SMTP password could be read on the way; it is "
              "only allowed for a test server on loopback (127.0.0.1, localhost, ::1); use required, or smtps:// "
              "on port 465");
  }
}

void read_channels(Checker& c, const YAML::Node& key, const YAML::Node& node, ChannelsConfig& ch,
                   ChannelsDraft& draft) {
  walk_map(c, key, node, "channels",
           {
               {"sms", [&](const YAML::Node& k, const YAML::Node& v) { read_sms(c, k, v, ch.sms, draft); }},
               {"wechat", [&](const YAML::Node& k, const YAML::Node& v) { read_wechat(c, k, v, ch.wechat, draft); }},
               {"email", [&](const YAML::Node& k, const YAML::Node& v) { read_email(c, k, v, ch.email); }},
           });
}

void read_quiet_hours(Checker& c, const YAML::Node& key, const YAML::Node& node, QuietHoursConfig& q) {
  const std::string path = "quiet_hours";
  std::optional<YAML::Node> clock_value;  // the later of start and end as written
  int start_minute = parse_clock(q.start).value_or(-1);
  int end_minute = parse_clock(q.end).value_or(-2);
  std::optional<YAML::Node> channels_value;
  auto clock = [&](std::string_view name, std::string& text, int& minute) {
    return Field{name, [&c, &text, &minute, &clock_value, path, name](const YAML::Node& fk, const YAML::Node& v) {
                   const std::string field_path = path + "." + std::string(name);
                   auto s = read_string(c, fk, v, field_path);
                   if (!s) return;
                   const auto m = parse_clock(*s);
                   if (!m) {
                     c.add(v.Mark(), field_path +
                                         ": expected a time of day HH:MM (00:00..23:59, court's local time), "
                                         "got '" +
                                         utf8_prefix(*s, 40) + "'");
                     return;
                   }
                   minute = *m;
                   text = clock_text(*m);
                   clock_value = v;
                 }};
  };
  walk_map(c, key, node, path,
           {
               {"enabled",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto b = read_bool(c, fk, v, path + ".enabled")) q.enabled = *b;
                }},
               clock("start", q.start, start_minute),
               clock("end", q.end, end_minute),
               {"utc_offset",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  auto s = read_string(c, fk, v, path + ".utc_offset");
                  if (!s) return;
                  const auto m = parse_utc_offset(*s);
                  if (!m) {
                    c.add(v.Mark(), path +
                                        ".utc_offset: expected ±HH:MM between -12:00 and +14:00 (e.g. \"+08:00\" "
                                        "for China), got '" +
                                        utf8_prefix(*s, 40) + "'");
                    return;
                  }
                  q.utc_offset_minutes = *m;
                }},
               {"channels",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  auto list = read_string_list(c, fk, v, path + ".channels");
                  if (!list) return;
                  channels_value = v.IsNull() ? fk : v;
                  std::vector<std::string> channels;
                  for (const auto& item : *list) {
                    if (!contains(kChannels, item.text)) {
                      c.add(item.mark, path + ".channels: unknown channel '" + item.text +
                                           "'; allowed: " + join(kChannels) + did_you_mean(item.text, kChannels));
                    } else if (contains(channels, item.text)) {
                      c.add(item.mark, path + ".channels: channel '" + item.text + "' is listed twice");
                    } else {
                      channels.push_back(item.text);
                    }
                  }
                  q.channels = std::move(channels);
                }},
           });
  if (start_minute == end_minute && clock_value) {
    c.add(clock_value->Mark(), path + ": start and end are both " + q.start +
                                   ", which leaves no quiet time; change one, or set enabled: false");
  }
  if (q.enabled && q.channels.empty() && channels_value) {
    c.add(channels_value->Mark(), path +
                                      ".channels: enabled, but no channel keeps quiet; name at least one (e.g. "
                                      "[sms]) or set enabled: false");
  }
}

struct RouteDraft {
  RouteConfig route;
  std::string path;
  YAML::Mark mark;
  YAML::Mark template_mark;
  std::vector<YAML::Mark> channel_marks;  // parallel to route.channels
  bool event_ok = false;
};

struct FallbackDraft {
  FallbackConfig fallback;
  std::string path;
  YAML::Mark mark;
  std::optional<YAML::Mark> from_mark;  // set when `from` names a known channel
  std::optional<YAML::Mark> to_mark;
  bool complete = false;  // from, to and unless all read
};

std::optional<FallbackDraft> read_fallback(Checker& c, const YAML::Node& item, const std::string& path) {
  FallbackDraft d;
  d.path = path;
  d.mark = item.Mark();
  FallbackConfig& f = d.fallback;
  std::tie(f.line, f.column) = c.position(item.Mark());
  if (!item.IsMap()) {
    c.add(item.Mark(), path +
                           ": expected a mapping {from, to, unless, after} (e.g. {from: wechat, to: sms, unless: "
                           "DELIVERED, after: 10m}), got " +
                           describe(item));
    return std::nullopt;
  }
  bool has_from = false;
  bool has_to = false;
  bool has_unless = false;
  bool unless_ok = false;
  auto channel = [&](std::string_view name, std::string& out, std::optional<YAML::Mark>& mark, bool& seen) {
    return Field{name, [&c, &out, &mark, &seen, path, name](const YAML::Node& fk, const YAML::Node& v) {
                   seen = true;
                   if (auto s = read_choice(c, fk, v, path + "." + std::string(name), kChannels, "channel")) {
                     out = *s;
                     mark = v.Mark();
                   }
                 }};
  };
  walk_map(c, item, item, path,
           {
               channel("from", f.from, d.from_mark, has_from),
               channel("to", f.to, d.to_mark, has_to),
               {"unless",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  has_unless = true;
                  if (auto s = read_choice(c, fk, v, path + ".unless", kReceiptStates, "receipt state")) {
                    f.unless = *s;
                    unless_ok = true;
                  }
                }},
               {"after",
                [&](const YAML::Node& fk, const YAML::Node& v) {
                  if (auto n = read_duration(c, fk, v, path + ".after", 1, 30 * 86400)) f.after_s = *n;
                }},
           });
  if (!has_from) c.add(item.Mark(), path + ": missing 'from' (the channel whose receipt is awaited)");
  if (!has_to) c.add(item.Mark(), path + ": missing 'to' (the channel to send on when it does not come)");
  if (!has_unless) c.add(item.Mark(), path + ": missing 'unless' (" + join(kReceiptStates) + ")");
  d.complete = d.from_mark && d.to_mark && unless_ok;
  return d;
}

// A route's fallbacks, checked against its channels once both are read.
void check_fallbacks(Checker& c, const std::vector<FallbackDraft>& fallbacks, RouteConfig& r, bool channels_known) {
  for (std::size_t i = 0; i < fallbacks.size(); ++i) {
    const FallbackDraft& d = fallbacks[i];
    bool ok = d.complete;
    if (channels_known) {
      for (const auto& [name, value, mark] :
           {std::tuple{"from", d.fallback.from, d.from_mark}, std::tuple{"to", d.fallback.to, d.to_mark}}) {
        if (mark && !contains(r.channels, value)) {
          c.add(*mark, d.path + "." + name + ": '" + value + "' is not one of this route's channels (" +
                           join(r.channels) + "); a fallback moves between the route's own channels");
          ok = false;
        }
      }
    }
    if (d.from_mark && d.to_mark && d.fallback.from == d.fallback.to) {
      c.add(*d.to_mark,
            d.path + ".to: same channel as from ('" + d.fallback.from + "'); a fallback sends on another channel");
      ok = false;
    }
    if (!ok) continue;
    const auto twin = std::find_if(r.fallback.begin(), r.fallback.end(), [&](const FallbackConfig& f) {
      return f.from == d.fallback.from && f.to == d.fallback.to;
    });
    if (twin != r.fallback.end()) {
      c.add(d.mark, d.path + ": " + d.fallback.from + " -> " + d.fallback.to + " is already a fallback (line " +
                        std::to_string(twin->line) + "); keep one");
      continue;
    }
    r.fallback.push_back(d.fallback);
  }
}

void read_routes(Checker& c, const YAML::Node& key, const YAML::Node& node, std::vector<RouteDraft>& drafts) {
  if (node.IsNull()) return;
  if (!node.IsSequence()) {
    c.add(where(key, node),
          "routes: expected a list of {event, roles, channels, template, urgent}, got " + describe(node));
    return;
  }
  std::size_t index = 0;
  for (const auto& item : node) {
    RouteDraft d;
    d.path = "routes[" + std::to_string(index++) + "]";
    d.mark = item.Mark();
    std::tie(d.route.line, d.route.column) = c.position(item.Mark());
    if (!item.IsMap()) {
      c.add(item.Mark(), d.path + ": expected a mapping {event, roles, channels, template, urgent, fallback}, got " +
                             describe(item));
      continue;
    }
    bool has_event = false;
    bool has_channels = false;
    bool channels_read = false;
    bool has_template = false;
    std::vector<FallbackDraft> fallbacks;
    RouteConfig& r = d.route;
    walk_map(c, item, item, d.path,
             {
                 {"event",
                  [&](const YAML::Node& fk, const YAML::Node& v) {
                    has_event = true;
                    auto s = read_string(c, fk, v, d.path + ".event");
                    if (!s) return;
                    if (!contains(kEventTypes, *s)) {
                      c.add(v.Mark(), d.path + ".event: unknown event type '" + *s +
                                          "'; allowed: " + join(kEventTypes) + did_you_mean(*s, kEventTypes));
                      return;
                    }
                    r.event_type = *s;
                    d.event_ok = true;
                  }},
                 {"roles",
                  [&](const YAML::Node& fk, const YAML::Node& v) {
                    auto list = read_string_list(c, fk, v, d.path + ".roles");
                    if (!list) return;
                    for (const auto& role : *list) {
                      if (!contains(kRoles, role.text)) {
                        c.add(role.mark, d.path + ".roles: unknown role '" + role.text + "'; allowed: " + join(kRoles) +
                                             did_you_mean(role.text, kRoles));
                      } else if (contains(r.roles, role.text)) {
                        c.add(role.mark, d.path + ".roles: role '" + role.text + "' is listed twice");
                      } else {
                        r.roles.push_back(role.text);
                      }
                    }
                  }},
                 {"channels",
                  [&](const YAML::Node& fk, const YAML::Node& v) {
                    has_channels = true;
                    auto list = read_string_list(c, fk, v, d.path + ".channels");
                    if (!list) return;
                    channels_read = true;
                    if (list->empty()) {
                      c.add(where(fk, v),
                            d.path + ".channels: a route needs at least one channel (" + join(kChannels) + ")");
                    }
                    for (const auto& channel : *list) {
                      if (!contains(kChannels, channel.text)) {
                        c.add(channel.mark, d.path + ".channels: unknown channel '" + channel.text + "'; allowed: " +
                                                join(kChannels) + did_you_mean(channel.text, kChannels));
                      } else if (contains(r.channels, channel.text)) {
                        c.add(channel.mark, d.path + ".channels: channel '" + channel.text + "' is listed twice");
                      } else {
                        r.channels.push_back(channel.text);
                        d.channel_marks.push_back(channel.mark);
                      }
                    }
                  }},
                 {"template",
                  [&](const YAML::Node& fk, const YAML::Node& v) {
                    has_template = true;
                    d.template_mark = v.Mark();
                    if (auto s = read_string(c, fk, v, d.path + ".template")) r.template_name = *s;
                  }},
                 {"urgent",
                  [&](const YAML::Node& fk, const YAML::Node& v) {
                    if (auto b = read_bool(c, fk, v, d.path + ".urgent")) r.urgent = *b;
                  }},
                 {"fallback",
                  [&](const YAML::Node& fk, const YAML::Node& v) {
                    if (v.IsNull()) return;
                    if (!v.IsSequence()) {
                      c.add(where(fk, v),
                            d.path + ".fallback: expected a list of {from, to, unless, after}, got " + describe(v));
                      return;
                    }
                    std::size_t i = 0;
                    for (const auto& fallback : v) {
                      auto f = read_fallback(c, fallback, d.path + ".fallback[" + std::to_string(i++) + "]");
                      if (f) fallbacks.push_back(std::move(*f));
                    }
                  }},
             });
    check_fallbacks(c, fallbacks, r, channels_read);
    if (!has_event) c.add(item.Mark(), d.path + ": missing 'event' (one of " + join(kEventTypes) + ")");
    if (!has_channels) c.add(item.Mark(), d.path + ": a route needs at least one channel; add channels: [inapp, …]");
    if (!has_template) c.add(item.Mark(), d.path + ": missing 'template' (the name of an entry under templates)");
    drafts.push_back(std::move(d));
  }
}

// Checks that need the whole file: templates named by routes exist; no two routes claim the same recipients.
void cross_check(Checker& c, const std::vector<RouteDraft>& drafts,
                 const std::map<std::string, TemplateConfig>& templates) {
  std::vector<std::string> names;
  names.reserve(templates.size());
  for (const auto& [name, t] : templates) names.push_back(name);
  for (std::size_t i = 0; i < drafts.size(); ++i) {
    const RouteDraft& d = drafts[i];
    if (!d.route.template_name.empty() && templates.find(d.route.template_name) == templates.end()) {
      std::string message = d.path + ".template: no template named '" + d.route.template_name + "'";
      const std::string hint = did_you_mean(d.route.template_name, names);
      message += hint.empty() ? "; define it under templates" : hint;
      c.add(d.template_mark, message);
    }
    if (!d.event_ok) continue;
    for (std::size_t j = 0; j < i; ++j) {
      const RouteDraft& e = drafts[j];
      if (!e.event_ok || e.route.event_type != d.route.event_type) continue;
      std::string overlap;
      if (d.route.roles.empty() || e.route.roles.empty()) {
        overlap =
            d.route.roles.empty() ? (e.route.roles.empty() ? "any" : e.route.roles.front()) : d.route.roles.front();
      } else {
        for (const auto& role : d.route.roles) {
          if (contains(e.route.roles, role)) {
            overlap = role;
            break;
          }
        }
      }
      if (!overlap.empty()) {
        c.add(d.mark, d.path + ": '" + d.route.event_type + "' for role '" + overlap + "' is already routed by " +
                          e.path + " (line " + std::to_string(e.route.line) + "); give each role one route");
        break;
      }
    }
  }
}

// Checks between channels, templates and routes: every template a provider or WeChat maps exists;
// every channel a route uses is configured; every template sent on SMS has a code in every
// provider, and every template sent on WeChat a WeChat template.
void cross_check_channels(Checker& c, const std::vector<RouteDraft>& drafts, const Config& config,
                          const ChannelsDraft& draft) {
  std::vector<std::string> names;
  names.reserve(config.templates.size());
  for (const auto& [name, t] : config.templates) names.push_back(name);
  auto check_known = [&](const std::string& path, const std::vector<NamedMark>& mapped) {
    for (const auto& m : mapped) {
      if (config.templates.count(m.name) != 0) continue;
      std::string message = path + "." + m.name + ": no template named '" + m.name + "'";
      const std::string hint = did_you_mean(m.name, names);
      message += hint.empty() ? "; define it under templates or remove this entry" : hint;
      c.add(m.mark, std::move(message));
    }
  };
  for (std::size_t i = 0; i < draft.providers.size(); ++i) {
    const ProviderDraft& d = draft.providers[i];
    const SmsProviderConfig& p = config.channels.sms.providers[i];
    check_known(d.path + ".templates", d.template_names);
    check_known(d.path + ".template_params", d.param_names);
    for (const auto& m : d.param_names) {
      if (p.kind != "tencent" || config.templates.count(m.name) == 0 || p.templates.count(m.name) != 0) continue;
      c.add(m.mark, cat(d.path, ".template_params.", m.name, ": provider ", p.name, " has no template code for '",
                        m.name, "' under templates; add one or remove these parameters"));
    }
  }
  check_known("channels.wechat.templates", draft.wechat_template_names);

  const ChannelsConfig& ch = config.channels;
  // Templates sent on a channel, in the order routes first use them, with the routes that do.
  std::vector<std::pair<std::string, std::vector<std::string>>> sms_templates;
  std::vector<std::pair<std::string, std::vector<std::string>>> wechat_templates;
  auto note = [](std::vector<std::pair<std::string, std::vector<std::string>>>& list, const std::string& name,
                 const std::string& route) {
    auto it = std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.first == name; });
    if (it == list.end()) it = list.insert(list.end(), {name, {}});
    it->second.push_back(route);
  };
  for (const RouteDraft& d : drafts) {
    const std::string route = d.event_ok ? "route " + d.route.event_type : d.path;
    const bool template_ok = config.templates.count(d.route.template_name) != 0;
    for (std::size_t i = 0; i < d.route.channels.size(); ++i) {
      const std::string& channel = d.route.channels[i];
      const YAML::Mark& mark = d.channel_marks[i];
      const std::string at = cat(d.path, ".channels: ", route, " uses ", channel);
      if (channel == "sms") {
        if (ch.sms.providers.empty()) {
          c.add(mark, at + ", but channels.sms has no providers; add one under channels.sms.providers or take sms "
                           "off this route");
        } else if (template_ok) {
          note(sms_templates, d.route.template_name, d.event_ok ? d.route.event_type : d.path);
        }
      } else if (channel == "wechat") {
        if (!ch.wechat.enabled) {
          c.add(mark, at + ", but channels.wechat is not enabled; set channels.wechat.enabled: true (with app_id "
                           "and templates) or take wechat off this route");
        } else if (template_ok) {
          note(wechat_templates, d.route.template_name, d.event_ok ? d.route.event_type : d.path);
        }
      } else if (channel == "email" && !ch.email.enabled) {
        c.add(mark, at + ", but channels.email is not enabled; set channels.email.enabled: true or take email off "
                         "this route");
      }
    }
  }
  auto which = [](const std::vector<std::string>& routes, std::string_view channel) {
    return (routes.size() == 1 ? "which route " + routes.front() + " sends by "
                               : "which routes " + join(routes) + " send by ") +
           std::string(channel);
  };
  for (std::size_t i = 0; i < ch.sms.providers.size(); ++i) {
    const SmsProviderConfig& p = ch.sms.providers[i];
    const ProviderDraft& d = draft.providers[i];
    const std::string name = p.name.empty() ? d.path : p.name;
    if (!d.templates_readable) continue;
    for (const auto& [template_name, routes] : sms_templates) {
      if (p.templates.count(template_name) != 0) continue;
      c.add(d.templates_key.value_or(d.mark), cat(d.path, ".templates: provider ", name, " has no template code for '",
                                                  template_name, "', ", which(routes, "sms")));
    }
  }
  for (const auto& [template_name, routes] : wechat_templates) {
    if (ch.wechat.templates.count(template_name) != 0 || !draft.wechat_templates_readable) continue;
    c.add(draft.wechat_templates_key.value_or(draft.wechat_key.value_or(YAML::Mark::null_mark())),
          cat("channels.wechat.templates: no WeChat template for '", template_name, "', ", which(routes, "wechat"),
              "; add channels.wechat.templates.", template_name));
  }
}

std::string parser_hint(const std::string& msg) {
  if (msg.find("illegal map value") != std::string::npos) {
    return " (is there a ': ' inside an unquoted text? put the text in quotes)";
  }
  if (msg.find("end of map flow not found") != std::string::npos ||
      msg.find("end of sequence flow not found") != std::string::npos) {
    return " (a bracket is not closed; text that starts with '{{' or '[' must be in quotes)";
  }
  if (msg.find("end of map not found") != std::string::npos) {
    return " (check the indentation and quotes here; text that starts with '{{' must be in quotes)";
  }
  return "";
}

}  // namespace

std::string ConfigIssue::to_string() const {
  if (line <= 0) return file + ": " + message;
  if (column <= 0) return file + ":" + std::to_string(line) + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

ConfigLoad load_config_text(const std::string& yaml, const std::string& file_name) {
  ConfigLoad out;
  std::string_view text = yaml;
  if (starts_with(text, "\xEF\xBB\xBF")) text.remove_prefix(3);  // a UTF-8 byte-order mark is harmless
  Checker c(file_name, text);

  if (!is_valid_utf8(text)) {
    const std::size_t bad = first_invalid_utf8(text);
    c.add_at(bad == std::string_view::npos ? 0 : bad,
             "the file is not valid UTF-8; save it as UTF-8 (templates hold Chinese text)");
    out.issues = c.take_issues();
    return out;
  }

  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::ParserException& e) {
    c.add(e.mark, "YAML syntax error: " + e.msg + parser_hint(e.msg));
    out.issues = c.take_issues();
    return out;
  } catch (const YAML::Exception& e) {
    c.add(e.mark, "YAML error: " + e.msg);
    out.issues = c.take_issues();
    return out;
  }

  Config config;
  config.source = file_name;
  if (root.IsNull()) {  // an empty file: every default applies
    out.config = std::move(config);
    return out;
  }
  c.index_nodes(root);
  c.finish_index();
  find_secrets(c, root, "", "");

  std::vector<RouteDraft> drafts;
  ChannelsDraft channels;
  walk_map(
      c, root, root, "",
      {
          {"kafka", [&](const YAML::Node& k, const YAML::Node& v) { read_kafka(c, k, v, config.kafka); }},
          {"redis", [&](const YAML::Node& k, const YAML::Node& v) { read_redis(c, k, v, config.redis); }},
          {"http", [&](const YAML::Node& k, const YAML::Node& v) { read_http(c, k, v, config.http); }},
          {"dispatch", [&](const YAML::Node& k, const YAML::Node& v) { read_dispatch(c, k, v, config.dispatch); }},
          {"channels",
           [&](const YAML::Node& k, const YAML::Node& v) { read_channels(c, k, v, config.channels, channels); }},
          {"quiet_hours",
           [&](const YAML::Node& k, const YAML::Node& v) { read_quiet_hours(c, k, v, config.quiet_hours); }},
          {"templates", [&](const YAML::Node& k, const YAML::Node& v) { read_templates(c, k, v, config.templates); }},
          {"routes", [&](const YAML::Node& k, const YAML::Node& v) { read_routes(c, k, v, drafts); }},
      });
  cross_check(c, drafts, config.templates);
  cross_check_channels(c, drafts, config, channels);

  if (c.has_issues()) {
    out.issues = c.take_issues();
    return out;
  }
  config.routes.reserve(drafts.size());
  for (auto& d : drafts) config.routes.push_back(std::move(d.route));
  out.config = std::move(config);
  return out;
}

ConfigLoad load_config_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return ConfigLoad{std::nullopt,
                      {ConfigIssue{path, 0, 0,
                                   "cannot read the config file: it is a directory; "
                                   "pass the YAML file itself (e.g. config/gateway.yaml)"}}};
  }
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const std::string reason = errno != 0 ? std::generic_category().message(errno) : "cannot open";
    return ConfigLoad{
        std::nullopt,
        {ConfigIssue{path, 0, 0, "cannot read the config file: " + reason + "; check the path and its permissions"}}};
  }
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) {
    return ConfigLoad{std::nullopt, {ConfigIssue{path, 0, 0, "cannot read the config file: read error"}}};
  }
  return load_config_text(content.str(), path);
}

void apply_env_overrides(Config& config, const std::function<const char*(const char*)>& getenv) {
  auto apply = [&getenv](const char* name, std::string& target) {
    const char* value = getenv(name);
    if (value != nullptr && *value != '\0') target = value;
  };
  apply("SONGDA_KAFKA_BROKERS", config.kafka.brokers);
  apply("SONGDA_REDIS_URL", config.redis.url);
  apply("SONGDA_HTTP_LISTEN", config.http.listen);
  apply("SONGDA_PUBLIC_BASE_URL", config.http.public_base_url);
  for (const auto property : kKafkaSecretProperties) {
    const std::string name = kafka_secret_env(property);
    if (const char* value = getenv(name.c_str()); value != nullptr && *value != '\0') {
      config.kafka.properties[std::string(property)] = value;
    }
  }
}

std::string kafka_secret_env(std::string_view property) { return env_name("kafka", property); }

bool is_kafka_secret(std::string_view property) {
  return std::find(kKafkaSecretProperties.begin(), kKafkaSecretProperties.end(), property) !=
         kKafkaSecretProperties.end();
}

namespace {

// The example config's placeholders (config/gateway.yaml): REPLACE-ME template ids, SMS_ codes of zeros and a
// number, the Tencent SmsSdkAppId 1400000000, the AppID wx0123456789abcdef.
bool is_example_placeholder(std::string_view v) {
  if (starts_with(v, "REPLACE-ME")) return true;
  if (v == "1400000000" || v == "wx0123456789abcdef") return true;
  return starts_with(v, "SMS_00000000") && v.size() <= 13;
}

// A channel that would reach a real provider: its endpoint is not on loopback (where the simulator runs).
bool reaches_a_provider(const std::string& endpoint) {
  const auto url = parse_url(endpoint);
  return url && !is_loopback_host(url->host);
}

}  // namespace

std::vector<std::string> example_placeholders(const Config& c) {
  std::vector<std::string> out;
  const auto note = [&out](const std::string& path, const std::string& value) {
    if (is_example_placeholder(value)) out.push_back(path + ": " + value);
  };
  for (const auto& p : c.channels.sms.providers) {
    if (!reaches_a_provider(p.endpoint)) continue;
    const std::string path = "channels.sms.providers[" + p.name + "]";
    note(path + ".sdk_app_id", p.sdk_app_id);
    for (const auto& [name, code] : p.templates) note(path + ".templates." += name, code);
  }
  const auto& w = c.channels.wechat;
  if (w.enabled && reaches_a_provider(w.endpoint)) {
    note("channels.wechat.app_id", w.app_id);
    for (const auto& [name, t] : w.templates) note("channels.wechat.templates." + name + ".template_id", t.template_id);
  }
  return out;
}

}  // namespace songda
