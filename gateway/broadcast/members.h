// Group members: what a court registers about each lawyer of a group (contacts
// and consent), checked with the same rules as a recipient of event v1, read
// from JSON or CSV with one error per bad row, and shown masked. Pure: no I/O,
// thread-safe.
//
// CSV (RFC 4180: comma-separated, "quoted" fields with "" for a quote, CRLF or
// LF, a UTF-8 BOM is skipped). The first row names the columns, in any order:
//   id, name                                required
//   role                                    party | lawyer | agent | other (default lawyer)
//   firm                                    the law firm (shown to clerks, not sent)
//   mobile, email, wechat_openid, app_user  at least one
//   consent_basis                           provided | confirmed | obtained | none (required)
//   consent_scope                           event types separated by ';'
//   consent_ref, consent_recorded_at
// Unknown columns are an error of the whole file (a typo would otherwise drop a contact).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "gateway/core/event.h"
#include "gateway/core/result.h"

namespace songda::broadcast {

inline constexpr std::size_t kMaxMembersPerGroup = 100000;
inline constexpr std::size_t kMaxImportRows = 50000;
// Fields in one CSV line: a file has at most the 12 known columns; parsing stops beyond this (a body of commas
// would otherwise become millions of strings before any check).
inline constexpr std::size_t kMaxCsvFields = 32;

// A member is a Recipient (the planner's input) plus the firm.
struct Member {
  Recipient recipient;
  std::string firm;
};

// One refused row: `row` is 1-based over the data rows (CSV: the header is row 0) or the array index + 1.
struct RowError {
  std::size_t row = 0;
  std::string id;     // the member id when the row has one
  std::string field;  // the offending field or column, "" for the row as a whole
  std::string code;   // invalid_member, duplicate_member, invalid_csv
  std::string message;
};

struct ParsedMembers {
  std::vector<Member> members;
  std::vector<RowError> errors;
};

// Checks one member object ({id, name, role?, firm?, contacts{...}, consent{basis, scope?, ref?, recorded_at?}}).
// Error code invalid_member; the message names the field.
Result<Member> member_from_json(const nlohmann::json& j, std::string* field = nullptr);

// The stored form (raw contacts: needed to send and to prove) and the form clerks see (contacts masked).
nlohmann::json member_to_json(const Member& m);
nlohmann::json member_to_masked_json(const Member& m);

// A JSON import: an array of members or {"members": [...]}. Whole-body problems (not JSON, not UTF-8, not an
// array, too many rows) are an Error (invalid_json, invalid_utf8, too_large); bad rows are listed in errors.
// A member id repeated in the same body: the later row is refused (duplicate_member).
Result<ParsedMembers> parse_members_json(std::string_view body);

// A CSV import (see the top of this file). Whole-file problems (invalid UTF-8, no header, unknown or missing
// columns, too many rows) are an Error (invalid_csv, invalid_utf8, too_large); bad rows are listed in errors.
Result<ParsedMembers> parse_members_csv(std::string_view body);

// RFC 4180 records of a CSV text. Error invalid_csv (unterminated quote, text after a closing quote, more than
// kMaxCsvFields fields), naming the line; too_large (more than kMaxImportRows rows after the header).
Result<std::vector<std::vector<std::string>>> parse_csv(std::string_view text);

}  // namespace songda::broadcast
