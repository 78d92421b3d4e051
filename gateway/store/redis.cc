#include "gateway/store/redis.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstdlib>
#include <iterator>
#include <string_view>

#include "gateway/core/crypto.h"

namespace songda {
namespace {

std::atomic<std::uint64_t> g_round_trips{0};

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

struct ContextDeleter {
  void operator()(redisContext* c) const { redisFree(c); }
};
using ContextPtr = std::unique_ptr<redisContext, ContextDeleter>;

RedisReply convert(const redisReply* r) {
  RedisReply out;
  switch (r->type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r->integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r->elements);
      for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
      break;
    default:
      out.type = RedisReply::Type::kNil;
  }
  return out;
}

// Appends one command to the context's output buffer (hiredis formats it there; nothing is copied before that).
// `args` is any range of strings or string views.
template <class Args>
void append_argv(redisContext* c, const Args& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(std::size(args));
  lens.reserve(std::size(args));
  for (const auto& a : args) {
    argv.push_back(std::data(a));
    lens.push_back(std::size(a));
  }
  redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data());
}

// Reads the replies to the `n` commands appended before: one round trip. A failure marks the connection broken.
Result<std::vector<RedisReply>> read_replies(redisContext* c, std::size_t n, bool& broken) {
  g_round_trips.fetch_add(1, std::memory_order_relaxed);
  std::vector<RedisReply> out;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    void* raw = nullptr;
    if (redisGetReply(c, &raw) != REDIS_OK || raw == nullptr) {
      broken = true;
      return Error::transient("redis_unavailable", std::string("Redis I/O error: ") + c->errstr);
    }
    ReplyPtr reply(static_cast<redisReply*>(raw));
    out.push_back(convert(reply.get()));
  }
  return out;
}

}  // namespace

std::uint64_t redis_round_trips() { return g_round_trips.load(std::memory_order_relaxed); }

Result<RedisEndpoint> parse_redis_url(const std::string& url) {
  // What an error may show of the URL: its user and password (user:pass@) replaced by ***.
  std::string shown = url;
  if (const auto scheme = shown.find("://"), at = shown.rfind('@'); at != std::string::npos) {
    const std::size_t from = scheme == std::string::npos ? 0 : scheme + 3;
    if (at >= from) shown.replace(from, at - from, "***");
  }
  RedisEndpoint ep;
  std::string rest;
  if (url.rfind("redis://", 0) == 0) {
    rest = url.substr(8);
  } else {
    return Error::permanent("config", "Redis URL must start with redis:// (got '" + shown + "')");
  }
  if (const auto at = rest.rfind('@'); at != std::string::npos) {
    std::string auth = rest.substr(0, at);
    rest = rest.substr(at + 1);
    if (const auto colon = auth.find(':'); colon != std::string::npos) {
      ep.username = auth.substr(0, colon);
      auth = auth.substr(colon + 1);
    }
    ep.password = auth;
  }
  if (const auto slash = rest.find('/'); slash != std::string::npos) {
    const std::string db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), ep.db);
      if (ec != std::errc() || p != db.data() + db.size())
        return Error::permanent("config", "bad Redis db in " + shown);
    }
  }
  if (const auto colon = rest.rfind(':'); colon != std::string::npos) {
    const std::string port = rest.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), ep.port);
    if (ec != std::errc() || p != port.data() + port.size())
      return Error::permanent("config", "bad Redis port in " + shown);
    rest = rest.substr(0, colon);
  }
  if (!rest.empty()) ep.host = rest;
  if (const char* pw = std::getenv("SONGDA_REDIS_PASSWORD"); pw != nullptr && *pw != '\0') ep.password = pw;
  return ep;
}

LuaScript::LuaScript(std::string source) : source_(std::move(source)), sha_(sha1_hex(source_)) {}

struct RedisConnection::Impl {
  ContextPtr ctx;
};

RedisConnection::RedisConnection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RedisConnection::~RedisConnection() = default;

Result<std::unique_ptr<RedisConnection>> RedisConnection::connect(const RedisEndpoint& ep, int timeout_ms) {
  timeval tv{timeout_ms / 1000, static_cast<suseconds_t>((timeout_ms % 1000) * 1000)};
  ContextPtr ctx(redisConnectWithTimeout(ep.host.c_str(), ep.port, tv));
  if (!ctx) return Error::transient("redis_unavailable", "cannot allocate a Redis context");
  if (ctx->err != 0) {
    return Error::transient("redis_unavailable", "cannot connect to Redis at " + ep.host + ":" +
                                                     std::to_string(ep.port) + ": " + ctx->errstr +
                                                     ". Hint: check SONGDA_REDIS_URL and that redis-server runs");
  }
  redisSetTimeout(ctx.get(), tv);
  auto impl = std::make_unique<Impl>();
  impl->ctx = std::move(ctx);
  std::unique_ptr<RedisConnection> conn(new RedisConnection(std::move(impl)));
  if (!ep.password.empty()) {
    // AUTH user password for an ACL user (Redis 6+), AUTH password for the default user.
    auto r =
        ep.username.empty() ? conn->command({"AUTH", ep.password}) : conn->command({"AUTH", ep.username, ep.password});
    if (!r.ok()) return r.error();
    if (r->type == RedisReply::Type::kError) return Error::permanent("redis_auth", "Redis AUTH failed: " + r->str);
  }
  if (ep.db != 0) {
    auto r = conn->command({"SELECT", std::to_string(ep.db)});
    if (!r.ok()) return r.error();
  }
  return conn;
}

Result<RedisReply> RedisConnection::command(const std::vector<std::string>& args) { return command_of(args); }

template <class Args>
Result<RedisReply> RedisConnection::command_of(const Args& args) {
  if (broken_) return Error::transient("redis_unavailable", "Redis connection is broken");
  redisContext* c = impl_->ctx.get();
  append_argv(c, args);
  auto replies = read_replies(c, 1, broken_);
  if (!replies.ok()) return replies.error();
  return std::move(replies.value().front());
}

Result<std::vector<RedisReply>> RedisConnection::pipeline(const std::vector<std::vector<std::string>>& commands) {
  if (broken_) return Error::transient("redis_unavailable", "Redis connection is broken");
  redisContext* c = impl_->ctx.get();
  for (const auto& cmd : commands) append_argv(c, cmd);
  return read_replies(c, commands.size(), broken_);
}

Result<RedisReply> RedisConnection::eval(const LuaScript& script, const std::vector<std::string>& keys,
                                         const std::vector<std::string>& args) {
  // Views of the caller's strings: a script's arguments (evidence records, delivery records) are its largest
  // payloads, and are not copied on their way to hiredis.
  const std::string nkeys = std::to_string(keys.size());
  std::vector<std::string_view> cmd{"EVALSHA", script.sha(), nkeys};
  cmd.reserve(3 + keys.size() + args.size());
  cmd.insert(cmd.end(), keys.begin(), keys.end());
  cmd.insert(cmd.end(), args.begin(), args.end());
  auto r = command_of(cmd);
  if (!r.ok()) return r;
  if (r->type == RedisReply::Type::kError && r->str.rfind("NOSCRIPT", 0) == 0) {
    cmd[0] = "EVAL";
    cmd[1] = script.source();
    r = command_of(cmd);
    if (!r.ok()) return r;
  }
  if (r->type == RedisReply::Type::kError) return Error::permanent("redis_error", "Redis script error: " + r->str);
  return r;
}

RedisPool::RedisPool(RedisEndpoint ep, int size, int timeout_ms)
    : ep_(std::move(ep)), timeout_ms_(timeout_ms), size_(size) {}
RedisPool::~RedisPool() = default;

RedisPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->release(std::move(conn_));
}

Result<RedisPool::Lease> RedisPool::acquire() {
  std::unique_ptr<RedisConnection> conn;
  {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !idle_.empty() || outstanding_ < size_; });
    ++outstanding_;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!conn) {
    auto made = RedisConnection::connect(ep_, timeout_ms_);
    if (!made.ok()) {
      release(nullptr);
      return made.error();
    }
    conn = std::move(made.value());
  }
  return Lease(this, std::move(conn));
}

void RedisPool::release(std::unique_ptr<RedisConnection> conn) {
  {
    std::lock_guard lock(mu_);
    --outstanding_;
    if (conn && !conn->broken()) idle_.push_back(std::move(conn));
  }
  cv_.notify_one();
}

Result<RedisReply> RedisPool::command(const std::vector<std::string>& args) {
  auto lease = acquire();
  if (!lease.ok()) return lease.error();
  return lease.value()->command(args);
}

Result<std::vector<RedisReply>> RedisPool::pipeline(const std::vector<std::vector<std::string>>& commands) {
  auto lease = acquire();
  if (!lease.ok()) return lease.error();
  return lease.value()->pipeline(commands);
}

Result<RedisReply> RedisPool::eval(const LuaScript& script, const std::vector<std::string>& keys,
                                   const std::vector<std::string>& args) {
  auto lease = acquire();
  if (!lease.ok()) return lease.error();
  return lease.value()->eval(script, keys, args);
}

namespace {

const LuaScript& renew_lease_script() {
  static const LuaScript s(R"LUA(
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
)LUA");
  return s;
}

const LuaScript& release_lease_script() {
  static const LuaScript s(R"LUA(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)LUA");
  return s;
}

}  // namespace

Result<bool> take_lease(RedisPool& pool, const std::string& key, const std::string& holder, int ttl_ms) {
  auto r = pool.command({"SET", key, holder, "NX", "PX", std::to_string(ttl_ms)});
  if (!r) return r.error();
  return r->type == RedisReply::Type::kStatus && r->str == "OK";
}

Result<bool> renew_lease(RedisPool& pool, const std::string& key, const std::string& holder, int ttl_ms) {
  auto r = pool.eval(renew_lease_script(), {key}, {holder, std::to_string(ttl_ms)});
  if (!r) return r.error();
  return r->integer == 1;
}

void release_lease(RedisPool& pool, const std::string& key, const std::string& holder) {
  (void)pool.eval(release_lease_script(), {key}, {holder});
}

}  // namespace songda
