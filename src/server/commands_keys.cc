// The keyspace commands: DEL UNLINK EXISTS TYPE DBSIZE SCAN.
#include <algorithm>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/commands_internal.h"
#include "server/glob.h"

namespace chorus::server::internal {

// ---- Keys: DEL UNLINK EXISTS TYPE DBSIZE SCAN --------------------------------------

Plan cmd_del(const Call& c) {
  std::vector<std::string> keys(c.args.begin() + 1, c.args.end());
  return write_op(kv::make_delete(std::move(keys)), /*conditional=*/false, reply_integer);
}

// A key named twice counts twice, as in Redis.
Plan cmd_exists(const Call& c) {
  std::vector<std::string> keys(c.args.begin() + 1, c.args.end());
  return read_op([keys = std::move(keys)](const kv::StateMachine& sm) {
    int64_t n = 0;
    for (const std::string& key : keys) {
      auto v = sm.read(key);
      if (!v.is_ok()) return storage_error(v.status());
      if (v->has_value()) ++n;
    }
    return encode(resp::append_integer, n);
  });
}

// Every Chorus value is a string.
Plan cmd_type(const Call& c) {
  return read_op([key = c.args[1]](const kv::StateMachine& sm) {
    auto v = sm.read(key);
    if (!v.is_ok()) return storage_error(v.status());
    return encode(resp::append_simple_string, v->has_value() ? "string" : "none");
  });
}

Plan cmd_dbsize(const Call&) {
  return read_op([](const kv::StateMachine& sm) {
    auto n = sm.key_count();
    if (!n.is_ok()) return storage_error(n.status());
    return encode(resp::append_integer, static_cast<int64_t>(*n));
  });
}

namespace {

struct ScanRequest {
  std::string start;         // the first key this page may return
  size_t count = 10;         // keys examined (Redis's COUNT), before MATCH filters
  std::string pattern;       // "" = no MATCH
  bool strings_only = true;  // TYPE: false when a type other than "string" was asked
};

// Redis scanGenericCommand's options. Returns an error line, or nullopt.
std::optional<std::string> parse_scan_options(const std::vector<std::string>& args,
                                              ScanRequest* r) {
  for (size_t i = 2; i < args.size(); i += 2) {
    const std::string opt = lower(args[i]);
    if (i + 1 >= args.size()) return std::string(kErrSyntax);
    const std::string& value = args[i + 1];
    if (opt == "count") {
      const std::optional<int64_t> n = parse_int64(value);
      if (!n) return std::string(kErrNotInteger);
      if (*n < 1) return std::string(kErrSyntax);
      r->count = static_cast<size_t>(std::min<int64_t>(*n, kv::kScanItemsMax));
    } else if (opt == "match") {
      r->pattern = value == "*" ? "" : value;  // "*" matches everything, even "" (Redis)
    } else if (opt == "type") {
      r->strings_only = iequals(value, "string");
    } else {
      return std::string(kErrSyntax);
    }
  }
  return std::nullopt;
}

}  // namespace

// SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. Keys come in key order; a
// key present from the first call to the last is returned exactly once, one
// added or removed meanwhile at most once (Redis gives "at least once").
// COUNT bounds the keys examined, so a page may be empty while the cursor is
// not 0, as in Redis.
Plan cmd_scan(const Call& c) {
  const std::optional<uint64_t> cursor = parse_scan_cursor(c.args[1]);
  if (!cursor) return fail(kErrInvalidCursor);
  ScanRequest req;
  if (auto err = parse_scan_options(c.args, &req)) return fail(*err);
  if (*cursor != 0) {
    std::optional<std::string> start = c.session.scan_cursors->find(*cursor);
    if (!start) return fail(kErrInvalidCursor);
    req.start = std::move(*start);
  }
  return read_op([req = std::move(req), table = c.session.scan_cursors,
                  session_id = c.session.id](const kv::StateMachine& sm) {
    auto page = sm.scan(req.start, req.count);
    if (!page.is_ok()) return storage_error(page.status());
    std::vector<std::string_view> keys;
    for (const auto& [key, value] : page->items) {
      if (!req.strings_only) continue;
      if (!req.pattern.empty() && !glob_match(req.pattern, key)) continue;
      keys.push_back(key);
    }
    const uint64_t next = page->next.empty() ? 0 : table->add(session_id, page->next);
    std::string out;
    resp::append_array_header(&out, 2);
    resp::append_bulk_string(&out, std::to_string(next));
    resp::append_array_header(&out, keys.size());
    for (std::string_view key : keys) resp::append_bulk_string(&out, key);
    return out;
  });
}

}  // namespace chorus::server::internal
