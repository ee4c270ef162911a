#include "server/seccomp.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <seccomp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "util/log.h"

namespace eco::server {
namespace {

// What eco serve calls once running, found with `strace -f -c` over both engines,
// TCP and UDP, --metrics scrapes, drain and exit (see README, "Privileges and seccomp").
constexpr const char* kAllowed[] = {
    // event loops, sockets that already exist, accepted connections
    "epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl", "epoll_create1", "poll", "ppoll", "select",
    "pselect6", "accept", "accept4", "recvfrom", "recvmsg", "recvmmsg", "sendto", "sendmsg", "sendmmsg", "read",
    "readv", "pread64", "write", "writev", "close", "shutdown", "setsockopt", "getsockopt", "getsockname",
    "getpeername", "ioctl", "fcntl", "eventfd2", "fstat", "newfstatat", "lseek",
    // memory, threads already running, time, signals, exit
    "mmap", "munmap", "mremap", "mprotect", "madvise", "brk", "futex", "sched_yield", "nanosleep",
    "clock_nanosleep", "clock_gettime", "gettimeofday", "getrusage", "getpid", "gettid", "getuid", "geteuid",
    "getgid", "getegid", "rt_sigprocmask", "rt_sigaction", "rt_sigreturn", "sigaltstack", "tgkill", "restart_syscall",
    "exit", "exit_group", "set_robust_list", "rseq", "getrandom", "sysinfo",
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // Sanitizer builds only. LeakSanitizer stops the world at exit (a ptrace-ing helper
    // thread, /proc reads); UBSan's vptr check probes memory by writing it into a pipe.
    "clone", "ptrace", "wait4", "openat", "getdents64", "readlink", "sched_getaffinity", "pipe2", "prctl",
#endif
};

Status add(scmp_filter_ctx ctx, const char* name) {
  int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return Status{};  // not on this architecture
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
  if (rc < 0) return sys_error(fmt::format("seccomp_rule_add({})", name), -rc);
  return {};
}

// An engine's call, with any arguments or only the listed first ones.
Status add(scmp_filter_ctx ctx, const engine::SyscallRule& rule) {
  if (rule.arg0.empty()) return add(ctx, rule.name);
  int nr = seccomp_syscall_resolve_name(rule.name);
  if (nr == __NR_SCMP_ERROR) return Status{};
  for (unsigned v : rule.arg0)
    if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, SCMP_A0(SCMP_CMP_EQ, v)); rc < 0)
      return sys_error(fmt::format("seccomp_rule_add({})", rule.name), -rc);
  return {};
}

}  // namespace

Status install_seccomp(const engine::EngineInfo& engine) {
  // EPERM, not a kill: a rare path the list missed fails like any refused call, which
  // eco already reports; an intruder still cannot exec, open or make new sockets.
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
  if (!ctx) return Error{"seccomp_init failed"};
  struct Release {
    scmp_filter_ctx c;
    ~Release() { seccomp_release(c); }
  } release{ctx};
  // Every thread, not just this one: the loops and the metrics thread already run.
  if (int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1); rc < 0) return sys_error("seccomp TSYNC", -rc);
  for (const char* name : kAllowed)
    if (auto s = add(ctx, name); !s) return s;
  for (const engine::SyscallRule& rule : engine.syscalls)
    if (auto s = add(ctx, rule); !s) return s;
  // sd_notify (READY, WATCHDOG, STOPPING) opens a new AF_UNIX datagram socket each time.
  if (int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX)); rc < 0)
    return sys_error("seccomp_rule_add(socket)", -rc);
  if (int rc = seccomp_load(ctx); rc < 0) return sys_error("seccomp_load", -rc);
  return {};
}

void run_seccomp_probe() {
  const char* probe = std::getenv("ECO_TEST_SECCOMP_PROBE");
  if (!probe) return;
  std::string_view what = probe;
  int rc = -1;
  errno = 0;
  if (what == "execve") {
    // A path that does not exist: allowed, this is ENOENT; filtered, EPERM. Never replaces eco.
    char* const argv[] = {const_cast<char*>("/nonexistent/eco-seccomp-probe"), nullptr};
    rc = ::execve(argv[0], argv, argv + 1);
  } else if (what == "openat") {
    rc = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
  } else if (what == "socket") {
    rc = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  } else if (what == "bpf") {
    // Loading a program, with an empty (invalid) one: allowed, this is EINVAL; filtered,
    // EPERM. The sockmap engine's map commands stay allowed; this one never is.
    bpf_attr attr{};
    rc = int(::syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
  } else {
    log::error("seccomp probe: unknown call '{}' (execve, openat, socket, bpf)", what);
    return;
  }
  int err = errno;
  if (rc >= 0) ::close(rc);
  if (rc < 0 && err == EPERM)
    log::info("seccomp probe: {} refused ({})", what, std::strerror(err));
  else
    log::warn("seccomp probe: {} allowed ({})", what, rc < 0 ? std::strerror(err) : "succeeded");
}

}  // namespace eco::server
