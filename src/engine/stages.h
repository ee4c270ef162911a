#pragma once
// The protocol stages of one loop thread (session/stage.h), made once per loop for the
// kinds of listener the server has and registered with the loop's ConnRules. Both
// user-space engines hold one, so epoll and io_uring serve the same stages.
#include <optional>

#include "engine/engine.h"
#include "session/conn_rules.h"
#include "session/tls_stage.h"

namespace eco::engine {

class LoopStages {
 public:
  LoopStages(const LoopContext& ctx, session::ConnRules& rules) {
    if (ctx.tls) {
      tls_.emplace(*ctx.tls, *ctx.counters);
      rules.set_stage(session::Service::tls_echo, &*tls_);
    }
  }

 private:
  std::optional<session::TlsStages> tls_;
};

}  // namespace eco::engine
