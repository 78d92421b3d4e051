#include "gateway/ledger/proof_service.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "gateway/evidence/bundle.h"
#include "gateway/evidence/rules.h"
#include "gateway/ledger/evidence_makers.h"

namespace songda::ledger {
namespace {

using evidence::EvidenceRecord;
using evidence::EvidenceType;
using Json = nlohmann::json;

constexpr const char* kChannels[] = {kChannelInApp, kChannelSms, kChannelWechat, kChannelEmail};

std::int64_t to_i64(const RedisReply& r) {
  if (r.type == RedisReply::Type::kInteger) return r.integer;
  std::int64_t v = -1;
  if (r.type == RedisReply::Type::kString) std::from_chars(r.str.data(), r.str.data() + r.str.size(), v);
  return v;
}

std::vector<StatusEntry> parse_history(const RedisReply& hist) {
  std::vector<StatusEntry> out;
  for (const auto& e : hist.elements) {
    const auto j = Json::parse(e.str, nullptr, false);
    if (!j.is_object()) continue;
    StatusEntry s;
    s.status = j.value("status", "");
    s.at_ms = j.contains("at") && j["at"].is_number_integer() ? j["at"].get<std::int64_t>() : 0;
    s.detail = j.value("detail", "");
    out.push_back(std::move(s));
  }
  return out;
}

// Reads records by leaf index, in chunks of pipelined LINDEX. Missing leaves are an error.
Result<std::map<std::uint64_t, EvidenceRecord>> read_records(RedisPool& pool, const std::set<std::uint64_t>& indexes) {
  std::map<std::uint64_t, EvidenceRecord> out;
  std::vector<std::uint64_t> list(indexes.begin(), indexes.end());
  for (std::size_t a = 0; a < list.size(); a += 10000) {
    const std::size_t b = std::min(list.size(), a + 10000);
    std::vector<std::vector<std::string>> cmds;
    for (std::size_t i = a; i < b; ++i) cmds.push_back({"LINDEX", kLeavesKey, std::to_string(list[i])});
    auto r = pool.pipeline(cmds);
    if (!r) return r.error();
    for (std::size_t i = a; i < b; ++i) {
      const RedisReply& leaf = (*r)[i - a];
      if (leaf.type != RedisReply::Type::kString) {
        return Error::permanent("schema", "evidence leaf #" + std::to_string(list[i]) + " is missing");
      }
      auto rec = evidence::record_from_json(Json::parse(leaf.str, nullptr, false));
      if (!rec) {
        return Error::permanent("schema", "evidence leaf #" + std::to_string(list[i]) + " is not a valid record: " +
                                              rec.error().message + "; hint: run songda ledger check");
      }
      out.emplace(list[i], std::move(*rec));
    }
  }
  return out;
}

ChannelFacts facts_of(const Delivery& d, const std::string& status, const std::string& provider,
                      const std::string& pmid, std::vector<StatusEntry> history) {
  return ChannelFacts{d.id, d.channel,         status, mask_address(d.channel, d.address), d.consent_basis, provider,
                      pmid, std::move(history)};
}

bool attests_document(const std::vector<EvidenceRecord>& records, const std::string& sha) {
  return std::any_of(records.begin(), records.end(), [&](const EvidenceRecord& r) {
    return r.type == EvidenceType::kSubmissionAccepted && r.details.value("document_sha256", "") == sha;
  });
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

ProofService::ProofService(RedisPool& pool, DeliveryStore& store, evidence::SigningKey key, ProofOptions options)
    : pool_(pool), store_(store), key_(std::move(key)), options_(options) {
  auto pem = key_.public_key().public_pem();
  if (!pem) throw StartupError("cannot export the evidence public key: " + pem.error().message);
  public_key_pem_ = std::move(*pem);
}

Result<RecipientProof> ProofService::proof_for(const Delivery& delivery) {
  RecipientProof out;
  out.delivery_id = delivery.id;
  CertificateFacts& f = out.facts;
  f.court_id = delivery.court_id;
  f.court_name = delivery.court_name;
  f.case_number = delivery.case_number;
  f.event_id = delivery.event_id;
  f.event_type = delivery.event_type;
  f.title = delivery.title;
  f.recipient_id = delivery.recipient_id;
  f.recipient_name = delivery.recipient_name;
  f.recipient_role = delivery.recipient_role;
  f.document = delivery.document;

  // 1. The recipient's deliveries on every channel, their leaf indexes, the event's own, the checkpoint.
  std::vector<std::vector<std::string>> cmds;
  std::vector<std::string> ids;
  for (const char* ch : kChannels) {
    const std::string id = delivery_id(delivery.event_id, delivery.recipient_id, ch);
    ids.push_back(id);
    const std::string dk = "sd:dlv:{" + id + "}";
    cmds.push_back({"HMGET", dk, "record", "status", "provider", "provider_message_id"});
    cmds.push_back({"LRANGE", dk + ":hist", "0", "-1"});
    cmds.push_back({"LRANGE", delivery_index_key(id), "0", "-1"});
  }
  cmds.push_back({"LRANGE", delivery_index_key(event_index_id(delivery.event_id)), "0", "-1"});
  cmds.push_back({"GET", kLatestCheckpointKey});
  const std::int64_t read_at_ms = now_unix_ms();
  auto r = pool_.pipeline(cmds);
  if (!r) return r.error();
  const auto& rs = r.value();
  std::set<std::uint64_t> indexes;
  std::set<std::uint64_t> event_level;
  std::set<std::string> recipient_ids;
  for (std::size_t c = 0; c < ids.size(); ++c) {
    const RedisReply& h = rs[3 * c];
    if (h.elements.size() != 4 || h.elements[0].type != RedisReply::Type::kString) continue;
    auto d = delivery_from_record_text(h.elements[0].str);
    if (!d) continue;
    recipient_ids.insert(ids[c]);
    f.channels.push_back(
        facts_of(*d, h.elements[1].str, h.elements[2].str, h.elements[3].str, parse_history(rs[3 * c + 1])));
    for (const auto& e : rs[3 * c + 2].elements) {
      if (const auto i = to_i64(e); i >= 0) indexes.insert(static_cast<std::uint64_t>(i));
    }
  }
  for (const auto& e : rs[3 * ids.size()].elements) {
    if (const auto i = to_i64(e); i >= 0) {
      indexes.insert(static_cast<std::uint64_t>(i));
      event_level.insert(static_cast<std::uint64_t>(i));
    }
  }
  if (indexes.empty()) {
    return Error::permanent("no_evidence", "the evidence log holds no record of delivery " + delivery.id +
                                               "; hint: deliveries recorded before the evidence log was enabled "
                                               "have no proof");
  }
  out.newest_leaf = *indexes.rbegin();
  std::optional<evidence::Checkpoint> checkpoint;
  if (const RedisReply& latest = rs.back(); latest.type == RedisReply::Type::kString) {
    auto c = evidence::checkpoint_from_json(Json::parse(latest.str, nullptr, false));
    if (!c) return Error::permanent("schema", "the latest checkpoint is unreadable: " + c.error().message);
    checkpoint = std::move(*c);
    out.checkpoint_size = checkpoint->tree_size;
  }
  if (!checkpoint || out.newest_leaf >= checkpoint->tree_size) return out;  // pending_checkpoint

  // 2. The records.
  auto records = read_records(pool_, indexes);
  if (!records) return records.error();
  std::vector<std::pair<EvidenceRecord, std::uint64_t>> chosen;
  std::vector<EvidenceRecord> plain;
  for (auto& [index, rec] : *records) {
    const bool event_record = event_level.contains(index);
    if (event_record) {
      // Only the acceptance of this very event (court and case must agree with the delivery).
      if (rec.type != EvidenceType::kSubmissionAccepted || rec.event_id != delivery.event_id ||
          rec.court_id != delivery.court_id || rec.case_number != delivery.case_number) {
        continue;
      }
    } else if (!recipient_ids.contains(rec.delivery_id)) {
      continue;
    }
    plain.push_back(rec);
    chosen.emplace_back(std::move(rec), index);
  }

  // 3. Inclusion proofs in one batch, and the bundle.
  const RedisNodeSource source(pool_);
  auto proven = evidence::prove_records(source, chosen, checkpoint->tree_size);
  if (!proven) return proven.error();
  evidence::BundleInput in;
  in.delivery = evidence::DeliveryRef{delivery.id,      delivery.event_id, delivery.recipient_id,
                                      delivery.channel, delivery.court_id, delivery.case_number};
  in.records = std::move(*proven);
  in.checkpoint = std::move(*checkpoint);
  in.attested_at_ms = read_at_ms;
  if (delivery.document) {
    const std::string sha = lower(delivery.document->sha256);
    if (attests_document(plain, sha)) in.document_sha256 = sha;
  }
  auto bundle = evidence::build_bundle(in, key_);
  if (!bundle) return bundle.error();
  out.bundle = std::move(*bundle);
  out.state = RecipientProof::State::kReady;
  return out;
}

Result<nlohmann::json> ProofService::service_summary(const std::vector<std::string>& courts,
                                                     const std::string& case_number) {
  struct Group {
    std::vector<const DeliveryView*> views;
  };
  std::vector<DeliveryView> all;
  for (const auto& court : courts) {
    auto list = store_.case_deliveries(court, case_number);
    if (!list) return list.error();
    for (auto& v : *list) all.push_back(std::move(v));
  }
  std::map<std::tuple<std::string, std::string, std::string>, Group> groups;  // (court, event, recipient)
  std::set<std::uint64_t> indexes;
  for (const auto& v : all) {
    groups[{v.delivery.court_id, v.delivery.event_id, v.delivery.recipient_id}].views.push_back(&v);
    for (auto i : v.evidence_indexes) {
      if (i >= 0) indexes.insert(static_cast<std::uint64_t>(i));
    }
  }
  auto records = read_records(pool_, indexes);
  if (!records) return records.error();

  Json items = Json::array();
  std::map<std::string, int> totals;
  for (auto& [key, g] : groups) {
    std::sort(g.views.begin(), g.views.end(),
              [](const DeliveryView* a, const DeliveryView* b) { return a->created_ms < b->created_ms; });
    const Delivery& first = g.views.front()->delivery;
    std::vector<EvidenceRecord> recs;
    Json channels = Json::array();
    for (const DeliveryView* v : g.views) {
      channels.push_back({{"delivery_id", v->delivery.id},
                          {"channel", v->delivery.channel},
                          {"status", v->status},
                          {"address_masked", mask_address(v->delivery.channel, v->delivery.address)},
                          {"consent_basis", v->delivery.consent_basis},
                          {"evidence_records", v->evidence_indexes.size()}});
      for (auto i : v->evidence_indexes) {
        if (auto it = records->find(static_cast<std::uint64_t>(i)); it != records->end()) {
          recs.push_back(it->second);
        }
      }
    }
    auto deliveries = evidence::deliveries_from_records(recs);
    const evidence::ServiceDecision decision =
        deliveries ? evidence::decide_service(*deliveries) : evidence::ServiceDecision{};
    Json service = evidence::to_json(decision);
    if (decision.service_time_ms) service["service_time_beijing"] = beijing_time(*decision.service_time_ms);
    const std::string status(evidence::to_string(decision.status));
    ++totals[status];
    Json item = {
        {"court_id", first.court_id},
        {"event_id", first.event_id},
        {"event_type", first.event_type},
        {"recipient", {{"id", first.recipient_id}, {"role", first.recipient_role}, {"name", first.recipient_name}}},
        {"service", std::move(service)},
        {"channels", std::move(channels)},
        {"proof", "/v1/deliveries/" + first.id + "/proof"},
        {"certificate", "/v1/deliveries/" + first.id + "/proof.html"}};
    if (!deliveries) item["problem"] = deliveries.error().message;
    if (first.document) {
      item["document"] = {
          {"id", first.document->id}, {"title", first.document->title}, {"sha256", first.document->sha256}};
    }
    items.push_back(std::move(item));
  }
  return Json{{"case_number", case_number},
              {"rule_version", evidence::kRulesVersion},
              {"recipients", std::move(items)},
              {"count", groups.size()},
              {"by_status", totals}};
}

Result<std::optional<StoredCheckpoint>> ProofService::latest_checkpoint() { return read_latest_checkpoint(pool_); }

Result<nlohmann::json> ProofService::consistency(std::uint64_t from, std::uint64_t to) {
  auto latest = read_latest_checkpoint(pool_);
  if (!latest) return latest.error();
  if (!latest->has_value()) return Error::permanent("not_found", "no checkpoint has been signed yet");
  const StoredCheckpoint& cp = **latest;
  if (to == 0) to = cp.checkpoint.tree_size;
  if (from == 0 || from > to || to > cp.checkpoint.tree_size) {
    return Error::permanent("invalid_argument", "need 0 < from ≤ to ≤ " + std::to_string(cp.checkpoint.tree_size) +
                                                    " (the latest signed size); got from=" + std::to_string(from) +
                                                    " to=" + std::to_string(to));
  }
  const RedisNodeSource source(pool_);
  auto proof = evidence::consistency_proof(source, from, to);
  if (!proof) return proof.error();
  auto from_root = evidence::root(source, from);
  if (!from_root) return from_root.error();
  auto to_root = evidence::root(source, to);
  if (!to_root) return to_root.error();
  Json hex = Json::array();
  for (const auto& h : *proof) hex.push_back(to_hex(h));
  Json out = {{"from", from},
              {"to", to},
              {"proof", std::move(hex)},
              {"from_root", to_hex(*from_root)},
              {"to_root", to_hex(*to_root)}};
  if (to == cp.checkpoint.tree_size) out["checkpoint"] = Json::parse(cp.json, nullptr, false);
  return out;
}

namespace {

bool parse_u64(const std::string& s, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

int status_for(const Error& e) {
  if (e.code == "not_found" || e.code == "no_evidence") return 404;
  if (e.code == "invalid_argument") return 400;
  if (e.retryable || e.code == "redis_unavailable") return 503;
  return 500;
}

void send_pending_json(httplib::Response& res, const RecipientProof& p, int retry_after_s) {
  res.set_header("Retry-After", std::to_string(retry_after_s));
  send_json(res, 202,
            {{"status", "pending_checkpoint"},
             {"delivery_id", p.delivery_id},
             {"newest_leaf", p.newest_leaf},
             {"checkpoint_size", p.checkpoint_size},
             {"retry_after_s", retry_after_s},
             {"hint",
              "the newest evidence record is not yet covered by a signed checkpoint; the log signs every "
              "few seconds — retry after " +
                  std::to_string(retry_after_s) + " s"}});
}

}  // namespace

void register_proof_routes(ApiServer& server, ProofService& proofs) {
  auto& s = server.raw();
  ApiServer* api = &server;

  // Authenticates, loads the delivery, checks the court, builds the proof; on failure the response is written.
  auto fetch = [api, &proofs](const httplib::Request& req, httplib::Response& res) -> std::optional<RecipientProof> {
    auto who = api->authenticate(req, res);
    if (!who) return std::nullopt;
    const std::string id = req.matches[1];
    auto v = proofs.store().get_delivery(id);
    if (!v) {
      send_error(res, 503, v.error().code, v.error().message);
      return std::nullopt;
    }
    if (!v.value()) {
      send_error(res, 404, "not_found", "no delivery " + id);
      return std::nullopt;
    }
    if (!who->may_see(v.value()->delivery.court_id)) {
      send_error(res, 403, "forbidden", "this delivery belongs to another court");
      return std::nullopt;
    }
    auto p = proofs.proof_for(v.value()->delivery);
    if (!p) {
      if (p.error().code != "no_evidence")
        spdlog::error("proof for {}: {} ({})", id, p.error().message, p.error().code);
      send_error(res, status_for(p.error()), p.error().code, p.error().message);
      return std::nullopt;
    }
    return std::move(*p);
  };

  s.Get(R"(/v1/deliveries/([A-Za-z0-9_-]+)/proof)",
        [fetch, &proofs](const httplib::Request& req, httplib::Response& res) {
          auto p = fetch(req, res);
          if (!p) return;
          if (p->state != RecipientProof::State::kReady)
            return send_pending_json(res, *p, proofs.options().retry_after_s);
          res.set_header("Content-Disposition", "inline; filename=\"" + std::string(req.matches[1]) + ".proof.json\"");
          send_json(res, 200, p->bundle);
        });

  s.Get(R"(/v1/deliveries/([A-Za-z0-9_-]+)/proof\.html)",
        [fetch, &proofs](const httplib::Request& req, httplib::Response& res) {
          auto p = fetch(req, res);
          if (!p) return;
          if (p->state != RecipientProof::State::kReady) {
            const int wait = proofs.options().retry_after_s;
            res.status = 202;
            res.set_header("Retry-After", std::to_string(wait));
            res.set_content(render_pending_html(p->facts, wait), "text/html; charset=utf-8");
            return;
          }
          res.status = 200;
          res.set_content(render_certificate_html(p->bundle, p->facts), "text/html; charset=utf-8");
        });

  s.Get(R"(/v1/cases/([^/]+)/service-summary)", [api, &proofs](const httplib::Request& req, httplib::Response& res) {
    auto who = api->authenticate(req, res);
    if (!who) return;
    const std::string case_number = req.matches[1];
    auto courts = proofs.store().courts_of_case(case_number);
    if (!courts) return send_error(res, 503, courts.error().code, courts.error().message);
    std::vector<std::string> visible;
    for (const auto& c : *courts) {
      if (who->may_see(c)) visible.push_back(c);
    }
    if (courts->empty()) return send_error(res, 404, "not_found", "no case " + case_number);
    if (visible.empty()) return send_error(res, 403, "forbidden", "case " + case_number + " belongs to another court");
    auto summary = proofs.service_summary(visible, case_number);
    if (!summary) return send_error(res, status_for(summary.error()), summary.error().code, summary.error().message);
    send_json(res, 200, *summary);
  });

  s.Get("/v1/evidence/checkpoints/latest", [api, &proofs](const httplib::Request& req, httplib::Response& res) {
    if (!api->authenticate(req, res)) return;
    auto latest = proofs.latest_checkpoint();
    if (!latest) return send_error(res, status_for(latest.error()), latest.error().code, latest.error().message);
    if (!latest->has_value()) return send_error(res, 404, "not_found", "no checkpoint has been signed yet");
    res.status = 200;
    res.set_content((*latest)->json, "application/json; charset=utf-8");
  });

  s.Get("/v1/evidence/consistency", [api, &proofs](const httplib::Request& req, httplib::Response& res) {
    if (!api->authenticate(req, res)) return;
    std::uint64_t from = 0;
    std::uint64_t to = 0;
    if (!req.has_param("from") || !parse_u64(req.get_param_value("from"), from) ||
        (req.has_param("to") && !parse_u64(req.get_param_value("to"), to))) {
      return send_error(res, 400, "invalid_argument",
                        "use ?from=M&to=N with two checkpoint tree sizes (to defaults to the latest)");
    }
    auto proof = proofs.consistency(from, to);
    if (!proof) return send_error(res, status_for(proof.error()), proof.error().code, proof.error().message);
    send_json(res, 200, *proof);
  });

  s.Get("/v1/evidence/public-key", [api, &proofs](const httplib::Request& req, httplib::Response& res) {
    if (!api->authenticate(req, res)) return;
    res.status = 200;
    res.set_header("Content-Disposition", "inline; filename=\"court.pub\"");
    res.set_content(proofs.public_key_pem(), "application/x-pem-file");
  });
}

}  // namespace songda::ledger
