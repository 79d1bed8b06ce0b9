// Test helpers for storage tests: a temporary directory under /tmp for
// PosixEnv tests (removed afterwards), and a factory that gives each test a
// fresh Env of either kind plus a root directory in it.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "base/assert.h"
#include "base/prng.h"
#include "storage/env/posix_env.h"
#include "storage/env/sim_env.h"

namespace chorus::storage::testing {

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/chorus-storage-test-XXXXXX";
    char* p = ::mkdtemp(tmpl);
    CHORUS_ASSERT(p != nullptr);
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

enum class EnvKind { kPosix, kSim };

inline std::string env_kind_name(EnvKind k) {
  return k == EnvKind::kPosix ? "Posix" : "Sim";
}

// One Env for one test: a PosixEnv rooted in a fresh temporary directory, or
// a SimEnv (seeded) rooted at "/data".
class TestEnv {
 public:
  explicit TestEnv(EnvKind kind, uint64_t seed = 1) : kind_(kind) {
    if (kind == EnvKind::kPosix) {
      tmp_ = std::make_unique<TempDir>();
      root_ = tmp_->path();
    } else {
      sim_ = std::make_unique<SimEnv>(Prng(seed));
      root_ = "/data";
      CHORUS_ASSERT(sim_->create_dir(root_).is_ok());
    }
  }
  Env* env() { return sim_ ? static_cast<Env*>(sim_.get()) : PosixEnv::get(); }
  SimEnv* sim() { return sim_.get(); }  // null for PosixEnv
  const std::string& root() const { return root_; }
  std::string path(const std::string& name) const { return join_path(root_, name); }
  EnvKind kind() const { return kind_; }

 private:
  EnvKind kind_;
  std::unique_ptr<TempDir> tmp_;
  std::unique_ptr<SimEnv> sim_;
  std::string root_;
};

}  // namespace chorus::storage::testing
