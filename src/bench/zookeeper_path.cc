#include "bench/zookeeper_path.h"

#include <algorithm>

namespace chorus::bench {
namespace {

constexpr char kHex[] = "0123456789ABCDEF";

bool passes_through(unsigned char c) {
  return c >= 0x20 && c <= 0x7e && c != '/' && c != '%';
}

void append_escaped(unsigned char c, std::string* out) {
  out->push_back('%');
  out->push_back(kHex[c >> 4]);
  out->push_back(kHex[c & 0xf]);
}

}  // namespace

void append_znode_name(std::string_view key, std::string* out) {
  if (key.empty()) {
    out->push_back('%');
    return;
  }
  if (key == "." || key == "..") {
    for (char c : key) append_escaped(static_cast<unsigned char>(c), out);
    return;
  }
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    if (passes_through(c)) {
      out->push_back(ch);
    } else {
      append_escaped(c, out);
    }
  }
}

std::string znode_path(std::string_view root, std::string_view key) {
  std::string out(root);
  out.push_back('/');
  append_znode_name(key, &out);
  return out;
}

Status check_znode_root(std::string_view root) {
  const auto bad = [&](std::string_view why) {
    return Status::invalid_argument("zookeeper: root '" + std::string(root) + "' " +
                                    std::string(why) + " (e.g. " + std::string(kZnodeRootDefault) +
                                    ")");
  };
  if (root.empty() || root[0] != '/') return bad("must be an absolute path");
  if (root.size() == 1) return bad("must be below /");
  if (root.back() == '/') return bad("must not end with '/'");
  for (char ch : root) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e) return bad("must be printable ASCII");
  }
  size_t start = 1;
  while (start <= root.size()) {
    const size_t slash = std::min(root.find('/', start), root.size());
    const std::string_view part = root.substr(start, slash - start);
    if (part.empty()) return bad("has an empty component");
    if (part == "." || part == "..") return bad("has a relative component");
    start = slash + 1;
  }
  if (root == "/zookeeper" || root.starts_with("/zookeeper/")) {
    return bad("is in ZooKeeper's own subtree");
  }
  return Status::ok();
}

std::vector<std::string> znode_ancestors(std::string_view root) {
  std::vector<std::string> out;
  for (size_t slash = root.find('/', 1); slash != std::string_view::npos;
       slash = root.find('/', slash + 1)) {
    out.emplace_back(root.substr(0, slash));
  }
  out.emplace_back(root);
  return out;
}

}  // namespace chorus::bench
