#include "tests/gateway/evidence/support.h"

#include <stdlib.h>  // mkdtemp

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "gateway/core/crypto.h"
#include "gateway/core/event.h"

namespace songda::evidence::testing {
namespace {

const std::string kZeroHash(64, 'a');

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out.push_back(c);
    }
  }
  return out + "'";
}

// Runs `command` in `dir`; Error "setup" with its output on failure.
Status run(const std::filesystem::path& dir, const std::string& command) {
  const std::string log = (dir / "command.log").string();
  const std::string line = "cd " + shell_quote(dir.string()) + " && " + command + " >" + shell_quote(log) + " 2>&1";
  if (std::system(line.c_str()) != 0) {
    auto out = read_file(log);
    return Error::permanent("setup", command + " failed: " + (out.ok() ? *out : std::string("(no output)")));
  }
  return ok_status();
}

Status write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary);
  out << text;
  return out ? ok_status() : Status(Error::permanent("setup", "cannot write " + p.string()));
}

std::string tsa_config(const std::filesystem::path& dir) {
  return "[ req ]\n"
         "distinguished_name = dn\n"
         "prompt = no\n"
         "[ dn ]\n"
         "CN = placeholder\n"
         "[ v3_ca ]\n"
         "basicConstraints = critical,CA:true\n"
         "keyUsage = critical,keyCertSign,cRLSign\n"
         "subjectKeyIdentifier = hash\n"
         "[ v3_tsa ]\n"
         "basicConstraints = critical,CA:false\n"
         "keyUsage = critical,digitalSignature,nonRepudiation\n"
         "extendedKeyUsage = critical,timeStamping\n"
         "subjectKeyIdentifier = hash\n"
         "authorityKeyIdentifier = keyid\n"
         "[ tsa ]\n"
         "default_tsa = tsa1\n"
         "[ tsa1 ]\n"
         "dir = " +
         dir.string() +
         "\n"
         "serial = $dir/tsaserial\n"
         "crypto_device = builtin\n"
         "signer_cert = $dir/tsa.crt\n"
         "certs = $dir/ca.crt\n"
         "signer_key = $dir/tsa.key\n"
         "signer_digest = sha256\n"
         "default_policy = 1.2.3.4.1\n"
         "digests = sha256, sha384, sha512\n"
         "accuracy = secs:1\n"
         "ordering = yes\n"
         "tsa_name = yes\n"
         "ess_cert_id_chain = no\n"
         "ess_cert_id_alg = sha256\n";
}

}  // namespace

nlohmann::json details_for(EvidenceType type, const std::string& basis) {
  switch (type) {
    case EvidenceType::kConsentRecorded:
      return {{"basis", basis}, {"scope", {"summons.issued"}}, {"reference", "consent-form-7"}};
    case EvidenceType::kSubmissionAccepted:
      return {{"document_id", "DOC-1"}, {"document_sha256", kZeroHash}};
    case EvidenceType::kSubmissionRejected:
      return {{"reason", "schema: recipients missing"}};
    case EvidenceType::kDispatched:
      return {{"provider", "aliyun"},
              {"address_masked", "+86138****0000"},
              {"address_hash", address_hash("salt", "+8613800000000")},
              {"text_sha256", sha256_hex("您有一份法院文书")},
              {"idempotency_key", "sd-1"}};
    case EvidenceType::kProviderAccepted:
      return {{"provider", "aliyun"}, {"provider_message_id", "bizid-1"}};
    case EvidenceType::kDelivered:
      return {{"receipt_sha256", sha256_hex("receipt")}, {"provider", "aliyun"}};
    case EvidenceType::kDeliveryFailed:
      return {{"reason", "isv.MOBILE_NUMBER_ILLEGAL"}};
    case EvidenceType::kRead:
      return {{"identified_by", "inbox session of app user u123"}};
    case EvidenceType::kRetrieved:
      return {{"identified_by", "signed link token"}, {"served_sha256", kZeroHash}};
    case EvidenceType::kAcknowledged:
      return {{"method", "online confirmation"}};
    case EvidenceType::kServiceDeemedComplete:
      return {{"status", "SERVED"},
              {"rule", "OLR-2021-Art31-1"},
              {"rule_version", "cn-olr-2021.1"},
              {"evidence_ids", nlohmann::json::array()}};
    case EvidenceType::kFallback:
      return {{"reason", "no delivery receipt in 30 min"}, {"to_channel", "email"}};
    case EvidenceType::kCorrection:
      return {{"corrects", "ev-00000000000000000000000000000000"}, {"reason", "x"}};
  }
  return nlohmann::json::object();
}

std::string delivery_of(const std::string& channel, const std::string& recipient) {
  return songda::delivery_id(kEventId, recipient, channel);
}

EvidenceRecord make_record(const std::string& channel, EvidenceType type, std::int64_t event_time,
                           nlohmann::json details, const std::string& recipient, std::string discriminator) {
  EvidenceRecord r;
  r.type = type;
  r.event_time_ms = event_time;
  r.recorded_at_ms = event_time + 250;
  r.event_id = kEventId;
  r.court_id = kCourt;
  r.case_number = kCase;
  r.channel = channel;
  r.delivery_id = delivery_of(channel, recipient);
  r.details = details.is_null() ? details_for(type) : std::move(details);
  if (discriminator.empty()) discriminator = std::to_string(event_time);
  r.evidence_id = make_evidence_id(r.delivery_id, type, discriminator);
  return r;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "songda-evidence-XXXXXX").string();
  if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!path_.empty()) std::filesystem::remove_all(path_, ec);
}

bool have_openssl_cli() { return std::system("openssl version >/dev/null 2>&1") == 0; }

Result<std::string> read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Error::permanent("setup", "cannot read " + p.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<LocalTsa> LocalTsa::create(const std::filesystem::path& dir) {
  LocalTsa tsa(dir);
  const std::vector<std::string> steps = {
      "openssl req -config tsa.cnf -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
      "-out ca.crt -days 2 -extensions v3_ca -subj '/CN=Songda Test TSA CA'",
      "openssl req -config tsa.cnf -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tsa.key "
      "-out tsa.csr -subj '/CN=Songda Test TSA'",
      "openssl x509 -req -in tsa.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out tsa.crt -days 2 "
      "-extfile tsa.cnf -extensions v3_tsa",
  };
  if (auto s = write_file(dir / "tsa.cnf", tsa_config(dir)); !s) return s.error();
  if (auto s = write_file(dir / "tsaserial", "01\n"); !s) return s.error();
  for (const auto& step : steps) {
    if (auto s = run(dir, step); !s) return s.error();
  }
  auto ca = read_file(dir / "ca.crt");
  if (!ca) return ca.error();
  tsa.ca_pem_ = std::move(*ca);
  return tsa;
}

Result<std::string> LocalTsa::stamp(const std::string& data, bool token_only) const {
  if (auto s = write_file(dir_ / "data.bin", data); !s) return s.error();
  std::filesystem::remove(dir_ / "out.der");
  if (auto s = run(dir_, "openssl ts -query -data data.bin -sha256 -cert -out query.tsq"); !s) return s.error();
  const std::string reply = std::string("openssl ts -reply -config tsa.cnf -queryfile query.tsq ") +
                            (token_only ? "-token_out " : "") + "-out out.der";
  if (auto s = run(dir_, reply); !s) return s.error();
  return read_file(dir_ / "out.der");
}

}  // namespace songda::evidence::testing
