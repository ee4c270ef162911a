#include "server/server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "net/socket.h"
#include "server/metrics.h"
#include "server/privileges.h"
#include "server/seccomp.h"
#include "server/systemd.h"
#include "session/admission.h"
#include "util/clock.h"
#include "util/log.h"

namespace eco::server {
namespace {

struct Endpoint {
  net::Address addr;
  net::Proto proto;
};

Result<std::vector<Endpoint>> resolve_endpoints(const ServeConfig& cfg) {
  std::vector<std::string> specs = cfg.listen;
  if (specs.empty()) specs.push_back(fmt::format("{}:{}", net::kDefaultHost, net::kDefaultPort));
  std::vector<Endpoint> out;
  for (const std::string& spec : specs) {
    auto hp = net::parse_host_port(spec);
    if (!hp) return hp.error();
    std::vector<net::Proto> protos{hp->has_scheme ? hp->proto : net::Proto::tcp};
    if (cfg.udp && protos[0] == net::Proto::tcp) protos.push_back(net::Proto::udp);
    for (net::Proto proto : protos) {
      auto addrs = net::resolve(*hp, proto, true);
      if (!addrs) return addrs.error();
      for (const net::Address& a : *addrs) out.push_back({a, proto});
    }
  }
  return out;
}

// Binds every endpoint once per thread (SO_REUSEPORT shards connections across the
// threads' sockets in the kernel, so threads share nothing). Port 0 picks one free
// port, shared by every port-0 endpoint, so a single --port-file number finds them all.
Result<std::vector<std::vector<engine::Listener>>> bind_all(std::vector<Endpoint>& eps, unsigned threads,
                                                             uint16_t& chosen_port) {
  std::vector<std::vector<engine::Listener>> per_thread(threads);
  net::ListenOptions opts;
  opts.reuseport = threads > 1;
  chosen_port = 0;
  for (Endpoint& ep : eps) {
    bool wants_any_port = ep.addr.port() == 0;
    if (wants_any_port && chosen_port) ep.addr.set_port(chosen_port);
    if (ep.addr.port() != 0) {
      if (auto s = net::check_address_free(ep.addr, ep.proto); !s) return s.error();
    }
    for (unsigned t = 0; t < threads; ++t) {
      auto fd = net::listen_socket(ep.addr, ep.proto, opts);
      if (!fd) return fd.error();
      if (ep.addr.port() == 0) {
        auto local = net::local_address(fd->get());
        if (!local) return local.error();
        ep.addr.set_port(local->port());
      }
      per_thread[t].push_back({std::move(*fd), ep.addr, ep.proto});
    }
    if (wants_any_port && !chosen_port) chosen_port = ep.addr.port();
  }
  return per_thread;
}

// Socket activation: systemd bound the sockets; every thread serves each of them
// (thread 0 the fd itself, the others a dup), so the threads share its accept queue.
Result<std::vector<std::vector<engine::Listener>>> share_inherited(std::vector<systemd::InheritedSocket>& socks,
                                                                    unsigned threads, std::vector<Endpoint>& eps) {
  std::vector<std::vector<engine::Listener>> per_thread(threads);
  for (auto& s : socks) {
    eps.push_back({s.addr, s.proto});
    for (unsigned t = 1; t < threads; ++t) {
      Fd dup(fcntl(s.fd.get(), F_DUPFD_CLOEXEC, 0));
      if (!dup.valid()) return sys_error("fcntl(F_DUPFD_CLOEXEC)");
      per_thread[t].push_back({std::move(dup), s.addr, s.proto});
    }
    per_thread[0].push_back({std::move(s.fd), s.addr, s.proto});
  }
  return per_thread;
}

Status write_port_file(const std::string& path, uint16_t port) {
  // Written whole under a temporary name, then renamed: a reader never sees half a file.
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return sys_error(fmt::format("cannot write port file '{}'", tmp));
  bool ok = std::fprintf(f, "%u\n", unsigned(port)) > 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return sys_error(fmt::format("cannot write port file '{}'", tmp));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return sys_error(fmt::format("cannot write port file '{}'", path));
  return {};
}

std::string kernel_release() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

struct LoopThread {
  engine::LoopControl control;
  engine::LoopContext ctx;
  session::Counters counters;
  Status status;
  // Set (release) after `status` is written; the main thread reads `status` only once it
  // sees this (acquire), since other loops may still be running when one finishes.
  std::atomic<bool> finished{false};
  std::thread thread;
};

uint64_t sum(const std::vector<std::unique_ptr<LoopThread>>& loops, std::atomic<uint64_t> session::Counters::*c) {
  uint64_t total = 0;
  for (const auto& l : loops) total += (l->counters.*c).load(std::memory_order_relaxed);
  return total;
}

void set_phase(std::vector<std::unique_ptr<LoopThread>>& loops, engine::Phase p) {
  for (auto& l : loops) {
    if (auto s = l->control.set(p); !s) log::error("{}", s.error().message);
  }
}

}  // namespace

Result<int> serve(const ServeConfig& cfg) {
  // --user/--group are looked up now (while /etc is readable, before anything binds).
  std::optional<Identity> identity;
  if (!cfg.user.empty() || !cfg.group.empty()) {
    auto id = resolve_identity(cfg.user, cfg.group);
    if (!id) return id.error();
    identity = *id;
  }
  // One admission policy for every loop (global and per-source counts are shared);
  // built before binding so a bad --allow/--deny fails before anything listens.
  auto admission = session::Admission::create(cfg.engine_config.limits);
  if (!admission) return admission.error();

  unsigned threads = cfg.threads ? cfg.threads : std::max(1u, std::thread::hardware_concurrency());
  uint16_t chosen_port = 0;
  auto inherited = systemd::inherited_sockets();
  if (!inherited) return inherited.error();
  Result<std::vector<Endpoint>> eps = std::vector<Endpoint>{};
  Result<std::vector<std::vector<engine::Listener>>> bound = Error{};
  if (!inherited->empty()) {
    if (!cfg.listen.empty() || cfg.udp)
      log::warn("socket activation: serving the {} socket(s) systemd passed; --listen/--udp are ignored",
                inherited->size());
    bound = share_inherited(*inherited, threads, *eps);
  } else {
    eps = resolve_endpoints(cfg);
    if (!eps) return eps.error();
    bound = bind_all(*eps, threads, chosen_port);
  }
  if (!bound) return bound.error();
  // The engine is chosen once the listeners are known: auto's first choice, the
  // in-kernel echo, serves TCP only.
  engine::ServeTraits traits;
  traits.tcp = std::any_of((*bound)[0].begin(), (*bound)[0].end(),
                           [](const engine::Listener& l) { return l.proto == net::Proto::tcp; });
  std::string note;
  auto engine = engine::choose(cfg.engine, cfg.engine_config, traits, note);
  if (!engine) return engine.error();
  if (!note.empty()) log::info("{}", note);
  // The metrics port binds with the listeners: before privileges drop, and a bad
  // address fails before anything is served.
  std::unique_ptr<MetricsServer> metrics;
  if (!cfg.metrics.empty()) {
    auto m = MetricsServer::bind(cfg.metrics);
    if (!m) return m.error();
    metrics = std::move(*m);
  }

  log::info("eco {} serving with engine {} on {} thread{} (Linux {})", ECO_VERSION, engine->name, threads,
            threads == 1 ? "" : "s", kernel_release());
  for (const Endpoint& ep : *eps) log::info("Listening on {} {}", net::proto_name(ep.proto), ep.addr.to_string());

  // Signals are taken by this thread alone, through a signalfd; the loops never see them.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) return sys_error("pthread_sigmask");
  signal(SIGPIPE, SIG_IGN);  // sends use MSG_NOSIGNAL; this covers anything else
  Fd sigfd(signalfd(-1, &mask, SFD_CLOEXEC));
  if (!sigfd.valid()) return sys_error("signalfd");
  // The port file means "bound, and signals are handled": only now, so a SIGTERM sent
  // the moment it appears already drains instead of killing the process by default
  // action. Connections made from then on wait in the listen queue until the loops run;
  // READY=1 below says when they do.
  if (!cfg.port_file.empty()) {
    uint16_t port = chosen_port ? chosen_port : eps->front().addr.port();
    if (auto s = write_port_file(cfg.port_file, port); !s) return s.error();
  }
  Fd done(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!done.valid()) return sys_error("eventfd");

  std::vector<std::unique_ptr<LoopThread>> loops;
  for (unsigned t = 0; t < threads; ++t) {
    auto l = std::make_unique<LoopThread>();
    l->control.wake.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!l->control.wake.valid()) return sys_error("eventfd");
    l->ctx.listeners = std::move((*bound)[t]);
    l->ctx.config = &cfg.engine_config;
    l->ctx.counters = &l->counters;
    l->ctx.control = &l->control;
    l->ctx.admission = admission->get();
    l->ctx.index = int(t);
    loops.push_back(std::move(l));
  }
  std::atomic<unsigned> running{threads};
  engine::StartGate gate(threads);
  for (auto& lp : loops) {
    LoopThread* l = lp.get();
    l->control.gate = &gate;
    l->thread = std::thread([l, &engine, &running, &done] {
      l->status = engine->run(l->ctx);
      l->control.set_up_done();
      l->finished.store(true, std::memory_order_release);
      running.fetch_sub(1);
      uint64_t one = 1;
      [[maybe_unused]] ssize_t r = ::write(done.get(), &one, sizeof one);
    });
  }

  // Every loop has made its fds and armed its listeners (or has already failed); they
  // wait for the gate to open below before serving.
  gate.wait_all();

  // Start-up is over (sockets, threads, engines): privileges go, then metrics start,
  // then the syscall filter. Privileges go only now because the sockmap engine loads its
  // BPF program as its loop sets up; setuid() changes every thread (glibc), and no loop
  // has served a byte yet. The port file was written as root, like a pid file.
  Status started;
  if (identity) {
    started = drop_privileges(*identity);
    if (started)
      log::info("Running as user {} (uid {}), group {} (gid {})", identity->user, identity->uid, identity->group,
                identity->gid);
  }
  if (started && metrics) {
    MetricsSource src;
    for (auto& l : loops) src.counters.push_back(&l->counters);
    src.engine = engine->name;
    started = metrics->start(std::move(src));
  }
  if (started && cfg.seccomp) {
    started = install_seccomp(engine->name);
    if (started) log::info("seccomp: system call allow-list installed");
  }
  if (started) run_seccomp_probe();  // test hook (ECO_TEST_SECCOMP_PROBE); no-op otherwise
  if (!started) set_phase(loops, engine::Phase::stop);  // before the gate opens: no loop serves
  gate.open();
  if (!started) {
    for (auto& l : loops) l->thread.join();
    return started.error();
  }

  systemd::notify(fmt::format("READY=1\nSTATUS=serving with engine {} on {} thread(s)", engine->name, threads));
  const uint64_t watchdog_ns = systemd::watchdog_ping_interval_ns();
  uint64_t next_watchdog = watchdog_ns ? now_ns() + watchdog_ns : 0;

  int exit_code = 0;
  int signals_seen = 0;
  uint64_t drain_deadline = 0;
  while (running.load() > 0) {
    int timeout = -1;
    if (drain_deadline) {
      uint64_t now = now_ns();
      timeout = drain_deadline > now ? int((drain_deadline - now) / 1'000'000 + 1) : 0;
    }
    if (next_watchdog) {
      uint64_t now = now_ns();
      if (now >= next_watchdog) {
        systemd::notify("WATCHDOG=1");
        next_watchdog = now + watchdog_ns;
      }
      int until = int((next_watchdog - now) / 1'000'000 + 1);
      timeout = timeout < 0 ? until : std::min(timeout, until);
    }
    pollfd fds[2] = {{sigfd.get(), POLLIN, 0}, {done.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      log::error("poll: {}", std::strerror(errno));
      set_phase(loops, engine::Phase::stop);
      exit_code = 1;
      break;
    }
    if (n > 0 && (fds[1].revents & POLLIN)) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(done.get(), &v, sizeof v);
      for (auto& l : loops) {
        // An engine failed: the server cannot go on as asked.
        if (l->finished.load(std::memory_order_acquire) && !l->status) {
          log::error("engine {} failed: {}", engine->name, l->status.error().message);
          set_phase(loops, engine::Phase::stop);
          exit_code = 1;
        }
      }
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si{};
      if (::read(sigfd.get(), &si, sizeof si) == sizeof si) {
        const char* name = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
        if (++signals_seen == 1) {
          uint64_t active = sum(loops, &session::Counters::active);
          log::info("{}: no longer accepting; draining {} connection{} (up to {:g} s)", name, active,
                    active == 1 ? "" : "s", cfg.drain_timeout_s);
          systemd::notify("STOPPING=1");
          if (metrics) metrics->set_draining();  // /readyz: 503 from now on
          set_phase(loops, engine::Phase::drain);
          drain_deadline = now_ns() + uint64_t(std::llround(cfg.drain_timeout_s * 1e9));
        } else {
          log::warn("second {}: exiting now", name);
          set_phase(loops, engine::Phase::stop);
          exit_code = 128 + int(si.ssi_signo);
          drain_deadline = 0;
        }
      }
    }
    if (drain_deadline && now_ns() >= drain_deadline) {
      log::warn("drain timeout: closing {} remaining connection(s)", sum(loops, &session::Counters::active));
      set_phase(loops, engine::Phase::stop);
      drain_deadline = 0;
    }
  }
  for (auto& l : loops) l->thread.join();
  if (metrics) metrics->stop();

  uint64_t cut = sum(loops, &session::Counters::cut_at_stop);
  // Policy rejections by reason, only the non-zero ones: "; refused: denied=2 max_conns=1".
  std::string refused;
  for (size_t r = 0; r < session::kRejectReasons; ++r) {
    uint64_t n = 0;
    for (const auto& l : loops) n += l->counters.rejected[r].load(std::memory_order_relaxed);
    if (n) refused += fmt::format("{}{}={}", refused.empty() ? "; refused: " : " ", session::to_string(session::Reject(r)), n);
  }
  log::info("Served {} connection(s), echoed {} TCP bytes and {} UDP datagram(s){}{}",
            sum(loops, &session::Counters::accepted), sum(loops, &session::Counters::tcp_bytes),
            sum(loops, &session::Counters::udp_datagrams),
            cut ? fmt::format("; {} connection(s) cut at shutdown", cut) : "", refused);
  return exit_code;
}

}  // namespace eco::server
