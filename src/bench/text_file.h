#pragma once
// A text file bench writes as a run goes (--hist, --csv): created at the start, each
// write checked, and a failed close reported (a full disk can surface only there).
// Not for the hot path: written from the reporting thread, once per interval.
#include <string>
#include <string_view>

#include "util/fd.h"
#include "util/result.h"

namespace eco::bench {

class TextFile {
 public:
  // `what` names the file in errors: "cannot create histogram log x.hlog: ...".
  static Result<TextFile> create(const std::string& path, std::string what);
  Status write(std::string_view text);
  Status close();

 private:
  TextFile(Fd fd, std::string path, std::string what) : fd_(std::move(fd)), path_(std::move(path)), what_(std::move(what)) {}

  Fd fd_;
  std::string path_;
  std::string what_;
};

}  // namespace eco::bench
