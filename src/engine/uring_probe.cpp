// The io_uring probe: asks the kernel, not its version number. Each feature the engine
// relies on is tried once on a private ring and a private AF_UNIX socket pair, so a
// seccomp filter, a container policy or a backported kernel all answer truthfully.
#include "engine/uring_probe.h"

#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "util/fd.h"

namespace eco::engine {
namespace {

std::string sysctl_disabled() {
  FILE* f = std::fopen("/proc/sys/kernel/io_uring_disabled", "r");
  if (!f) return "";
  int v = 0;
  bool ok = std::fscanf(f, "%d", &v) == 1;
  std::fclose(f);
  if (!ok || v == 0) return "";
  return fmt::format("kernel.io_uring_disabled={}", v);
}

std::string setup_error(int err) {
  std::string why = fmt::format("io_uring_setup: {}", std::strerror(err));
  switch (err) {
    case ENOSYS:
      return why + " (kernel built without io_uring, or blocked by seccomp)";
    case EPERM: {
      std::string s = sysctl_disabled();
      return why + (s.empty() ? " (blocked by seccomp or container policy)" : " (" + s + ")");
    }
    case ENOMEM:
      return why + " (locked-memory limit too low: raise `ulimit -l`)";
    default:
      return why;
  }
}

// Waits for one completion, at most one second (the probe must never hang start-up).
int wait_one(io_uring& ring, io_uring_cqe*& cqe) {
  __kernel_timespec ts{1, 0};
  return io_uring_submit_and_wait_timeout(&ring, &cqe, 1, &ts, nullptr);
}

struct ProbeRing {
  io_uring ring{};
  bool up = false;
  ~ProbeRing() {
    if (up) io_uring_queue_exit(&ring);
  }
};

// Tries multishot accept and multishot recv with a provided-buffer ring; sets
// f.recv_limit when the total-byte cap is honoured. Returns "" or why it failed.
std::string try_network_ops(io_uring& ring, UringFeatures& f) {
  constexpr int kGroup = 1;
  constexpr unsigned kEntries = 2;
  void* mem = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return fmt::format("mmap: {}", std::strerror(errno));
  auto* br = static_cast<io_uring_buf_ring*>(mem);
  static char bufs[kEntries][64];
  io_uring_buf_ring_init(br);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uintptr_t>(mem);
  reg.ring_entries = kEntries;
  reg.bgid = kGroup;
  std::string why;
  int r = io_uring_register_buf_ring(&ring, &reg, 0);
  if (r < 0) {
    munmap(mem, 4096);
    return fmt::format("provided-buffer rings: {} (kernel older than 5.19?)", std::strerror(-r));
  }
  for (unsigned i = 0; i < kEntries; ++i)
    io_uring_buf_ring_add(br, bufs[i], sizeof bufs[i], uint16_t(i), io_uring_buf_ring_mask(kEntries), int(i));
  io_uring_buf_ring_advance(br, kEntries);

  // An unnamed AF_UNIX listener (autobind): no port, no file, nothing to clean up.
  Fd lis(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  Fd cli(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  Fd acc;
  sockaddr_un sa{};
  socklen_t len = sizeof(sa_family_t);
  sa.sun_family = AF_UNIX;
  io_uring_sqe* sqe;
  io_uring_cqe* cqe = nullptr;
  do {
    if (!lis.valid() || !cli.valid() || ::bind(lis.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0 ||
        ::listen(lis.get(), 4) != 0 || (len = sizeof sa, false) ||
        getsockname(lis.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      why = fmt::format("probe socket: {}", std::strerror(errno));
      break;
    }
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_multishot_accept(sqe, lis.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (::connect(cli.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
      why = fmt::format("probe connect: {}", std::strerror(errno));
      break;
    }
    if ((r = wait_one(ring, cqe)) < 0) {
      why = fmt::format("multishot accept: no completion ({})", std::strerror(-r));
      break;
    }
    if (cqe->res < 0 || !(cqe->flags & IORING_CQE_F_MORE)) {
      why = fmt::format("multishot accept: {} (kernel older than 5.19?)",
                        cqe->res < 0 ? std::strerror(-cqe->res) : "not multishot");
      if (cqe->res >= 0) ::close(cqe->res);
      break;
    }
    acc.reset(cqe->res);
    io_uring_cqe_seen(&ring, cqe);
    if (::write(cli.get(), "ab", 2) != 2) {
      why = fmt::format("probe write: {}", std::strerror(errno));
      break;
    }
    // Capped multishot recv: one byte per completion, one byte in total. A kernel that
    // knows the cap ends the request after one byte (no F_MORE); an older one rejects
    // the non-zero optlen (it shares the file_index field) with EINVAL.
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, acc.get(), nullptr, 1, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kGroup;
    sqe->file_index = 1;  // optlen: the total cap
    if ((r = wait_one(ring, cqe)) < 0) {
      why = fmt::format("multishot recv: no completion ({})", std::strerror(-r));
      break;
    }
    int res = cqe->res;
    unsigned flags = cqe->flags;
    io_uring_cqe_seen(&ring, cqe);
    if (res == 1 && (flags & IORING_CQE_F_BUFFER) && !(flags & IORING_CQE_F_MORE)) {
      f.recv_limit = true;
      break;
    }
    if (res != -EINVAL) {
      why = res < 0 ? fmt::format("multishot recv: {}", std::strerror(-res))
                    : "multishot recv: byte cap ignored";
      break;
    }
    // No cap: plain multishot recv must still work (6.0); the engine re-arms by hand.
    sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv_multishot(sqe, acc.get(), nullptr, 1, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kGroup;
    if ((r = wait_one(ring, cqe)) < 0) {
      why = fmt::format("multishot recv: no completion ({})", std::strerror(-r));
      break;
    }
    if (cqe->res != 1 || !(cqe->flags & IORING_CQE_F_MORE))
      why = fmt::format("multishot recv: {} (kernel older than 6.0?)",
                        cqe->res < 0 ? std::strerror(-cqe->res) : "not multishot");
    io_uring_cqe_seen(&ring, cqe);
  } while (false);
  // Requests still armed hold the sockets; the ring's teardown cancels them. The
  // buffers are static and the ring memory is freed only after that teardown.
  (void)io_uring_unregister_buf_ring(&ring, kGroup);
  munmap(mem, 4096);
  return why;
}

// ECO_URING_OFF=defer_taskrun,recv_cap,ring_fd turns optional features off, so a
// benchmark can show what each one buys (as liburing's examples allow).
void switch_off(UringFeatures& f) {
  const char* e = std::getenv("ECO_URING_OFF");
  if (!e) return;
  std::string off = std::string(",") + e + ",";
  if (off.find(",defer_taskrun,") != std::string::npos && f.defer_taskrun) {
    f.defer_taskrun = false;
    f.coop_taskrun = true;  // 5.19 and later all have it, and DEFER_TASKRUN is 6.1
  }
  if (off.find(",recv_cap,") != std::string::npos) f.recv_limit = false;
  if (off.find(",ring_fd,") != std::string::npos) f.ring_fd = false;
}

UringFeatures probe() {
  UringFeatures f;
  if (const char* e = std::getenv("ECO_DISABLE_URING"); e && *e && std::strcmp(e, "0") != 0) {
    f.reason = "disabled by ECO_DISABLE_URING";
    return f;
  }
  if (std::string s = sysctl_disabled(); s == "kernel.io_uring_disabled=2") {
    f.reason = "io_uring is disabled system-wide (" + s + ")";
    return f;
  }
  ProbeRing pr;
  io_uring_params p{};
  p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int r = io_uring_queue_init_params(8, &pr.ring, &p);
  if (r == 0) {
    f.defer_taskrun = true;
  } else if (r == -EINVAL) {
    p = io_uring_params{};
    p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
    r = io_uring_queue_init_params(8, &pr.ring, &p);
    if (r == 0) f.coop_taskrun = true;
    if (r == -EINVAL) {
      p = io_uring_params{};
      r = io_uring_queue_init_params(8, &pr.ring, &p);
    }
  }
  if (r < 0) {
    f.reason = setup_error(-r);
    return f;
  }
  pr.up = true;
  // NODROP: completions are never lost when the CQ overflows; FAST_POLL: sockets are
  // polled internally instead of a worker thread blocking on each one.
  if (!(p.features & IORING_FEAT_NODROP) || !(p.features & IORING_FEAT_FAST_POLL)) {
    f.reason = "io_uring lacks IORING_FEAT_NODROP or IORING_FEAT_FAST_POLL (kernel older than 5.7)";
    return f;
  }
  io_uring_probe* op = io_uring_get_probe_ring(&pr.ring);
  if (!op) {
    f.reason = "IORING_REGISTER_PROBE failed (kernel older than 5.6)";
    return f;
  }
  struct Need {
    int op;
    const char* name;
  };
  static constexpr Need kNeeded[] = {
      {IORING_OP_ACCEPT, "ACCEPT"},     {IORING_OP_RECV, "RECV"},         {IORING_OP_SEND, "SEND"},
      {IORING_OP_RECVMSG, "RECVMSG"},   {IORING_OP_SENDMSG, "SENDMSG"},   {IORING_OP_POLL_ADD, "POLL_ADD"},
      {IORING_OP_TIMEOUT, "TIMEOUT"},   {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
  };
  for (const Need& n : kNeeded) {
    if (!io_uring_opcode_supported(op, n.op)) {
      f.reason = fmt::format("io_uring opcode {} not supported", n.name);
      io_uring_free_probe(op);
      return f;
    }
  }
  io_uring_free_probe(op);
  if (std::string why = try_network_ops(pr.ring, f); !why.empty()) {
    f.reason = why;
    return f;
  }
  f.ring_fd = io_uring_register_ring_fd(&pr.ring) == 1;
  f.available = true;
  switch_off(f);
  return f;
}

}  // namespace

std::string UringFeatures::summary() const {
  std::string s = defer_taskrun ? "single_issuer+defer_taskrun" : coop_taskrun ? "coop_taskrun" : "plain";
  s += recv_limit ? ", capped multishot recv" : ", single-shot recv (no multishot byte cap)";
  if (ring_fd) s += ", registered ring fd";
  return s;
}

const UringFeatures& uring_features() {
  static const UringFeatures f = probe();
  return f;
}

unsigned uring_setup_flags(const UringFeatures& f) {
  if (f.defer_taskrun) return IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  if (f.coop_taskrun) return IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  return 0;
}

}  // namespace eco::engine
