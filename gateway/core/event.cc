#include "gateway/core/event.h"

#include <algorithm>
#include <climits>
#include <span>
#include <utility>

#include "gateway/core/crypto.h"
#include "gateway/core/json_parse.h"
#include "gateway/core/json_writer.h"

namespace songda {
namespace {

std::string scalar_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

Document document_from_json(const nlohmann::json& d) {
  Document doc;
  doc.id = string_member(d, "id");
  doc.title = string_member(d, "title");
  doc.sha256 = string_member(d, "sha256");
  doc.url = string_member(d, "url");
  if (const auto it = d.find("pages"); it != d.end() && it->is_number_integer()) doc.pages = it->get<int>();
  return doc;
}

nlohmann::json document_to_json(const Document& d) {
  return {{"id", d.id}, {"title", d.title}, {"sha256", d.sha256}, {"url", d.url}, {"pages", d.pages}};
}

}  // namespace

bool consent_covers(const Consent& c, std::string_view event_type) {
  return std::any_of(c.scope.begin(), c.scope.end(), [&](const std::string& s) { return s == "*" || s == event_type; });
}

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
  e.event_id = string_member(j, "event_id");
  e.type = string_member(j, "type");
  e.occurred_at = string_member(j, "occurred_at");
  if (const auto c = j.find("court"); c != j.end() && c->is_object()) {
    e.court_id = string_member(*c, "id");
    e.court_name = string_member(*c, "name");
  }
  if (const auto c = j.find("case"); c != j.end() && c->is_object()) {
    e.case_number = string_member(*c, "number");
    e.case_title = string_member(*c, "title");
  }
  if (const auto d = j.find("document"); d != j.end() && d->is_object()) e.document = document_from_json(*d);
  if (const auto rs = j.find("recipients"); rs != j.end() && rs->is_array()) {
    for (const auto& r : *rs) {
      Recipient rec;
      rec.id = string_member(r, "id");
      rec.role = string_member(r, "role");
      rec.name = string_member(r, "name");
      if (const auto c = r.find("contacts"); c != r.end() && c->is_object()) {
        rec.contacts.mobile = string_member(*c, "mobile");
        rec.contacts.wechat_openid = string_member(*c, "wechat_openid");
        rec.contacts.email = string_member(*c, "email");
        rec.contacts.app_user = string_member(*c, "app_user");
      }
      if (const auto c = r.find("consent"); c != r.end() && c->is_object()) {
        rec.consent.basis = string_member(*c, "basis");
        rec.consent.ref = string_member(*c, "ref");
        rec.consent.recorded_at = string_member(*c, "recorded_at");
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
  d.id = string_member(j, "id");
  d.event_id = string_member(j, "event_id");
  d.event_type = string_member(j, "event_type");
  d.court_id = string_member(j, "court_id");
  d.court_name = string_member(j, "court_name");
  d.case_number = string_member(j, "case_number");
  d.recipient_id = string_member(j, "recipient_id");
  d.recipient_role = string_member(j, "recipient_role");
  d.recipient_name = string_member(j, "recipient_name");
  d.channel = string_member(j, "channel");
  d.address = string_member(j, "address");
  d.consent_basis = string_member(j, "consent_basis");
  d.template_name = string_member(j, "template");
  d.title = string_member(j, "title");
  d.text = string_member(j, "text");
  if (const auto u = j.find("urgent"); u != j.end() && u->is_boolean()) d.urgent = u->get<bool>();
  if (const auto p = j.find("params"); p != j.end() && p->is_object()) {
    for (const auto& [k, v] : p->items()) d.params[k] = scalar_text(v);
  }
  if (const auto doc = j.find("document"); doc != j.end() && doc->is_object()) d.document = document_from_json(*doc);
  if (const auto h = j.find("hold"); h != j.end() && h->is_object()) {
    d.hold_from = string_member(*h, "from");
    d.hold_unless = string_member(*h, "unless");
    if (const auto a = h->find("after_s"); a != h->end() && a->is_number_integer()) d.hold_after_s = a->get<int>();
  }
  if (d.id.empty()) return Error::permanent("corrupt_record", "delivery record has no id");
  return d;
}

Result<std::string> delivery_record_text(const Delivery& d) {
  std::string out;
  out.reserve(512 + d.text.size() + d.title.size());
  JsonObjectWriter w(out);
  // In the order nlohmann::json keeps the members (by name), so the bytes equal to_json(d).dump().
  w.string("address", d.address)
      .string("case_number", d.case_number)
      .string("channel", d.channel)
      .string("consent_basis", d.consent_basis)
      .string("court_id", d.court_id)
      .string("court_name", d.court_name);
  if (d.document) {
    JsonObjectWriter doc(w.nested("document"));
    doc.string("id", d.document->id)
        .integer("pages", d.document->pages)
        .string("sha256", d.document->sha256)
        .string("title", d.document->title)
        .string("url", d.document->url);
    w.merge(doc.close());
  }
  w.string("event_id", d.event_id).string("event_type", d.event_type);
  if (!d.hold_from.empty()) {
    JsonObjectWriter hold(w.nested("hold"));
    hold.integer("after_s", d.hold_after_s).string("from", d.hold_from).string("unless", d.hold_unless);
    w.merge(hold.close());
  }
  w.string("id", d.id);
  {
    JsonObjectWriter params(w.nested("params"));
    for (const auto& [k, v] : d.params) params.string(k, v);
    w.merge(params.close());
  }
  w.string("recipient_id", d.recipient_id)
      .string("recipient_name", d.recipient_name)
      .string("recipient_role", d.recipient_role)
      .string("template", d.template_name)
      .string("text", d.text)
      .string("title", d.title)
      .boolean("urgent", d.urgent);
  if (!w.close()) {
    return Error::permanent("invalid_utf8", "delivery " + d.id + " has a field that is not valid UTF-8");
  }
  return out;
}

namespace {

// Reads a record of delivery_record_text's layout straight into a Delivery. Anything else (a member of another
// type, a known member twice, a nested value it does not expect, malformed text) stops it, and the caller reads
// the record through the tree instead, so the two ways always agree.
class RecordReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit RecordReader(Delivery& d) : d_(d) {}

  bool null() override { return ignorable(); }
  bool boolean(bool v) override {
    if (where_ != Where::kTop || key_ != "urgent") return ignorable();
    if (!once(kUrgentBit)) return false;
    d_.urgent = v;
    return true;
  }
  bool number_integer(number_integer_t v) override { return integer(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return v <= static_cast<number_unsigned_t>(INT_MAX) && integer(static_cast<number_integer_t>(v));
  }
  bool number_float(number_float_t /*v*/, const string_t& /*text*/) override { return ignorable(); }
  bool binary(binary_t& /*v*/) override { return false; }
  bool string(string_t& v) override {
    if (where_ == Where::kParams) {
      d_.params[key_] = v;  // a name given twice: the last wins, as in the tree
      return true;
    }
    std::string* field = string_field();
    if (field == nullptr) return ignorable();
    *field = v;
    return true;
  }
  bool start_object(std::size_t /*n*/) override {
    if (where_ == Where::kNone && !started_) {
      started_ = true;
      where_ = Where::kTop;
      return true;
    }
    if (where_ != Where::kTop) return false;
    if (key_ == "params" && once(kParamsBit)) {
      where_ = Where::kParams;
    } else if (key_ == "document" && once(kDocumentBit)) {
      d_.document.emplace();
      where_ = Where::kDocument;
    } else if (key_ == "hold" && once(kHoldBit)) {
      where_ = Where::kHold;
    } else {
      return false;
    }
    nested_seen_ = 0;
    return true;
  }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool end_object() override {
    where_ = where_ == Where::kTop ? Where::kNone : Where::kTop;
    return true;
  }
  bool start_array(std::size_t /*n*/) override { return false; }
  bool end_array() override { return false; }
  bool parse_error(std::size_t /*position*/, const std::string& /*last_token*/,
                   const nlohmann::detail::exception& /*ex*/) override {
    return false;
  }

 private:
  enum class Where { kNone, kTop, kParams, kDocument, kHold };
  template <typename T>
  using Fields = std::span<const std::pair<std::string_view, std::string T::*>>;
  static constexpr unsigned kUrgentBit = 1U << 20;
  static constexpr unsigned kParamsBit = 1U << 21;
  static constexpr unsigned kDocumentBit = 1U << 22;
  static constexpr unsigned kHoldBit = 1U << 23;
  static constexpr std::pair<std::string_view, std::string Delivery::*> kTopStrings[] = {
      {"id", &Delivery::id},
      {"event_id", &Delivery::event_id},
      {"event_type", &Delivery::event_type},
      {"court_id", &Delivery::court_id},
      {"court_name", &Delivery::court_name},
      {"case_number", &Delivery::case_number},
      {"recipient_id", &Delivery::recipient_id},
      {"recipient_role", &Delivery::recipient_role},
      {"recipient_name", &Delivery::recipient_name},
      {"channel", &Delivery::channel},
      {"address", &Delivery::address},
      {"consent_basis", &Delivery::consent_basis},
      {"template", &Delivery::template_name},
      {"title", &Delivery::title},
      {"text", &Delivery::text}};
  static constexpr std::pair<std::string_view, std::string Document::*> kDocumentStrings[] = {
      {"id", &Document::id}, {"sha256", &Document::sha256}, {"title", &Document::title}, {"url", &Document::url}};
  static constexpr std::pair<std::string_view, std::string Delivery::*> kHoldStrings[] = {
      {"from", &Delivery::hold_from}, {"unless", &Delivery::hold_unless}};
  static Fields<Delivery> top_strings() { return kTopStrings; }
  static Fields<Document> document_strings() { return kDocumentStrings; }
  static Fields<Delivery> hold_strings() { return kHoldStrings; }

  // The string member key_ names here, or nullptr when it names none.
  std::string* string_field() {
    if (where_ == Where::kDocument) return find(document_strings(), *d_.document, nested_seen_);
    if (where_ == Where::kHold) return find(hold_strings(), d_, nested_seen_);
    if (where_ == Where::kTop) return find(top_strings(), d_, seen_);
    return nullptr;
  }
  // A known member is read once; the second time the reader stops (the tree keeps the last), so a found
  // member seen before is reported as found-but-unusable by ignorable() below.
  template <typename T>
  std::string* find(Fields<T> fields, T& into, unsigned& seen) {
    unsigned bit = 1;
    for (const auto& [name, member] : fields) {
      if (key_ == name) {
        if ((seen & bit) != 0) {
          twice_ = true;
          return nullptr;
        }
        seen |= bit;
        return &(into.*member);
      }
      bit <<= 1U;
    }
    return nullptr;
  }
  bool once(unsigned bit) {
    if ((seen_ & bit) != 0) return false;
    seen_ |= bit;
    return true;
  }
  bool integer(number_integer_t v) {
    if (v < INT_MIN || v > INT_MAX) return false;
    int* field = nullptr;
    unsigned bit = 0;
    if (where_ == Where::kDocument && key_ == "pages") {
      field = &d_.document->pages;
      bit = 1U << 10;
    } else if (where_ == Where::kHold && key_ == "after_s") {
      field = &d_.hold_after_s;
      bit = 1U << 11;
    } else {
      return ignorable();
    }
    if ((nested_seen_ & bit) != 0) return false;
    nested_seen_ |= bit;
    *field = static_cast<int>(v);
    return true;
  }
  // A value the reader does not take: fine only as an unknown member of the record, document or hold (the tree
  // reader ignores those too); a known member of another type, or any value in params, stops the reader.
  bool ignorable() {
    if (twice_) return false;
    static constexpr std::string_view kTopOthers[] = {"urgent", "params", "document", "hold"};
    switch (where_) {
      case Where::kTop:
        return !contains(top_strings(), key_) &&
               std::find(std::begin(kTopOthers), std::end(kTopOthers), key_) == std::end(kTopOthers);
      case Where::kDocument:
        return !contains(document_strings(), key_) && key_ != "pages";
      case Where::kHold:
        return !contains(hold_strings(), key_) && key_ != "after_s";
      case Where::kParams:
      case Where::kNone:
        return false;
    }
    return false;
  }
  template <typename T>
  static bool contains(Fields<T> fields, std::string_view name) {
    return std::any_of(fields.begin(), fields.end(), [&](const auto& f) { return f.first == name; });
  }

  Delivery& d_;
  Where where_ = Where::kNone;
  bool started_ = false;
  bool twice_ = false;
  std::string key_;
  unsigned seen_ = 0;
  unsigned nested_seen_ = 0;
};

}  // namespace

Result<Delivery> delivery_from_record_text(std::string_view text) {
  Delivery d;
  RecordReader reader(d);
  if (nlohmann::json::sax_parse(text.begin(), text.end(), &reader) && !d.id.empty()) return d;
  return delivery_from_json(nlohmann::json::parse(text, nullptr, false));
}

}  // namespace songda
