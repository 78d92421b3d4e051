#include "channels/inapp/inapp_channel.h"

#include "gateway/core/text.h"

namespace songda {

std::vector<SendOutcome> InAppChannel::send(std::span<const Delivery> batch) {
  const std::vector<Delivery> deliveries(batch.begin(), batch.end());
  const auto status = store_.write_inbox(deliveries, now_unix_ms());
  std::vector<SendOutcome> out;
  out.reserve(batch.size());
  for (const auto& d : batch) {
    SendOutcome o;
    o.provider = "inapp";
    if (status.ok()) {
      o.kind = SendOutcome::Kind::kDelivered;
      o.provider_message_id = d.id;
      o.code = "OK";
      o.message = "written to inbox of " + d.address;
    } else {
      o.kind = SendOutcome::Kind::kRetryable;
      o.code = status.error().code;
      o.message = status.error().message;
    }
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace songda
