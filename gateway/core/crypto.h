// Small, pure wrappers over OpenSSL digests and MACs, used by evidence,
// signing and ids. Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

namespace songda {

std::string sha256_raw(std::string_view data);  // 32 bytes
std::string sha256_hex(std::string_view data);  // 64 lowercase hex
std::string sha1_raw(std::string_view data);    // 20 bytes
std::string sha1_hex(std::string_view data);
std::string hmac_sha256_raw(std::string_view key, std::string_view data);
std::string hmac_sha1_raw(std::string_view key, std::string_view data);
std::string to_hex(std::string_view bytes);
std::string from_hex(std::string_view hex);  // empty on malformed input
std::string base64_encode(std::string_view bytes);
std::string base64_decode(std::string_view text);      // empty on malformed input
std::string base64url_encode(std::string_view bytes);  // no padding
std::string base64url_decode(std::string_view text);
bool constant_time_equal(std::string_view a, std::string_view b);
std::string random_bytes(std::size_t n);

}  // namespace songda
