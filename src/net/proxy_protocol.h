#pragma once
// PROXY protocol v1 (text) and v2 (binary) header parsing, as sent by HAProxy and
// other L4 balancers so the server learns the real client address. Pure and
// incremental: call with the bytes received so far; strict (anything off the spec is
// invalid, never guessed at) and bounded (a header longer than kMaxHeader is invalid).
#include <cstddef>
#include <cstdint>
#include <string>

#include "net/address.h"

namespace eco::net {

struct ProxyHeader {
  bool local = false;   // v2 LOCAL / v1 UNKNOWN: no client address (health check)
  Address source;       // the real client, when !local
  Address destination;
  size_t length = 0;    // bytes of the header, to skip before echoing
};

enum class ProxyParse { need_more, done, invalid };

struct ProxyResult {
  ProxyParse state = ProxyParse::need_more;
  std::string error;  // why, when invalid
};

inline constexpr size_t kProxyV1MaxLine = 107;  // the spec's longest v1 line, CRLF included
inline constexpr size_t kProxyMaxHeader = 16 + 1024;  // v2 header + addresses + a few TLVs

ProxyResult parse_proxy_header(const uint8_t* data, size_t len, ProxyHeader& out);

}  // namespace eco::net
