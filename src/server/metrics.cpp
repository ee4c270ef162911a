#include "server/metrics.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <future>
#include <thread>

#include <fmt/format.h>
#include <httplib.h>

#include "net/socket.h"
#include "util/build_version.h"
#include "util/fd.h"
#include "util/log.h"

namespace eco::server {
namespace {

using session::Counters;

uint64_t get(const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); }


void family(std::string& out, const char* name, const char* type, const char* help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// Label values here are eco's own names; escape anyway, as the format asks.
std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

double realtime_s() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

}  // namespace

void add_into(Counters& total, const Counters& c) {
  total.add(total.accepted, get(c.accepted));
  total.add(total.closed, get(c.closed));
  total.add(total.active, get(c.active));
  total.add(total.tcp_bytes, get(c.tcp_bytes));
  total.add(total.udp_datagrams, get(c.udp_datagrams));
  total.add(total.udp_bytes, get(c.udp_bytes));
  total.add(total.udp_dropped, get(c.udp_dropped));
  total.add(total.accept_paused, get(c.accept_paused));
  total.add(total.cut_at_stop, get(c.cut_at_stop));
  for (size_t i = 0; i < session::kRejectReasons; ++i) total.add(total.rejected[i], get(c.rejected[i]));
  for (auto m : {&Counters::tls_bytes, &Counters::tls_active, &Counters::tls_full, &Counters::tls_resumed,
                 &Counters::tls_v12, &Counters::tls_v13, &Counters::tls_client_certs})
    total.add(total.*m, get(c.*m));
  for (int i = 0; i < tls::kReasonCount; ++i) total.add(total.tls_failed[i], get(c.tls_failed[i]));
}

std::string render_metrics(const MetricsSnapshot& s) {
  const Counters& t = s.totals;
  std::string out;
  out.reserve(4096);
  auto it = std::back_inserter(out);
  family(out, "eco_connections_active", "gauge", "TCP connections open now.");
  fmt::format_to(it, "eco_connections_active {}\n", get(t.active));
  family(out, "eco_connections_accepted_total", "counter", "TCP connections accepted.");
  fmt::format_to(it, "eco_connections_accepted_total {}\n", get(t.accepted));
  family(out, "eco_connections_closed_total", "counter", "TCP connections closed (by either side).");
  fmt::format_to(it, "eco_connections_closed_total {}\n", get(t.closed));
  family(out, "eco_connections_rejected_total", "counter",
         "Connections the server ended by policy, by reason (UDP datagrams dropped by the same policies "
         "count here too).");
  for (size_t i = 0; i < session::kRejectReasons; ++i)
    fmt::format_to(it, "eco_connections_rejected_total{{reason=\"{}\"}} {}\n", to_string(session::Reject(i)),
                   get(t.rejected[i]));
  family(out, "eco_connections_cut_at_stop_total", "counter", "Connections closed by shutdown, not by the peer.");
  fmt::format_to(it, "eco_connections_cut_at_stop_total {}\n", get(t.cut_at_stop));
  family(out, "eco_bytes_echoed_total", "counter", "Bytes echoed, by protocol.");
  fmt::format_to(it, "eco_bytes_echoed_total{{proto=\"tcp\"}} {}\n", get(t.tcp_bytes));
  fmt::format_to(it, "eco_bytes_echoed_total{{proto=\"udp\"}} {}\n", get(t.udp_bytes));
  fmt::format_to(it, "eco_bytes_echoed_total{{proto=\"tls\"}} {}\n", get(t.tls_bytes));
  family(out, "eco_tls_connections_active", "gauge", "TLS connections past their handshake, open now.");
  fmt::format_to(it, "eco_tls_connections_active {}\n", get(t.tls_active));
  family(out, "eco_tls_handshakes_total", "counter", "TLS handshakes completed, full or resumed from a ticket.");
  fmt::format_to(it, "eco_tls_handshakes_total{{kind=\"full\"}} {}\n", get(t.tls_full));
  fmt::format_to(it, "eco_tls_handshakes_total{{kind=\"resumed\"}} {}\n", get(t.tls_resumed));
  family(out, "eco_tls_versions_total", "counter", "TLS handshakes completed, by version.");
  fmt::format_to(it, "eco_tls_versions_total{{version=\"1.2\"}} {}\n", get(t.tls_v12));
  fmt::format_to(it, "eco_tls_versions_total{{version=\"1.3\"}} {}\n", get(t.tls_v13));
  family(out, "eco_tls_client_certificates_total", "counter", "TLS handshakes with a verified client certificate.");
  fmt::format_to(it, "eco_tls_client_certificates_total {}\n", get(t.tls_client_certs));
  family(out, "eco_tls_failures_total", "counter", "TLS connections that failed, by reason.");
  for (int i = 1; i < tls::kReasonCount; ++i)
    fmt::format_to(it, "eco_tls_failures_total{{reason=\"{}\"}} {}\n", tls::reason_name(tls::Reason(i)),
                   get(t.tls_failed[i]));
  family(out, "eco_datagrams_echoed_total", "counter", "UDP datagrams echoed.");
  fmt::format_to(it, "eco_datagrams_echoed_total {}\n", get(t.udp_datagrams));
  family(out, "eco_udp_dropped_total", "counter",
         "UDP datagrams not echoed, by reason (policy drops are in eco_connections_rejected_total).");
  fmt::format_to(it, "eco_udp_dropped_total{{reason=\"send_failed\"}} {}\n", get(t.udp_dropped));
  family(out, "eco_accept_paused_total", "counter", "Times accepting paused for lack of file descriptors.");
  fmt::format_to(it, "eco_accept_paused_total {}\n", get(t.accept_paused));
  family(out, "eco_build_info", "gauge", "Always 1; the labels say which eco and engine serve.");
  fmt::format_to(it, "eco_build_info{{version=\"{}\",engine=\"{}\"}} 1\n", label_value(build_version()),
                 label_value(s.engine));
  family(out, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
  fmt::format_to(it, "process_start_time_seconds {:.3f}\n", s.start_time_s);
  family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  fmt::format_to(it, "process_resident_memory_bytes {}\n", s.rss_bytes);
  family(out, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
  fmt::format_to(it, "process_cpu_seconds_total {:.3f}\n", s.cpu_seconds);
  return out;
}

struct MetricsServer::Impl {
  httplib::Server http;
  net::Address addr;
  MetricsSource source;
  std::atomic<bool> draining{false};
  Fd statm;  // /proc/self/statm, opened once: a scrape only pread()s it (no open under --seccomp)
  long page_size = 4096;
  double start_time_s = 0;
  std::thread thread;
  bool started = false;

  uint64_t rss_bytes() const {
    char buf[128];
    ssize_t n = statm.valid() ? ::pread(statm.get(), buf, sizeof buf - 1, 0) : -1;
    if (n <= 0) return 0;
    buf[n] = '\0';
    char* end = nullptr;
    std::strtoull(buf, &end, 10);  // size; resident follows
    return std::strtoull(end, nullptr, 10) * uint64_t(page_size);
  }

  std::string scrape() const {
    MetricsSnapshot s;
    for (const Counters* c : source.counters) add_into(s.totals, *c);
    s.engine = source.engine;
    s.start_time_s = start_time_s;
    s.rss_bytes = rss_bytes();
    rusage ru{};
    if (getrusage(RUSAGE_SELF, &ru) == 0)
      s.cpu_seconds = double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                      double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    return render_metrics(s);
  }
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::bind(const std::string& spec) {
  auto hp = net::parse_host_port(spec);
  if (!hp) return Error{fmt::format("invalid --metrics address: {}", hp.error().message)};
  if (hp->has_scheme && hp->proto != net::Proto::tcp)
    return Error{fmt::format("invalid --metrics address '{}': metrics are served over TCP (HTTP)", spec)};
  auto addrs = net::resolve(*hp, net::Proto::tcp, true);
  if (!addrs) return Error{fmt::format("invalid --metrics address: {}", addrs.error().message)};
  std::unique_ptr<MetricsServer> m(new MetricsServer);
  m->impl_ = std::make_unique<Impl>();
  Impl& im = *m->impl_;
  im.addr = addrs->front();
  im.start_time_s = realtime_s();
  im.page_size = sysconf(_SC_PAGESIZE);
  im.statm.reset(::open("/proc/self/statm", O_RDONLY | O_CLOEXEC));
  // A scrape is one short request: short timeouts keep a stuck client from holding
  // the (single) worker, and bound how long stop() waits for a kept-alive connection.
  im.http.set_keep_alive_timeout(1);
  im.http.set_read_timeout(2);
  im.http.set_write_timeout(2);
  im.http.set_payload_max_length(4096);
  // httplib binds by name: give it the numeric address net/ resolved, without brackets.
  std::string host = im.addr.to_string();
  host = host.substr(0, host.rfind(':'));
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  errno = 0;
  bool ok;
  if (im.addr.port() == 0) {
    int port = im.http.bind_to_any_port(host);
    ok = port > 0;
    if (ok) im.addr.set_port(uint16_t(port));
  } else {
    ok = im.http.bind_to_port(host, im.addr.port());
  }
  if (!ok) {
    Error e = net::bind_error(im.addr, net::Proto::tcp, errno ? errno : EADDRNOTAVAIL);
    e.message = "metrics: " + e.message;
    return e;
  }
  // Bound and listening: scrapes queue in the backlog until start().
  log::info("Metrics on http://{}/metrics", im.addr.to_string());
  return m;
}

MetricsServer::~MetricsServer() { stop(); }

const net::Address& MetricsServer::address() const { return impl_->addr; }

Status MetricsServer::start(MetricsSource source) {
  Impl& im = *impl_;
  im.source = std::move(source);
  im.http.Get("/metrics", [&im](const httplib::Request&, httplib::Response& res) {
    res.set_content(im.scrape(), "text/plain; version=0.0.4; charset=utf-8");
  });
  im.http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok\n", "text/plain"); });
  im.http.Get("/readyz", [&im](const httplib::Request&, httplib::Response& res) {
    if (im.draining.load(std::memory_order_relaxed)) {
      res.status = 503;
      res.set_content("draining\n", "text/plain");
    } else {
      res.set_content("ready\n", "text/plain");
    }
  });
  // One worker is plenty for scrapes; the library's default is at least 8 threads.
  auto pool_ready = std::make_shared<std::promise<void>>();
  std::future<void> ready = pool_ready->get_future();
  im.http.new_task_queue = [pool_ready]() -> httplib::TaskQueue* {
    auto* q = new httplib::ThreadPool(1);
    pool_ready->set_value();
    return q;
  };
  im.thread = std::thread([&im] { im.http.listen_after_bind(); });
  im.started = true;
  if (ready.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
    return Error{"metrics: the HTTP server thread did not start"};
  return {};
}

void MetricsServer::set_draining() { impl_->draining.store(true, std::memory_order_relaxed); }

void MetricsServer::stop() {
  if (!impl_ || !impl_->started) return;
  impl_->started = false;
  impl_->http.stop();
  impl_->thread.join();
}

}  // namespace eco::server
