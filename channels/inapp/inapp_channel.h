// The in-app channel: writes each delivery into the recipient's inbox in Redis
// (sd:inbox:{app_user}). Writing the inbox is the moment the notice reaches the
// recipient's system, so a successful write is DELIVERED at once; the READ
// receipt comes when the user opens it (POST /v1/inbox/{user}/messages/{id}/read).
// The write is idempotent (HSETNX / ZADD NX), so a resumed send changes nothing.
//
// Thread-safety: thread-safe (the store is).
#pragma once

#include "channels/channel.h"
#include "gateway/store/store.h"

namespace songda {

class InAppChannel final : public Channel {
 public:
  explicit InAppChannel(DeliveryStore& store) : store_(store) {}
  [[nodiscard]] std::string_view name() const override { return kChannelInApp; }
  std::vector<SendOutcome> send(std::span<const Delivery> batch) override;

 private:
  DeliveryStore& store_;
};

}  // namespace songda
