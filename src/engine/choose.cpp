#include <fmt/format.h>

#include "engine/engine.h"
#include "engine/uring_probe.h"

namespace eco::engine {

std::vector<std::string> engine_names() { return {"auto", "epoll", "uring"}; }

Result<Engine> choose(const std::string& requested, std::string& note) {
  note.clear();
  if (requested == "epoll") return Engine{"epoll", &run_epoll};
  if (requested == "uring" || requested == "auto") {
    const UringFeatures& f = uring_features();
    if (f.available) return Engine{"uring", &run_uring};
    if (requested == "uring") return Error{fmt::format("cannot use --engine uring: {}", f.reason)};
    note = fmt::format("io_uring unavailable ({}); using the epoll engine", f.reason);
    return Engine{"epoll", &run_epoll};
  }
  return Error{fmt::format("unknown engine '{}' (choose auto, uring or epoll)", requested)};
}

}  // namespace eco::engine
