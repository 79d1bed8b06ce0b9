// The history format every workload records and every checker reads: the
// simulator's clients, the nemesis tool's hiredis clients, and tests that
// build histories by hand. It is deliberately independent of any engine.
//
// An operation is invoked at invoke_us and completed at complete_us (virtual
// or wall-clock microseconds, one clock per history). Its status says what the
// client learned:
//  - kOk: it took effect exactly once, with the recorded output;
//  - kFail: it definitely did not take effect (e.g. refused before proposing);
//    checkers ignore it;
//  - kUnknown: the client gave up (timeout, connection lost): it may or may
//    not have taken effect, at any time after invoke_us. complete_us is ignored.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chorus::check {

enum class OpKind : uint8_t {
  kGet,     // output: found + value
  kPut,     // input: value
  kCas,     // input: expected, value; output: ok (swapped or not). A missing key never matches.
  kAppend,  // input: value; appends to the current value (missing = ""); output: none
};

enum class OpStatus : uint8_t { kOk, kFail, kUnknown };

struct Operation {
  uint64_t id = 0;      // unique within the history
  uint64_t client = 0;  // the process that issued it (a client issues one op at a time)
  OpKind kind = OpKind::kGet;
  std::string key;
  std::string value;     // put/append value, cas new value
  std::string expected;  // cas expected value
  // Outputs (meaningful when status == kOk).
  bool found = false;   // get: the key existed
  std::string output;   // get: the value read
  bool cas_ok = false;  // cas: the swap happened
  int64_t invoke_us = 0;
  int64_t complete_us = 0;
  OpStatus status = OpStatus::kOk;
};

using History = std::vector<Operation>;

std::string_view op_kind_name(OpKind k);
// "c3 put(x, 17) ok [120, 340]" — one line, used in violation reports.
std::string describe(const Operation& op);
// A key or value as describe() prints it: bare when it is a short run of
// [A-Za-z0-9_.:/+-], otherwise quoted with C escapes; longer than 64 bytes it
// is cut and its length given ("abc..."(300 bytes)).
std::string describe_value(std::string_view v);

}  // namespace chorus::check
