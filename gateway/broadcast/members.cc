#include "gateway/broadcast/members.h"

#include <algorithm>
#include <map>
#include <regex>
#include <set>

#include "gateway/core/text.h"

namespace songda::broadcast {
namespace {

using Json = nlohmann::json;

// std::regex matches recursively, one stack frame per character: text longer than any of these fields may be is
// refused before it reaches the regex (a long enough value would overflow the stack).
bool matches(const std::string& s, const char* pattern) {
  if (s.size() > 1024) return false;
  static thread_local std::map<std::string, std::regex> cache;
  auto it = cache.find(pattern);
  if (it == cache.end()) it = cache.emplace(pattern, std::regex(pattern, std::regex::ECMAScript)).first;
  return std::regex_match(s, it->second);
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

Error bad(std::string* field, const std::string& f, const std::string& message) {
  if (field != nullptr) *field = f;
  return Error::permanent("invalid_member", f + ": " + message);
}

// A text field: a string within `max` code points, valid UTF-8, no control characters.
Result<std::string> text_field(const Json& obj, const char* key, std::size_t max, bool required, std::string* field,
                               const std::string& path) {
  const auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return bad(field, path + key, "is required");
    return std::string();
  }
  if (!it->is_string()) return bad(field, path + key, "must be a string");
  const auto s = it->get<std::string>();
  if (!is_valid_utf8(s)) return bad(field, path + key, "is not valid UTF-8");
  if (has_control(s)) return bad(field, path + key, "contains control characters");
  if (required && s.empty()) return bad(field, path + key, "must not be empty");
  if (utf8_length(s) > max) return bad(field, path + key, "is longer than " + std::to_string(max) + " characters");
  return s;
}

const std::vector<std::string>& known_columns() {
  static const std::vector<std::string> cols = {"id",
                                                "name",
                                                "role",
                                                "firm",
                                                "mobile",
                                                "email",
                                                "wechat_openid",
                                                "app_user",
                                                "consent_basis",
                                                "consent_scope",
                                                "consent_ref",
                                                "consent_recorded_at"};
  return cols;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return std::string(s.substr(b, e - b + 1));
}

// Accepts rows, refusing a repeated id (the first row with an id stands).
void accept(ParsedMembers& out, std::set<std::string>& seen, std::size_t row, Result<Member> m,
            const std::string& field, const std::string& id_hint) {
  if (!m.ok()) {
    out.errors.push_back(RowError{row, id_hint, field, m.error().code, m.error().message});
    return;
  }
  if (!seen.insert(m->recipient.id).second) {
    out.errors.push_back(RowError{row, m->recipient.id, "id", "duplicate_member",
                                  "id " + m->recipient.id +
                                      " appears in an earlier row of this import; the first "
                                      "row stands"});
    return;
  }
  out.members.push_back(std::move(m.value()));
}

}  // namespace

Result<Member> member_from_json(const Json& j, std::string* field) {
  if (!j.is_object()) return bad(field, "member", "must be an object");
  Member m;
  Recipient& r = m.recipient;
  auto id = text_field(j, "id", 128, true, field, "");
  if (!id.ok()) return id.error();
  if (!matches(*id, "^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")) {
    return bad(field, "id", "must be 1-128 of A-Z a-z 0-9 . _ : - (starting with a letter or digit)");
  }
  r.id = *id;
  auto name = text_field(j, "name", 128, true, field, "");
  if (!name.ok()) return name.error();
  r.name = *name;
  auto role = text_field(j, "role", 16, false, field, "");
  if (!role.ok()) return role.error();
  r.role = role->empty() ? "lawyer" : *role;
  if (r.role != "party" && r.role != "lawyer" && r.role != "agent" && r.role != "other") {
    return bad(field, "role", "must be party, lawyer, agent or other");
  }
  auto firm = text_field(j, "firm", 128, false, field, "");
  if (!firm.ok()) return firm.error();
  m.firm = *firm;

  const auto c = j.find("contacts");
  if (c == j.end() || !c->is_object()) return bad(field, "contacts", "is required (an object)");
  for (const auto& [k, v] : c->items()) {
    if (k != "mobile" && k != "email" && k != "wechat_openid" && k != "app_user") {
      return bad(field, "contacts." + k, "is not a contact Songda knows (mobile, email, wechat_openid, app_user)");
    }
    (void)v;
  }
  auto mobile = text_field(*c, "mobile", 21, false, field, "contacts.");
  if (!mobile.ok()) return mobile.error();
  if (!mobile->empty() && !matches(*mobile, "^\\+?[0-9]{5,20}$")) {
    return bad(field, "contacts.mobile", "must be 5-20 digits, optionally after +");
  }
  auto email = text_field(*c, "email", 254, false, field, "contacts.");
  if (!email.ok()) return email.error();
  if (!email->empty() && !matches(*email, "^[^@\\s]+@[^@\\s]+$")) {
    return bad(field, "contacts.email", "is not an e-mail address");
  }
  auto openid = text_field(*c, "wechat_openid", 128, false, field, "contacts.");
  if (!openid.ok()) return openid.error();
  if (!openid->empty() && !matches(*openid, "^[A-Za-z0-9_-]{1,128}$")) {
    return bad(field, "contacts.wechat_openid", "must be 1-128 of A-Z a-z 0-9 _ -");
  }
  auto app = text_field(*c, "app_user", 128, false, field, "contacts.");
  if (!app.ok()) return app.error();
  if (!app->empty() && !matches(*app, "^[A-Za-z0-9._-]{1,128}$")) {
    return bad(field, "contacts.app_user", "must be 1-128 of A-Z a-z 0-9 . _ -");
  }
  r.contacts = Contacts{*mobile, *openid, *email, *app};
  if (r.contacts.mobile.empty() && r.contacts.email.empty() && r.contacts.wechat_openid.empty() &&
      r.contacts.app_user.empty()) {
    return bad(field, "contacts", "needs at least one of mobile, email, wechat_openid, app_user");
  }

  const auto k = j.find("consent");
  if (k == j.end() || !k->is_object()) return bad(field, "consent", "is required (an object with basis)");
  auto basis = text_field(*k, "basis", 16, true, field, "consent.");
  if (!basis.ok()) return basis.error();
  if (*basis != "provided" && *basis != "confirmed" && *basis != "obtained" && *basis != "none") {
    return bad(field, "consent.basis", "must be provided, confirmed, obtained or none");
  }
  r.consent.basis = *basis;
  auto ref = text_field(*k, "ref", 256, false, field, "consent.");
  if (!ref.ok()) return ref.error();
  r.consent.ref = *ref;
  auto at = text_field(*k, "recorded_at", 64, false, field, "consent.");
  if (!at.ok()) return at.error();
  r.consent.recorded_at = *at;
  if (const auto s = k->find("scope"); s != k->end() && !s->is_null()) {
    if (!s->is_array() || s->size() > 32) return bad(field, "consent.scope", "must be an array of at most 32 strings");
    for (const auto& e : *s) {
      if (!e.is_string() || !is_valid_utf8(e.get<std::string>()) || e.get<std::string>().size() > 64) {
        return bad(field, "consent.scope", "must hold event types (strings of at most 64 bytes)");
      }
      r.consent.scope.push_back(e.get<std::string>());
    }
  }
  // The same rule as for a case event's recipients: consent must cover what is sent (groups receive notice.broadcast).
  if (r.consent.basis != "none" && !consent_covers(r.consent, kBroadcastEventType)) {
    return bad(field, "consent.scope",
               "does not cover notice.broadcast; add it (or *) to the scope, or record basis 'none' (the notice is "
               "then informational only)");
  }
  return m;
}

Json member_to_json(const Member& m) {
  const Recipient& r = m.recipient;
  Json contacts = Json::object();
  if (!r.contacts.mobile.empty()) contacts["mobile"] = r.contacts.mobile;
  if (!r.contacts.email.empty()) contacts["email"] = r.contacts.email;
  if (!r.contacts.wechat_openid.empty()) contacts["wechat_openid"] = r.contacts.wechat_openid;
  if (!r.contacts.app_user.empty()) contacts["app_user"] = r.contacts.app_user;
  Json consent = {{"basis", r.consent.basis}};
  if (!r.consent.scope.empty()) consent["scope"] = r.consent.scope;
  if (!r.consent.ref.empty()) consent["ref"] = r.consent.ref;
  if (!r.consent.recorded_at.empty()) consent["recorded_at"] = r.consent.recorded_at;
  Json j = {{"id", r.id}, {"name", r.name}, {"role", r.role}, {"contacts", contacts}, {"consent", consent}};
  if (!m.firm.empty()) j["firm"] = m.firm;
  return j;
}

Json member_to_masked_json(const Member& m) {
  Json j = member_to_json(m);
  Json& c = j["contacts"];
  const Contacts& k = m.recipient.contacts;
  if (!k.mobile.empty()) c["mobile"] = mask_address(kChannelSms, k.mobile);
  if (!k.email.empty()) c["email"] = mask_address(kChannelEmail, k.email);
  if (!k.wechat_openid.empty()) c["wechat_openid"] = mask_address(kChannelWechat, k.wechat_openid);
  if (!k.app_user.empty()) c["app_user"] = mask_address(kChannelInApp, k.app_user);
  return j;
}

Result<ParsedMembers> parse_members_json(std::string_view body) {
  if (!is_valid_utf8(body)) return Error::permanent("invalid_utf8", "the body is not valid UTF-8");
  const Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) return Error::permanent("invalid_json", "the body is not JSON");
  const Json* arr = &j;
  if (j.is_object()) {
    const auto it = j.find("members");
    if (it == j.end()) return Error::permanent("invalid_json", "expected an array of members or {\"members\": [...]}");
    arr = &*it;
  }
  if (!arr->is_array()) return Error::permanent("invalid_json", "members must be an array");
  if (arr->size() > kMaxImportRows) {
    return Error::permanent("too_large",
                            "at most " + std::to_string(kMaxImportRows) + " members per import; hint: split the file");
  }
  ParsedMembers out;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const Json& row = (*arr)[i];
    std::string field;
    std::string id_hint;
    if (row.is_object() && row.contains("id") && row["id"].is_string()) id_hint = row["id"].get<std::string>();
    if (!is_valid_utf8(id_hint) || id_hint.size() > 128) id_hint.clear();
    accept(out, seen, i + 1, member_from_json(row, &field), field, id_hint);
  }
  return out;
}

Result<std::vector<std::vector<std::string>>> parse_csv(std::string_view text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string cell;
  bool quoted = false;      // inside a quoted field
  bool was_quoted = false;  // the current field was quoted (only a separator may follow the closing quote)
  std::size_t line = 1;
  std::size_t i = 0;
  if (text.starts_with("\xEF\xBB\xBF")) i = 3;
  auto end_row = [&] {
    row.push_back(std::move(cell));
    cell.clear();
    was_quoted = false;
    const bool blank = row.size() == 1 && row[0].empty();
    if (!blank) rows.push_back(std::move(row));
    row.clear();
  };
  for (; i < text.size(); ++i) {
    const char ch = text[i];
    if (quoted) {
      if (ch == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        if (ch == '\n') ++line;
        cell += ch;
      }
      continue;
    }
    if (ch == ',') {
      row.push_back(std::move(cell));
      cell.clear();
      was_quoted = false;
      if (row.size() >= kMaxCsvFields) {
        return Error::permanent(
            "invalid_csv", "line " + std::to_string(line) + ": more than " + std::to_string(kMaxCsvFields) + " fields");
      }
    } else if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
      continue;
    } else if (ch == '\n') {
      end_row();
      if (rows.size() > kMaxImportRows + 1) {
        return Error::permanent(
            "too_large", "at most " + std::to_string(kMaxImportRows) + " members per import; hint: split the file");
      }
      ++line;
    } else if (ch == '"' && cell.empty() && !was_quoted) {
      quoted = true;
      was_quoted = true;
    } else if (was_quoted) {
      return Error::permanent("invalid_csv", "line " + std::to_string(line) + ": text after a closing quote");
    } else {
      cell += ch;
    }
  }
  if (quoted) return Error::permanent("invalid_csv", "line " + std::to_string(line) + ": a quote is never closed");
  if (!cell.empty() || !row.empty()) end_row();
  return rows;
}

Result<ParsedMembers> parse_members_csv(std::string_view body) {
  if (!is_valid_utf8(body)) return Error::permanent("invalid_utf8", "the body is not valid UTF-8");
  auto rows = parse_csv(body);
  if (!rows.ok()) return rows.error();
  if (rows->empty()) return Error::permanent("invalid_csv", "no header row; the first row names the columns");
  if (rows->size() - 1 > kMaxImportRows) {
    return Error::permanent("too_large",
                            "at most " + std::to_string(kMaxImportRows) + " members per import; hint: split the file");
  }
  std::vector<std::string> header;
  for (const auto& h : rows->front()) header.push_back(trim(h));
  std::set<std::string> names;
  for (const auto& h : header) {
    if (std::find(known_columns().begin(), known_columns().end(), h) == known_columns().end()) {
      return Error::permanent("invalid_csv", "unknown column '" + h +
                                                 "'; the columns are id, name, role, firm, mobile, "
                                                 "email, wechat_openid, app_user, consent_basis, consent_scope, "
                                                 "consent_ref, consent_recorded_at");
    }
    if (!names.insert(h).second) return Error::permanent("invalid_csv", "column '" + h + "' appears twice");
  }
  for (const char* required : {"id", "name", "consent_basis"}) {
    if (!names.contains(required))
      return Error::permanent("invalid_csv", std::string("column '") + required + "' is required");
  }
  ParsedMembers out;
  std::set<std::string> seen;
  for (std::size_t r = 1; r < rows->size(); ++r) {
    const auto& cells = (*rows)[r];
    std::string id_hint;
    Json j = {{"contacts", Json::object()}, {"consent", Json::object()}};
    for (std::size_t c = 0; c < header.size() && c < cells.size(); ++c) {
      const std::string v = trim(cells[c]);
      if (v.empty()) continue;
      const std::string& h = header[c];
      if (h == "id") id_hint = v.size() <= 128 ? v : "";
      if (h == "mobile" || h == "email" || h == "wechat_openid" || h == "app_user") {
        j["contacts"][h] = v;
      } else if (h == "consent_basis") {
        j["consent"]["basis"] = v;
      } else if (h == "consent_ref") {
        j["consent"]["ref"] = v;
      } else if (h == "consent_recorded_at") {
        j["consent"]["recorded_at"] = v;
      } else if (h == "consent_scope") {
        Json scope = Json::array();
        std::size_t start = 0;
        while (start <= v.size()) {
          const auto semi = v.find(';', start);
          const std::string part = trim(v.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
          if (!part.empty()) scope.push_back(part);
          if (semi == std::string::npos) break;
          start = semi + 1;
        }
        j["consent"]["scope"] = scope;
      } else {
        j[h] = v;
      }
    }
    if (cells.size() > header.size()) {
      out.errors.push_back(
          RowError{r, id_hint, "", "invalid_csv",
                   "row has " + std::to_string(cells.size()) + " fields, the header " + std::to_string(header.size())});
      continue;
    }
    std::string field;
    accept(out, seen, r, member_from_json(j, &field), field, id_hint);
  }
  return out;
}

}  // namespace songda::broadcast
