// The one interface every delivery channel implements (in-app, SMS, WeChat,
// email). A channel turns deliveries into provider requests and answers with
// one outcome per delivery. It never decides about retries, fallback or
// evidence: dispatch does, from the outcome's kind.
//
// Contract: send() passes each Delivery::id to the provider as the provider's
// own idempotency key (Aliyun OutId, Tencent SessionContext, WeChat
// client_msg_id, email Message-ID), so a resumed send after a crash is
// recognised by the provider. send() must not throw; library and HTTP errors
// become outcomes (one that throws anyway is contained by dispatch: its batch is
// left in doubt, see Dispatcher::run_once). Implementations are thread-safe
// unless their header says so.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/core/event.h"

namespace songda {

struct SendOutcome {
  enum class Kind {
    kAccepted,   // the provider took it; a receipt will follow (SMS, WeChat)
    kDelivered,  // it reached the recipient's system now (in-app inbox write, SMTP 250 at the recipient's MX)
    kRetryable,  // try again later (timeouts, 5xx, rate limits, provider-documented transient codes)
    kPermanent,  // give up (bad number, user blocked, unknown provider codes)
  };
  Kind kind = Kind::kPermanent;
  std::string provider;             // "inapp", "aliyun", "tencent", "wechat-oa", "wechat-mp", "smtp"
  std::string provider_message_id;  // BizId, SerialNo, msgid, Message-ID
  std::string code;                 // provider's code, verbatim
  std::string message;              // provider's message, verbatim
  std::string raw;                  // the raw answer, hashed into evidence
  int segments = 0;                 // SMS billed segments (0 elsewhere)
};

// What a provider already has of a delivery whose last attempt's outcome was never recorded (the process died
// between sending and recording the answer).
struct PriorSend {
  enum class Kind {
    kNotSent,  // the provider does not have it: sending is safe
    kSent,     // it has it: `outcome` says what became of it (accepted, delivered or failed)
    kUnknown,  // cannot tell now (the provider did not answer, or its report is not in yet): ask again later
  };
  Kind kind = Kind::kNotSent;
  SendOutcome outcome;
};

class Channel {
 public:
  virtual ~Channel() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;  // "inapp", "sms", "wechat", "email"
  // One outcome per delivery, in the same order. Batching is the channel's business.
  virtual std::vector<SendOutcome> send(std::span<const Delivery> batch) = 0;
  // Asks the providers about deliveries whose earlier attempt, started at since_ms, has no recorded outcome.
  // One answer per delivery, in order. The default, kNotSent, is right where the provider itself drops a
  // repeated idempotency key (WeChat client_msg_id, the in-app inbox) or cannot be asked (SMTP): sending
  // again is then the lookup. Channels whose providers would deliver twice (SMS) override it.
  virtual std::vector<PriorSend> find_prior_sends(std::span<const Delivery> batch, std::int64_t since_ms) {
    (void)since_ms;
    return std::vector<PriorSend>(batch.size());
  }
};

}  // namespace songda
