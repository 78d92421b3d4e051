#include "gateway/ledger/verify_cli.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "gateway/core/json_parse.h"
#include "gateway/core/text.h"
#include "gateway/evidence/bundle.h"
#include "gateway/evidence/checkpoint.h"
#include "gateway/ledger/certificate.h"
#include "gateway/ledger/redis_log.h"
#include "gateway/store/redis.h"

namespace songda::ledger {
namespace {

using Json = nlohmann::json;

constexpr const char* kVerifyUsage =
    "usage: songda verify BUNDLE --pubkey FILE [--document FILE] [--since CHECKPOINT_JSON --consistency PROOF_JSON]\n"
    "                     [--tsa-ca FILE] [--json]\n"
    "  检查电子送达凭证（离线）/ checks a proof-of-service bundle offline with the court's public key\n";
constexpr const char* kKeygenUsage = "usage: songda keygen --out DIR   (writes DIR/court.key 0600 and DIR/court.pub)\n";
constexpr const char* kCheckUsage =
    "usage: songda ledger check [--redis URL] [--pubkey FILE] [--repair-levels] [--json]\n";

// A field of the bundle as printed before (and whatever) the checks find: the bundle is untrusted input.
std::string shown(const Json& obj, const char* key) {
  std::string text = string_member(obj, key);
  return text.empty() ? "?" : text;
}

// --name VALUE options and flags; everything else is positional. False on a malformed line.
struct Args {
  std::map<std::string, std::string> options;
  std::map<std::string, bool> flags;
  std::vector<std::string> positional;
};

bool parse_args(const std::vector<std::string>& args, const std::vector<std::string>& with_value,
                const std::vector<std::string>& flags, Args& out, std::string& problem) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a.starts_with("--")) {
      if (std::find(with_value.begin(), with_value.end(), a) != with_value.end()) {
        if (i + 1 >= args.size()) {
          problem = a + " needs a value";
          return false;
        }
        if (out.options.contains(a)) {
          problem = a + " given twice";
          return false;
        }
        out.options[a] = args[++i];
      } else if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
        out.flags[a] = true;
      } else {
        problem = "unknown option " + a;
        return false;
      }
    } else {
      out.positional.push_back(a);
    }
  }
  return true;
}

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream s;
  s << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return s.str();
}

}  // namespace

int run_verify(const std::vector<std::string>& argv, std::ostream& out) {
  Args a;
  std::string problem;
  if (!parse_args(argv, {"--pubkey", "--document", "--since", "--consistency", "--tsa-ca"}, {"--json", "--help"}, a,
                  problem) ||
      a.flags.contains("--help")) {
    out << (problem.empty() ? "" : "songda verify: " + problem + "\n") << kVerifyUsage;
    return a.flags.contains("--help") && problem.empty() ? 0 : 2;
  }
  if (a.positional.size() != 1 || !a.options.contains("--pubkey")) {
    out << "songda verify: give exactly one BUNDLE file and --pubkey FILE\n" << kVerifyUsage;
    return 2;
  }
  if (a.options.contains("--since") != a.options.contains("--consistency")) {
    out << "songda verify: --since and --consistency go together (an earlier checkpoint and the proof from it)\n"
        << kVerifyUsage;
    return 2;
  }
  auto need = [&](const std::string& path, const char* what) -> std::optional<std::string> {
    auto text = read_file(path);
    if (!text) out << "songda verify: cannot read " << what << " " << path << " 无法读取文件\n";
    return text;
  };
  const std::string bundle_path = a.positional.front();
  auto bundle = need(bundle_path, "bundle");
  if (!bundle) return 2;
  auto pubkey = need(a.options["--pubkey"], "public key");
  if (!pubkey) return 2;

  evidence::VerifyOptions options;
  if (a.options.contains("--document")) {
    auto doc = need(a.options["--document"], "document");
    if (!doc) return 2;
    options.document_bytes = std::move(*doc);
  }
  if (a.options.contains("--tsa-ca")) {
    auto ca = need(a.options["--tsa-ca"], "TSA CA certificate");
    if (!ca) return 2;
    options.tsa_ca_pem = std::move(*ca);
  }
  if (a.options.contains("--since")) {
    auto since = need(a.options["--since"], "earlier checkpoint");
    if (!since) return 2;
    auto proof_text = need(a.options["--consistency"], "consistency proof");
    if (!proof_text) return 2;
    const Json proof = parse_json(*proof_text);
    const Json* list =
        proof.is_array() ? &proof : (proof.is_object() && proof.contains("proof") ? &proof["proof"] : nullptr);
    if (list == nullptr || !list->is_array()) {
      out << "songda verify: " << a.options["--consistency"]
          << " is neither a JSON array of hex hashes nor an object with \"proof\" (GET /v1/evidence/consistency)\n";
      return 2;
    }
    evidence::EarlierCheckpoint earlier;
    earlier.checkpoint_json = std::move(*since);
    for (const auto& h : *list)
      earlier.consistency_proof_hex.push_back(h.is_string() ? h.get<std::string>() : h.dump());
    options.earlier = std::move(earlier);
  }

  const evidence::VerifyReport report = evidence::verify_bundle(*bundle, *pubkey, options);
  if (a.flags.contains("--json")) {
    out << report.to_json().dump(2) << "\n";
    return report.ok ? 0 : 1;
  }
  out << "songda verify — 电子送达凭证核验 / offline proof-of-service verification\n";
  out << "bundle 凭证文件: " << bundle_path << "\n";
  const Json parsed = parse_json(*bundle);
  if (parsed.is_object() && parsed.contains("delivery") && parsed["delivery"].is_object()) {
    const Json& d = parsed["delivery"];
    out << "delivery 送达: " << shown(d, "delivery_id") << " · case 案号 " << shown(d, "case_number") << " ("
        << shown(d, "court_id") << ") · recipient 受送达人 " << shown(d, "recipient_id") << "\n";
  }
  out << "\n" << report.text();
  std::size_t failed = 0;
  std::size_t passed = 0;
  for (const auto& c : report.checks) {
    failed += c.ok ? 0 : 1;
    passed += c.ok && c.checked ? 1 : 0;
  }
  if (report.ok) {
    const Json s = parsed.is_object() ? parsed.value("service", Json::object()) : Json::object();
    out << "\nResult 结果: VERIFIED 核验通过 — " << passed << " checks passed 全部通过";
    if (passed < report.checks.size()) out << " (" << report.checks.size() - passed << " not checked 未核验)";
    if (s.is_object() && s.contains("service_time") && s["service_time"].is_number_integer()) {
      out << "; served 送达日期 " << beijing_time(s["service_time"].get<std::int64_t>()) << " via "
          << channel_name_zh(string_member(s, "channel"));
    } else if (s.is_object()) {
      out << "; service 送达状态 " << shown(s, "status");
    }
    out << "\n";
    return 0;
  }
  out << "\nResult 结果: NOT VERIFIED 核验未通过 — " << failed << " of " << report.checks.size()
      << " checks failed; see [FAIL] above 请查看标为 [FAIL] 的项目\n";
  return 1;
}

int run_keygen(const std::vector<std::string>& argv, std::ostream& out) {
  Args a;
  std::string problem;
  if (!parse_args(argv, {"--out"}, {}, a, problem) || !a.positional.empty() || !a.options.contains("--out")) {
    out << (problem.empty() ? "" : "songda keygen: " + problem + "\n") << kKeygenUsage;
    return 2;
  }
  const std::filesystem::path dir = a.options["--out"];
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    out << "songda keygen: cannot create " << dir.string() << ": " << ec.message() << "\n";
    return 1;
  }
  const std::string key = (dir / "court.key").string();
  const std::string pub = (dir / "court.pub").string();
  if (auto s = evidence::generate_key_pair_files(key, pub); !s) {
    out << "songda keygen: " << s.error().message
        << (s.error().code == "exists" ? "; hint: keys are never overwritten — choose another --out DIR" : "") << "\n";
    return 1;
  }
  auto verify_key = evidence::load_public_key_file(pub);
  out << "wrote " << key << " (private, 0600 — keep it secret 私钥请妥善保管)\n";
  out << "wrote " << pub << " (public — publish it 公钥可公开)\n";
  if (verify_key) out << "key id 密钥标识: " << verify_key->key_id() << "\n";
  out << "use: SONGDA_EVIDENCE_KEY_FILE=" << key << " songda run …\n";
  return 0;
}

int run_ledger_check(const std::vector<std::string>& argv, std::ostream& out) {
  Args a;
  std::string problem;
  if (!parse_args(argv, {"--redis", "--pubkey"}, {"--repair-levels", "--json"}, a, problem) || !a.positional.empty()) {
    out << (problem.empty() ? "" : "songda ledger check: " + problem + "\n") << kCheckUsage;
    return 2;
  }
  std::string url = "redis://127.0.0.1:6379/0";
  if (const char* env = std::getenv("SONGDA_REDIS_URL"); env != nullptr && *env != '\0') url = env;
  if (a.options.contains("--redis")) url = a.options["--redis"];
  auto ep = parse_redis_url(url);
  if (!ep) {
    out << "songda ledger check: " << ep.error().message << "\n";
    return 2;
  }
  if (const char* pw = std::getenv("SONGDA_REDIS_PASSWORD"); pw != nullptr && *pw != '\0' && ep->password.empty()) {
    ep->password = pw;
  }
  LedgerCheckOptions options;
  options.repair_levels = a.flags.contains("--repair-levels");
  if (a.options.contains("--pubkey")) {
    auto key = evidence::load_public_key_file(a.options["--pubkey"]);
    if (!key) {
      out << "songda ledger check: " << key.error().message << "\n";
      return 2;
    }
    options.key = std::move(*key);
  }
  RedisPool pool(*ep, 2, 30000);
  auto report = rebuild_and_check(pool, options);
  if (!report) {
    out << "songda ledger check: " << report.error().message << " (" << report.error().code << ")\n";
    return 2;
  }
  out << (a.flags.contains("--json") ? report->to_json().dump(2) + "\n" : report->text());
  return report->ok ? 0 : 1;
}

}  // namespace songda::ledger
