// `eco serve`, step by step: prepare (identity, admission), bind (listeners, engine,
// TLS certificates, metrics port, signals), start the loops, harden (privileges,
// metrics, seccomp, then let the loops serve), supervise (signals, drain, reload, a
// failed loop), report.
#include "server/server.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <thread>

#include <fmt/format.h>

#include "server/listeners.h"
#include "server/metrics.h"
#include "server/privileges.h"
#include "server/seccomp.h"
#include "server/systemd.h"
#include "server/tls_setup.h"
#include "session/admission.h"
#include "util/build_version.h"
#include "util/clock.h"
#include "util/log.h"

namespace eco::server {
namespace {

std::string kernel_release() {
  utsname u{};
  if (uname(&u) != 0) return "unknown";
  return u.release;
}

// One loop thread: its engine, its listeners, its counters (written by it alone).
struct LoopThread {
  engine::LoopControl control;
  engine::LoopContext ctx;
  session::Counters counters;
  engine::RunLoop run = nullptr;
  const char* engine = "";
  Status status;
  // Set (release) after `status` is written; the main thread reads `status` only once it
  // sees this (acquire), since other loops may still be running when one finishes.
  std::atomic<bool> finished{false};
  std::thread thread;
};

class Serve {
 public:
  explicit Serve(const ServeConfig& cfg) : cfg_(cfg) {}
  Result<int> run();

 private:
  Status prepare();
  Status bind();
  Status start_loops();
  Status harden();
  int supervise();
  void report() const;

  LoopThread& add_loop(unsigned t, std::vector<engine::Listener> listeners, const engine::EngineInfo& e);
  Status signals_and_port_file();
  void set_phase(engine::Phase p);
  uint64_t sum(std::atomic<uint64_t> session::Counters::*c) const;
  void on_signal(const signalfd_siginfo& si, int& signals_seen, uint64_t& drain_deadline, int& exit_code);

  const ServeConfig& cfg_;
  std::optional<Identity> identity_;
  std::unique_ptr<session::Admission> admission_;
  unsigned threads_ = 1;
  Bound bound_;
  const engine::EngineInfo* engine_ = nullptr;
  std::unique_ptr<MetricsServer> metrics_;
  std::unique_ptr<tls::ServerContext> tls_;  // null: no tls:// listener
  Fd sigfd_;
  Fd done_;  // a loop thread ended
  std::vector<std::unique_ptr<LoopThread>> loops_;
  std::unique_ptr<engine::StartGate> gate_;
  std::atomic<unsigned> running_{0};
};

Result<int> Serve::run() {
  if (auto s = prepare(); !s) return s.error();
  if (auto s = bind(); !s) return s.error();
  if (auto s = start_loops(); !s) return s.error();
  if (auto s = harden(); !s) return s.error();
  int code = supervise();
  report();
  return code;
}

// What must be known before anything binds: --user/--group (while /etc is readable),
// and one admission policy for every loop (a bad --allow/--deny fails here).
Status Serve::prepare() {
  if (!cfg_.user.empty() || !cfg_.group.empty()) {
    auto id = resolve_identity(cfg_.user, cfg_.group);
    if (!id) return id.error();
    identity_ = *id;
  }
  auto admission = session::Admission::create(cfg_.engine_config.limits);
  if (!admission) return admission.error();
  admission_ = std::move(*admission);
  threads_ = cfg_.threads ? cfg_.threads : std::max(1u, std::thread::hardware_concurrency());
  return {};
}

// The listeners, then the engine (auto's first choice serves TCP only, which is known
// only once the listeners are), then the metrics port: all before privileges drop, and
// any bad address fails before anything is served.
Status Serve::bind() {
  auto bound = bind_listeners(cfg_, threads_);
  if (!bound) return bound.error();
  bound_ = std::move(*bound);
  auto tls = make_tls(cfg_.tls, cfg_.tls_flags_given, bound_.endpoints);
  if (!tls) return tls.error();
  tls_ = std::move(*tls);
  engine::ServeTraits traits;
  traits.tcp = std::any_of(bound_.endpoints.begin(), bound_.endpoints.end(),
                           [](const Endpoint& ep) { return ep.proto == net::Proto::tcp; });
  std::string note;
  auto engine = engine::choose(cfg_.engine, cfg_.engine_config, traits, note);
  if (!engine) return engine.error();
  engine_ = *engine;
  if (!note.empty()) log::info("{}", note);
  if (!cfg_.metrics.empty()) {
    auto m = MetricsServer::bind(cfg_.metrics);
    if (!m) return m.error();
    metrics_ = std::move(*m);
  }
  log::info("eco {} serving with engine {} on {} thread{} (Linux {})", build_version(), engine_->name, threads_,
            threads_ == 1 ? "" : "s", kernel_release());
  for (const Endpoint& ep : bound_.endpoints)
    log::info("Listening on {} {}", ep.scheme(), ep.addr.to_string());
  return signals_and_port_file();
}

// Signals are taken by the main thread alone, through a signalfd; the loops never see
// them. The port file means "bound, and signals are handled": only now, so a SIGTERM
// sent the moment it appears already drains instead of killing the process by default
// action. Connections made from then on wait in the listen queue until the loops run;
// READY=1 says when they do.
Status Serve::signals_and_port_file() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGHUP);  // reloads the TLS certificates; ignored without tls://
  if (pthread_sigmask(SIG_BLOCK, &mask, nullptr) != 0) return sys_error("pthread_sigmask");
  signal(SIGPIPE, SIG_IGN);  // sends use MSG_NOSIGNAL; this covers anything else
  sigfd_.reset(signalfd(-1, &mask, SFD_CLOEXEC));
  if (!sigfd_.valid()) return sys_error("signalfd");
  if (!cfg_.port_file.empty()) {
    uint16_t port = bound_.chosen_port ? bound_.chosen_port : bound_.endpoints.front().addr.port();
    if (auto s = write_port_file(cfg_.port_file, port); !s) return s;
  }
  done_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!done_.valid()) return sys_error("eventfd");
  return {};
}

LoopThread& Serve::add_loop(unsigned t, std::vector<engine::Listener> listeners, const engine::EngineInfo& e) {
  auto l = std::make_unique<LoopThread>();
  l->ctx.listeners = std::move(listeners);
  l->ctx.config = &cfg_.engine_config;
  l->ctx.counters = &l->counters;
  l->ctx.control = &l->control;
  l->ctx.admission = admission_.get();
  l->ctx.tls = tls_.get();
  l->ctx.index = int(t);
  l->run = e.run;
  l->engine = e.name;
  loops_.push_back(std::move(l));
  return *loops_.back();
}

// One loop per thread with the chosen engine; where that engine serves TCP only, the
// thread's UDP listeners get an epoll loop of their own (with its own counters, so each
// counter keeps one writer).
Status Serve::start_loops() {
  const engine::EngineInfo& udp_engine = *engine::find_engine("epoll");
  for (unsigned t = 0; t < threads_; ++t) {
    std::vector<engine::Listener>& mine = bound_.per_thread[t];
    std::vector<engine::Listener> udp;
    if (engine_->tcp_only) {
      auto is_udp = [](const engine::Listener& l) { return l.proto == net::Proto::udp; };
      for (engine::Listener& l : mine)
        if (is_udp(l)) udp.push_back(std::move(l));
      mine.erase(std::remove_if(mine.begin(), mine.end(), [](const engine::Listener& l) { return !l.fd.valid(); }),
                 mine.end());
    }
    if (!mine.empty()) add_loop(t, std::move(mine), *engine_);
    if (!udp.empty()) add_loop(t, std::move(udp), udp_engine);
  }
  for (auto& l : loops_) {
    l->control.wake.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!l->control.wake.valid()) return sys_error("eventfd");
  }
  gate_ = std::make_unique<engine::StartGate>(unsigned(loops_.size()));
  running_ = unsigned(loops_.size());
  for (auto& lp : loops_) {
    LoopThread* l = lp.get();
    l->control.gate = gate_.get();
    l->thread = std::thread([this, l] {
      l->counters.claim();
      l->status = l->run(l->ctx);
      l->control.set_up_done();
      l->finished.store(true, std::memory_order_release);
      running_.fetch_sub(1);
      uint64_t one = 1;
      [[maybe_unused]] ssize_t r = ::write(done_.get(), &one, sizeof one);
    });
  }
  return {};
}

// Every loop has made its fds and armed its listeners (or has already failed) and waits
// at the gate. Privileges go now (the sockmap engine loaded its BPF program while its
// loop set up; setuid() changes every thread, and no loop has served a byte yet), then
// metrics start, then the syscall filter; only then do the loops serve. The port file
// was written as root, like a pid file.
Status Serve::harden() {
  gate_->wait_all();
  Status started;
  if (identity_) {
    started = drop_privileges(*identity_);
    if (started)
      log::info("Running as user {} (uid {}), group {} (gid {})", identity_->user, identity_->uid, identity_->group,
                identity_->gid);
  }
  if (started && metrics_) {
    MetricsSource src;
    for (auto& l : loops_) src.counters.push_back(&l->counters);
    src.engine = engine_->name;
    started = metrics_->start(std::move(src));
  }
  if (started && cfg_.seccomp) {
    started = install_seccomp(*engine_);
    if (started) log::info("seccomp: system call allow-list installed");
  }
  if (started) run_seccomp_probe();  // test hook (ECO_TEST_SECCOMP_PROBE); no-op otherwise
  if (!started) set_phase(engine::Phase::stop);  // before the gate opens: no loop serves
  gate_->open();
  if (!started) {
    for (auto& l : loops_) l->thread.join();
    return started;
  }
  systemd::notify(fmt::format("READY=1\nSTATUS=serving with engine {} on {} thread(s)", engine_->name, threads_));
  return {};
}

// Until every loop has ended: the first SIGINT/SIGTERM drains (bounded by
// --drain-timeout), a second stops at once, a loop that fails stops the rest; the
// systemd watchdog is fed meanwhile.
int Serve::supervise() {
  const uint64_t watchdog_ns = systemd::watchdog_ping_interval_ns();
  uint64_t next_watchdog = watchdog_ns ? now_ns() + watchdog_ns : 0;
  int exit_code = 0;
  int signals_seen = 0;
  uint64_t drain_deadline = 0;
  while (running_.load() > 0) {
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
    pollfd fds[2] = {{sigfd_.get(), POLLIN, 0}, {done_.get(), POLLIN, 0}};
    int n = ::poll(fds, 2, timeout);
    if (n < 0 && errno != EINTR) {
      log::error("poll: {}", std::strerror(errno));
      set_phase(engine::Phase::stop);
      exit_code = 1;
      break;
    }
    if (n > 0 && (fds[1].revents & POLLIN)) {
      uint64_t v;
      [[maybe_unused]] ssize_t r = ::read(done_.get(), &v, sizeof v);
      for (auto& l : loops_) {
        // An engine failed: the server cannot go on as asked.
        if (l->finished.load(std::memory_order_acquire) && !l->status) {
          log::error("engine {} failed: {}", l->engine, l->status.error().message);
          set_phase(engine::Phase::stop);
          exit_code = 1;
        }
      }
    }
    if (n > 0 && (fds[0].revents & POLLIN)) {
      signalfd_siginfo si{};
      if (::read(sigfd_.get(), &si, sizeof si) == sizeof si) on_signal(si, signals_seen, drain_deadline, exit_code);
    }
    if (drain_deadline && now_ns() >= drain_deadline) {
      log::warn("drain timeout: closing {} remaining connection(s)", sum(&session::Counters::active));
      set_phase(engine::Phase::stop);
      drain_deadline = 0;
    }
  }
  for (auto& l : loops_) l->thread.join();
  if (metrics_) metrics_->stop();
  return exit_code;
}

void Serve::on_signal(const signalfd_siginfo& si, int& signals_seen, uint64_t& drain_deadline, int& exit_code) {
  if (si.ssi_signo == SIGHUP) {
    if (tls_) reload_tls(*tls_);
    else log::info("SIGHUP: nothing to reload (no tls:// listener)");
    return;
  }
  const char* name = si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM";
  if (++signals_seen == 1) {
    // /readyz says 503 before the log line says draining: whoever reads the line and
    // then asks /readyz sees the drain.
    if (metrics_) metrics_->set_draining();
    uint64_t active = sum(&session::Counters::active);
    log::info("{}: no longer accepting; draining {} connection{} (up to {:g} s)", name, active, active == 1 ? "" : "s",
              cfg_.drain_timeout_s);
    systemd::notify("STOPPING=1");
    set_phase(engine::Phase::drain);
    drain_deadline = now_ns() + uint64_t(std::llround(cfg_.drain_timeout_s * 1e9));
    return;
  }
  log::warn("second {}: exiting now", name);
  set_phase(engine::Phase::stop);
  exit_code = 128 + int(si.ssi_signo);
  drain_deadline = 0;
}

// The exit summary; policy rejections by reason, only the non-zero ones:
// "; refused: denied=2 max_conns=1".
void Serve::report() const {
  session::Counters t;
  for (const auto& l : loops_) add_into(t, l->counters);
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  uint64_t cut = get(t.cut_at_stop);
  std::string refused;
  for (size_t r = 0; r < session::kRejectReasons; ++r) {
    if (uint64_t n = get(t.rejected[r]))
      refused += fmt::format("{}{}={}", refused.empty() ? "; refused: " : " ", session::to_string(session::Reject(r)), n);
  }
  log::info("Served {} connection(s), echoed {} TCP bytes and {} UDP datagram(s){}{}{}", get(t.accepted),
            get(t.tcp_bytes), get(t.udp_datagrams), cut ? fmt::format("; {} connection(s) cut at shutdown", cut) : "",
            refused, tls_ ? tls_summary(t) : "");
}

void Serve::set_phase(engine::Phase p) {
  for (auto& l : loops_) {
    if (auto s = l->control.set(p); !s) log::error("{}", s.error().message);
  }
}

uint64_t Serve::sum(std::atomic<uint64_t> session::Counters::*c) const {
  uint64_t total = 0;
  for (const auto& l : loops_) total += (l->counters.*c).load(std::memory_order_relaxed);
  return total;
}

}  // namespace

Result<int> serve(const ServeConfig& cfg) {
  Serve s(cfg);
  return s.run();
}

}  // namespace eco::server
