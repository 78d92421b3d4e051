#include "gateway/broadcast/demo_step.h"

#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "gateway/core/event.h"
#include "gateway/core/text.h"
#include "gateway/ledger/verify_cli.h"

namespace songda::broadcast {
namespace {

using Json = nlohmann::json;

constexpr const char* kGroup = "sq-lawyers-demo";
constexpr const char* kBroadcast = "bc-demo-online-filing";

// 12 lawyers of 3 firms, and one row whose mobile is not a number.
std::string demo_csv() {
  static const char* names[] = {"张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊",
                                "赵敏", "黄强", "周杰", "吴霞", "郑涛", "孙丽"};
  static const char* firms[] = {"河南商丘某某律师事务所", "河南梁园某某律师事务所", "河南睢阳某某律师事务所"};
  std::string csv = "id,name,firm,mobile,app_user,consent_basis,consent_scope,consent_ref\n";
  for (int i = 0; i < 12; ++i) {
    const std::string id = "LAW-" + std::to_string(101 + i);
    csv += id + "," + names[i] + "," + firms[i % 3] + ",+86139" + std::to_string(20260000 + i) + ",lawyer-" +
           std::to_string(101 + i) + ",confirmed,notice.broadcast,律协登记-" + std::to_string(101 + i) + "\n";
    if (i == 5) csv += "LAW-BAD,钱某,河南某某律师事务所,0371-6xx,,confirmed,notice.broadcast,律协登记-0\n";
  }
  return csv;
}

std::string line_of(const Json& p) {
  const Json& c = p["counts"];
  return p["state"].get<std::string>() + ": " + std::to_string(p["fanout"]["members_planned"].get<long long>()) + "/" +
         std::to_string(p["members"].get<long long>()) + " members planned, " +
         std::to_string(p["deliveries"].get<long long>()) + " deliveries — ACCEPTED " +
         std::to_string(c["ACCEPTED"].get<long long>()) + ", SENT " + std::to_string(c["SENT"].get<long long>()) +
         ", DELIVERED " + std::to_string(c["DELIVERED"].get<long long>()) + ", FAILED " +
         std::to_string(c["FAILED"].get<long long>());
}

}  // namespace

bool run_demo_step(const DemoStepOptions& o, std::ostream& out) {
  httplib::Client cli(o.host, o.port);
  cli.set_read_timeout(o.timeout_s, 0);
  const httplib::Headers auth{{"Authorization", "Bearer " + o.token}};
  out << "\nLawyer-group broadcast (PUT /v1/groups, members:import, POST /v1/broadcasts, SSE progress):\n";
  auto put =
      cli.Put(std::string("/v1/groups/") + kGroup, auth,
              Json{{"name", "商丘市执业律师（演示）"}, {"court", {{"id", o.court_id}, {"name", o.court_name}}}}.dump(),
              "application/json");
  if (!put || (put->status != 200 && put->status != 201)) {
    out << "  group not created: " << (put ? put->body : std::string("no answer")) << "\n";
    return false;
  }
  auto imp = cli.Post(std::string("/v1/groups/") + kGroup + "/members:import", auth, demo_csv(), "text/csv");
  if (!imp || imp->status != 200) {
    out << "  import failed: " << (imp ? imp->body : std::string("no answer")) << "\n";
    return false;
  }
  const Json ij = Json::parse(imp->body, nullptr, false);
  out << "  group " << kGroup << ": imported " << ij.value("imported", 0) << " lawyers, refused "
      << ij.value("refused", 0) << " row(s):\n";
  for (const auto& e : ij["errors"]) {
    out << "    row " << e.value("row", 0) << " (" << e.value("id", "") << "): " << e.value("message", "") << "\n";
  }
  const Json body = {{"id", kBroadcast},
                     {"group_id", kGroup},
                     {"reference", "商中法〔2026〕12号"},
                     {"params",
                      {{"notice_title", "关于全面推行网上立案的通知"},
                       {"notice_text", "自2026年12月1日起，本院民商事案件全面推行网上立案，请通过移动微法院提交。"}}},
                     {"channels", {"inapp", "sms"}}};
  auto started = cli.Post("/v1/broadcasts", auth, body.dump(), "application/json");
  if (!started || (started->status != 202 && started->status != 200)) {
    out << "  broadcast not started: " << (started ? started->body : std::string("no answer")) << "\n";
    return false;
  }
  out << "  POST /v1/broadcasts → " << started->status << ", progress from GET /v1/broadcasts/" << kBroadcast
      << "/events:\n";

  // Follow the SSE stream until the broadcast is over (the server ends the stream then).
  Json last;
  std::string buffer;
  std::string shown;
  cli.Get(std::string("/v1/broadcasts/") + kBroadcast + "/events?interval_ms=300", auth,
          [&](const char* data, std::size_t len) {
            buffer.append(data, len);
            for (auto end = buffer.find("\n\n"); end != std::string::npos; end = buffer.find("\n\n")) {
              const std::string frame = buffer.substr(0, end);
              buffer.erase(0, end + 2);
              const auto at = frame.find("data: ");
              if (at == std::string::npos) continue;
              const Json p = Json::parse(frame.substr(at + 6), nullptr, false);
              if (!p.is_object() || !p.contains("counts")) continue;
              last = p;
              const std::string line = line_of(p);
              if (line != shown) out << "    " << line << "\n";
              shown = line;
            }
            return true;
          });
  if (!last.is_object() || last.value("state", "") != "finished") {
    out << "  the broadcast did not finish in time\n";
    return false;
  }
  out << "  dispatch finished in " << static_cast<int>(last.value("elapsed_s", 0.0) * 1000) << " ms ("
      << static_cast<int>(last.value("rate_per_s", 0.0)) << " deliveries/s); the stream ends there\n";
  // Receipts keep coming after dispatch: the SMS still SENT become DELIVERED when the operator reports.
  const auto receipts_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (last["counts"]["SENT"].get<long long>() > 0 && std::chrono::steady_clock::now() < receipts_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    auto r = cli.Get(std::string("/v1/broadcasts/") + kBroadcast, auth);
    if (r && r->status == 200) last = Json::parse(r->body, nullptr, false);
  }
  out << "    receipts in — " << line_of(last) << "\n";

  // One member's proof of service, as the clerk fetches it, verified offline.
  const std::string id = delivery_id(std::string("broadcast:") + kBroadcast, "LAW-104", kChannelSms);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto bundle = cli.Get("/v1/deliveries/" + id + "/proof", auth);
  while ((!bundle || bundle->status != 200) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    bundle = cli.Get("/v1/deliveries/" + id + "/proof", auth);
  }
  if (!bundle || bundle->status != 200) {
    out << "  proof of " << id << " not available: " << (bundle ? bundle->body : std::string("no answer")) << "\n";
    return false;
  }
  const auto dir = std::filesystem::temp_directory_path() / ("songda-demo-broadcast-proof-" + id);
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "bundle.json") << bundle->body;
  std::ofstream(dir / "court.pub") << o.public_key_pem;
  if (auto html = cli.Get("/v1/deliveries/" + id + "/proof.html", auth); html && html->status == 200) {
    std::ofstream(dir / "certificate.html") << html->body;
  }
  out << "  proof of service of lawyer LAW-104's SMS (" << id << "), verified offline:\n    songda verify "
      << (dir / "bundle.json").string() << " --pubkey " << (dir / "court.pub").string() << "\n";
  const bool verified =
      ledger::run_verify({(dir / "bundle.json").string(), "--pubkey", (dir / "court.pub").string()}, out) == 0;
  out << "  电子送达凭证: " << (dir / "certificate.html").string() << "\n";
  return verified;
}

}  // namespace songda::broadcast
