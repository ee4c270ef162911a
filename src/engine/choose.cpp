#include "engine/engine.h"

#include <fmt/format.h>

namespace eco::engine {

std::vector<std::string> engine_names() { return {"auto", "epoll"}; }

Result<Engine> choose(const std::string& requested, std::string& note) {
  note.clear();
  if (requested == "epoll" || requested == "auto") return Engine{"epoll", &run_epoll};
  return Error{fmt::format("unknown engine '{}' (choose auto or epoll)", requested)};
}

}  // namespace eco::engine
