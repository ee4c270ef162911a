#include "server/tls_setup.h"

#include <algorithm>

#include <fmt/format.h>

#include "tls/cert.h"
#include "util/log.h"

namespace eco::server {

Result<std::unique_ptr<tls::ServerContext>> make_tls(const tls::ServerSettings& settings, bool flags_given,
                                                     const std::vector<Endpoint>& endpoints) {
  bool any = std::any_of(endpoints.begin(), endpoints.end(), [](const Endpoint& e) { return e.tls; });
  if (!any) {
    if (flags_given) return Error{"the --tls-* server options need a tls:// listener (--listen tls://HOST:PORT)"};
    return std::unique_ptr<tls::ServerContext>{};
  }
  tls::ServerSettings s = settings;
  for (const Endpoint& e : endpoints)
    if (e.tls && !e.host.empty() && std::find(s.ephemeral_hosts.begin(), s.ephemeral_hosts.end(), e.host) ==
                                         s.ephemeral_hosts.end())
      s.ephemeral_hosts.push_back(e.host);
  auto ctx = tls::ServerContext::create(std::move(s));
  if (!ctx) return ctx.error();
  auto cfg = (*ctx)->current();
  for (const tls::Credentials& c : cfg->credentials()) {
    if (cfg->ephemeral())
      log::info("TLS: ephemeral self-signed {} certificate for {}, SHA-256 fingerprint {}", c.key_type,
                fmt::join(c.names, ", "), c.fingerprint);
    else
      log::info("TLS: certificate {} for {} ({}), SHA-256 fingerprint {}", c.cert_file, fmt::join(c.names, ", "),
                c.key_type, c.fingerprint);
  }
  if (cfg->ephemeral() && !settings.write_cert.empty())
    log::info("TLS: wrote the certificate to {} (clients: --tls-ca {})", settings.write_cert, settings.write_cert);
  return std::move(*ctx);
}

void reload_tls(tls::ServerContext& ctx) {
  if (auto s = ctx.reload(); !s) {
    log::error("SIGHUP: TLS reload failed, keeping the current certificates: {}", s.error().message);
    return;
  }
  auto cfg = ctx.current();
  for (const tls::Credentials& c : cfg->credentials())
    log::info("SIGHUP: TLS certificate for {} reloaded{}{}, SHA-256 fingerprint {}", fmt::join(c.names, ", "),
              c.cert_file.empty() ? "" : " from ", c.cert_file, c.fingerprint);
}

std::string tls_summary(const session::Counters& t) {
  auto get = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  uint64_t full = get(t.tls_full), resumed = get(t.tls_resumed), bytes = get(t.tls_bytes);
  uint64_t failed = 0;
  std::string reasons;
  for (int r = 0; r < tls::kReasonCount; ++r) {
    uint64_t n = get(t.tls_failed[r]);
    if (!n) continue;
    failed += n;
    reasons += fmt::format("{}{}={}", reasons.empty() ? "" : " ", tls::reason_name(tls::Reason(r)), n);
  }
  if (full + resumed + failed == 0) return "";
  return fmt::format("; TLS: {} handshake(s) ({} resumed), {} failed{}, {} plaintext bytes echoed", full + resumed,
                     resumed, failed, reasons.empty() ? "" : " (" + reasons + ")", bytes);
}

}  // namespace eco::server
