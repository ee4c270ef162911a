#pragma once
// A tiny blocking HTTP/1.0 GET over loopback for the --metrics tests: enough to read
// a status line, headers and body from eco's metrics endpoint. Bounded in time.
#include <string>

#include "harness.h"

namespace eco::itest {

struct HttpReply {
  int status = 0;  // 0: no reply
  std::string headers, body;
};

inline HttpReply http_get(uint16_t port, const std::string& path, int timeout_ms = 5000) {
  HttpReply r;
  Fd fd = tcp_connect("127.0.0.1", port, timeout_ms);
  if (!fd.valid()) return r;
  if (!send_all(fd.get(), "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", timeout_ms)) return r;
  bool eof = false;
  std::string text = read_to_eof(fd.get(), timeout_ms, eof);
  size_t sp = text.find(' ');
  size_t end = text.find("\r\n\r\n");
  if (text.rfind("HTTP/1.", 0) != 0 || sp == std::string::npos || end == std::string::npos) return r;
  r.status = std::atoi(text.c_str() + sp + 1);
  r.headers = text.substr(0, end);
  r.body = text.substr(end + 4);
  return r;
}

// The metrics port eco logged at start-up ("Metrics on http://127.0.0.1:PORT/metrics"), or 0.
inline uint16_t metrics_port(const Server& s) {
  std::string log = s.log();
  size_t at = log.find("Metrics on http://");
  if (at == std::string::npos) return 0;
  size_t colon = log.find(':', at + 18);
  size_t slash = log.find("/metrics", at);
  if (colon == std::string::npos || slash == std::string::npos || slash < colon) return 0;
  return uint16_t(std::stoul(log.substr(colon + 1, slash - colon - 1)));
}

}  // namespace eco::itest
