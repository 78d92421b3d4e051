#include "gateway/broadcast/spec.h"

#include <algorithm>
#include <regex>
#include <set>

#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/plan/template.h"

namespace songda::broadcast {
namespace {

using Json = nlohmann::json;

Error invalid(const std::string& field, const std::string& message) {
  return Error::permanent("invalid_request", field + ": " + message);
}

bool id_like(const std::string& s, std::size_t max) {
  static const std::regex re("^[A-Za-z0-9][A-Za-z0-9._-]*$");
  return !s.empty() && s.size() <= max && std::regex_match(s, re);
}

std::string scalar_text(const Json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump();
}

Result<std::string> opt_text(const Json& j, const char* key, std::size_t max_chars) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::string();
  if (!it->is_string()) return invalid(key, "must be a string");
  const auto s = it->get<std::string>();
  if (!is_valid_utf8(s)) return invalid(key, "is not valid UTF-8");
  if (utf8_length(s) > max_chars) return invalid(key, "is longer than " + std::to_string(max_chars) + " characters");
  return s;
}

const RouteConfig* broadcast_route(const Config& config) {
  for (const auto& r : config.routes) {
    if (r.event_type == kBroadcastEventType) return &r;
  }
  return nullptr;
}

Result<Document> document_from(const Json& d) {
  if (!d.is_object()) return invalid("document", "must be an object");
  Document doc;
  auto id = opt_text(d, "id", 128);
  auto title = opt_text(d, "title", 256);
  auto sha = opt_text(d, "sha256", 64);
  auto url = opt_text(d, "url", 2048);
  if (!id.ok()) return id.error();
  if (!title.ok()) return title.error();
  if (!sha.ok()) return sha.error();
  if (!url.ok()) return url.error();
  static const std::regex hex("^[0-9a-f]{64}$");
  if (id->empty() || title->empty()) return invalid("document", "needs id and title");
  if (!std::regex_match(*sha, hex)) return invalid("document.sha256", "must be 64 lowercase hex digits");
  doc.id = *id;
  doc.title = *title;
  doc.sha256 = *sha;
  doc.url = *url;
  if (const auto p = d.find("pages"); p != d.end() && !p->is_null()) {
    if (!p->is_number_integer() || p->get<long long>() < 0 || p->get<long long>() > kMaxDocumentPages) {
      return invalid("document.pages", "must be a whole number from 0 to " + std::to_string(kMaxDocumentPages));
    }
    doc.pages = p->get<int>();
  }
  return doc;
}

Json document_json(const Document& d) {
  Json j = {{"id", d.id}, {"title", d.title}, {"sha256", d.sha256}};
  if (!d.url.empty()) j["url"] = d.url;
  if (d.pages > 0) j["pages"] = d.pages;
  return j;
}

bool known_status(const std::string& s) { return s == "DELIVERED" || s == "READ" || s == "ACKNOWLEDGED"; }

// Defaults from the notice.broadcast route where the requester left them out.
void apply_route_defaults(BroadcastSpec& spec, const Config& config, bool channels_given, bool fallback_given,
                          bool urgent_given) {
  const RouteConfig* route = broadcast_route(config);
  if (route == nullptr) return;
  if (spec.template_name.empty()) spec.template_name = route->template_name;
  if (!channels_given) {
    spec.channels = route->channels;
    spec.channels_from_route = true;
  }
  if (!fallback_given && !channels_given) spec.fallback = route->fallback;
  if (!urgent_given) spec.urgent = route->urgent;
}

}  // namespace

Result<BroadcastSpec> spec_from_request(const Json& body, const Config& config) {
  if (!body.is_object()) return invalid("body", "must be a JSON object");
  static const std::set<std::string> allowed = {"id",     "group_id", "court",    "reference", "title", "template",
                                                "params", "channels", "fallback", "document",  "urgent"};
  for (const auto& [k, v] : body.items()) {
    if (!allowed.contains(k)) return invalid(k, "is not a field of a broadcast request");
    (void)v;
  }
  BroadcastSpec s;
  auto id = opt_text(body, "id", 64);
  if (!id.ok()) return id.error();
  if (!id_like(*id, 64)) return invalid("id", "is required: 1-64 of A-Z a-z 0-9 . _ - (your idempotency key)");
  s.id = *id;
  auto group = opt_text(body, "group_id", 64);
  if (!group.ok()) return group.error();
  if (!id_like(*group, 64)) return invalid("group_id", "is required: 1-64 of A-Z a-z 0-9 . _ -");
  s.group_id = *group;
  s.event_id = "broadcast:" + s.id;
  if (const auto c = body.find("court"); c != body.end() && !c->is_null()) {
    if (!c->is_object()) return invalid("court", "must be an object {id, name}");
    auto cid = opt_text(*c, "id", 64);
    auto cname = opt_text(*c, "name", 128);
    if (!cid.ok()) return cid.error();
    if (!cname.ok()) return cname.error();
    s.court_id = *cid;
    s.court_name = *cname;
  }
  auto ref = opt_text(body, "reference", 128);
  if (!ref.ok()) return ref.error();
  s.reference = ref->empty() ? "broadcast:" + s.id : *ref;
  auto title = opt_text(body, "title", 256);
  if (!title.ok()) return title.error();
  s.title = *title;
  auto tmpl = opt_text(body, "template", 64);
  if (!tmpl.ok()) return tmpl.error();
  s.template_name = *tmpl;
  if (const auto p = body.find("params"); p != body.end() && !p->is_null()) {
    if (!p->is_object() || p->size() > 64) return invalid("params", "must be an object of at most 64 scalars");
    for (const auto& [k, v] : p->items()) {
      if (!v.is_string() && !v.is_number() && !v.is_boolean()) return invalid("params." + k, "must be a scalar");
      std::string text = scalar_text(v);
      if (!is_valid_utf8(k) || !is_valid_utf8(text)) return invalid("params." + k, "is not valid UTF-8");
      if (text.size() > 4096) return invalid("params." + k, "is longer than 4096 bytes");
      s.params[k] = std::move(text);
    }
  }
  const bool channels_given = body.contains("channels") && !body["channels"].is_null();
  if (channels_given) {
    const Json& ch = body["channels"];
    if (!ch.is_array() || ch.empty()) return invalid("channels", "must be a non-empty array, in order of preference");
    for (const auto& c : ch) {
      if (!c.is_string() || !is_known_channel(c.get<std::string>())) {
        return invalid("channels", "each must be one of inapp, sms, wechat, email");
      }
      if (std::find(s.channels.begin(), s.channels.end(), c.get<std::string>()) != s.channels.end()) {
        return invalid("channels", "names " + c.get<std::string>() + " twice");
      }
      s.channels.push_back(c.get<std::string>());
    }
  }
  const bool fallback_given = body.contains("fallback") && !body["fallback"].is_null();
  if (fallback_given) {
    const Json& fb = body["fallback"];
    if (!fb.is_array() || fb.size() > 4) return invalid("fallback", "must be an array of at most 4 steps");
    for (const auto& f : fb) {
      if (!f.is_object()) return invalid("fallback", "each step is {from, to, unless, after_s}");
      FallbackConfig c;
      c.from = f.value("from", "");
      c.to = f.value("to", "");
      c.unless = f.value("unless", "DELIVERED");
      const auto a = f.find("after_s");
      if (a == f.end() || !a->is_number_integer() || a->get<long long>() < 1 || a->get<long long>() > 30LL * 86400) {
        return invalid("fallback.after_s", "must be whole seconds, 1 to 2592000 (30 days)");
      }
      c.after_s = a->get<int>();
      if (!known_status(c.unless)) return invalid("fallback.unless", "must be DELIVERED, READ or ACKNOWLEDGED");
      if (c.from == c.to) return invalid("fallback", "from and to must be two different channels");
      s.fallback.push_back(c);
    }
  }
  if (const auto d = body.find("document"); d != body.end() && !d->is_null()) {
    auto doc = document_from(*d);
    if (!doc.ok()) return doc.error();
    s.document = std::move(doc.value());
  }
  const bool urgent_given = body.contains("urgent") && !body["urgent"].is_null();
  if (urgent_given) {
    if (!body["urgent"].is_boolean()) return invalid("urgent", "must be true or false");
    s.urgent = body["urgent"].get<bool>();
  }
  apply_route_defaults(s, config, channels_given, fallback_given, urgent_given);
  if (s.template_name.empty()) return invalid("template", "is required (no notice.broadcast route gives a default)");
  if (s.channels.empty()) return invalid("channels", "are required (no notice.broadcast route gives a default)");
  if (s.title.empty() && s.params.contains("notice_title")) s.title = s.params.at("notice_title");
  return s;
}

Result<std::optional<BroadcastSpec>> spec_from_event(const CaseEvent& event, const Config& config) {
  if (event.type != kBroadcastEventType) return std::optional<BroadcastSpec>{};
  const auto b = event.raw.find("broadcast");
  if (b == event.raw.end() || !b->is_object()) return std::optional<BroadcastSpec>{};
  BroadcastSpec s;
  s.group_id = b->value("group_id", "");
  if (!id_like(s.group_id, 64)) return invalid("broadcast.group_id", "is required: 1-64 of A-Z a-z 0-9 . _ -");
  s.id = b->value("id", "");
  if (s.id.empty()) {
    // The event id is the idempotency key; ':' is not allowed in a broadcast id, so take its digest.
    s.id = id_like(event.event_id, 64) ? event.event_id : "ev-" + sha256_hex(event.event_id).substr(0, 32);
  }
  if (!id_like(s.id, 64)) return invalid("broadcast.id", "must be 1-64 of A-Z a-z 0-9 . _ -");
  s.event_id = event.event_id;
  s.court_id = event.court_id;
  s.court_name = event.court_name;
  s.reference = event.case_number;
  s.title = event.case_title;
  s.params = event.params;
  s.document = event.document;
  s.origin = "kafka";
  apply_route_defaults(s, config, false, false, false);
  s.urgent = s.urgent || event.urgent;
  if (s.title.empty() && s.params.contains("notice_title")) s.title = s.params.at("notice_title");
  if (s.template_name.empty()) return invalid("type", "no notice.broadcast route is configured");
  return std::optional<BroadcastSpec>{std::move(s)};
}

Status check_spec(const BroadcastSpec& spec, const Config& config,
                  const std::function<bool(const std::string&)>& has_channel) {
  // An event's document is read by the event schema, which has no upper bound; the stored broadcast is read back
  // with this one.
  if (spec.document && (spec.document->pages < 0 || spec.document->pages > kMaxDocumentPages)) {
    return invalid("document.pages", "must be a whole number from 0 to " + std::to_string(kMaxDocumentPages));
  }
  const auto tmpl = config.templates.find(spec.template_name);
  if (tmpl == config.templates.end()) {
    return invalid("template", "'" + spec.template_name + "' is not a configured template");
  }
  for (const auto& ch : spec.channels) {
    if (has_channel && !has_channel(ch)) {
      return invalid("channels", ch + " is not configured on this gateway");
    }
    if (ch == kChannelSms) {
      for (const auto& p : config.channels.sms.providers) {
        if (!p.templates.contains(spec.template_name)) {
          return invalid("template", "SMS provider " + p.name + " has no template code for '" + spec.template_name +
                                         "'; hint: add it under channels.sms.providers[].templates");
        }
      }
    }
    if (ch == kChannelWechat && !config.channels.wechat.templates.contains(spec.template_name)) {
      return invalid("template", "WeChat has no template for '" + spec.template_name +
                                     "'; hint: add it under channels.wechat.templates");
    }
  }
  for (const auto& f : spec.fallback) {
    const bool from_in = std::find(spec.channels.begin(), spec.channels.end(), f.from) != spec.channels.end();
    const bool to_in = std::find(spec.channels.begin(), spec.channels.end(), f.to) != spec.channels.end();
    if (!from_in || !to_in) return invalid("fallback", f.from + " → " + f.to + " must name two of the channels");
  }
  // Every placeholder must have a value: render with the names the planner fills.
  std::map<std::string, std::string> vars = spec.params;
  for (const char* k : {"court_name", "case_number", "case_title", "recipient_name", "document_title", "link"}) {
    vars[k] = "x";
  }
  for (const auto* text : {&tmpl->second.title, &tmpl->second.body, &tmpl->second.sms}) {
    auto r = render_template(spec.template_name, *text, vars);
    if (!r.ok()) return r.error();
  }
  return ok_status();
}

Json spec_to_json(const BroadcastSpec& s) {
  Json fb = Json::array();
  for (const auto& f : s.fallback)
    fb.push_back({{"from", f.from}, {"to", f.to}, {"unless", f.unless}, {"after_s", f.after_s}});
  Json j = {{"id", s.id},
            {"group_id", s.group_id},
            {"event_id", s.event_id},
            {"court", {{"id", s.court_id}, {"name", s.court_name}}},
            {"reference", s.reference},
            {"title", s.title},
            {"template", s.template_name},
            {"params", s.params},
            {"channels", s.channels},
            {"fallback", fb},
            {"urgent", s.urgent},
            {"origin", s.origin}};
  if (s.document) j["document"] = document_json(*s.document);
  return j;
}

Result<BroadcastSpec> spec_from_json(const Json& j) {
  if (!j.is_object()) return Error::permanent("corrupt_record", "broadcast record is not a JSON object");
  try {
    BroadcastSpec s;
    s.id = j.at("id").get<std::string>();
    s.group_id = j.at("group_id").get<std::string>();
    s.event_id = j.at("event_id").get<std::string>();
    s.court_id = j.at("court").at("id").get<std::string>();
    s.court_name = j.at("court").at("name").get<std::string>();
    s.reference = j.at("reference").get<std::string>();
    s.title = j.value("title", "");
    s.template_name = j.at("template").get<std::string>();
    s.params = j.at("params").get<std::map<std::string, std::string>>();
    s.channels = j.at("channels").get<std::vector<std::string>>();
    for (const auto& f : j.at("fallback")) {
      FallbackConfig c;
      c.from = f.at("from").get<std::string>();
      c.to = f.at("to").get<std::string>();
      c.unless = f.at("unless").get<std::string>();
      c.after_s = f.at("after_s").get<int>();
      s.fallback.push_back(c);
    }
    s.urgent = j.value("urgent", false);
    s.origin = j.value("origin", "api");
    if (const auto d = j.find("document"); d != j.end() && d->is_object()) {
      auto doc = document_from(*d);
      if (!doc.ok()) return doc.error();
      s.document = std::move(doc.value());
    }
    return s;
  } catch (const Json::exception& e) {
    return Error::permanent("corrupt_record", std::string("broadcast record unreadable: ") + e.what());
  }
}

std::string spec_digest(const BroadcastSpec& spec) {
  Json j = spec_to_json(spec);
  j.erase("origin");
  j["court"].erase("name");
  return sha256_hex(j.dump());
}

Config route_config(const Config& base, const BroadcastSpec& spec) {
  Config c = base;
  RouteConfig r;
  r.event_type = kBroadcastEventType;
  r.channels = spec.channels;
  r.template_name = spec.template_name;
  r.urgent = spec.urgent;
  r.fallback = spec.fallback;
  c.routes = {r};
  return c;
}

CaseEvent page_event(const BroadcastSpec& spec, const std::string& digest, std::vector<Recipient> members) {
  CaseEvent e;
  e.event_id = spec.event_id;
  e.type = kBroadcastEventType;
  e.court_id = spec.court_id;
  e.court_name = spec.court_name;
  e.case_number = spec.reference;
  e.case_title = spec.title;
  e.document = spec.document;
  e.params = spec.params;
  e.urgent = spec.urgent;
  e.digest = digest;
  e.recipients = std::move(members);
  return e;
}

Result<PagePlan> plan_page(const BroadcastSpec& spec, const std::string& digest, const Config& routes,
                           const PlanOptions& options, std::vector<Recipient> members, std::int64_t first_index) {
  PagePlan out;
  out.members = members.size();
  std::string ids;
  for (const auto& m : members) ids += m.id + '\n';
  out.event = page_event(spec, digest, std::move(members));
  auto plan = plan_event(out.event, routes, options);
  if (!plan.ok()) {
    if (plan.error().code != "no_reachable_recipient") return plan.error();
    for (const auto& r : out.event.recipients) out.plan.unreachable.push_back(r.id);
  } else {
    out.plan = std::move(plan.value());
  }
  EventToRecord& rec = out.record;
  rec.event_id = spec.event_id + "#p" + std::to_string(first_index);
  rec.digest = sha256_hex(digest + '\n' + ids);
  rec.court_id = spec.court_id;
  rec.case_number = spec.reference;
  rec.broadcast_id = spec.id;
  return out;
}

}  // namespace songda::broadcast
