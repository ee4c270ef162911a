#pragma once
// The narrow interface between the server and an I/O engine. An engine is one
// function that runs one event loop on the calling thread over the listeners it is
// given, until its LoopControl says stop (or drain and no connection is left).
// Everything per-connection is the engine's own; the rules it follows live in session/.
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "net/address.h"
#include "session/counters.h"
#include "session/limits.h"
#include "util/fd.h"
#include "util/result.h"

namespace eco::session {
class Admission;
}

namespace eco::engine {

struct Listener {
  Fd fd;
  net::Address addr;
  net::Proto proto;
};

struct EngineConfig {
  uint32_t buffer_size = 64 * 1024;  // per-connection bound on bytes awaiting send-back
  // io_uring knobs (ignored by epoll); 0 means the engine's default.
  uint32_t ring_entries = 0;
  uint32_t buf_ring_entries = 0;
  uint32_t buf_ring_size = 0;
  session::Limits limits;  // issue 7: caps, timeouts, rates, access, PROXY, UDP guard
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
  int index = 0;  // thread number, for logs
};

using RunLoop = Status (*)(LoopContext& ctx);

struct Engine {
  const char* name;
  RunLoop run;
};

// The epoll engine: always available.
Status run_epoll(LoopContext& ctx);
// The io_uring engine (uring.cpp); choose() offers it only when the probe passes.
Status run_uring(LoopContext& ctx);
// The sockmap engine (sockmap.cpp, issue 9) is declared in engine/sockmap.h.

// What the server is asked to serve, as far as the choice of engine depends on it.
// Only "auto" reads it: it skips sockmap where sockmap could not serve as asked.
struct ServeTraits {
  bool tcp = true;  // some listener is TCP (sockmap echoes TCP only)
};

// Picks an engine for `requested` ("auto", "sockmap", "uring", "epoll"). "auto" tries
// sockmap, then io_uring, then epoll; each one it passes over is a fallback, and `note`
// says why in one line. For a named engine a missing feature is an error. An engine
// that cannot honour a configured limit (sockmap: the per-byte ones) is skipped by
// "auto" and refused when named.
Result<Engine> choose(const std::string& requested, const EngineConfig& cfg, const ServeTraits& traits,
                      std::string& note);
std::vector<std::string> engine_names();

}  // namespace eco::engine
