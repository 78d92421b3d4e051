#include "gateway/ingest/validator.h"

#include <algorithm>
#include <fstream>
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

}  // namespace

struct EventValidator::Impl {
  valijson::Schema schema;
};

EventValidator::EventValidator(const std::string& schema_path, std::size_t max_bytes)
    : impl_(std::make_unique<Impl>()), max_bytes_(max_bytes) {
  std::ifstream in(schema_path);
  if (!in) throw StartupError("cannot read event schema " + schema_path + "; run from the source tree or set --schema");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto doc = nlohmann::json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded()) throw StartupError("event schema " + schema_path + " is not valid JSON");
  try {
    valijson::SchemaParser parser;
    valijson::adapters::NlohmannJsonAdapter adapter(doc);
    parser.populateSchema(adapter, impl_->schema);
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
