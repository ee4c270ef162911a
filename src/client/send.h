#pragma once
// `eco send`: the tutorial's client done right. Sends a message, a file or stdin,
// reads the whole echo back while still sending (so no size can deadlock on full
// socket buffers), and verifies every byte.
#include <string>

#include "tls/client_context.h"

namespace eco::client {

inline constexpr const char* kTutorialMessage = "Hello world! This is an echo server made with python.";

struct SendOptions {
  std::string target = "127.0.0.1:5346";
  std::string message = kTutorialMessage;
  std::string file;  // "" none, "-" stdin
  bool raw = false;  // write the echo to stdout unchanged
  bool udp = false;
  double timeout_s = 10.0;  // longest wait without progress
  tls::ClientSettings tls;  // for a tls:// target (--tls-* flags)
  bool tls_flags = false;   // some --tls-* flag was given (an error without tls://)
};

// Returns the exit code (see util/exit_codes.h); messages go to stderr/stdout.
int send(const SendOptions& opts);

}  // namespace eco::client
