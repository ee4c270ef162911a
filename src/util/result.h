#pragma once
// Errors are values with a message (as in redis' anet.c): a failed call becomes an
// Error naming what failed and why; the CLI prints it as one line.
#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace eco {

struct Error {
  std::string message;
  int code = 0;  // errno where one applies, else 0
};

// Builds "what: strerror(err)".
Error sys_error(std::string what, int err = errno);

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error e) : v_(std::move(e)) {}
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error e) : err_(std::move(e)), failed_(true) {}
  bool ok() const { return !failed_; }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool failed_ = false;
};

}  // namespace eco
