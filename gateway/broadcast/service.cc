#include "gateway/broadcast/service.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "gateway/core/contain.h"
#include "gateway/core/json_parse.h"
#include "gateway/core/text.h"

namespace songda::broadcast {
namespace {

using Json = nlohmann::json;

constexpr const char* kIdPattern = "([A-Za-z0-9][A-Za-z0-9._-]{0,63})";

int status_for(const Error& e) {
  if (e.retryable) return 503;
  if (e.code == "not_found") return 404;
  if (e.code == "forbidden") return 403;
  if (e.code == "conflict") return 409;
  if (e.code == "too_large") return 413;
  if (e.code == "template_param_missing" || e.code == "template_invalid" || e.code == "empty_group") return 422;
  if (e.code == "unsupported_media_type") return 415;
  return 400;
}

void send(httplib::Response& res, const Error& e) { send_error(res, status_for(e), e.code, e.message); }

Result<Json> json_body(const httplib::Request& req) {
  if (!is_valid_utf8(req.body)) return Error::permanent("invalid_utf8", "the body is not valid UTF-8");
  auto parsed = parse_json_limited(req.body);
  if (parsed.too_deep) {
    return Error::permanent("invalid_json",
                            "the body is nested deeper than " + std::to_string(kMaxJsonDepth) + " arrays and objects");
  }
  if (parsed.value.is_discarded()) return Error::permanent("invalid_json", "the body is not JSON");
  return std::move(parsed.value);
}

Json group_json(const GroupInfo& g) {
  return {{"id", g.id},
          {"name", g.name},
          {"court", {{"id", g.court_id}, {"name", g.court_name}}},
          {"members", g.members},
          {"created_at", g.created_ms > 0 ? rfc3339_utc(g.created_ms) : ""},
          {"updated_at", g.updated_ms > 0 ? rfc3339_utc(g.updated_ms) : ""}};
}

Json row_errors_json(const std::vector<RowError>& errors) {
  Json out = Json::array();
  for (const auto& e : errors) {
    out.push_back({{"row", e.row}, {"id", e.id}, {"field", e.field}, {"code", e.code}, {"message", e.message}});
  }
  return out;
}

}  // namespace

BroadcastService::BroadcastService(RedisPool& pool, DeliveryStore& store, const Config& config,
                                   PlanOptions plan_options, FanoutOptions fanout_options,
                                   std::function<bool(const std::string&)> has_channel)
    : config_(config),
      has_channel_(std::move(has_channel)),
      groups_(pool),
      broadcasts_(pool),
      fanout_(broadcasts_, store, config, std::move(plan_options), std::move(fanout_options)) {}

Result<StartResult> BroadcastService::start(const BroadcastSpec& requested, std::int64_t now_ms) {
  BroadcastSpec spec = requested;
  if (spec.channels_from_route && has_channel_) {
    // The route's channels are a default: use those this gateway sends on (as the planner does for events).
    std::erase_if(spec.channels, [this](const std::string& ch) { return !has_channel_(ch); });
    std::erase_if(spec.fallback, [&spec](const FallbackConfig& f) {
      return std::find(spec.channels.begin(), spec.channels.end(), f.from) == spec.channels.end() ||
             std::find(spec.channels.begin(), spec.channels.end(), f.to) == spec.channels.end();
    });
    if (spec.channels.empty()) {
      return Error::permanent("invalid_request",
                              "channels: none of the notice.broadcast route's channels is "
                              "configured on this gateway");
    }
  }
  if (auto s = check_spec(spec, config_, has_channel_); !s.ok()) return s.error();
  auto started = broadcasts_.start(spec, spec_digest(spec), now_ms);
  if (!started.ok()) return started.error();
  const auto [outcome, members] = started.value();
  switch (outcome) {
    case StartOutcome::kNoGroup:
      return Error::permanent("not_found", "no group " + spec.group_id + "; create it with PUT /v1/groups/{id}");
    case StartOutcome::kForbidden:
      return Error::permanent("forbidden", "group " + spec.group_id + " belongs to another court");
    case StartOutcome::kEmptyGroup:
      return Error::permanent("empty_group", "group " + spec.group_id + " has no members; import them first");
    case StartOutcome::kConflict:
      return Error::permanent("conflict", "broadcast " + spec.id +
                                              " was started before with other content; the first stands. Hint: "
                                              "use a new id for a new notice");
    case StartOutcome::kNew:
      spdlog::info("broadcast {}: started for group {} ({} members, channels {})", spec.id, spec.group_id, members,
                   nlohmann::json(spec.channels).dump());
      break;
    case StartOutcome::kDuplicate:
      break;
  }
  return StartResult{outcome, members};
}

Status BroadcastService::start_from_event(const CaseEvent& event, std::int64_t now_ms) {
  auto spec = spec_from_event(event, config_);
  if (!spec.ok()) return spec.error();
  if (!spec.value()) return ok_status();
  auto r = start(*spec.value(), now_ms);
  if (!r.ok()) return r.error();
  return ok_status();
}

void BroadcastService::register_routes(ApiServer& http) {
  auto& s = http.raw();
  ApiServer* api = &http;

  s.Put(std::string("/v1/groups/") + kIdPattern, [this, api](const httplib::Request& req, httplib::Response& res) {
    auto who = api->authenticate(req, res);
    if (!who) return;
    const std::string id = req.matches[1];
    auto body = json_body(req);
    if (!body.ok()) return send(res, body.error());
    const Json& j = body.value();
    if (!j.is_object()) return send_error(res, 400, "invalid_request", "the body must be a JSON object");
    for (const auto& [k, v] : j.items()) {
      if (k != "name" && k != "court" && k != "members") {
        return send_error(res, 400, "invalid_request", k + ": is not a field of a group (name, court, members)");
      }
      (void)v;
    }
    auto existing = groups_.get(id);
    if (!existing.ok()) return send(res, existing.error());
    GroupInfo g;
    g.id = id;
    if (existing.value()) g = *existing.value();
    if (const auto c = j.find("court"); c != j.end() && c->is_object()) {
      if (c->contains("id") && (*c)["id"].is_string()) g.court_id = (*c)["id"].get<std::string>();
      if (c->contains("name") && (*c)["name"].is_string()) g.court_name = (*c)["name"].get<std::string>();
    }
    if (g.court_id.empty()) g.court_id = who->court_id;
    if (g.court_id.empty()) return send_error(res, 400, "invalid_request", "court.id is required");
    if (!who->may_see(g.court_id) || (existing.value() && !who->may_see(existing.value()->court_id))) {
      return send_error(res, 403, "forbidden", "group " + id + " belongs to another court");
    }
    if (existing.value() && existing.value()->court_id != g.court_id) {
      return send_error(
          res, 409, "conflict",
          "group " + id + " belongs to court " + existing.value()->court_id + "; a group cannot move to another court");
    }
    if (const auto n = j.find("name"); n != j.end()) {
      if (!n->is_string() || n->get<std::string>().empty() || utf8_length(n->get<std::string>()) > 128) {
        return send_error(res, 400, "invalid_request", "name: must be a string of 1-128 characters");
      }
      g.name = n->get<std::string>();
    }
    if (g.name.empty()) return send_error(res, 400, "invalid_request", "name: is required");
    if (g.court_name.empty() || utf8_length(g.court_name) > 128 || utf8_length(g.court_id) > 64) {
      return send_error(res, 400, "invalid_request", "court: needs id (at most 64) and name (1-128 characters)");
    }
    std::optional<std::vector<Member>> members;
    if (const auto m = j.find("members"); m != j.end() && !m->is_null()) {
      auto parsed = parse_members_json(Json{{"members", *m}}.dump());
      if (!parsed.ok()) return send(res, parsed.error());
      if (!parsed->errors.empty()) {
        // Replacing a membership is all or nothing: a half-replaced group would silently drop members.
        return send_json(res, 422,
                         {{"error",
                           {{"code", "invalid_member"},
                            {"message", std::to_string(parsed->errors.size()) +
                                            " member(s) refused; nothing was changed (import adds the good rows)"}}},
                          {"errors", row_errors_json(parsed->errors)}});
      }
      members = std::move(parsed->members);
    }
    auto put = groups_.put(g, members, now_unix_ms());
    if (!put.ok()) return send(res, put.error());
    auto now = groups_.get(id);
    if (!now.ok() || !now.value()) return send_error(res, 503, "redis_unavailable", "group written; re-read failed");
    send_json(res, existing.value() ? 200 : 201, group_json(*now.value()));
  });

  s.Post(std::string("/v1/groups/") + kIdPattern + "/members:import", [this, api](const httplib::Request& req,
                                                                                  httplib::Response& res) {
    auto who = api->authenticate(req, res);
    if (!who) return;
    const std::string id = req.matches[1];
    auto g = groups_.get(id);
    if (!g.ok()) return send(res, g.error());
    if (!g.value()) return send_error(res, 404, "not_found", "no group " + id + "; create it with PUT first");
    if (!who->may_see(g.value()->court_id)) {
      return send_error(res, 403, "forbidden", "group " + id + " belongs to another court");
    }
    const std::string type = req.get_header_value("Content-Type");
    Result<ParsedMembers> parsed = Error::permanent("unsupported_media_type", "");
    if (type.starts_with("text/csv")) {
      parsed = parse_members_csv(req.body);
    } else if (type.starts_with("application/json")) {
      parsed = parse_members_json(req.body);
    } else {
      return send_error(res, 415, "unsupported_media_type",
                        "send text/csv (a header row, then one member a row) or application/json");
    }
    if (!parsed.ok()) return send(res, parsed.error());
    auto counts = groups_.upsert(id, parsed->members, now_unix_ms());
    if (!counts.ok()) return send(res, counts.error());
    if (!parsed->errors.empty()) {
      spdlog::info("group {}: import kept {} row(s), refused {}", id, parsed->members.size(), parsed->errors.size());
    }
    send_json(res, 200,
              {{"group_id", id},
               {"imported", parsed->members.size()},
               {"added", counts->added},
               {"updated", counts->updated},
               {"refused", parsed->errors.size()},
               {"errors", row_errors_json(parsed->errors)},
               {"members", counts->total}});
  });

  s.Get(std::string("/v1/groups/") + kIdPattern, [this, api](const httplib::Request& req, httplib::Response& res) {
    auto who = api->authenticate(req, res);
    if (!who) return;
    const std::string id = req.matches[1];
    auto g = groups_.get(id);
    if (!g.ok()) return send(res, g.error());
    if (!g.value()) return send_error(res, 404, "not_found", "no group " + id);
    if (!who->may_see(g.value()->court_id)) {
      return send_error(res, 403, "forbidden", "group " + id + " belongs to another court");
    }
    const auto p = page_params(req, res, 100, 1000, static_cast<int>(kMaxMembersPerGroup));
    if (!p) return;
    const int offset = p->offset;
    const int limit = p->limit;
    auto page = groups_.page(id, offset, limit);
    if (!page.ok()) return send(res, page.error());
    Json members = Json::array();
    for (const auto& m : page.value()) members.push_back(member_to_masked_json(m));
    Json out = group_json(*g.value());
    out["offset"] = offset;
    out["limit"] = limit;
    out["items"] = members;
    const long long next = offset + static_cast<long long>(page->size());
    out["next_offset"] = next < g.value()->members ? Json(next) : Json(nullptr);
    send_json(res, 200, out);
  });

  s.Post("/v1/broadcasts", [this, api](const httplib::Request& req, httplib::Response& res) {
    auto who = api->authenticate(req, res);
    if (!who) return;
    auto body = json_body(req);
    if (!body.ok()) return send(res, body.error());
    auto spec = spec_from_request(body.value(), config_);
    if (!spec.ok()) return send(res, spec.error());
    auto g = groups_.get(spec->group_id);
    if (!g.ok()) return send(res, g.error());
    if (!g.value()) return send_error(res, 404, "not_found", "no group " + spec->group_id);
    if (!who->may_see(g.value()->court_id) || (!spec->court_id.empty() && !who->may_see(spec->court_id))) {
      return send_error(res, 403, "forbidden", "group " + spec->group_id + " belongs to another court");
    }
    if (!spec->court_id.empty() && spec->court_id != g.value()->court_id) {
      return send_error(res, 400, "invalid_request", "court.id: the group belongs to " + g.value()->court_id);
    }
    spec->court_id = g.value()->court_id;
    if (spec->court_name.empty()) spec->court_name = g.value()->court_name;
    auto started = start(spec.value(), now_unix_ms());
    if (!started.ok()) return send(res, started.error());
    auto rec = broadcasts_.get(spec->id);
    if (!rec.ok() || !rec.value()) return send_error(res, 503, "redis_unavailable", "started; re-read failed");
    if (!who->may_see(rec.value()->spec.court_id)) {
      return send_error(res, 403, "forbidden", "broadcast " + spec->id + " belongs to another court");
    }
    res.set_header("Location", "/v1/broadcasts/" + spec->id);
    send_json(res, started->outcome == StartOutcome::kNew ? 202 : 200, progress_json(*rec.value(), now_unix_ms()));
  });

  s.Get("/v1/broadcasts", [this, api](const httplib::Request& req, httplib::Response& res) {
    auto who = api->authenticate(req, res);
    if (!who) return;
    std::string court = who->court_id;
    if (req.has_param("court")) court = req.get_param_value("court");
    if (court.empty()) return send_error(res, 400, "invalid_request", "?court= is required for the operator token");
    if (!who->may_see(court)) return send_error(res, 403, "forbidden", "another court's broadcasts");
    const auto limit = int_param(req, "limit", 50, 1, 200);
    if (!limit) return send_error(res, 400, "invalid_request", "limit is a whole number from 1 to 200 (default 50)");
    auto ids = broadcasts_.of_court(court, *limit);
    if (!ids.ok()) return send(res, ids.error());
    Json items = Json::array();
    for (const auto& id : ids.value()) {
      auto rec = broadcasts_.get(id);
      if (rec.ok() && rec.value()) items.push_back(progress_json(*rec.value(), now_unix_ms()));
    }
    send_json(res, 200, {{"court_id", court}, {"items", items}});
  });

  auto load = [this, api](const httplib::Request& req, httplib::Response& res) -> std::optional<BroadcastRecord> {
    auto who = api->authenticate(req, res);
    if (!who) return std::nullopt;
    const std::string id = req.matches[1];
    auto rec = broadcasts_.get(id);
    if (!rec.ok()) {
      send(res, rec.error());
      return std::nullopt;
    }
    if (!rec.value()) {
      send_error(res, 404, "not_found", "no broadcast " + id);
      return std::nullopt;
    }
    if (!who->may_see(rec.value()->spec.court_id)) {
      send_error(res, 403, "forbidden", "broadcast " + id + " belongs to another court");
      return std::nullopt;
    }
    return std::move(*rec.value());
  };

  s.Get(std::string("/v1/broadcasts/") + kIdPattern, [load](const httplib::Request& req, httplib::Response& res) {
    auto rec = load(req, res);
    if (!rec) return;
    send_json(res, 200, progress_json(*rec, now_unix_ms()));
  });

  // The members no delivery could be planned for, by name (masked contacts), for the clerk who has to serve them
  // by other means; paged like a group's members.
  s.Get(std::string("/v1/broadcasts/") + kIdPattern + "/unreachable",
        [this, load](const httplib::Request& req, httplib::Response& res) {
          auto rec = load(req, res);
          if (!rec) return;
          const auto p = page_params(req, res, 100, 1000, static_cast<int>(kMaxMembersPerGroup));
          if (!p) return;
          const int offset = p->offset;
          const int limit = p->limit;
          auto u = broadcasts_.unreachable(rec->spec.id, offset, limit);
          if (!u.ok()) return send(res, u.error());
          Json items = Json::array();
          for (const auto& [id, json] : u->members) {
            auto m = member_from_json(parse_json(json));
            Json item = m.ok() ? member_to_masked_json(*m) : Json{{"id", id}};
            item["reason"] = m.ok() ? "no route for the member's role, or no contact on the channels it routes to"
                                    : "the member's record in the broadcast's snapshot is unreadable";
            items.push_back(std::move(item));
          }
          const long long next = offset + static_cast<long long>(items.size());
          send_json(res, 200,
                    {{"broadcast_id", rec->spec.id},
                     {"total", u->total},
                     {"offset", offset},
                     {"limit", limit},
                     {"items", std::move(items)},
                     {"next_offset", next < u->total ? Json(next) : Json(nullptr)}});
        });

  s.Get(std::string("/v1/broadcasts/") + kIdPattern + "/events", [this, api, load](const httplib::Request& req,
                                                                                   httplib::Response& res) {
    auto rec = load(req, res);
    if (!rec) return;
    const auto interval = int_param(req, "interval_ms", 1000, 200, 10000);
    if (!interval) {
      return send_error(res, 400, "invalid_request", "interval_ms is a whole number from 200 to 10000 (default 1000)");
    }
    const int interval_ms = *interval;
    if (!api->open_stream(res)) return;  // each stream holds an HTTP worker: a bounded number of them
    const std::string id = rec->spec.id;
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
    // At most an hour per stream; the console reconnects (EventSource does by itself).
    const auto until = std::chrono::steady_clock::now() + std::chrono::hours(1);
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, id, interval_ms, until](std::size_t, httplib::DataSink& sink) {
          // The stream runs outside the server's handler (its try/catch): an exception here would end the process.
          bool last = false;
          auto progress = contain("broadcast progress stream", [&]() -> Result<std::string> {
            auto r = broadcasts_.get(id);
            if (!r.ok()) return r.error();
            if (!r.value()) return Error::permanent("not_found", "no broadcast " + id);
            last = is_final_state(r.value()->state);
            return progress_json(*r.value(), now_unix_ms()).dump();
          });
          std::string frame;
          if (!progress.ok()) {
            frame = "event: error\ndata: " +
                    Json{{"code", "redis_unavailable"}, {"message", "progress unavailable; reconnect"}}.dump() + "\n\n";
            last = true;
          } else {
            frame = "event: progress\ndata: " + *progress + "\n\n";
          }
          if (!sink.write(frame.data(), frame.size())) return false;
          if (last || stopping_.load() || std::chrono::steady_clock::now() > until) {
            sink.done();
            return true;
          }
          for (int waited = 0; waited < interval_ms && !stopping_.load(); waited += 50) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
          }
          return sink.is_writable();
        },
        [api](bool /*success*/) { api->close_stream(); });
  });

  s.Post(std::string("/v1/broadcasts/") + kIdPattern + "/cancel",
         [this, load](const httplib::Request& req, httplib::Response& res) {
           auto rec = load(req, res);
           if (!rec) return;
           auto before = broadcasts_.request_cancel(rec->spec.id, now_unix_ms());
           if (!before.ok()) return send(res, before.error());
           if (before.value() == "finished") {
             return send_error(res, 409, "already_" + before.value(),
                               "broadcast " + rec->spec.id + " is " + before.value() + "; nothing is left to cancel");
           }
           spdlog::info("broadcast {}: cancel requested (was {})", rec->spec.id, before.value());
           auto now = broadcasts_.get(rec->spec.id);
           if (!now.ok() || !now.value())
             return send_error(res, 503, "redis_unavailable", "cancel asked; re-read failed");
           send_json(res, 202, progress_json(*now.value(), now_unix_ms()));
         });
}

}  // namespace songda::broadcast
