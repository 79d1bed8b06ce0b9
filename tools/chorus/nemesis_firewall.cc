#include "nemesis_firewall.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include <fmt/format.h>

namespace chorus::tools::nemesis {
namespace {

constexpr std::string_view kChainPrefix = "CHORUS-NEMESIS-";

// An sbin tool: the usual paths first (they are often not on a non-root
// PATH), then PATH.
std::string sbin_path(const std::string& name) {
  for (const std::string dir : {"/usr/sbin/", "/sbin/"}) {
    if (access((dir + name).c_str(), X_OK) == 0) return dir + name;
  }
  return name;
}

// Reads everything from fd until EOF (bounded: iptables output is small).
std::string read_all(int fd) {
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out.size() < (1u << 20)) out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Runs argv with `input` on stdin; returns the exit code (127: could not run)
// and stdout+stderr in *output. The input is small (< the pipe buffer), so
// writing it all before reading cannot deadlock.
int run_program(std::vector<std::string> argv_s, const std::string& input, std::string* output) {
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out_fds[2], in_fds[2];
  if (pipe2(out_fds, O_CLOEXEC) != 0) return 127;
  if (pipe2(in_fds, O_CLOEXEC) != 0) {
    close(out_fds[0]);
    close(out_fds[1]);
    return 127;
  }
  const pid_t child = fork();
  if (child == 0) {
    // Only async-signal-safe calls between fork and exec (threads exist).
    dup2(in_fds[0], STDIN_FILENO);
    dup2(out_fds[1], STDOUT_FILENO);
    dup2(out_fds[1], STDERR_FILENO);
    signal(SIGINT, SIG_IGN);  // a Ctrl-C is for the nemesis, which cleans up
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(in_fds[0]);
  close(out_fds[1]);
  if (child > 0 && !input.empty()) {
    const ssize_t n = write(in_fds[1], input.data(), input.size());
    (void)n;
  }
  close(in_fds[1]);
  std::string out = read_all(out_fds[0]);
  close(out_fds[0]);
  if (child < 0) return 127;
  int wstatus = 0;
  while (waitpid(child, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (output) *output = std::move(out);
  return WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 127;
}

std::string first_line(const std::string& s) {
  return s.substr(0, s.find('\n'));
}

}  // namespace

int run_iptables(const std::vector<std::string>& args, std::string* output) {
  std::vector<std::string> argv{sbin_path("iptables"), "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(std::move(argv), "", output);
}

int run_iptables_restore(const std::string& input, std::string* output) {
  return run_program({sbin_path("iptables-restore"), "-w", "--noflush"}, input, output);
}

std::unique_ptr<Firewall> Firewall::open(std::string* why_not) {
  if (geteuid() != 0) {
    *why_not = "not running as root";
    return nullptr;
  }
  const std::string chain = fmt::format("{}{}", kChainPrefix, getpid());
  std::string out;
  int rc = run_iptables({"-N", chain}, &out);
  if (rc == 127) {
    *why_not = "iptables is not installed (scripts/install-deps installs it)";
    return nullptr;
  }
  if (rc != 0) {
    *why_not = fmt::format("iptables -N failed: {}", first_line(out));
    return nullptr;
  }
  rc = run_iptables({"-I", "INPUT", "1", "-j", chain}, &out);
  if (rc != 0) {
    run_iptables({"-X", chain});
    *why_not = fmt::format("iptables -I INPUT failed: {}", first_line(out));
    return nullptr;
  }
  return std::unique_ptr<Firewall>(new Firewall(chain));
}

int Firewall::remove_stale_chains() {
  std::string listing;
  if (geteuid() != 0 || run_iptables({"-S"}, &listing) != 0) return 0;
  std::istringstream in(listing);
  std::string line;
  int removed = 0;
  while (std::getline(in, line)) {
    // "-N CHORUS-NEMESIS-1234"
    const std::string head = fmt::format("-N {}", kChainPrefix);
    if (line.rfind(head, 0) != 0) continue;
    const std::string chain = line.substr(3);
    const long pid = std::strtol(chain.c_str() + kChainPrefix.size(), nullptr, 10);
    if (pid <= 0 || pid == getpid() || kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) {
      continue;  // its nemesis may still be running
    }
    for (int i = 0; i < 16 && run_iptables({"-D", "INPUT", "-j", chain}) == 0; ++i) {
    }
    run_iptables({"-F", chain});
    if (run_iptables({"-X", chain}) == 0) ++removed;
  }
  return removed;
}

Firewall::~Firewall() {
  teardown();
}

Status Firewall::drop(const std::vector<Link>& links) {
  // Segments from `from` to `to`: from's connection to to's peer listener,
  // and from's replies on to's connection to from's peer listener.
  std::string input = "*filter\n";
  for (const Link& l : links) {
    input += fmt::format("-A {} -p tcp -s {} -d {} --dport {} -j DROP\n", chain_, l.from.host,
                         l.to.host, l.to.port);
    input += fmt::format("-A {} -p tcp -s {} -d {} --sport {} -j DROP\n", chain_, l.from.host,
                         l.to.host, l.from.port);
  }
  input += "COMMIT\n";
  std::string out;
  if (run_iptables_restore(input, &out) != 0) {
    return Status::io_error(fmt::format("iptables-restore into {}: {}", chain_, first_line(out)));
  }
  return Status::ok();
}

Status Firewall::heal() {
  std::string out;
  if (run_iptables({"-F", chain_}, &out) != 0) {
    return Status::io_error(fmt::format("iptables -F {}: {}", chain_, first_line(out)));
  }
  return Status::ok();
}

void Firewall::teardown() {
  if (torn_down_) return;
  torn_down_ = true;
  // The jump first, so that no packet reaches a half-deleted chain.
  for (int i = 0; i < 16 && run_iptables({"-D", "INPUT", "-j", chain_}) == 0; ++i) {
  }
  run_iptables({"-F", chain_});
  run_iptables({"-X", chain_});
}

}  // namespace chorus::tools::nemesis
