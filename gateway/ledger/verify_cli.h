// The offline commands a clerk, a judge or an operator runs:
//
//   songda verify BUNDLE --pubkey FILE [--document FILE] [--since CHECKPOINT_JSON --consistency PROOF_JSON]
//                 [--tsa-ca FILE] [--json]
//       checks a proof bundle with nothing but the court's public key (no network, no Redis) and prints
//       each check in Chinese and English. Exit 0: every check passed; 1: a check failed; 2: usage error
//       or an unreadable file. PROOF_JSON is the answer of GET /v1/evidence/consistency (or a bare JSON
//       array of hex hashes) from the earlier checkpoint's size to the bundle's.
//   songda keygen --out DIR
//       writes DIR/court.key (Ed25519 private key, mode 0600) and DIR/court.pub; never overwrites.
//       Exit 0, 1 (files exist / cannot write), 2 (usage).
//   songda ledger check [--redis URL] [--pubkey FILE] [--repair-levels] [--json]
//       recomputes the whole evidence log in Redis (rebuild_and_check). URL defaults to
//       $SONGDA_REDIS_URL, else redis://127.0.0.1:6379/0. Exit 0 OK, 1 problems found, 2 usage/unreachable.
//
// `args` are the words after the subcommand ("verify", "keygen", "ledger check"). Output (including
// errors) goes to `out`. Thread-safety: call from one thread; no shared state. Never throw.
#pragma once

#include <iostream>
#include <string>
#include <vector>

namespace songda::ledger {

int run_verify(const std::vector<std::string>& args, std::ostream& out = std::cout);
int run_keygen(const std::vector<std::string>& args, std::ostream& out = std::cout);
int run_ledger_check(const std::vector<std::string>& args, std::ostream& out = std::cout);

}  // namespace songda::ledger
