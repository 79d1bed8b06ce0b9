// Where the `zookeeper` driver keeps a key: the znode <root>/<name>, where
// name is the key with the bytes a znode name cannot hold escaped. Pure
// string logic, kept apart from the driver so that it is built and tested
// without the ZooKeeper client library.
//
// Escaping: a byte passes through unchanged if it is printable ASCII
// (0x20..0x7e) other than '/' and '%'; any other byte becomes "%XX" (two
// upper-case hex digits). The names "." and ".." (which ZooKeeper rejects)
// become "%2E" and "%2E%2E", and the empty key becomes "%" (a bare '%' is
// never produced otherwise). So distinct keys get distinct names, and every
// name is valid for ZooKeeper (no '/', no control or non-ASCII characters,
// not a relative component). The workloads' keys ("key:000042") pass through
// unchanged.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace chorus::bench {

inline constexpr std::string_view kZnodeRootDefault = "/chorus-bench";

// Appends the escaped znode name of `key` to *out.
void append_znode_name(std::string_view key, std::string* out);

// root + "/" + the escaped name of `key`.
std::string znode_path(std::string_view root, std::string_view key);

// OK if `root` can hold the benchmark's znodes: an absolute path of at least
// one component, printable ASCII, no empty, "." or ".." component, no
// trailing '/', and not "/zookeeper" or below it (ZooKeeper's own subtree).
// InvalidArgument saying what is wrong otherwise.
Status check_znode_root(std::string_view root);

// The paths to create, in order, so that `root` exists: "/a", "/a/b" for
// "/a/b". Requires check_znode_root(root) to pass.
std::vector<std::string> znode_ancestors(std::string_view root);

}  // namespace chorus::bench
