// session::ConnRules driven with no sockets at all, as an engine drives it: accept,
// bytes in, bytes out, FIN, deadlines, rate pauses, PROXY headers split across reads,
// close reasons and their counters, drain.
#include "session/conn_rules.h"

#include "sockaddr_v4.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

namespace eco::session {
namespace {

constexpr uint32_t kBuffer = 1024;
constexpr uint64_t kSec = 1'000'000'000;

// One loop's rules and connection table, and the engine's side of it: what it sent
// back and the reasons its connections closed with.
struct Loop {
  explicit Loop(Limits l = {}) : limits(std::move(l)) {
    auto a = Admission::create(limits);
    EXPECT_TRUE(a) << a.error().message;
    adm = std::move(*a);
    rules = std::make_unique<ConnRules>(limits, *adm, counters, kBuffer);
  }

  // Accepts a connection from ip:port at `now`; the slot, or -1 when refused.
  int accept(const char* ip = "10.0.0.1", uint16_t port = 40000, uint64_t now = 0) {
    sockaddr_in peer = v4(ip, port);
    auto slot = rules->accept(conns, 100 + int(conns.size()), reinterpret_cast<sockaddr*>(&peer), sizeof peer, now);
    return slot ? int(*slot) : -1;
  }
  // Bytes arrive (copied into an engine buffer); what the rules say to send back.
  Input in(uint32_t slot, const std::string& bytes, uint64_t now = 0) {
    buf.assign(bytes.begin(), bytes.end());
    return rules->input(conns[slot], slot, buf.data(), uint32_t(buf.size()), now);
  }
  std::string echoed(const Input& i) const { return std::string(i.data, i.len); }
  void close(uint32_t slot, const char* why = "") {
    rules->give_back(rules->close(conns[slot], slot, why, 0));
    conns.release(slot);
  }
  uint64_t rejected(Reject r) const { return counters.rejected[size_t(r)].load(); }

  Limits limits;
  std::unique_ptr<Admission> adm;
  Counters counters;
  std::unique_ptr<ConnRules> rules;
  ConnSlots<Conn> conns;
  std::vector<char> buf;
};

TEST(ConnRules, PlainEchoGoesBackInPlaceAndIsCounted) {
  Loop l;
  int s = l.accept();
  ASSERT_GE(s, 0);
  Input i = l.in(s, "hello");
  EXPECT_FALSE(i.close());
  EXPECT_EQ(i.data, l.buf.data());  // zero copy: the engine's own buffer
  EXPECT_EQ(l.echoed(i), "hello");
  l.rules->sent(l.conns[s], s, 5, 0);
  EXPECT_EQ(l.counters.tcp_bytes.load(), 5u);
  EXPECT_EQ(l.counters.active.load(), 1u);
  l.close(s);
  EXPECT_EQ(l.counters.active.load(), 0u);
  EXPECT_EQ(l.counters.closed.load(), 1u);
}

TEST(ConnRules, BackpressureStopsReadingAtTheBufferAndResumesAsBytesLeave) {
  Loop l;
  int s = l.accept();
  Conn& c = l.conns[s];
  EXPECT_EQ(l.rules->room(c), kBuffer);
  Input i = l.in(s, std::string(1000, 'x'));
  ASSERT_TRUE(l.rules->keep(c, i.data, i.len));  // the socket took nothing
  EXPECT_EQ(l.rules->room(c), kBuffer - 1000);
  l.in(s, std::string(24, 'y'));
  EXPECT_TRUE(l.rules->keep(c, l.buf.data(), 24));
  EXPECT_EQ(l.rules->room(c), 0u);  // full: stop reading
  EXPECT_EQ(c.out.pending(), kBuffer);
  c.out.consumed(600);
  l.rules->sent(c, s, 600, 0);
  EXPECT_EQ(l.rules->room(c), 600u);
  c.out.consumed(c.out.pending());
  l.rules->sent(c, s, kBuffer - 600, 0);
  EXPECT_TRUE(c.out.attached());
  l.rules->drop_empty_queue(c);  // an idle connection holds no buffer
  EXPECT_FALSE(c.out.attached());
  EXPECT_EQ(l.rules->room(c), kBuffer);
}

TEST(ConnRules, HalfCloseFinishesOnlyOnceEverythingWentBack) {
  Loop l;
  int s = l.accept();
  Conn& c = l.conns[s];
  l.in(s, "abc");
  l.rules->eof(c, uint32_t(s), 0);
  EXPECT_EQ(l.rules->room(c), 0u);  // nothing more to read after the FIN
  EXPECT_FALSE(l.rules->finished(c));  // "abc" still pending
  l.rules->sent(c, s, 3, 0);
  EXPECT_TRUE(l.rules->finished(c));
}

TEST(ConnRules, MaxBytesClosesWithItsReasonCounted) {
  Limits lim;
  lim.max_bytes = 10;
  Loop l(lim);
  int s = l.accept();
  EXPECT_FALSE(l.in(s, "0123456789").close());  // exactly the limit is allowed
  Input i = l.in(s, "!");
  EXPECT_TRUE(i.close());
  EXPECT_EQ(i.len, 0u);  // the byte past the limit is never echoed
  l.close(s, "ignored: the policy reason wins");
  EXPECT_EQ(l.rejected(Reject::max_bytes), 1u);
}

TEST(ConnRules, IdleTimeoutCountsFromTheLastByteEitherWay) {
  Limits lim;
  lim.idle_timeout_ns = 2 * kSec;
  Loop l(lim);
  int s = l.accept("10.0.0.1", 40000, 0);
  EXPECT_TRUE(l.rules->clocked());
  EXPECT_EQ(l.rules->next_deadline(), 2 * kSec);
  l.in(s, "x", 1 * kSec);
  l.rules->sent(l.conns[s], s, 1, 1 * kSec + 500);
  EXPECT_EQ(l.rules->next_deadline(), 3 * kSec + 500);
  std::vector<uint32_t> closed;
  l.rules->expire(l.conns, 3 * kSec, [&](uint32_t slot) { closed.push_back(slot); });
  EXPECT_TRUE(closed.empty());
  l.rules->expire(l.conns, 3 * kSec + 500, [&](uint32_t slot) { closed.push_back(slot); });
  ASSERT_EQ(closed, std::vector<uint32_t>{uint32_t(s)});
  l.close(s);
  EXPECT_EQ(l.rejected(Reject::idle_timeout), 1u);
}

TEST(ConnRules, MaxDurationIgnoresActivity) {
  Limits lim;
  lim.max_duration_ns = 5 * kSec;
  Loop l(lim);
  int s = l.accept("10.0.0.1", 40000, 0);
  l.in(s, "x", 4 * kSec);
  int closed = 0;
  l.rules->expire(l.conns, 5 * kSec, [&](uint32_t slot) {
    ++closed;
    l.close(slot);
  });
  EXPECT_EQ(closed, 1);
  EXPECT_EQ(l.rejected(Reject::max_duration), 1u);
}

TEST(ConnRules, RateLimitPausesReadingUntilTheDebtIsPaid) {
  Limits lim;
  lim.rate_per_ip = 1000;  // bytes/s; a second's worth to start with
  Loop l(lim);
  int s = l.accept();
  Conn& c = l.conns[s];
  EXPECT_FALSE(l.in(s, std::string(1000, 'a'), 0).paused());
  l.rules->sent(c, s, 1000, 0);
  Input i = l.in(s, std::string(500, 'b'), 0);
  EXPECT_TRUE(i.paused());  // 500 bytes in debt: half a second
  EXPECT_EQ(i.len, 500u);  // nothing is lost: what came in still goes back
  l.rules->sent(c, s, 500, 0);
  EXPECT_EQ(l.rules->room(c), 0u);
  EXPECT_NEAR(double(l.rules->next_deadline()), 0.5 * kSec, 0.01 * kSec);
  std::vector<uint32_t> resumed;
  l.rules->resume_paused(l.conns, kSec / 4, [&](uint32_t slot) { resumed.push_back(slot); });
  EXPECT_TRUE(resumed.empty());
  l.rules->resume_paused(l.conns, kSec, [&](uint32_t slot) { resumed.push_back(slot); });
  ASSERT_EQ(resumed, std::vector<uint32_t>{uint32_t(s)});
  EXPECT_GT(l.rules->room(c), 0u);
}

// "PROXY TCP4 ..." then echo bytes, cut at every possible place into two reads.
TEST(ConnRules, ProxyV1HeaderSplitAcrossReadsIsNeverEchoed) {
  const std::string header = "PROXY TCP4 192.0.2.7 198.51.100.1 51000 5346\r\n";
  const std::string stream = header + "hello";
  for (size_t cut = 1; cut < stream.size(); ++cut) {
    SCOPED_TRACE(cut);
    Limits lim;
    lim.proxy_protocol = true;
    Loop l(lim);
    int s = l.accept("10.9.9.9", 1234);  // the balancer
    Conn& c = l.conns[s];
    EXPECT_TRUE(c.awaiting_proxy);
    EXPECT_EQ(c.admitted, Admitted::pending);
    std::string out;
    Input a = l.in(s, stream.substr(0, cut));
    ASSERT_FALSE(a.close());
    out += l.echoed(a);
    Input b = l.in(s, stream.substr(cut));
    ASSERT_FALSE(b.close());
    out += l.echoed(b);
    EXPECT_EQ(out, "hello");
    EXPECT_FALSE(c.awaiting_proxy);
    EXPECT_EQ(c.admitted, Admitted::full);
    EXPECT_EQ(c.address().to_string(), "192.0.2.7:51000");  // the client, not the balancer
    EXPECT_EQ(c.s.bytes_in, 5u);  // the header is not part of the echo
    l.close(s);
  }
}

std::string proxy_v2_tcp4(const char* src, uint16_t sport) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += char(0x21);  // v2, PROXY
  h += char(0x11);  // TCP over IPv4
  h += char(0);
  h += char(12);
  in_addr s{}, d{};
  inet_pton(AF_INET, src, &s);
  inet_pton(AF_INET, "198.51.100.1", &d);
  h.append(reinterpret_cast<char*>(&s), 4);
  h.append(reinterpret_cast<char*>(&d), 4);
  uint16_t sp = htons(sport), dp = htons(5346);
  h.append(reinterpret_cast<char*>(&sp), 2);
  h.append(reinterpret_cast<char*>(&dp), 2);
  return h;
}

TEST(ConnRules, ProxyV2HeaderOneByteAtATime) {
  Limits lim;
  lim.proxy_protocol = true;
  Loop l(lim);
  int s = l.accept("10.9.9.9", 1234);
  const std::string stream = proxy_v2_tcp4("203.0.113.5", 6000) + "xy";
  std::string out;
  for (char ch : stream) {
    Input i = l.in(s, std::string(1, ch));
    ASSERT_FALSE(i.close());
    out += l.echoed(i);
  }
  EXPECT_EQ(out, "xy");
  EXPECT_EQ(l.conns[s].address().to_string(), "203.0.113.5:6000");
}

TEST(ConnRules, ProxyGarbageClosesAsProxyInvalid) {
  Limits lim;
  lim.proxy_protocol = true;
  Loop l(lim);
  int s = l.accept();
  Input i = l.in(s, "GET / HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(i.close());
  EXPECT_EQ(i.len, 0u);
  l.close(s);
  EXPECT_EQ(l.rejected(Reject::proxy_invalid), 1u);
}

TEST(ConnRules, FinInsideTheProxyHeaderClosesAsProxyInvalid) {
  Limits lim;
  lim.proxy_protocol = true;
  Loop l(lim);
  int s = l.accept();
  l.in(s, "PROXY TCP4 1.2");
  l.rules->eof(l.conns[s], uint32_t(s), 0);
  EXPECT_TRUE(l.rules->finished(l.conns[s]));
  l.close(s);
  EXPECT_EQ(l.rejected(Reject::proxy_invalid), 1u);
}

TEST(ConnRules, ProxyHeaderThatNeverCompletesTimesOut) {
  Limits lim;
  lim.proxy_protocol = true;
  lim.proxy_timeout_ns = kSec;
  Loop l(lim);
  int s = l.accept("10.0.0.1", 40000, 0);
  l.in(s, "PROXY ", kSec / 2);
  int closed = 0;
  l.rules->expire(l.conns, kSec, [&](uint32_t slot) {
    ++closed;
    l.close(slot);
  });
  EXPECT_EQ(closed, 1);
  EXPECT_EQ(l.rejected(Reject::proxy_timeout), 1u);
  EXPECT_EQ(l.adm->open_connections(), 0u);
}

// The access list applies to the client the header names; the pending slot the
// connection held comes back at close.
TEST(ConnRules, ProxyClientDeniedGivesBackThePendingSlot) {
  Limits lim;
  lim.proxy_protocol = true;
  lim.max_conns = 5;
  lim.deny = {"203.0.113.0/24"};
  Loop l(lim);
  int s = l.accept("10.9.9.9", 1234);
  EXPECT_EQ(l.adm->open_connections(), 1u);
  Input i = l.in(s, proxy_v2_tcp4("203.0.113.5", 6000) + "never echoed");
  EXPECT_TRUE(i.close());
  l.close(s);
  EXPECT_EQ(l.rejected(Reject::denied), 1u);
  EXPECT_EQ(l.adm->open_connections(), 0u);
}

TEST(ConnRules, AdmissionRefusesAtTheCapAndTheSlotComesBackAtClose) {
  Limits lim;
  lim.max_conns = 1;
  Loop l(lim);
  int a = l.accept("10.0.0.1");
  ASSERT_GE(a, 0);
  EXPECT_EQ(l.accept("10.0.0.2"), -1);
  EXPECT_EQ(l.rejected(Reject::max_conns), 1u);
  EXPECT_EQ(l.counters.accepted.load(), 1u);  // a refused connection is not accepted
  l.close(a);
  EXPECT_GE(l.accept("10.0.0.2"), 0);
}

TEST(ConnRules, CloseReasonPrecedence) {
  Loop l;
  int s = l.accept();
  Conn& c = l.conns[s];
  c.close_why = "connection reset by peer";
  c.reject = uint8_t(Reject::max_bytes);
  l.close(s, "engine's reason");
  EXPECT_EQ(l.rejected(Reject::max_bytes), 1u);  // the policy reason is counted
  EXPECT_EQ(c.close_why, nullptr);
  EXPECT_EQ(c.reject, kNoReject);
  EXPECT_EQ(c.admitted, Admitted::none);
}

TEST(ConnRules, CloseReturnsTheQueueStorageForTheEngineToGiveBack) {
  Loop l;
  int s = l.accept();
  Conn& c = l.conns[s];
  Input i = l.in(s, "pending");
  ASSERT_TRUE(l.rules->keep(c, i.data, i.len));
  char* storage = l.rules->close(c, s, "", 0);
  EXPECT_NE(storage, nullptr);
  EXPECT_FALSE(c.out.attached());
  l.rules->give_back(storage);
  l.conns.release(s);
}

TEST(ConnRules, DrainCutsWhatIsLeftAndKeepsTheReasonsOfClosingOnes) {
  Limits lim;
  lim.max_bytes = 1;
  Loop l(lim);
  int a = l.accept("10.0.0.1");
  int b = l.accept("10.0.0.2");
  int c = l.accept("10.0.0.3");
  l.close(uint32_t(b));  // already gone: not cut
  l.conns[a].closing = true;  // an engine still ending its requests
  l.conns[a].reject = uint8_t(Reject::max_bytes);
  std::vector<std::string> why;
  l.rules->cut_remaining(l.conns, true, [&](uint32_t slot, const char* w) {
    why.push_back(w ? w : "(own reason)");
    l.close(slot, w);
  });
  EXPECT_EQ(why, (std::vector<std::string>{"(own reason)", "drain timeout"}));
  EXPECT_EQ(l.counters.cut_at_stop.load(), 1u);  // c only
  EXPECT_EQ(l.rejected(Reject::max_bytes), 1u);  // a kept its reason
  EXPECT_EQ(l.counters.active.load(), 0u);
  (void)c;
}

TEST(ConnSlots, StaleTagsFindNothingAfterReuse) {
  Loop l;
  int s = l.accept();
  uint64_t old_tag = l.conns[s].tag(s);
  EXPECT_EQ(l.conns.find(old_tag), &l.conns[s]);
  l.close(s);
  EXPECT_EQ(l.conns.find(old_tag), nullptr);
  int again = l.accept();
  EXPECT_EQ(again, s);  // the slot is reused...
  EXPECT_EQ(l.conns.find(old_tag), nullptr);  // ...but the old tag names nothing
  EXPECT_NE(l.conns.find(l.conns[s].tag(s)), nullptr);
}

#if ECO_CHECK_THREADS
TEST(CountersDeathTest, ASecondWriterIsCaught) {
  EXPECT_DEATH(
      {
        Counters c;
        c.claim();
        std::thread other([&] { c.add(c.tcp_bytes, 1); });
        other.join();
      },
      "written by a thread that does not own them");
}
#endif

}  // namespace
}  // namespace eco::session
