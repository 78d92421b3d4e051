// The DLQ record of a refused message: the reason in headers and body (the ★ contract in architecture.md), the
// original kept, and a record Kafka accepts whatever came in.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include <valijson/adapters/nlohmann_json_adapter.hpp>
#include <valijson/schema.hpp>
#include <valijson/schema_parser.hpp>
#include <valijson/validator.hpp>

#include "gateway/core/crypto.h"
#include "gateway/ingest/ingest.h"

namespace songda {
namespace {

using Json = nlohmann::json;

// Each body is checked against the published schema.
void expect_matches_schema(const Json& body) {
  std::ifstream in(std::string(SONGDA_SOURCE_DIR) + "/schemas/dead-letter.v1.schema.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const Json schema_doc = Json::parse(ss.str());
  valijson::Schema schema;
  valijson::SchemaParser parser;
  valijson::adapters::NlohmannJsonAdapter schema_adapter(schema_doc);
  parser.populateSchema(schema_adapter, schema);
  valijson::Validator validator;
  valijson::ValidationResults results;
  valijson::adapters::NlohmannJsonAdapter target(body);
  EXPECT_TRUE(validator.validate(schema, target, &results)) << body.dump();
}

std::string header(const OutgoingMessage& m, const std::string& name) {
  for (const auto& [k, v] : m.headers) {
    if (k == name) return v;
  }
  return "(none)";
}

KafkaMessage refused(std::string value) {
  return {"court.case-events", 3, 1234, "case-42", std::move(value), {{"traceparent", "00-abc-01"}}};
}

TEST(DeadLetter, CarriesTheReasonInHeadersAndBodyAndTheOriginalAsItCame) {
  const std::string original = R"({"schema":"songda.case-event/v1","event_id":"E1","type":"summons.issued"})";
  const auto out = dead_letter(refused(original), Error::permanent("no_recipients", "event has no recipients"),
                               "court.case-events.dlq", 1764400000000);
  EXPECT_EQ(out.topic, "court.case-events.dlq");
  EXPECT_EQ(out.key, "case-42");
  EXPECT_EQ(header(out, "traceparent"), "00-abc-01");
  EXPECT_EQ(header(out, "songda.error.code"), "no_recipients");
  EXPECT_EQ(header(out, "songda.source.offset"), "1234");
  EXPECT_EQ(header(out, "songda.dead-letter"), "songda.dead-letter/v1");
  const Json body = Json::parse(out.value);
  expect_matches_schema(body);
  EXPECT_EQ(body["error"]["code"], "no_recipients");
  EXPECT_EQ(body["error"]["message"], "event has no recipients");
  EXPECT_EQ(body["source"], (Json{{"topic", "court.case-events"}, {"partition", 3}, {"offset", 1234}}));
  EXPECT_EQ(body["refused_at"], "2025-11-29T07:06:40.000Z");
  EXPECT_EQ(body["original"]["encoding"], "utf-8");
  EXPECT_EQ(body["original"]["value"], original) << "the original, byte for byte, to publish again once fixed";
  EXPECT_EQ(body["original"]["sha256"], sha256_hex(original));
  EXPECT_EQ(body["original"]["bytes"], original.size());
}

TEST(DeadLetter, BytesThatAreNotUtf8AreKeptInBase64) {
  const std::string original("\xC0\xAF{\"type\":1}\xFF", 13);
  const auto out = dead_letter(refused(original), Error::permanent("invalid_utf8", "event is not valid UTF-8"), "dlq",
                               1764400000000);
  const Json body = Json::parse(out.value);
  expect_matches_schema(body);
  EXPECT_EQ(body["original"]["encoding"], "base64");
  EXPECT_EQ(base64_decode(body["original"]["value"].get<std::string>()), original);
}

// Before, the DLQ record was the original with headers: an event over ~1 MB (refused as too_large) made a record
// Kafka refuses, retried for ever, and the partition stopped.
TEST(DeadLetter, AnOriginalTooLargeForKafkaIsNamedNotCarried) {
  const std::string original(2 * 1024 * 1024, 'x');
  const auto out =
      dead_letter(refused(original), Error::permanent("too_large", "event is 2097152 bytes"), "dlq", 1764400000000);
  EXPECT_LT(out.value.size(), 2000u);
  const Json body = Json::parse(out.value);
  expect_matches_schema(body);
  EXPECT_FALSE(body["original"].contains("value"));
  EXPECT_EQ(body["original"]["bytes"], original.size());
  EXPECT_EQ(body["original"]["sha256"], sha256_hex(original));
  EXPECT_NE(body["original"]["omitted"].get<std::string>().find("court.case-events partition 3 offset 1234"),
            std::string::npos);
  // Just under the limit the original is carried; escaping counts (a quote becomes two bytes).
  const std::string fits(kMaxDeadLetterBytes - 2000, 'y');
  EXPECT_TRUE(
      Json::parse(dead_letter(refused(fits), Error::permanent("schema", "x"), "dlq", 0).value)["original"].contains(
          "value"));
  const std::string quotes((kMaxDeadLetterBytes - 2000) / 2 + 1000, '"');
  const auto escaped = dead_letter(refused(quotes), Error::permanent("invalid_json", "x"), "dlq", 0);
  EXPECT_LE(escaped.value.size(), kMaxDeadLetterBytes);
  EXPECT_FALSE(Json::parse(escaped.value)["original"].contains("value"));
}

}  // namespace
}  // namespace songda
