// Connection limits: --max-conns (all threads together), --max-conns-per-ip,
// --idle-timeout, --max-conn-duration, --max-bytes and the per-source byte rate.
// Excess connections are closed at once and counted by reason in the final summary.
#include <thread>

#include "harness.h"
#include "policy_helpers.h"

namespace eco::itest {
namespace {

using Limits = EngineTest;

// Retries for up to 3 s: the server frees a slot only once it has seen the close.
bool echo_on_fresh_connection(const std::string& src, uint16_t port) {
  double deadline = now_ms() + 3000;
  while (now_ms() < deadline) {
    Fd fd = connect_from(src, "127.0.0.1", port);
    if (fd.valid() && echo_once(fd.get(), "again", 500)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

TEST_P(Limits, MaxConnsIsGlobalAcrossThreadsAndFreesSlotsOnClose) {
  Server* srv = start_server({.extra = {"--threads", "2", "--max-conns", "3"}});
  ASSERT_TRUE(srv);
  std::vector<Fd> open;
  for (int i = 0; i < 3; ++i) {
    open.push_back(tcp_connect("127.0.0.1", srv->port()));
    ASSERT_TRUE(echo_once(open.back().get(), "held " + std::to_string(i)));
  }
  // Whichever thread's socket the kernel picks, the fourth is over the shared cap.
  for (int i = 0; i < 4; ++i) {
    Fd extra = tcp_connect("127.0.0.1", srv->port());
    ASSERT_TRUE(extra.valid());
    (void)send_all(extra.get(), "x");
    std::string got;
    EXPECT_TRUE(closed_by_server(extra.get(), 3000, &got)) << "extra connection " << i << " stayed open";
    EXPECT_EQ(got, "") << "an extra connection was echoed";
  }
  open.pop_back();  // closes one: its slot comes back
  EXPECT_TRUE(echo_on_fresh_connection("127.0.0.1", srv->port()));
  EXPECT_TRUE(srv->wait_log("(max_conns)", 2000)) << srv->log();
  open.clear();
  EXPECT_GE(refused_count(summary_after_stop(*srv), "max_conns"), 4u) << srv->log();
}

TEST_P(Limits, MaxConnsPerIpCountsEachSourceApart) {
  Server* srv = start_server({.extra = {"--threads", "2", "--max-conns-per-ip", "2"}});
  ASSERT_TRUE(srv);
  Fd a1 = connect_from("127.0.0.2", "127.0.0.1", srv->port());
  Fd a2 = connect_from("127.0.0.2", "127.0.0.1", srv->port());
  ASSERT_TRUE(echo_once(a1.get(), "a1"));
  ASSERT_TRUE(echo_once(a2.get(), "a2"));
  Fd a3 = connect_from("127.0.0.2", "127.0.0.1", srv->port());
  ASSERT_TRUE(a3.valid());
  (void)send_all(a3.get(), "a3");
  std::string got;
  EXPECT_TRUE(closed_by_server(a3.get(), 3000, &got));
  EXPECT_EQ(got, "");
  // Another source has its own count.
  Fd b1 = connect_from("127.0.0.3", "127.0.0.1", srv->port());
  Fd b2 = connect_from("127.0.0.3", "127.0.0.1", srv->port());
  EXPECT_TRUE(echo_once(b1.get(), "b1"));
  EXPECT_TRUE(echo_once(b2.get(), "b2"));
  a1.reset();
  EXPECT_TRUE(echo_on_fresh_connection("127.0.0.2", srv->port()));
  a2.reset();
  b1.reset();
  b2.reset();
  EXPECT_GE(refused_count(summary_after_stop(*srv), "max_conns_per_ip"), 1u) << srv->log();
}

TEST_P(Limits, IdleTimeoutClosesOnlyTheSilentConnection) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--idle-timeout", "400ms");
  Server* srv = start_server({.extra = {"--idle-timeout", "400ms"}});
  ASSERT_TRUE(srv);
  Fd quiet = tcp_connect("127.0.0.1", srv->port());
  Fd chatty = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(echo_once(quiet.get(), "hi"));
  double start = now_ms();
  // The chatty one talks every 100 ms for well past the timeout and stays open.
  while (now_ms() - start < 1000) {
    ASSERT_TRUE(echo_once(chatty.get(), "still here", 2000)) << "an active connection was closed";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(closed_by_server(quiet.get(), 3000));
  EXPECT_GE(now_ms() - start, 300);
  EXPECT_TRUE(echo_once(chatty.get(), "and still"));
  chatty.reset();
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "idle_timeout"), 1u) << srv->log();
}

TEST_P(Limits, NoIdleTimeoutByDefault) {
  Server* srv = start_server();
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  ASSERT_TRUE(echo_once(fd.get(), "hi"));
  EXPECT_TRUE(silent_for(fd.get(), 1200));
  EXPECT_TRUE(echo_once(fd.get(), "after a pause"));
}

TEST_P(Limits, MaxConnDurationClosesEvenABusyConnection) {
  Server* srv = start_server({.extra = {"--max-conn-duration", "500ms"}});
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  double start = now_ms();
  bool closed = false;
  while (now_ms() - start < 4000) {
    if (!echo_once(fd.get(), "busy", 1000)) {
      closed = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(closed);
  EXPECT_GE(now_ms() - start, 400);
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "max_duration"), 1u) << srv->log();
}

TEST_P(Limits, MaxBytesAllowsExactlyTheLimitAndClosesBeyondIt) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--max-bytes", "1000");
  Server* srv = start_server({.extra = {"--max-bytes", "1000"}});
  ASSERT_TRUE(srv);
  Fd ok = tcp_connect("127.0.0.1", srv->port());
  std::string data = random_bytes(1000, 71);
  bool eof;
  EXPECT_TRUE(echo_roundtrip(ok.get(), data, 5000, eof) == data);
  EXPECT_TRUE(eof);
  Fd big = tcp_connect("127.0.0.1", srv->port());
  (void)send_all(big.get(), random_bytes(5000, 72), 2000);
  std::string got;
  EXPECT_TRUE(closed_by_server(big.get(), 3000, &got));
  EXPECT_LE(got.size(), 1000u);
  EXPECT_EQ(refused_count(summary_after_stop(*srv), "max_bytes"), 1u) << srv->log();
}

TEST_P(Limits, ByteRatePerSourcePausesReadsAndLosesNothing) {
  ECO_IF_ENGINE_REFUSES_EXPECT_REFUSAL("--rate-limit-per-ip", "100K");
  // 100 KB/s with a one-second burst: 300 KB need about two seconds, and every byte
  // still comes back in order (the server only stops reading; TCP holds the rest).
  Server* srv = start_server({.extra = {"--rate-limit-per-ip", "100K"}});
  ASSERT_TRUE(srv);
  Fd fd = tcp_connect("127.0.0.1", srv->port());
  std::string data = random_bytes(300 * 1024, 73);
  double start = now_ms();
  bool eof;
  std::string back = echo_roundtrip(fd.get(), data, 15000, eof);
  double took = now_ms() - start;
  EXPECT_TRUE(eof);
  EXPECT_TRUE(back == data) << "got " << back.size() << " of " << data.size();
  EXPECT_GE(took, 1500) << "the rate limit did not slow the source";
  // A different source is not held back by the first one's debt.
  Fd other = connect_from("127.0.0.2", "127.0.0.1", srv->port());
  EXPECT_TRUE(echo_once(other.get(), "other source", 1000));
}

ECO_ENGINE_SUITE(Limits);

}  // namespace
}  // namespace eco::itest
