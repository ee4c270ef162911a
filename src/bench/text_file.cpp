#include "bench/text_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace eco::bench {

Result<TextFile> TextFile::create(const std::string& path, std::string what) {
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return sys_error("cannot create " + what + " " + path);
  return TextFile(std::move(fd), path, std::move(what));
}

Status TextFile::write(std::string_view text) {
  if (!fd_.valid()) return Error{what_ + " " + path_ + " is closed"};
  while (!text.empty()) {
    ssize_t n = ::write(fd_.get(), text.data(), text.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("cannot write " + what_ + " " + path_);
    }
    text.remove_prefix(size_t(n));
  }
  return {};
}

Status TextFile::close() {
  if (!fd_.valid()) return {};
  int fd = fd_.release();
  if (::close(fd) != 0) return sys_error("cannot close " + what_ + " " + path_);
  return {};
}

}  // namespace eco::bench
