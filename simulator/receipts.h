// Delivery receipts of the provider simulator: the documented push bodies
// (Aliyun SmsReport JSON array, Tencent status JSON array, WeChat
// TEMPLATESENDJOBFINISH XML) and the ReceiptPusher that POSTs them to Songda's
// callback URLs when they fall due, batching Aliyun/Tencent reports that are
// due together, and retrying pushes Songda did not acknowledge.
//
// Ownership: the pusher owns its worker threads and one HTTP client per
// worker; stop() (or the destructor) joins them and drops what is pending.
//
// Thread-safety: the body builders are pure. Every ReceiptPusher method may be
// called from any thread once constructed; all state is under one mutex that
// is never held during a POST.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "simulator/simulator.h"

namespace songda::sim {

// Position of a provider in per-provider arrays.
inline std::size_t index_of(Provider p) { return static_cast<std::size_t>(p); }

// One receipt to push (one number of an SMS send, or one WeChat template message).
struct ReceiptItem {
  Provider provider = Provider::kAliyun;
  std::string to;                 // Aliyun phone_number as sent; Tencent E.164 number; WeChat openid
  std::string id;                 // Aliyun biz_id; Tencent sid (= SerialNo); WeChat MsgID
  std::string out_id;             // Aliyun out_id / Tencent SessionContext (our delivery id); empty for WeChat
  std::string template_code;      // kept in the provider's records, not pushed
  std::int64_t send_time_ms = 0;  // when the send was accepted
  bool success = true;
  std::string code;         // Aliyun err_code / Tencent errmsg / WeChat Status
  std::string description;  // Aliyun err_msg / Tencent description
  int sms_size = 1;
  // Retry state.
  int attempt = 0;                   // retries done so far
  std::vector<int> retry_delays_ms;  // copied from the provider's behaviour when scheduled
};

// [{"phone_number","send_time","report_time","success","err_code","err_msg","sms_size","biz_id","out_id"}, ...]
std::string aliyun_report_body(const std::vector<ReceiptItem>& items, std::int64_t now_ms);
// [{"user_receive_time","nationcode","mobile","report_status","errmsg","description","sid"}, ...]
std::string tencent_status_body(const std::vector<ReceiptItem>& items, std::int64_t now_ms);
// <xml><ToUserName>...<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>..</MsgID><Status>..</Status></xml>
std::string wechat_job_finish_xml(const ReceiptItem& item, std::string_view account, std::int64_t now_s);

struct ReceiptCounters {
  std::uint64_t pushes = 0;   // HTTP POSTs made (retries and duplicates included)
  std::uint64_t posted = 0;   // receipts carried by those POSTs
  std::uint64_t acked = 0;    // receipts in POSTs Songda answered 2xx
  std::uint64_t retried = 0;  // receipts scheduled again after a failed POST
  std::uint64_t dropped = 0;  // receipts given up after the last retry
  std::uint64_t skipped = 0;  // receipts not scheduled: no callback base
  std::uint64_t pending = 0;  // receipts waiting for their time now
};

struct ReceiptPusherOptions {
  std::string callback_base;
  std::string callback_key;
  std::string wechat_token;
  std::string wechat_account;
  int threads = 4;
  int batch_max = 100;
  int timeout_ms = 5000;
};

class ReceiptPusher {
 public:
  explicit ReceiptPusher(ReceiptPusherOptions options);
  ~ReceiptPusher();
  ReceiptPusher(const ReceiptPusher&) = delete;
  ReceiptPusher& operator=(const ReceiptPusher&) = delete;

  void start();
  void stop();  // idempotent; pending receipts are dropped

  void set_callback_base(std::string url);
  [[nodiscard]] std::string callback_base() const;

  // Pushes `items` delay_ms from now, all due at the same instant (so
  // Aliyun/Tencent reports of one send share a push). Without a callback base
  // they are counted as skipped and false is returned.
  bool schedule(std::vector<ReceiptItem> items, int delay_ms);

  // Drops everything pending and zeroes the counters; a POST in flight is not
  // counted and not retried.
  void reset();

  [[nodiscard]] ReceiptCounters counters(Provider provider) const;

 private:
  using Clock = std::chrono::steady_clock;
  struct Entry {
    Clock::time_point due;
    std::uint64_t seq = 0;
    ReceiptItem item;
    bool operator>(const Entry& other) const { return due != other.due ? due > other.due : seq > other.seq; }
  };
  struct Clients;  // one HTTP client per callback host, owned by one worker

  void worker();
  void push_locked(ReceiptItem item, Clock::time_point due);
  // Posts one batch; true when Songda answered 2xx.
  bool post(const std::vector<ReceiptItem>& batch, const std::string& base, Clients& clients) const;

  const ReceiptPusherOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool started_ = false;
  std::string callback_base_;
  std::uint64_t generation_ = 0;
  std::uint64_t seq_ = 0;
  std::array<std::vector<Entry>, 3> heaps_;  // min-heaps by due time (std::push_heap with greater)
  std::array<ReceiptCounters, 3> counters_{};
  std::vector<std::thread> threads_;
};

}  // namespace songda::sim
