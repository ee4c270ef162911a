// The engine table (engine.h): one row per engine, in the order auto tries them.
#include <linux/bpf.h>

#include <cstdlib>

#include <fmt/format.h>

#include "engine/engine.h"
#include "engine/uring_probe.h"
#ifdef ECO_HAVE_SOCKMAP
#include "engine/sockmap_loader.h"
#endif

namespace eco::engine {
namespace {

// ECO_DISABLE_SOCKMAP=1 makes the engine unavailable on any machine, so the fallback
// can be tested (like ECO_DISABLE_URING for io_uring).
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

std::string uring_unavailable() {
  const UringFeatures& f = uring_features();
  return f.available ? "" : f.reason;
}

std::string always_available() { return ""; }

// The limits the in-kernel echo cannot enforce: they act per byte (or before the first
// byte is echoed) and the kernel path never shows user space a byte.
constexpr Setting kPerByteLimits[] = {
    {"--max-bytes", [](const EngineConfig& c) { return c.limits.max_bytes != 0; }},
    {"--rate-limit-per-ip", [](const EngineConfig& c) { return c.limits.rate_per_ip != 0; }},
    {"--idle-timeout", [](const EngineConfig& c) { return c.limits.idle_timeout_ns != 0; }},
    {"--proxy-protocol", [](const EngineConfig& c) { return c.limits.proxy_protocol; }},
};
constexpr Setting kUringKnobs[] = {
    {"--uring-*", [](const EngineConfig& c) { return c.ring_entries || c.buf_ring_entries || c.buf_ring_size; }},
};

constexpr SyscallRule kUringCalls[] = {{"io_uring_enter", {}}, {"io_uring_register", {}}, {"io_uring_setup", {}}};
// Only the map commands its loops use on maps they already hold: no program can be
// loaded or attached once serving.
constexpr unsigned kMapCommands[] = {BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM};
constexpr SyscallRule kSockmapCalls[] = {{"bpf", kMapCommands}};

#ifndef ECO_HAVE_SOCKMAP
Status sockmap_not_built(LoopContext&) { return Error{"the sockmap engine is not built (ECO_SOCKMAP=OFF)"}; }
#endif

const EngineInfo kEngines[] = {
    {"sockmap", "the in-kernel sockmap engine",
     "TCP echoed in the kernel by eBPF (needs root or CAP_BPF+CAP_NET_ADMIN); UDP on epoll loops beside it",
     &sockmap_unavailable, kPerByteLimits,
     "the kernel echoes those bytes without user space seeing them, so the limit could not be enforced", kUringKnobs, true, kSockmapCalls,
#ifdef ECO_HAVE_SOCKMAP
     &run_sockmap
#else
     &sockmap_not_built
#endif
    },
    {"uring", "io_uring", "completions: multishot accept/recv, provided buffer rings (Linux 6.1+)", &uring_unavailable,
     {}, "", {}, false, kUringCalls, &run_uring},
    {"epoll", "epoll", "edge-triggered readiness, any Linux", &always_available, {}, "", {}, false, {}, &run_epoll},
};

std::string join_set(std::span<const Setting> settings, const EngineConfig& cfg) {
  std::string flags;
  for (const Setting& s : settings)
    if (s.is_set(cfg)) flags += flags.empty() ? s.flag : std::string(", ") + s.flag;
  return flags;
}

// Why auto passes over `e` for this server ("" when it does not). The settings are
// looked at before availability, so a server that could not use an engine never
// probes it (sockmap's probe loads a BPF program).
std::string passed_over(const EngineInfo& e, const EngineConfig& cfg, const ServeTraits& traits) {
  if (e.tcp_only && !traits.tcp) return "no TCP listener";
  if (std::string flags = refused_flags(e, cfg); !flags.empty()) return fmt::format("it cannot enforce {}", flags);
  if (std::string flags = join_set(e.passed_over_with, cfg); !flags.empty())
    return fmt::format("{} options are set", flags);
  return e.unavailable();
}

}  // namespace

std::span<const EngineInfo> engine_table() { return kEngines; }

const EngineInfo* find_engine(std::string_view name) {
  for (const EngineInfo& e : kEngines)
    if (name == e.name) return &e;
  return nullptr;
}

std::string refused_flags(const EngineInfo& e, const EngineConfig& cfg) { return join_set(e.refuses, cfg); }

Result<const EngineInfo*> choose(const std::string& requested, const EngineConfig& cfg, const ServeTraits& traits,
                                 std::string& note) {
  note.clear();
  if (requested == "auto") {
    std::string skipped;
    for (const EngineInfo& e : kEngines) {
      std::string why = passed_over(e, cfg, traits);
      if (why.empty()) {
        if (!skipped.empty()) note = fmt::format("auto: {}; using {}", skipped, e.title);
        return &e;
      }
      skipped += fmt::format("{}not {} ({})", skipped.empty() ? "" : ", ", e.title, why);
    }
    return Error{fmt::format("auto: no engine can serve here: {}", skipped)};
  }
  const EngineInfo* e = find_engine(requested);
  if (!e) {
    std::string names;
    for (const EngineInfo& row : kEngines) names += fmt::format(", {}", row.name);
    return Error{fmt::format("unknown engine '{}' (choose auto{})", requested, names)};
  }
  if (std::string flags = refused_flags(*e, cfg); !flags.empty())
    return Error{fmt::format("cannot use --engine {} with {}: {}", e->name, flags, e->refuses_why)};
  if (std::string why = e->unavailable(); !why.empty())
    return Error{fmt::format("cannot use --engine {}: {}", e->name, why)};
  return e;
}

}  // namespace eco::engine
