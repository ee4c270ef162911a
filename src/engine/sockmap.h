#pragma once
// The sockmap engine (issue 9): TCP echoed in the kernel by an eBPF sk_skb verdict
// program; user space accepts, watches each connection's life and takes over any
// connection whose peer stops reading. See sockmap.cpp and docs/engines.md.
#include "engine/engine.h"

namespace eco::engine {

Status run_sockmap(LoopContext& ctx);

}  // namespace eco::engine
