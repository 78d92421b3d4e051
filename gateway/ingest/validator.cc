#include "gateway/ingest/validator.h"

#include <algorithm>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "gateway/core/json_parse.h"
#include "gateway/core/text.h"

namespace songda {
namespace {

constexpr const char* kKnownTypes[] = {"case.filed",          "summons.issued",    "hearing.scheduled",
                                       "hearing.rescheduled", "hearing.cancelled", "document.served",
                                       "judgment.issued",     "payment.due",       "mediation.invited",
                                       "notice.general",      "notice.broadcast"};

bool known_type(const std::string& t) {
  return std::any_of(std::begin(kKnownTypes), std::end(kKnownTypes), [&](const char* k) { return t == k; });
}

std::string join_path(const std::vector<std::string>& context) {
  std::string out;
  for (const auto& c : context) out += c;
  return out.empty() ? "<root>" : out;
}

// valijson tries "pattern" (and "format") with std::regex, which libstdc++ runs recursively, one stack frame per
// character: a string of some tens of thousands of characters in such a field overflows the stack. That would be a
// crash on one event, and on every instance that takes its partition after it. Those fields are short by nature, so
// each is checked for length first, against its maxLength, at most kPatternedMax, and refused without the regex.
constexpr std::size_t kPatternedMax = 1024;

struct BoundedField {
  std::vector<std::string> path;  // property names; "[]" for every item of an array
  std::size_t max_chars = kPatternedMax;
};

// The schema's fields under "properties" and array "items" that carry a pattern or a format.
void collect_bounded(const nlohmann::json& schema, std::vector<std::string>& path, std::vector<BoundedField>& out) {
  if (!schema.is_object()) return;
  if (schema.contains("pattern") || schema.contains("format")) {
    BoundedField f{path, kPatternedMax};
    if (const auto m = schema.find("maxLength"); m != schema.end() && m->is_number_unsigned()) {
      f.max_chars = std::min(f.max_chars, m->get<std::size_t>());
    }
    out.push_back(std::move(f));
  }
  if (const auto p = schema.find("properties"); p != schema.end() && p->is_object()) {
    for (const auto& [name, sub] : p->items()) {
      path.push_back(name);
      collect_bounded(sub, path, out);
      path.pop_back();
    }
  }
  if (const auto items = schema.find("items"); items != schema.end() && items->is_object()) {
    path.emplace_back("[]");
    collect_bounded(*items, path, out);
    path.pop_back();
  }
}

// The first value at `f`'s path (in `node`, from path[i] on) longer than it may be, as "[a][0][b]"; nullopt if none.
std::optional<std::string> too_long(const nlohmann::json& node, const BoundedField& f, std::size_t i) {
  if (i == f.path.size()) {
    if (node.is_string() && utf8_length(node.get_ref<const std::string&>()) > f.max_chars) return std::string();
    return std::nullopt;
  }
  if (f.path[i] == "[]") {
    if (!node.is_array()) return std::nullopt;
    for (std::size_t k = 0; k < node.size(); ++k) {
      if (auto rest = too_long(node[k], f, i + 1)) return "[" + std::to_string(k) + "]" + *rest;
    }
    return std::nullopt;
  }
  if (!node.is_object()) return std::nullopt;
  const auto it = node.find(f.path[i]);
  if (it == node.end()) return std::nullopt;
  if (auto rest = too_long(*it, f, i + 1)) return "[" + f.path[i] + "]" + *rest;
  return std::nullopt;
}

}  // namespace

struct EventValidator::Impl {
  valijson::Schema schema;
  std::vector<BoundedField> bounded;
};

EventValidator::EventValidator(const std::string& schema_path, std::size_t max_bytes)
    : impl_(std::make_unique<Impl>()), max_bytes_(max_bytes) {
  std::ifstream in(schema_path);
  if (!in)
    throw StartupError(
        "cannot read event schema " + schema_path +
        "; set SONGDA_HOME to the directory that holds schemas/ (the image sets /opt/songda), or run from the "
        "source tree");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto doc = nlohmann::json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded()) throw StartupError("event schema " + schema_path + " is not valid JSON");
  try {
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(doc);
    parser.populateSchema(adapter, impl_->schema);
    std::vector<std::string> path;
    collect_bounded(doc, path, impl_->bounded);
  } catch (const std::exception& e) {
    throw StartupError("event schema " + schema_path + " cannot be compiled: " + e.what());
  }
}

EventValidator::~EventValidator() = default;

std::string EventValidator::default_schema_path() { return resource_path("schemas/case-event.v1.schema.json"); }

Result<CaseEvent> EventValidator::validate(std::string_view bytes) const {
  if (bytes.size() > max_bytes_) {
    return Error::permanent("too_large", "event is " + std::to_string(bytes.size()) + " bytes; the limit is " +
                                             std::to_string(max_bytes_) +
                                             " (kafka.max_event_bytes). Hint: send the document by URL, not inline");
  }
  if (!is_valid_utf8(bytes)) return Error::permanent("invalid_utf8", "event is not valid UTF-8");
  const auto parsed = parse_json_limited(bytes);
  if (parsed.too_deep) {
    return Error::permanent("invalid_json",
                            "event is nested deeper than " + std::to_string(kMaxJsonDepth) + " arrays and objects");
  }
  const nlohmann::json& doc = parsed.value;
  if (doc.is_discarded()) return Error::permanent("invalid_json", "event is not valid JSON");
  if (!doc.is_object()) return Error::permanent("invalid_json", "event must be a JSON object");

  const auto type_it = doc.find("type");
  if (type_it != doc.end() && type_it->is_string() && !known_type(type_it->get<std::string>())) {
    return Error::permanent("unknown_type", "unknown event type '" + type_it->get<std::string>() +
                                                "'; known: case.filed, summons.issued, hearing.scheduled, ...");
  }
  const auto rec_it = doc.find("recipients");
  if (rec_it == doc.end() || !rec_it->is_array() || rec_it->empty()) {
    return Error::permanent("no_recipients", "event has no recipients; at least one is required");
  }

  for (const auto& f : impl_->bounded) {
    if (const auto where = too_long(doc, f, 0)) {
      return Error::permanent("schema", "event does not match songda.case-event/v1: <root>" + *where +
                                            ": String should be no more than " + std::to_string(f.max_chars) +
                                            " characters in length");
    }
  }

  // One validator per thread, kept: it caches the compiled std::regex of every "pattern" in the schema.
  // A fresh one per event compiled them all again, which was a quarter of the gateway's CPU under load
  // (bench/README.md). The cache is keyed by the pattern text, so it is right for any schema.
  thread_local valijson::Validator validator;
  valijson::adapters::NlohmannJsonAdapter target(doc);
  // Without a results object valijson stops at the first failed constraint; the messages are collected
  // by a second pass only for an event that failed.
  if (!validator.validate(impl_->schema, target, nullptr)) {
    valijson::ValidationResults results;
    validator.validate(impl_->schema, target, &results);
    std::string msg;
    valijson::ValidationResults::Error err;
    int shown = 0;
    while (results.popError(err) && shown < 3) {
      if (!msg.empty()) msg += "; ";
      msg += join_path(err.context) + ": " + err.description;
      ++shown;
    }
    return Error::permanent("schema", "event does not match songda.case-event/v1: " + msg);
  }

  auto event = event_from_json(doc);
  if (!event.ok()) return event.error();
  std::set<std::string_view> ids;
  for (const auto& r : event->recipients) {
    // A recipient's deliveries are named by (event_id, recipient id, channel): a second recipient with the same id
    // would map to the first one's deliveries and never be served, with the event accepted.
    if (!ids.insert(r.id).second) {
      return Error::permanent("duplicate_recipient",
                              "recipient id " + r.id + " appears more than once; each recipient needs its own id");
    }
  }
  for (const auto& r : event->recipients) {
    if (r.consent.basis.empty()) {
      return Error::permanent("missing_consent", "recipient " + r.id + " has no consent basis");
    }
    if (r.consent.basis != "none" && !consent_covers(r.consent, event->type)) {
      return Error::permanent("consent_scope", "recipient " + r.id + "'s consent (" + r.consent.ref +
                                                   ") does not cover " + event->type +
                                                   "; add it to consent.scope or send with basis 'none'");
    }
    const auto& c = r.contacts;
    if (c.mobile.empty() && c.email.empty() && c.wechat_openid.empty() && c.app_user.empty()) {
      return Error::permanent("no_contact",
                              "recipient " + r.id + " has no contact (mobile, wechat_openid, email, app_user)");
    }
  }
  return event;
}

}  // namespace songda
