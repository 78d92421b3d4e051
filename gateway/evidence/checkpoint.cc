#include "gateway/evidence/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/ts.h>
#include <openssl/x509.h>

#include <array>
#include <cerrno>
#include <ctime>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>

#include "gateway/core/crypto.h"
#include "gateway/evidence/json_fields.h"
#include "gateway/evidence/merkle.h"

namespace songda::evidence {
namespace {

// One RAII holder per OpenSSL handle type.
template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* p) const {
    Free(p);
  }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using StorePtr = std::unique_ptr<X509_STORE, Deleter<X509_STORE_free>>;
using TsRespPtr = std::unique_ptr<TS_RESP, Deleter<TS_RESP_free>>;
using Pkcs7Ptr = std::unique_ptr<PKCS7, Deleter<PKCS7_free>>;
using TstInfoPtr = std::unique_ptr<TS_TST_INFO, Deleter<TS_TST_INFO_free>>;
using VerifyCtxPtr = std::unique_ptr<TS_VERIFY_CTX, Deleter<TS_VERIFY_CTX_free>>;
using BignumPtr = std::unique_ptr<BIGNUM, Deleter<BN_free>>;

constexpr std::size_t kEd25519KeySize = 32;
constexpr std::size_t kEd25519SigSize = 64;
constexpr std::size_t kMaxKeyFileSize = 64 * 1024;

// Drains OpenSSL's thread-local error queue into one line.
std::string openssl_reason() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    std::array<char, 256> buf{};
    ERR_error_string_n(e, buf.data(), buf.size());
    if (!out.empty()) out += "; ";
    out += buf.data();
  }
  return out.empty() ? "no OpenSSL detail" : out;
}

Error crypto_error(const std::string& what) { return Error::permanent("crypto", what + ": " + openssl_reason()); }

BioPtr memory_bio(std::string_view bytes) {
  return BioPtr(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<std::size_t>(len)) : std::string();
}

const unsigned char* bytes_of(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

Result<std::string> raw_public_key(const EVP_PKEY* pkey) {
  std::string raw(kEd25519KeySize, '\0');
  std::size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(pkey, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
      len != kEd25519KeySize) {
    return crypto_error("cannot read the Ed25519 public key");
  }
  return raw;
}

// strerror() is not thread-safe; error_code's message is.
Error io_error(const std::string& what, const std::string& path, int err) {
  std::string message = what;
  message.append(" ").append(path).append(": ").append(std::error_code(err, std::generic_category()).message());
  return Error::permanent("io", std::move(message));
}

Result<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error("cannot open", path, errno);
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  if (s.size() > kMaxKeyFileSize) return Error::permanent("io", path + " is too large for a key file");
  return s;
}

Status write_new_file(const std::string& path, std::string_view text, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    if (err == EEXIST)
      return Error::permanent("exists", path + " already exists; hint: remove it or pick another path");
    return io_error("cannot create", path, err);
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      return io_error("cannot write", path, err);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0) return io_error("cannot close", path, errno);
  return ok_status();
}

bool is_ed25519(const EVP_PKEY* pkey) { return pkey != nullptr && EVP_PKEY_get_id(pkey) == EVP_PKEY_ED25519; }

}  // namespace

struct VerifyKey::Impl {
  PkeyPtr pkey;
  std::string raw;
  std::string key_id;
};

struct SigningKey::Impl {
  PkeyPtr pkey;
  VerifyKey public_key;
};

namespace {

Result<VerifyKey> make_verify_key(PkeyPtr pkey) {
  auto raw = raw_public_key(pkey.get());
  if (!raw) return raw.error();
  auto impl = std::make_shared<VerifyKey::Impl>();
  impl->pkey = std::move(pkey);
  impl->key_id = key_id_of(*raw);
  impl->raw = std::move(*raw);
  return VerifyKey(std::move(impl));
}

Result<SigningKey> make_signing_key(PkeyPtr pkey) {
  auto raw = raw_public_key(pkey.get());
  if (!raw) return raw.error();
  PkeyPtr pub(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(*raw), raw->size()));
  if (!pub) return crypto_error("cannot derive the public key");
  auto verify_key = make_verify_key(std::move(pub));
  if (!verify_key) return verify_key.error();
  auto impl = std::make_shared<SigningKey::Impl>(SigningKey::Impl{std::move(pkey), std::move(*verify_key)});
  return SigningKey(std::move(impl));
}

}  // namespace

const std::string& VerifyKey::raw() const { return impl_->raw; }
const std::string& VerifyKey::key_id() const { return impl_->key_id; }

Result<std::string> VerifyKey::public_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), impl_->pkey.get()) != 1) return crypto_error("cannot write PEM");
  return bio_text(bio.get());
}

Status VerifyKey::verify(std::string_view message, std::string_view signature) const {
  if (signature.size() != kEd25519SigSize) {
    return Error::permanent("signature_invalid",
                            "an Ed25519 signature has 64 bytes, got " + std::to_string(signature.size()));
  }
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1) {
    return crypto_error("cannot start Ed25519 verification");
  }
  const int rc = EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(message), message.size());
  ERR_clear_error();
  if (rc != 1) return Error::permanent("signature_invalid", "the Ed25519 signature does not match the data");
  return ok_status();
}

const VerifyKey& SigningKey::public_key() const { return impl_->public_key; }

Result<std::string> SigningKey::sign(std::string_view message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, impl_->pkey.get()) != 1) {
    return crypto_error("cannot start Ed25519 signing");
  }
  std::string sig(kEd25519SigSize, '\0');
  std::size_t len = sig.size();
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len, bytes_of(message),
                     message.size()) != 1 ||
      len != kEd25519SigSize) {
    return crypto_error("Ed25519 signing failed");
  }
  return sig;
}

std::string key_id_of(std::string_view raw_public_key) { return to_hex(sha256_raw(raw_public_key).substr(0, 8)); }

Result<KeyPairPem> generate_key_pair() {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr));
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) != 1 || EVP_PKEY_keygen(ctx.get(), &raw) != 1) {
    return crypto_error("Ed25519 key generation failed");
  }
  PkeyPtr pkey(raw);
  BioPtr priv(BIO_new(BIO_s_mem()));
  BioPtr pub(BIO_new(BIO_s_mem()));
  if (!priv || !pub || PEM_write_bio_PrivateKey(priv.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), pkey.get()) != 1) {
    return crypto_error("cannot write the key pair as PEM");
  }
  return KeyPairPem{bio_text(priv.get()), bio_text(pub.get())};
}

Status generate_key_pair_files(const std::string& private_pem_path, const std::string& public_pem_path) {
  for (const std::string* path : {&private_pem_path, &public_pem_path}) {
    struct stat st {};
    if (::stat(path->c_str(), &st) == 0) {
      return Error::permanent("exists", *path + " already exists; hint: remove it or pick another path");
    }
  }
  auto pair = generate_key_pair();
  if (!pair) return pair.error();
  if (auto s = write_new_file(private_pem_path, pair->private_pem, 0600); !s) return s;
  return write_new_file(public_pem_path, pair->public_pem, 0644);
}

Result<SigningKey> load_private_key_pem(std::string_view pem) {
  BioPtr bio = memory_bio(pem);
  PkeyPtr pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!is_ed25519(pkey.get())) {
    return Error::permanent("key_invalid", "not an Ed25519 private key in PEM (" + openssl_reason() +
                                               "); hint: create one with `openssl genpkey -algorithm ed25519`");
  }
  return make_signing_key(std::move(pkey));
}

Result<VerifyKey> load_public_key_pem(std::string_view pem) {
  BioPtr bio = memory_bio(pem);
  PkeyPtr pkey(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!is_ed25519(pkey.get())) {
    return Error::permanent("key_invalid", "not an Ed25519 public key in PEM (" + openssl_reason() + ")");
  }
  return make_verify_key(std::move(pkey));
}

Result<SigningKey> load_private_key_file(const std::string& path) {
  auto text = read_small_file(path);
  if (!text) return text.error();
  return load_private_key_pem(*text);
}

Result<VerifyKey> load_public_key_file(const std::string& path) {
  auto text = read_small_file(path);
  if (!text) return text.error();
  return load_public_key_pem(*text);
}

// ---------------------------------------------------------------------------------------------------------------
// Checkpoints

std::string signed_body(const Checkpoint& c) {
  return c.origin + "\n" + std::to_string(c.tree_size) + "\n" + base64_encode(c.root_hash) + "\ntimestamp " +
         std::to_string(c.timestamp_ms) + "\n";
}

namespace {

Status check_shape(const Checkpoint& c, const char* code) {
  if (c.origin.empty() || c.origin.find('\n') != std::string::npos) {
    return Error::permanent(code, "origin must be one non-empty line");
  }
  if (c.root_hash.size() != kHashSize) return Error::permanent(code, "root hash must be 32 bytes");
  return ok_status();
}

}  // namespace

Result<Checkpoint> sign_checkpoint(std::string origin, std::uint64_t tree_size, std::string root_hash,
                                   std::int64_t timestamp_ms, const SigningKey& key) {
  Checkpoint c;
  c.origin = std::move(origin);
  c.tree_size = tree_size;
  c.root_hash = std::move(root_hash);
  c.timestamp_ms = timestamp_ms;
  c.key_id = key.key_id();
  if (auto s = check_shape(c, "invalid_argument"); !s) return s.error();
  auto sig = key.sign(signed_body(c));
  if (!sig) return sig.error();
  c.signature = std::move(*sig);
  return c;
}

Status verify_checkpoint(const Checkpoint& c, const VerifyKey& key) {
  if (auto s = check_shape(c, "checkpoint_invalid"); !s) return s;
  if (c.key_id != key.key_id()) {
    return Error::permanent("checkpoint_invalid", "checkpoint names key " + c.key_id + " but the given key is " +
                                                      key.key_id() + "; hint: use the log's published public key");
  }
  if (auto s = key.verify(signed_body(c), c.signature); !s) {
    return Error::permanent("checkpoint_invalid", s.error().message);
  }
  return ok_status();
}

nlohmann::json to_json(const Checkpoint& c) {
  nlohmann::json j = {
      {"origin", c.origin},          {"tree_size", c.tree_size}, {"root_hash", to_hex(c.root_hash)},
      {"timestamp", c.timestamp_ms}, {"key_id", c.key_id},       {"signature", base64_encode(c.signature)}};
  if (c.tsa_token) j["tsa_token"] = base64_encode(*c.tsa_token);
  return j;
}

Result<Checkpoint> checkpoint_from_json(const nlohmann::json& j) {
  const detail::FieldReader r(j, "checkpoint");
  if (auto s =
          r.expect_members({"origin", "tree_size", "root_hash", "timestamp", "key_id", "signature"}, {"tsa_token"});
      !s) {
    return s.error();
  }
  auto origin = r.nonempty_string("origin");
  if (!origin) return origin.error();
  auto size = r.uint("tree_size");
  if (!size) return size.error();
  auto root_hash = r.hex_bytes("root_hash", kHashSize);
  if (!root_hash) return root_hash.error();
  auto timestamp = r.int64("timestamp");
  if (!timestamp) return timestamp.error();
  auto key_id = r.string("key_id");
  if (!key_id) return key_id.error();
  auto signature = r.base64_bytes("signature");
  if (!signature) return signature.error();
  if (!detail::is_strict_hex(*key_id, 8)) return r.error("\"key_id\" must be 16 lowercase hex digits");
  Checkpoint c{*origin, *size, *root_hash, *timestamp, *key_id, *signature, std::nullopt};
  if (r.has("tsa_token")) {
    auto token = r.base64_bytes("tsa_token");
    if (!token) return token.error();
    c.tsa_token = std::move(*token);
  }
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// RFC 3161

namespace {

Error tsa_error(const std::string& what) { return Error::permanent("tsa_invalid", what); }

// A DER token is either a TimeStampResp or the bare TimeStampToken (CMS SignedData).
struct ParsedToken {
  TsRespPtr response;
  Pkcs7Ptr token;
  TstInfoPtr owned_info;        // decoded from `token`
  TS_TST_INFO* info = nullptr;  // points into response or owned_info
};

Result<ParsedToken> parse_token(std::string_view der) {
  ParsedToken out;
  const unsigned char* p = bytes_of(der);
  const long len = static_cast<long>(der.size());
  out.response.reset(d2i_TS_RESP(nullptr, &p, len));
  if (out.response && p == bytes_of(der) + der.size()) {
    out.info = TS_RESP_get_tst_info(out.response.get());
    if (out.info == nullptr) return tsa_error("the time-stamp response carries no token (not granted)");
    return out;
  }
  out.response.reset();
  p = bytes_of(der);
  out.token.reset(d2i_PKCS7(nullptr, &p, len));
  if (!out.token || p != bytes_of(der) + der.size()) {
    ERR_clear_error();
    return tsa_error("not a DER RFC 3161 time-stamp token or response");
  }
  out.owned_info.reset(PKCS7_to_TS_TST_INFO(out.token.get()));
  if (!out.owned_info) return tsa_error("the token carries no TSTInfo: " + openssl_reason());
  out.info = out.owned_info.get();
  return out;
}

std::string policy_text(const ASN1_OBJECT* oid) {
  std::array<char, 128> buf{};
  const int n = OBJ_obj2txt(buf.data(), static_cast<int>(buf.size()), oid, 1);
  return n > 0 ? std::string(buf.data()) : std::string();
}

std::string serial_hex(const ASN1_INTEGER* serial) {
  BignumPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  return out;
}

Result<TsaTimestamp> describe(const TS_TST_INFO* info) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(TS_TST_INFO_get_time(info), &tm) != 1) return tsa_error("the token's genTime is malformed");
  TsaTimestamp out;
  out.gen_time_ms = static_cast<std::int64_t>(timegm(&tm)) * 1000;
  out.serial_hex = serial_hex(TS_TST_INFO_get_serial(info));
  out.policy_oid = policy_text(TS_TST_INFO_get_policy_id(const_cast<TS_TST_INFO*>(info)));
  return out;
}

Status check_imprint(const TS_TST_INFO* info, std::string_view data) {
  TS_MSG_IMPRINT* imprint = TS_TST_INFO_get_msg_imprint(const_cast<TS_TST_INFO*>(info));
  const X509_ALGOR* algo = TS_MSG_IMPRINT_get_algo(imprint);
  const ASN1_OBJECT* oid = nullptr;
  X509_ALGOR_get0(&oid, nullptr, nullptr, algo);
  const EVP_MD* md = EVP_get_digestbyobj(oid);
  if (md == nullptr) return tsa_error("the token's imprint uses an unknown hash algorithm");
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest.data(), &len, md, nullptr) != 1) return crypto_error("digest");
  const ASN1_OCTET_STRING* msg = TS_MSG_IMPRINT_get_msg(imprint);
  const std::string_view want(reinterpret_cast<const char*>(digest.data()), len);
  const std::string_view got(reinterpret_cast<const char*>(ASN1_STRING_get0_data(msg)),
                             static_cast<std::size_t>(ASN1_STRING_length(msg)));
  if (want != got) return tsa_error("the token stamps other data (message imprint differs from the checkpoint)");
  return ok_status();
}

Result<StorePtr> trust_store(std::string_view ca_cert_pem) {
  StorePtr store(X509_STORE_new());
  BioPtr bio = memory_bio(ca_cert_pem);
  if (!store || !bio) return crypto_error("cannot allocate a certificate store");
  int added = 0;
  while (X509Ptr cert{PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)}) {
    if (X509_STORE_add_cert(store.get(), cert.get()) != 1) return crypto_error("cannot add a CA certificate");
    ++added;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (added == 0) return tsa_error("no PEM certificate in the TSA CA bundle");
  return store;
}

}  // namespace

Result<TsaTimestamp> inspect_tsa_token(std::string_view token_der, std::string_view data) {
  auto parsed = parse_token(token_der);
  if (!parsed) return parsed.error();
  if (auto s = check_imprint(parsed->info, data); !s) return s.error();
  return describe(parsed->info);
}

Result<TsaTimestamp> verify_tsa_token(std::string_view token_der, std::string_view data, std::string_view ca_cert_pem) {
  auto parsed = parse_token(token_der);
  if (!parsed) return parsed.error();
  auto store = trust_store(ca_cert_pem);
  if (!store) return store.error();
  VerifyCtxPtr ctx(TS_VERIFY_CTX_new());
  BioPtr data_bio = memory_bio(data);
  if (!ctx || !data_bio) return crypto_error("cannot allocate a TS verify context");
  TS_VERIFY_CTX_set_flags(ctx.get(), TS_VFY_VERSION | TS_VFY_SIGNATURE | TS_VFY_DATA);
  TS_VERIFY_CTX_set_data(ctx.get(), data_bio.release());  // ctx owns it from here
  TS_VERIFY_CTX_set_store(ctx.get(), store->release());   // likewise
  const int rc = parsed->response ? TS_RESP_verify_response(ctx.get(), parsed->response.get())
                                  : TS_RESP_verify_token(ctx.get(), parsed->token.get());
  if (rc != 1) return tsa_error("RFC 3161 token does not verify: " + openssl_reason());
  return describe(parsed->info);
}

}  // namespace songda::evidence
