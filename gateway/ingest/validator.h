// Checks one Kafka message's bytes and turns them into a CaseEvent, or into an
// Error whose code names what is wrong (the DLQ reason). Checks, in order:
// size, UTF-8, JSON syntax, known type, at least one recipient, the JSON Schema
// (schemas/case-event.v1.schema.json, via valijson), then the semantics that a
// schema cannot say (consent basis and scope, a contact for every recipient).
//
// Error codes: too_large, invalid_utf8, invalid_json, unknown_type,
// no_recipients, schema, missing_consent, consent_scope, no_contact.
//
// Thread-safety: validate() is const and may be called from many threads.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "gateway/core/event.h"
#include "gateway/core/result.h"

namespace songda {

class EventValidator {
 public:
  // Loads and compiles the schema; throws StartupError naming the file on failure.
  EventValidator(const std::string& schema_path, std::size_t max_bytes);
  ~EventValidator();
  EventValidator(const EventValidator&) = delete;
  EventValidator& operator=(const EventValidator&) = delete;

  [[nodiscard]] Result<CaseEvent> validate(std::string_view bytes) const;

  // The schema shipped in the source tree (for tests and the demo).
  static std::string default_schema_path();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::size_t max_bytes_;
};

}  // namespace songda
