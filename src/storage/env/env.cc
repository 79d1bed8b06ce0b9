#include "storage/env/env.h"

namespace chorus::storage {

std::string join_path(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out += '/';
  out += name;
  return out;
}

std::string parent_dir(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string_view base_name(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

Status write_file_atomically(Env* env, const std::string& path, std::string_view data) {
  const std::string tmp = path + ".tmp";
  CHORUS_ASSIGN_OR_RETURN(auto file, env->open_writable(tmp, OpenMode::kTruncate));
  CHORUS_RETURN_IF_ERROR(file->append(data));
  CHORUS_RETURN_IF_ERROR(file->sync());
  CHORUS_RETURN_IF_ERROR(file->close());
  CHORUS_RETURN_IF_ERROR(env->rename(tmp, path));
  return env->sync_dir(parent_dir(path));
}

}  // namespace chorus::storage
