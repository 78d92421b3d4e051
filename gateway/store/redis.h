// A small synchronous Redis client over hiredis: RAII connections, a pool
// shared by threads, pipelines and Lua scripts (EVALSHA with one EVAL fallback
// on NOSCRIPT). hiredis is not included here: callers see only these types.
//
// Errors: a connection or protocol failure is a transient Error with code
// "redis_unavailable" (the connection is dropped and made again on next use);
// a Redis error reply is a permanent Error with code "redis_error".
//
// Thread-safety: RedisConnection is used by one thread at a time; RedisPool is
// thread-safe and hands each caller its own connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "gateway/core/result.h"

namespace songda {

struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;
  long long integer = 0;
  std::vector<RedisReply> elements;
  [[nodiscard]] bool is_nil() const { return type == Type::kNil; }
};

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  int db = 0;
  std::string username;  // a Redis 6 ACL user, from the URL (redis://user:password@…); empty: the default user
  std::string password;  // from the URL or SONGDA_REDIS_PASSWORD
};

// Parses redis://[[user]:password@]host[:port][/db]. Error code "config".
Result<RedisEndpoint> parse_redis_url(const std::string& url);

class LuaScript {
 public:
  explicit LuaScript(std::string source);
  [[nodiscard]] const std::string& source() const { return source_; }
  [[nodiscard]] const std::string& sha() const { return sha_; }

 private:
  std::string source_;
  std::string sha_;
};

class RedisConnection {
 public:
  static Result<std::unique_ptr<RedisConnection>> connect(const RedisEndpoint& ep, int timeout_ms);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  Result<RedisReply> command(const std::vector<std::string>& args);
  // Sends all commands, then reads all replies: one round trip.
  Result<std::vector<RedisReply>> pipeline(const std::vector<std::vector<std::string>>& commands);
  Result<RedisReply> eval(const LuaScript& script, const std::vector<std::string>& keys,
                          const std::vector<std::string>& args);
  [[nodiscard]] bool broken() const { return broken_; }

 private:
  struct Impl;
  explicit RedisConnection(std::unique_ptr<Impl> impl);
  // One command from any range of strings or string views, without copying them.
  template <class Args>
  Result<RedisReply> command_of(const Args& args);
  std::unique_ptr<Impl> impl_;
  bool broken_ = false;
};

// Counts every round trip made through this process's connections (for /metrics and bench).
std::uint64_t redis_round_trips();

class RedisPool {
 public:
  RedisPool(RedisEndpoint ep, int size, int timeout_ms);
  ~RedisPool();
  RedisPool(const RedisPool&) = delete;
  RedisPool& operator=(const RedisPool&) = delete;

  class Lease {
   public:
    Lease(RedisPool* pool, std::unique_ptr<RedisConnection> conn) : pool_(pool), conn_(std::move(conn)) {}
    Lease(Lease&& o) noexcept : pool_(std::exchange(o.pool_, nullptr)), conn_(std::move(o.conn_)) {}
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();
    RedisConnection* operator->() { return conn_.get(); }

   private:
    RedisPool* pool_;
    std::unique_ptr<RedisConnection> conn_;
  };

  // Waits for a free connection; connects when needed. Error: redis_unavailable.
  Result<Lease> acquire();

  // Convenience wrappers that acquire, run one call, and release.
  Result<RedisReply> command(const std::vector<std::string>& args);
  Result<std::vector<RedisReply>> pipeline(const std::vector<std::vector<std::string>>& commands);
  Result<RedisReply> eval(const LuaScript& script, const std::vector<std::string>& keys,
                          const std::vector<std::string>& args);

 private:
  void release(std::unique_ptr<RedisConnection> conn);
  RedisEndpoint ep_;
  int timeout_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<RedisConnection>> idle_;
  int outstanding_ = 0;
  int size_;
};

// A lease held in one Redis key by one holder at a time (SET NX PX); only its holder renews or releases it,
// and a crashed holder's lease runs out after its TTL.
// take_lease: true if it was free and is now `holder`'s.
Result<bool> take_lease(RedisPool& pool, const std::string& key, const std::string& holder, int ttl_ms);
// renew_lease: true if it is still `holder`'s (its TTL starts again); false if it ran out or another took it.
Result<bool> renew_lease(RedisPool& pool, const std::string& key, const std::string& holder, int ttl_ms);
// release_lease: gives it up if it is still `holder`'s (best effort: it runs out anyway).
void release_lease(RedisPool& pool, const std::string& key, const std::string& holder);

}  // namespace songda
