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
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <system_error>
#include <utility>

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
    const std::size_t d = edit_distance(lower(written), o);
    if (best.empty() || d < best_distance) {
      best = std::string(o);
      best_distance = d;
    }
  }
  const std::size_t limit = std::max<std::size_t>(2, written.size() / 3);
  if (best.empty() || best_distance == 0 || best_distance > limit) return "";
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

std::string secret_message(const std::string& path, std::string_view section, std::string_view key) {
  return path + ": secrets do not belong in YAML; set " + env_name(section, key) +
         " in the environment or point to a file";
}

// Reports every key that looks like it holds a secret, anywhere in the document.
void find_secrets(Checker& c, const YAML::Node& node, const std::string& path, std::string_view section) {
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!kv.first.IsScalar()) continue;
      const std::string& key = kv.first.Scalar();
      std::string child = path;
      if (!child.empty()) child += '.';
      child += key;
      const std::string_view child_section = section.empty() ? std::string_view(key) : section;
      if (is_secret_key(key)) {
        c.add(kv.first.Mark(), secret_message(child, child_section, key));
      } else {
        find_secrets(c, kv.second, child, child_section);
      }
    }
  } else if (node.IsSequence()) {
    std::size_t i = 0;
    for (const auto& item : node) find_secrets(c, item, path + "[" + std::to_string(i++) + "]", section);
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

bool valid_host_port(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (starts_with(text, "[")) {  // [::1]:8080
    const std::size_t close = text.find("]:");
    if (close == std::string_view::npos || close < 2) return false;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return false;  // bare IPv6 needs brackets
  }
  if (host.empty() || port.empty() || port.size() > 5) return false;
  if (std::any_of(host.begin(), host.end(), [](char ch) { return ch == ' ' || ch == '/' || ch == '\t'; })) return false;
  if (!std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return false;
  return std::stoi(std::string(port)) <= 65535;
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
                    c.add(v.Mark(),
                          "redis.url: expected redis://host:port/db, got '" + *s + "'");
                    return;
                  }
                  // redis://user:password@host — the password part is a secret.
                  const std::string_view rest = std::string_view(*s).substr(s->find("://") + 3);
                  const std::string_view authority = rest.substr(0, rest.find('/'));
                  const std::size_t at = authority.rfind('@');
                  if (at != std::string_view::npos && authority.substr(0, at).find(':') != std::string_view::npos) {
                    c.add(v.Mark(),
                          "redis.url: contains a password; secrets do not belong in YAML; set "
                          "SONGDA_REDIS_PASSWORD in the environment or point to a file");
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
                  if (!valid_host_port(*s)) {
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

struct RouteDraft {
  RouteConfig route;
  std::string path;
  YAML::Mark mark;
  YAML::Mark template_mark;
  bool event_ok = false;
};

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
      c.add(item.Mark(),
            d.path + ": expected a mapping {event, roles, channels, template, urgent}, got " + describe(item));
      continue;
    }
    bool has_event = false;
    bool has_channels = false;
    bool has_template = false;
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
             });
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
  walk_map(
      c, root, root, "",
      {
          {"kafka", [&](const YAML::Node& k, const YAML::Node& v) { read_kafka(c, k, v, config.kafka); }},
          {"redis", [&](const YAML::Node& k, const YAML::Node& v) { read_redis(c, k, v, config.redis); }},
          {"http", [&](const YAML::Node& k, const YAML::Node& v) { read_http(c, k, v, config.http); }},
          {"dispatch", [&](const YAML::Node& k, const YAML::Node& v) { read_dispatch(c, k, v, config.dispatch); }},
          {"templates", [&](const YAML::Node& k, const YAML::Node& v) { read_templates(c, k, v, config.templates); }},
          {"routes", [&](const YAML::Node& k, const YAML::Node& v) { read_routes(c, k, v, drafts); }},
      });
  cross_check(c, drafts, config.templates);

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
}

}  // namespace songda
