#include "simulator/receipts.h"

#include <algorithm>
#include <functional>
#include <map>
#include <memory>

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "channels/sms/aliyun_protocol.h"
#include "channels/wechat/wechat_protocol.h"
#include "gateway/core/crypto.h"
#include "gateway/core/text.h"
#include "simulator/sim_util.h"

namespace songda::sim {
namespace {

// CDATA cannot hold "]]>": split it across two sections.
std::string cdata(std::string_view text) {
  std::string out = "<![CDATA[";
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.substr(i, 3) == "]]>") {
      out += "]]]]><![CDATA[>";
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  out += "]]>";
  return out;
}

std::string random_digits(std::size_t n) {
  const std::string bytes = random_bytes(n);
  std::string out;
  for (const char b : bytes) out.push_back(static_cast<char>('0' + static_cast<unsigned char>(b) % 10));
  return out;
}

}  // namespace

std::string aliyun_report_body(const std::vector<ReceiptItem>& items, std::int64_t now_ms) {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (const auto& r : items) {
    arr.push_back({
        {"phone_number", r.to},
        {"send_time", beijing_time(r.send_time_ms)},
        {"report_time", beijing_time(now_ms)},
        {"success", r.success},
        {"err_code", r.code},
        {"err_msg", r.description},
        {"sms_size", std::to_string(r.sms_size)},
        {"biz_id", r.id},
        {"out_id", r.out_id},
    });
  }
  return arr.dump();
}

std::string tencent_status_body(const std::vector<ReceiptItem>& items, std::int64_t now_ms) {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (const auto& r : items) {
    const auto parts = split_e164(r.to);
    arr.push_back({
        {"user_receive_time", beijing_time(now_ms)},
        {"nationcode", parts ? parts->first : std::string()},
        {"mobile", parts ? parts->second : r.to},
        {"report_status", r.success ? "SUCCESS" : "FAIL"},
        {"errmsg", r.code},
        {"description", r.description},
        {"sid", r.id},
    });
  }
  return arr.dump();
}

std::string wechat_job_finish_xml(const ReceiptItem& item, std::string_view account, std::int64_t now_s) {
  return "<xml><ToUserName>" + cdata(account) + "</ToUserName><FromUserName>" + cdata(item.to) +
         "</FromUserName><CreateTime>" + std::to_string(now_s) + "</CreateTime><MsgType>" + cdata("event") +
         "</MsgType><Event>" + cdata("TEMPLATESENDJOBFINISH") + "</Event><MsgID>" + item.id + "</MsgID><Status>" +
         cdata(item.code) + "</Status></xml>";
}

// ---- ReceiptPusher ----------------------------------------------------------------------

struct ReceiptPusher::Clients {
  std::map<std::string, std::unique_ptr<httplib::Client>> by_host;

  httplib::Client& get(const std::string& scheme_host_port, int timeout_ms) {
    auto& slot = by_host[scheme_host_port];
    if (!slot) {
      slot = std::make_unique<httplib::Client>(scheme_host_port);
      slot->set_connection_timeout(std::chrono::milliseconds(2000));
      slot->set_read_timeout(std::chrono::milliseconds(timeout_ms));
      slot->set_write_timeout(std::chrono::milliseconds(timeout_ms));
      slot->set_keep_alive(true);
      slot->set_tcp_nodelay(true);
    }
    return *slot;
  }
};

ReceiptPusher::ReceiptPusher(ReceiptPusherOptions options)
    : options_(std::move(options)), callback_base_(options_.callback_base) {}

ReceiptPusher::~ReceiptPusher() { stop(); }

void ReceiptPusher::start() {
  std::lock_guard lk(mu_);
  if (started_) return;
  started_ = true;
  stopping_ = false;
  const int n = std::max(1, options_.threads);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { worker(); });
}

void ReceiptPusher::stop() {
  {
    std::lock_guard lk(mu_);
    if (!started_) return;
    stopping_ = true;
    ++generation_;
    for (auto& h : heaps_) h.clear();
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::lock_guard lk(mu_);
  started_ = false;
}

void ReceiptPusher::set_callback_base(std::string url) {
  std::lock_guard lk(mu_);
  callback_base_ = std::move(url);
}

std::string ReceiptPusher::callback_base() const {
  std::lock_guard lk(mu_);
  return callback_base_;
}

void ReceiptPusher::push_locked(ReceiptItem item, Clock::time_point due) {
  auto& heap = heaps_[index_of(item.provider)];
  heap.push_back(Entry{due, seq_++, std::move(item)});
  std::push_heap(heap.begin(), heap.end(), std::greater<>{});
}

bool ReceiptPusher::schedule(std::vector<ReceiptItem> items, int delay_ms) {
  if (items.empty()) return true;
  {
    std::lock_guard lk(mu_);
    if (callback_base_.empty()) {
      for (const auto& item : items) ++counters_[index_of(item.provider)].skipped;
      return false;
    }
    const auto due = Clock::now() + std::chrono::milliseconds(std::max(0, delay_ms));
    for (auto& item : items) push_locked(std::move(item), due);
  }
  cv_.notify_one();
  return true;
}

void ReceiptPusher::reset() {
  std::lock_guard lk(mu_);
  ++generation_;
  for (auto& h : heaps_) h.clear();
  counters_ = {};
}

ReceiptCounters ReceiptPusher::counters(Provider provider) const {
  std::lock_guard lk(mu_);
  ReceiptCounters c = counters_[index_of(provider)];
  c.pending = heaps_[index_of(provider)].size();
  return c;
}

void ReceiptPusher::worker() {
  Clients clients;
  std::unique_lock lk(mu_);
  while (!stopping_) {
    // The provider whose next receipt is due first.
    std::size_t best = heaps_.size();
    for (std::size_t i = 0; i < heaps_.size(); ++i) {
      if (heaps_[i].empty()) continue;
      if (best == heaps_.size() || heaps_[i].front().due < heaps_[best].front().due) best = i;
    }
    if (best == heaps_.size()) {
      cv_.wait(lk);
      continue;
    }
    const auto due = heaps_[best].front().due;
    if (due > Clock::now()) {
      cv_.wait_until(lk, due);
      continue;
    }
    // Everything of that provider that is due, in one push (WeChat: one message per push).
    const std::size_t max =
        best == index_of(Provider::kWeChat) ? 1 : static_cast<std::size_t>(std::max(1, options_.batch_max));
    const auto now = Clock::now();
    std::vector<ReceiptItem> batch;
    auto& heap = heaps_[best];
    while (!heap.empty() && heap.front().due <= now && batch.size() < max) {
      std::pop_heap(heap.begin(), heap.end(), std::greater<>{});
      batch.push_back(std::move(heap.back().item));
      heap.pop_back();
    }
    const std::string base = callback_base_;
    const std::uint64_t generation = generation_;
    lk.unlock();
    const bool acked = !base.empty() && post(batch, base, clients);
    lk.lock();
    if (generation != generation_) continue;  // reset or stopped meanwhile: forget this push
    auto& c = counters_[best];
    if (!base.empty()) {
      ++c.pushes;
      c.posted += batch.size();
    }
    if (acked) {
      c.acked += batch.size();
      continue;
    }
    bool requeued = false;
    for (auto& item : batch) {
      if (item.attempt < static_cast<int>(item.retry_delays_ms.size())) {
        const int delay = item.retry_delays_ms[static_cast<std::size_t>(item.attempt)];
        ++item.attempt;
        ++c.retried;
        push_locked(std::move(item), Clock::now() + std::chrono::milliseconds(std::max(0, delay)));
        requeued = true;
      } else {
        ++c.dropped;
      }
    }
    if (requeued) cv_.notify_all();
  }
}

bool ReceiptPusher::post(const std::vector<ReceiptItem>& batch, const std::string& base, Clients& clients) const {
  if (batch.empty()) return true;
  const auto url = split_base_url(base);
  if (!url) {
    spdlog::warn("provider-sim: callback base {} is not http(s)://host[:port][/prefix]; receipt not pushed", base);
    return false;
  }
  auto& client = clients.get(url->scheme_host_port, options_.timeout_ms);
  const std::int64_t now_ms = now_unix_ms();
  std::string path;
  std::string body;
  std::string content_type = "application/json";
  switch (batch.front().provider) {
    case Provider::kAliyun:
      path =
          url->path_prefix + "/callbacks/aliyun/sms-report?key=" + sms::aliyun::percent_encode(options_.callback_key);
      body = aliyun_report_body(batch, now_ms);
      break;
    case Provider::kTencent:
      path =
          url->path_prefix + "/callbacks/tencent/sms-status?key=" + sms::aliyun::percent_encode(options_.callback_key);
      body = tencent_status_body(batch, now_ms);
      break;
    case Provider::kWeChat: {
      const std::string timestamp = std::to_string(now_ms / 1000);
      const std::string nonce = random_digits(10);
      const std::string signature = wechat::callback_signature(options_.wechat_token, timestamp, nonce);
      path =
          url->path_prefix + "/callbacks/wechat?signature=" + signature + "&timestamp=" + timestamp + "&nonce=" + nonce;
      body = wechat_job_finish_xml(batch.front(), options_.wechat_account, now_ms / 1000);
      content_type = "text/xml";
      break;
    }
  }
  const auto res = client.Post(path, body, content_type);
  if (!res) {
    spdlog::debug("provider-sim: receipt push to {}{} failed: {}", url->scheme_host_port, url->path_prefix,
                  httplib::to_string(res.error()));
    return false;
  }
  if (res->status < 200 || res->status >= 300) {
    spdlog::debug("provider-sim: receipt push answered HTTP {}", res->status);
    return false;
  }
  return true;
}

}  // namespace songda::sim
