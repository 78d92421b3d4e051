// The broadcast step of `songda demo`: over the HTTP API, as a clerk would, it registers a small lawyer group
// (one import row deliberately bad), broadcasts one court notice to it, follows the progress on the SSE stream,
// and fetches one member's proof of service and verifies it offline. Prints what happened to `out`.
//
// Thread-safety: call from one thread while the App runs.
#pragma once

#include <ostream>
#include <string>

namespace songda::broadcast {

struct DemoStepOptions {
  std::string host;
  int port = 0;
  std::string token;  // an API key of the court, or the operator token
  std::string court_id = "HN-SQ-ZY";
  std::string court_name = "商丘市中级人民法院";
  std::string public_key_pem;  // the evidence log's key, for the offline check
  int timeout_s = 60;
};

// True when the broadcast finished with every member served and the proof verified.
bool run_demo_step(const DemoStepOptions& options, std::ostream& out);

}  // namespace songda::broadcast
