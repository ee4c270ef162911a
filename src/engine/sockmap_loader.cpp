#include "engine/sockmap_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h>  // struct tcp_info with tcpi_bytes_received/acked (glibc's lacks them)
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "bpf/echo_shared.h"
#include "util/log.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wconversion"
#pragma GCC diagnostic ignored "-Wsign-conversion"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include "eco_echo.skel.h"  // generated from src/bpf/echo.bpf.c by bpftool gen skeleton
#pragma GCC diagnostic pop

namespace eco::engine {
namespace {

// libbpf writes its own diagnostics to stderr; route them through eco's log so a
// failed probe is one line of ours, with libbpf's detail only at --log-level debug.
int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG || !log::enabled(log::Level::debug)) return 0;
  char buf[1024];
  int n = std::vsnprintf(buf, sizeof buf, fmt, args);
  std::string_view s(buf, n < 0 ? 0 : std::min(size_t(n), sizeof buf - 1));
  while (!s.empty() && s.back() == '\n') s.remove_suffix(1);
  log::debug("libbpf: {}", s);
  return 0;
}

int on_ring_record(void* ctx, void* data, size_t size) {
  auto* k = static_cast<SockmapKernel*>(ctx);
  if (size < sizeof(eco_handoff)) return 0;
  eco_handoff h;
  std::memcpy(&h, data, sizeof h);
  k->deliver(h.cookie, h.tag);
  return 0;
}

}  // namespace

void SockmapKernel::deliver(uint64_t cookie, uint64_t tag) {
  ++records_;
  if (on_handoff_) on_handoff_(ctx_, cookie, tag);
}

Result<std::unique_ptr<SockmapKernel>> SockmapKernel::load(HandoffFn on_handoff, void* ctx) {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_print); });
  std::unique_ptr<SockmapKernel> k(new SockmapKernel());
  k->on_handoff_ = on_handoff;
  k->ctx_ = ctx;
  eco_echo* skel = eco_echo__open_and_load();
  if (!skel) return sys_error("loading the BPF echo program (bpf)");
  // Attached to the map, not to a cgroup or interface: the program lives exactly as
  // long as the map, i.e. as long as this process holds the map.
  Status st;
  if (bpf_prog_attach(bpf_program__fd(skel->progs.eco_echo_verdict), bpf_map__fd(skel->maps.eco_socks),
                      BPF_SK_SKB_STREAM_VERDICT, 0) != 0)
    st = sys_error("attaching the BPF verdict program to the sockhash");
  // Keep only the three maps the loop uses and let the skeleton go (program, BTF and
  // its own map fds): every fd counts when a loop runs near RLIMIT_NOFILE.
  auto keep = [&](bpf_map* m, Fd& out) {
    if (st) {
      out.reset(fcntl(bpf_map__fd(m), F_DUPFD_CLOEXEC, 0));
      if (!out.valid()) st = sys_error("fcntl(F_DUPFD_CLOEXEC) on a BPF map");
    }
  };
  keep(skel->maps.eco_socks, k->socks_);
  keep(skel->maps.eco_conns, k->conns_);
  keep(skel->maps.eco_handoffs, k->ring_map_);
  eco_echo__destroy(skel);
  if (!st) return st.error();
  eco_conn_state totals{};
  uint64_t key = ECO_TOTALS_KEY;
  if (bpf_map_update_elem(k->conns_.get(), &key, &totals, BPF_NOEXIST) != 0)
    return sys_error("creating the BPF totals entry");
  k->ring_ = ring_buffer__new(k->ring_map_.get(), on_ring_record, k.get(), nullptr);
  if (!k->ring_) return sys_error("opening the BPF handoff ring");
  return k;
}

SockmapKernel::~SockmapKernel() {
  if (ring_) ring_buffer__free(ring_);
}

Result<uint64_t> SockmapKernel::insert(int fd, uint64_t tag) {
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  if (::getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len) != 0) return sys_error("getsockopt(SO_COOKIE)");
  eco_conn_state st{};
  st.tag = tag;
  if (bpf_map_update_elem(conns_.get(), &cookie, &st, BPF_NOEXIST) != 0)
    return sys_error("adding connection state to the BPF map");
  uint64_t value = uint64_t(fd);
  if (bpf_map_update_elem(socks_.get(), &cookie, &value, BPF_NOEXIST) != 0) {
    Error e = sys_error("adding the socket to the sockhash");
    bpf_map_delete_elem(conns_.get(), &cookie);
    return e;
  }
  // Bytes that arrived between the handshake and insertion sit in the receive queue
  // and nobody would judge them until the next segment arrives. Setting SO_RCVLOWAT
  // makes TCP call sk_data_ready (tcp_set_rcvlowat -> tcp_data_ready), which is now
  // the psock's: it reads the queue from its head, so old bytes go out first and in
  // order, under the socket lock, racing with nothing.
  int one = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &one, sizeof one) != 0) {
    Error e = sys_error("setsockopt(SO_RCVLOWAT)");
    bpf_map_delete_elem(socks_.get(), &cookie);
    bpf_map_delete_elem(conns_.get(), &cookie);
    return e;
  }
  return cookie;
}

void SockmapKernel::forget(uint64_t cookie) { bpf_map_delete_elem(conns_.get(), &cookie); }

SockmapConnStats SockmapKernel::conn_stats(uint64_t cookie) const {
  SockmapConnStats out;
  eco_conn_state st{};
  if (bpf_map_lookup_elem(conns_.get(), &cookie, &st) == 0) {
    out.redirected = st.redirected;
    out.passed = st.passed;
    out.repeats = st.repeats;
    out.unchecked = st.unchecked;
    out.handed_off = (st.flags & ECO_CONN_PASS) != 0;
    out.broken = (st.flags & ECO_CONN_BROKEN) != 0;
  }
  return out;
}

SockmapKernel::Totals SockmapKernel::totals() const {
  // The verdict keeps them in an eco_conn_state under a key no socket has (stat_add).
  eco_conn_state t{};
  uint64_t key = ECO_TOTALS_KEY;
  if (bpf_map_lookup_elem(conns_.get(), &key, &t) != 0) return {};
  return {.bytes = t.redirected, .handoffs = t.passed, .broken = t.repeats};
}

int SockmapKernel::handoff_fd() const { return ring_buffer__epoll_fd(ring_); }
void SockmapKernel::drain_handoffs() { ring_buffer__consume(ring_); }

const SockmapSupport& sockmap_support() {
  static const SockmapSupport support = [] {
    SockmapSupport s;
    auto k = SockmapKernel::load(nullptr, nullptr);
    if (k) {
      s.available = true;
    } else {
      s.reason = k.error().message;
      if (k.error().code == EPERM || k.error().code == EACCES) s.reason += " (needs CAP_BPF and CAP_NET_ADMIN, or root)";
    }
    return s;
  }();
  return support;
}

Result<TcpFlushState> tcp_flush_state(int fd) {
  tcp_info ti{};
  socklen_t len = sizeof ti;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return sys_error("getsockopt(TCP_INFO)");
  int outq = 0;
  if (::ioctl(fd, SIOCOUTQ, &outq) != 0) return sys_error("ioctl(SIOCOUTQ)");
  TcpFlushState s;
  s.received = ti.tcpi_bytes_received;
  s.queued = ti.tcpi_bytes_acked + uint64_t(outq > 0 ? outq : 0);
  s.closed = ti.tcpi_state == 7;  // TCP_CLOSE (include/net/tcp_states.h; not in the uapi header)
  return s;
}

}  // namespace eco::engine
