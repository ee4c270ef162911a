#include <cstdlib>

#include <fmt/format.h>

#include "engine/engine.h"
#include "engine/uring_probe.h"
#ifdef ECO_HAVE_SOCKMAP
#include "engine/sockmap.h"
#include "engine/sockmap_loader.h"
#endif

namespace eco::engine {
namespace {

// Why the sockmap engine cannot run here ("" when it can). ECO_DISABLE_SOCKMAP=1 makes
// it unavailable on any machine, so the fallback can be tested (like ECO_DISABLE_URING).
std::string sockmap_unavailable() {
  const char* off = std::getenv("ECO_DISABLE_SOCKMAP");
  if (off && *off && std::string(off) != "0") return "disabled by ECO_DISABLE_SOCKMAP";
#ifdef ECO_HAVE_SOCKMAP
  const SockmapSupport& s = sockmap_support();
  return s.available ? "" : s.reason;
#else
  return "not built (ECO_SOCKMAP=OFF)";
#endif
}

// The limits the in-kernel echo cannot enforce: they act per byte (or before the
// first byte is echoed) and the kernel path never shows user space a byte. Combining
// one with the engine is refused, never a silent no-op.
std::string sockmap_cannot_enforce(const EngineConfig& cfg) {
  const session::Limits& l = cfg.limits;
  std::string flags;
  auto add = [&](bool on, const char* flag) {
    if (on) flags += flags.empty() ? flag : std::string(", ") + flag;
  };
  add(l.max_bytes != 0, "--max-bytes");
  add(l.rate_per_ip != 0, "--rate-limit-per-ip");
  add(l.idle_timeout_ns != 0, "--idle-timeout");
  add(l.proxy_protocol, "--proxy-protocol");
  return flags;
}

// Why "auto" passes over sockmap for this server ("" when it does not). The settings
// are checked before the trial load, so a server that could not use sockmap never
// loads a BPF program.
std::string auto_skips_sockmap(const EngineConfig& cfg, const ServeTraits& traits) {
  if (!traits.tcp) return "no TCP listener";
  if (std::string flags = sockmap_cannot_enforce(cfg); !flags.empty())
    return fmt::format("it cannot enforce {}", flags);
  if (cfg.ring_entries || cfg.buf_ring_entries || cfg.buf_ring_size) return "--uring-* options are set";
  return sockmap_unavailable();
}

}  // namespace

std::vector<std::string> engine_names() {
#ifdef ECO_HAVE_SOCKMAP
  return {"auto", "epoll", "uring", "sockmap"};
#else
  return {"auto", "epoll", "uring"};
#endif
}

Result<Engine> choose(const std::string& requested, const EngineConfig& cfg, const ServeTraits& traits,
                      std::string& note) {
  note.clear();
  if (requested == "epoll") return Engine{"epoll", &run_epoll};
  if (requested == "sockmap") {
    std::string flags = sockmap_cannot_enforce(cfg);
    if (!flags.empty())
      return Error{fmt::format("cannot use --engine sockmap with {}: the kernel echoes those bytes without "
                               "user space seeing them, so the limit could not be enforced",
                               flags)};
    std::string why = sockmap_unavailable();
#ifdef ECO_HAVE_SOCKMAP
    if (why.empty()) return Engine{"sockmap", &run_sockmap};
#endif
    return Error{fmt::format("cannot use --engine sockmap: {}", why)};
  }
  if (requested == "uring") {
    const UringFeatures& f = uring_features();
    if (f.available) return Engine{"uring", &run_uring};
    return Error{fmt::format("cannot use --engine uring: {}", f.reason)};
  }
  if (requested == "auto") {
    // In-kernel echo first (issue 9): it saves the wake-up and the copies through user
    // space. On loopback its kernel work runs on the client's core, so a local
    // benchmark at many connections can favour io_uring (docs/benchmarks.md).
    std::string why_not_sockmap = auto_skips_sockmap(cfg, traits);
#ifdef ECO_HAVE_SOCKMAP
    if (why_not_sockmap.empty()) return Engine{"sockmap", &run_sockmap};
#endif
    const UringFeatures& f = uring_features();
    if (f.available) {
      note = fmt::format("auto: not the in-kernel sockmap engine ({}); using io_uring", why_not_sockmap);
      return Engine{"uring", &run_uring};
    }
    note = fmt::format("auto: not the in-kernel sockmap engine ({}), io_uring unavailable ({}); using epoll",
                       why_not_sockmap, f.reason);
    return Engine{"epoll", &run_epoll};
  }
  return Error{fmt::format("unknown engine '{}' (choose auto, sockmap, uring or epoll)", requested)};
}

}  // namespace eco::engine
