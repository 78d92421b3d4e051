#include "gateway/core/event.h"

#include "gateway/core/crypto.h"

namespace songda {
namespace {

std::string str(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

Document document_from_json(const nlohmann::json& d) {
  Document doc;
  doc.id = str(d, "id");
  doc.title = str(d, "title");
  doc.sha256 = str(d, "sha256");
  doc.url = str(d, "url");
  if (const auto it = d.find("pages"); it != d.end() && it->is_number_integer()) doc.pages = it->get<int>();
  return doc;
}

nlohmann::json document_to_json(const Document& d) {
  return {{"id", d.id}, {"title", d.title}, {"sha256", d.sha256}, {"url", d.url}, {"pages", d.pages}};
}

}  // namespace

bool is_known_channel(const std::string& name) {
  return name == kChannelInApp || name == kChannelSms || name == kChannelWechat || name == kChannelEmail;
}

std::string delivery_id(const std::string& event_id, const std::string& recipient_id, const std::string& channel) {
  std::string material = event_id;
  material.push_back('\x1f');
  material += recipient_id;
  material.push_back('\x1f');
  material += channel;
  return "sd-" + sha256_hex(material).substr(0, 32);
}

Result<CaseEvent> event_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Error::permanent("schema", "event is not a JSON object");
  CaseEvent e;
  e.event_id = str(j, "event_id");
  e.type = str(j, "type");
  e.occurred_at = str(j, "occurred_at");
  if (const auto c = j.find("court"); c != j.end() && c->is_object()) {
    e.court_id = str(*c, "id");
    e.court_name = str(*c, "name");
  }
  if (const auto c = j.find("case"); c != j.end() && c->is_object()) {
    e.case_number = str(*c, "number");
    e.case_title = str(*c, "title");
  }
  if (const auto d = j.find("document"); d != j.end() && d->is_object()) e.document = document_from_json(*d);
  if (const auto rs = j.find("recipients"); rs != j.end() && rs->is_array()) {
    for (const auto& r : *rs) {
      Recipient rec;
      rec.id = str(r, "id");
      rec.role = str(r, "role");
      rec.name = str(r, "name");
      if (const auto c = r.find("contacts"); c != r.end() && c->is_object()) {
        rec.contacts.mobile = str(*c, "mobile");
        rec.contacts.wechat_openid = str(*c, "wechat_openid");
        rec.contacts.email = str(*c, "email");
        rec.contacts.app_user = str(*c, "app_user");
      }
      if (const auto c = r.find("consent"); c != r.end() && c->is_object()) {
        rec.consent.basis = str(*c, "basis");
        rec.consent.ref = str(*c, "ref");
        rec.consent.recorded_at = str(*c, "recorded_at");
        if (const auto s = c->find("scope"); s != c->end() && s->is_array()) {
          for (const auto& item : *s) {
            if (item.is_string()) rec.consent.scope.push_back(item.get<std::string>());
          }
        }
      }
      e.recipients.push_back(std::move(rec));
    }
  }
  if (const auto p = j.find("params"); p != j.end() && p->is_object()) {
    for (const auto& [k, v] : p->items()) e.params[k] = scalar_text(v);
  }
  if (const auto u = j.find("urgent"); u != j.end() && u->is_boolean()) e.urgent = u->get<bool>();
  // nlohmann::json keeps object keys sorted, so dump() is a canonical form for our purposes:
  // the same content always yields the same digest, whatever key order the producer used.
  e.digest = sha256_hex(j.dump());
  e.raw = j;
  return e;
}

nlohmann::json to_json(const Delivery& d) {
  nlohmann::json j = {{"id", d.id},
                      {"event_id", d.event_id},
                      {"event_type", d.event_type},
                      {"court_id", d.court_id},
                      {"court_name", d.court_name},
                      {"case_number", d.case_number},
                      {"recipient_id", d.recipient_id},
                      {"recipient_role", d.recipient_role},
                      {"recipient_name", d.recipient_name},
                      {"channel", d.channel},
                      {"address", d.address},
                      {"consent_basis", d.consent_basis},
                      {"template", d.template_name},
                      {"title", d.title},
                      {"text", d.text},
                      {"urgent", d.urgent},
                      {"params", d.params}};
  if (d.document) j["document"] = document_to_json(*d.document);
  if (!d.hold_from.empty()) {
    j["hold"] = {{"from", d.hold_from}, {"unless", d.hold_unless}, {"after_s", d.hold_after_s}};
  }
  return j;
}

Result<Delivery> delivery_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return Error::permanent("corrupt_record", "delivery record is not a JSON object");
  Delivery d;
  d.id = str(j, "id");
  d.event_id = str(j, "event_id");
  d.event_type = str(j, "event_type");
  d.court_id = str(j, "court_id");
  d.court_name = str(j, "court_name");
  d.case_number = str(j, "case_number");
  d.recipient_id = str(j, "recipient_id");
  d.recipient_role = str(j, "recipient_role");
  d.recipient_name = str(j, "recipient_name");
  d.channel = str(j, "channel");
  d.address = str(j, "address");
  d.consent_basis = str(j, "consent_basis");
  d.template_name = str(j, "template");
  d.title = str(j, "title");
  d.text = str(j, "text");
  if (const auto u = j.find("urgent"); u != j.end() && u->is_boolean()) d.urgent = u->get<bool>();
  if (const auto p = j.find("params"); p != j.end() && p->is_object()) {
    for (const auto& [k, v] : p->items()) d.params[k] = scalar_text(v);
  }
  if (const auto doc = j.find("document"); doc != j.end() && doc->is_object()) d.document = document_from_json(*doc);
  if (const auto h = j.find("hold"); h != j.end() && h->is_object()) {
    d.hold_from = str(*h, "from");
    d.hold_unless = str(*h, "unless");
    if (const auto a = h->find("after_s"); a != h->end() && a->is_number_integer()) d.hold_after_s = a->get<int>();
  }
  if (d.id.empty()) return Error::permanent("corrupt_record", "delivery record has no id");
  return d;
}

}  // namespace songda
