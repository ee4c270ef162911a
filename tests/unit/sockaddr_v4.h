#pragma once
// An IPv4 socket address for the unit tests of per-source rules.
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>

inline sockaddr_in v4(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}
