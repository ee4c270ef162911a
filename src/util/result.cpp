#include "util/result.h"

#include <cstring>

namespace eco {

Error sys_error(std::string what, int err) {
  return Error{std::move(what) + ": " + std::strerror(err), err};
}

}  // namespace eco
