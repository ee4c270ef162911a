#pragma once
// The narrow interface between the server and an I/O engine. An engine is one
// function that runs one event loop on the calling thread over the listeners it is
// given, until its LoopControl says stop (or drain and no connection is left). It owns
// every system call of its connections; the rules it follows are session::ConnRules.
#include <atomic>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.h"
#include "session/counters.h"
#include "session/limits.h"
#include "session/stage.h"
#include "util/fd.h"
#include "util/result.h"

namespace eco::tls {
class ServerContext;
}

namespace eco::session {
class Admission;
}

namespace eco::engine {

struct Listener {
  Fd fd;
  net::Address addr;
  net::Proto proto;
  session::Service service = session::Service::echo;  // tls_echo: a tls:// listener
};

struct EngineConfig {
  uint32_t buffer_size = 64 * 1024;  // per-connection bound on bytes awaiting send-back
  // io_uring knobs (ignored by epoll); 0 means the engine's default.
  uint32_t ring_entries = 0;
  uint32_t buf_ring_entries = 0;
  uint32_t buf_ring_size = 0;
  session::Limits limits;  // caps, timeouts, rates, access, PROXY, UDP guard
};

enum class Phase : int { run = 0, drain = 1, stop = 2 };

// The start-up handshake between the server and its loops. Each loop says when its fds
// exist and its listeners are armed, then waits; the server waits for all of them,
// drops privileges (--user), hardens the process (--seccomp) and opens the gate. So no
// byte is served as root or unfiltered, and READY=1 (/readyz) means serving.
class StartGate {
 public:
  explicit StartGate(unsigned loops) : setting_up_(loops) {}
  // One more loop to wait for (sockmap's UDP loop): called by a loop that has not yet
  // arrived itself, so the count cannot reach zero in between.
  void add() { setting_up_.fetch_add(1, std::memory_order_relaxed); }
  void arrive();      // a loop: set up (or failed)
  void wait_open();   // a loop: returns once the server has opened the gate
  void wait_all();    // the server: returns once every loop has arrived
  void open();        // the server: let the loops serve

 private:
  std::atomic<unsigned> setting_up_;
  std::atomic<bool> open_{false};
};

// Owned by the server, one per loop. The server changes the phase from another
// thread and wakes the loop through `wake` (an eventfd the loop watches).
struct LoopControl {
  Fd wake;
  std::atomic<int> phase{int(Phase::run)};
  Status set(Phase p);  // stores and wakes
  Phase get() const { return Phase(phase.load(std::memory_order_acquire)); }

  StartGate* gate = nullptr;  // shared by all loops; null: no handshake
  // Called by the loop's own thread once set up, and again when it ends (a loop that
  // failed to set up must not keep the server waiting); only the first call arrives.
  // Returns once the gate is open.
  void set_up_done();

 private:
  bool arrived_ = false;
};

struct LoopContext {
  std::vector<Listener> listeners;
  const EngineConfig* config = nullptr;
  session::Counters* counters = nullptr;
  LoopControl* control = nullptr;
  // Shared by every loop; set by the server, never null while running.
  session::Admission* admission = nullptr;
  // The certificates of the tls:// listeners (null: none); shared, reloaded by SIGHUP.
  const tls::ServerContext* tls = nullptr;
  int index = 0;  // thread number, for logs
};

using RunLoop = Status (*)(LoopContext& ctx);

// A setting, as an engine's refusal or preference names it: the flag, and whether the
// configuration sets it.
struct Setting {
  const char* flag;
  bool (*is_set)(const EngineConfig& cfg);
};

// One more system call an engine makes once serving (for --seccomp): any arguments, or
// only the listed values of the first one.
struct SyscallRule {
  const char* name;
  std::span<const unsigned> arg0;  // empty: any
};

// The engine table: everything eco knows about an engine is its row. `auto`,
// --seccomp, --version, --help and the tests read it; nothing else names an engine.
struct EngineInfo {
  const char* name;     // --engine NAME
  const char* title;    // in log lines: "the in-kernel sockmap engine"
  const char* summary;  // one line for --help
  // Why it cannot run on this machine ("" when it can). May probe (load a program).
  std::string (*unavailable)();
  // Limits it cannot enforce: named, it refuses to start with one; auto passes it over.
  std::span<const Setting> refuses;
  const char* refuses_why;  // why, for the error line
  // Other engines' knobs: auto passes it over when one is set (named, they are ignored).
  std::span<const Setting> passed_over_with;
  bool tcp_only;  // its loops serve TCP; the server gives UDP listeners to epoll loops
  std::span<const SyscallRule> syscalls;  // beyond the common allow-list
  RunLoop run;
};

// In the order auto tries them.
std::span<const EngineInfo> engine_table();
// nullptr for a name that is not in the table.
const EngineInfo* find_engine(std::string_view name);
// The flags of `cfg` that `e` refuses, comma-separated ("" when none).
std::string refused_flags(const EngineInfo& e, const EngineConfig& cfg);

// The engine loops. Each is one table row's `run`.
Status run_epoll(LoopContext& ctx);
Status run_uring(LoopContext& ctx);
Status run_sockmap(LoopContext& ctx);

// What the server is asked to serve, as far as the choice of engine depends on it.
struct ServeTraits {
  bool tcp = true;  // some listener is TCP
};

// Picks an engine for `requested` ("auto" or a name in the table). "auto" takes the
// first row that is available, refuses none of the settings, is not passed over for
// another engine's knobs and serves some listener; `note` says in one line which rows
// it passed over and why. A named engine that is unavailable or refuses a setting is
// an error.
Result<const EngineInfo*> choose(const std::string& requested, const EngineConfig& cfg, const ServeTraits& traits,
                                 std::string& note);

}  // namespace eco::engine
