#include "server/listeners.h"

#include <fcntl.h>

#include <cstdio>

#include <fmt/format.h>

#include "net/socket.h"
#include "server/systemd.h"
#include "util/log.h"

namespace eco::server {
namespace {

Result<std::vector<Endpoint>> resolve_endpoints(const ServeConfig& cfg) {
  std::vector<std::string> specs = cfg.listen;
  if (specs.empty()) specs.push_back(fmt::format("{}:{}", net::kDefaultHost, net::kDefaultPort));
  std::vector<Endpoint> out;
  for (const std::string& spec : specs) {
    auto hp = net::parse_host_port(spec, true);
    if (!hp) return hp.error();
    std::vector<net::Proto> protos{hp->has_scheme ? hp->proto : net::Proto::tcp};
    if (cfg.udp && protos[0] == net::Proto::tcp && !hp->tls) protos.push_back(net::Proto::udp);
    for (net::Proto proto : protos) {
      auto addrs = net::resolve(*hp, proto, true);
      if (!addrs) return addrs.error();
      for (const net::Address& a : *addrs) out.push_back({a, proto, hp->tls, hp->host});
    }
  }
  return out;
}

// Port 0 picks one free port, shared by every port-0 endpoint, so a single --port-file
// number finds them all. Because a second process could silently join an SO_REUSEPORT
// group, each address is first test-bound without the option.
Status bind_all(Bound& b, unsigned threads) {
  b.per_thread.resize(threads);
  net::ListenOptions opts;
  opts.reuseport = threads > 1;
  for (Endpoint& ep : b.endpoints) {
    bool wants_any_port = ep.addr.port() == 0;
    if (wants_any_port && b.chosen_port) ep.addr.set_port(b.chosen_port);
    if (ep.addr.port() != 0) {
      if (auto s = net::check_address_free(ep.addr, ep.proto); !s) return s;
    }
    for (unsigned t = 0; t < threads; ++t) {
      auto fd = net::listen_socket(ep.addr, ep.proto, opts);
      if (!fd) return fd.error();
      // TLS: the echo that follows the server's session tickets would wait, under Nagle,
      // for the client's delayed ACK (~40 ms a connection). Accepted sockets inherit it.
      if (ep.tls) {
        if (auto s = net::set_nodelay(fd->get()); !s) return s;
      }
      if (ep.addr.port() == 0) {
        auto local = net::local_address(fd->get());
        if (!local) return local.error();
        ep.addr.set_port(local->port());
      }
      b.per_thread[t].push_back({std::move(*fd), ep.addr, ep.proto,
                                 ep.tls ? session::Service::tls_echo : session::Service::echo});
    }
    if (wants_any_port && !b.chosen_port) b.chosen_port = ep.addr.port();
  }
  return {};
}

// Socket activation: systemd bound the sockets; every thread serves each of them
// (thread 0 the fd itself, the others a dup), so the threads share its accept queue.
Status share_inherited(Bound& b, std::vector<systemd::InheritedSocket>& socks, unsigned threads) {
  b.per_thread.resize(threads);
  for (auto& s : socks) {
    b.endpoints.push_back({s.addr, s.proto, false, ""});
    for (unsigned t = 1; t < threads; ++t) {
      Fd dup(fcntl(s.fd.get(), F_DUPFD_CLOEXEC, 0));
      if (!dup.valid()) return sys_error("fcntl(F_DUPFD_CLOEXEC)");
      b.per_thread[t].push_back({std::move(dup), s.addr, s.proto});
    }
    b.per_thread[0].push_back({std::move(s.fd), s.addr, s.proto});
  }
  return {};
}

}  // namespace

Result<Bound> bind_listeners(const ServeConfig& cfg, unsigned threads) {
  auto inherited = systemd::inherited_sockets();
  if (!inherited) return inherited.error();
  Bound b;
  if (!inherited->empty()) {
    if (!cfg.listen.empty() || cfg.udp)
      log::warn("socket activation: serving the {} socket(s) systemd passed; --listen/--udp are ignored",
                inherited->size());
    if (auto s = share_inherited(b, *inherited, threads); !s) return s.error();
    return b;
  }
  auto eps = resolve_endpoints(cfg);
  if (!eps) return eps.error();
  b.endpoints = std::move(*eps);
  if (auto s = bind_all(b, threads); !s) return s.error();
  return b;
}

Status write_port_file(const std::string& path, uint16_t port) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return sys_error(fmt::format("cannot write port file '{}'", tmp));
  bool ok = std::fprintf(f, "%u\n", unsigned(port)) > 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return sys_error(fmt::format("cannot write port file '{}'", tmp));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return sys_error(fmt::format("cannot write port file '{}'", path));
  return {};
}

}  // namespace eco::server
