// A retransmission that overlaps bytes the server already has. TCP queues such a
// segment whole and leaves skipping the old part to the reader; the sockmap verdict
// sees whole skbs, so it must cut the old part off itself, or the echo repeats it.
// Under load such segments arrive by chance (a non-reading client's closed window
// makes them); here one is made on purpose: the client's segment carrying A is captured on loopback, and
// a copy of it carrying A + B is injected through a raw socket. The server must echo
// A and B once each. Root only (raw and packet sockets).
#include <arpa/inet.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "engine/sockmap_loader.h"
#include "harness.h"

namespace eco::itest {
namespace {

uint16_t checksum(const void* data, size_t len, uint32_t sum = 0) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (; len > 1; p += 2, len -= 2) sum += uint32_t(p[0] << 8 | p[1]);
  if (len) sum += uint32_t(p[0] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return uint16_t(~sum);
}

// The TCP checksum over the IPv4 pseudo-header and the segment.
uint16_t tcp_checksum(const iphdr& ip, const std::vector<uint8_t>& segment) {
  std::vector<uint8_t> buf(12 + segment.size());
  std::memcpy(&buf[0], &ip.saddr, 4);
  std::memcpy(&buf[4], &ip.daddr, 4);
  buf[8] = 0;
  buf[9] = IPPROTO_TCP;
  buf[10] = uint8_t(segment.size() >> 8);
  buf[11] = uint8_t(segment.size());
  std::memcpy(&buf[12], segment.data(), segment.size());
  return checksum(buf.data(), buf.size());
}

// The next IPv4 TCP packet on lo from port `sport` to `dport` before the deadline, IP
// header onwards, or empty.
std::vector<uint8_t> next_segment(int ps, uint16_t sport, uint16_t dport, double deadline, int poll_ms) {
  std::vector<uint8_t> pkt(70000);
  while (now_ms() < deadline) {
    pollfd p{ps, POLLIN, 0};
    if (::poll(&p, 1, poll_ms) <= 0) continue;
    ssize_t n = ::recv(ps, pkt.data(), pkt.size(), 0);
    if (n < int(sizeof(iphdr) + sizeof(tcphdr))) continue;
    auto* ip = reinterpret_cast<const iphdr*>(pkt.data());
    if (ip->version != 4 || ip->protocol != IPPROTO_TCP) continue;
    auto* th = reinterpret_cast<const tcphdr*>(pkt.data() + size_t(ip->ihl) * 4);
    if (ntohs(th->source) != sport || ntohs(th->dest) != dport) continue;
    pkt.resize(size_t(n));
    return pkt;
  }
  return {};
}

// Waits (bounded) for the segment from `sport` to `dport` whose TCP payload is `len`
// bytes; returns it (IP header onwards), or empty.
std::vector<uint8_t> capture(int ps, uint16_t sport, uint16_t dport, size_t len, int timeout_ms) {
  const double deadline = now_ms() + timeout_ms;
  for (;;) {
    std::vector<uint8_t> pkt = next_segment(ps, sport, dport, deadline, 50);
    if (pkt.empty()) return pkt;
    auto* ip = reinterpret_cast<const iphdr*>(pkt.data());
    size_t ihl = size_t(ip->ihl) * 4;
    size_t thl = size_t(reinterpret_cast<const tcphdr*>(pkt.data() + ihl)->doff) * 4;
    size_t total = ntohs(ip->tot_len);
    if (total == ihl + thl + len && total <= pkt.size()) {
      pkt.resize(total);
      return pkt;
    }
  }
}

// Where the timestamp option (kind 8) of a TCP header starts, or 0.
size_t ts_option(const uint8_t* th, size_t thl) {
  for (size_t i = sizeof(tcphdr); i + 1 < thl;) {
    uint8_t kind = th[i];
    if (kind == 0) break;
    if (kind == 1) {
      ++i;
      continue;
    }
    uint8_t len = th[i + 1];
    if (kind == 8 && len == 10 && i + 10 <= thl) return i;
    if (len < 2) break;
    i += len;
  }
  return 0;
}

// The newest timestamp option (TSval, TSecr) the client has sent to the server:
// reads what lo carried for `wait_ms`. PAWS drops a segment whose TSval is older.
bool newest_timestamps(int ps, uint16_t sport, uint16_t dport, int wait_ms, uint8_t out[8]) {
  bool found = false;
  const double deadline = now_ms() + wait_ms;
  for (;;) {
    std::vector<uint8_t> pkt = next_segment(ps, sport, dport, deadline, 5);
    if (pkt.empty()) return found;
    const uint8_t* th = pkt.data() + size_t(reinterpret_cast<const iphdr*>(pkt.data())->ihl) * 4;
    if (size_t at = ts_option(th, size_t(reinterpret_cast<const tcphdr*>(th)->doff) * 4)) {
      std::memcpy(out, th + at + 2, 8);
      found = true;
    }
  }
}

TEST(SockmapRetransmit, OverlappingRetransmissionIsEchoedOnce) {
  if (!engine::sockmap_support().available)
    GTEST_SKIP() << "the sockmap engine cannot load on this machine: " << engine::sockmap_support().reason;
  // Protocol 0: no packets until bound, after the filter is on.
  int ps = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (ps < 0) GTEST_SKIP() << "needs a packet socket (root): " << std::strerror(errno);
  Fd packet_sock(ps);
  int rs = ::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
  ASSERT_GE(rs, 0) << std::strerror(errno);
  Fd raw_sock(rs);

  Server srv({.engine = "sockmap", .extra = {"--threads", "1", "--log-level", "debug"}});
  ASSERT_TRUE(srv.start());
  Fd c = tcp_connect("127.0.0.1", srv.port());
  ASSERT_TRUE(c.valid());
  sockaddr_in local{};
  socklen_t local_len = sizeof local;
  ASSERT_EQ(::getsockname(c.get(), reinterpret_cast<sockaddr*>(&local), &local_len), 0);
  const uint16_t cport = ntohs(local.sin_port);

  // Only this connection's client-to-server packets: loopback may be busy with other
  // tests, and a packet socket's queue would overflow with their traffic. (Classic BPF
  // over the IP header: TCP, not a fragment, source and destination port.)
  sock_filter code[] = {
      {BPF_LD | BPF_B | BPF_ABS, 0, 0, 9},          {BPF_JMP | BPF_JEQ | BPF_K, 0, 8, IPPROTO_TCP},
      {BPF_LD | BPF_H | BPF_ABS, 0, 0, 6},          {BPF_JMP | BPF_JSET | BPF_K, 6, 0, 0x1fff},
      {BPF_LDX | BPF_B | BPF_MSH, 0, 0, 0},         {BPF_LD | BPF_H | BPF_IND, 0, 0, 0},
      {BPF_JMP | BPF_JEQ | BPF_K, 0, 3, cport},     {BPF_LD | BPF_H | BPF_IND, 0, 0, 2},
      {BPF_JMP | BPF_JEQ | BPF_K, 0, 1, srv.port()}, {BPF_RET | BPF_K, 0, 0, 0xffff},
      {BPF_RET | BPF_K, 0, 0, 0},
  };
  sock_fprog prog{uint16_t(sizeof code / sizeof code[0]), code};
  ASSERT_EQ(::setsockopt(ps, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog), 0) << std::strerror(errno);
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_IP);
  ll.sll_ifindex = int(if_nametoindex("lo"));
  ASSERT_EQ(::bind(ps, reinterpret_cast<sockaddr*>(&ll), sizeof ll), 0) << std::strerror(errno);

  // A goes out normally and comes back; its segment is captured on the way.
  const std::string a = random_bytes(1000, 21), b = random_bytes(600, 22);
  ASSERT_TRUE(send_all(c.get(), a));
  std::vector<uint8_t> seg_a = capture(ps, cport, srv.port(), a.size(), 3000);
  ASSERT_FALSE(seg_a.empty()) << "the client's segment was not seen on lo";
  ASSERT_EQ(read_exact(c.get(), a.size(), 5000), a);

  // The same segment again, now carrying A + B: bytes the server has, then new ones.
  // Same sequence number, ack and timestamp option, so TCP takes it as a retransmission
  // that overlaps what it received.
  auto* ip = reinterpret_cast<iphdr*>(seg_a.data());
  size_t ihl = size_t(ip->ihl) * 4;
  size_t thl = size_t(reinterpret_cast<tcphdr*>(seg_a.data() + ihl)->doff) * 4;
  std::vector<uint8_t> seg(seg_a.begin() + long(ihl), seg_a.begin() + long(ihl + thl));
  seg.insert(seg.end(), a.begin(), a.end());
  seg.insert(seg.end(), b.begin(), b.end());
  auto* th = reinterpret_cast<tcphdr*>(seg.data());
  // Its timestamps as new as the client's latest (its ACKs of the echo came after A).
  uint8_t ts[8];
  if (size_t at = ts_option(seg.data(), thl); at && newest_timestamps(ps, cport, srv.port(), 100, ts))
    std::memcpy(seg.data() + at + 2, ts, 8);
  th->check = 0;
  iphdr hdr = *ip;
  hdr.ihl = 5;
  hdr.tot_len = htons(uint16_t(sizeof hdr + seg.size()));
  hdr.id = htons(uint16_t(ntohs(ip->id) + 1));
  hdr.check = 0;
  th->check = htons(tcp_checksum(hdr, seg));
  hdr.check = htons(checksum(&hdr, sizeof hdr));
  std::vector<uint8_t> pkt(sizeof hdr);
  std::memcpy(pkt.data(), &hdr, sizeof hdr);
  pkt.insert(pkt.end(), seg.begin(), seg.end());
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_addr.s_addr = hdr.daddr;
  ASSERT_EQ(::sendto(rs, pkt.data(), pkt.size(), 0, reinterpret_cast<sockaddr*>(&dst), sizeof dst),
            ssize_t(pkt.size()))
      << std::strerror(errno);

  // The server now acknowledges B, which the client's TCP has not sent: the client
  // ignores those segments until it has sent B itself (a duplicate to the server, which
  // drops it). Then the server's retransmissions of the echo are taken.
  ::usleep(50 * 1000);
  ASSERT_TRUE(send_all(c.get(), b));
  ASSERT_EQ(::shutdown(c.get(), SHUT_WR), 0);
  bool eof = false;
  std::string back = read_to_eof(c.get(), 10000, eof);
  EXPECT_TRUE(eof);
  EXPECT_EQ(back.size(), b.size()) << "after A, the echo should hold B once; the overlap (A) was echoed again if "
                                   << b.size() + a.size() << " bytes came";
  EXPECT_TRUE(back == b) << "the echo after A differs from B\n" << srv.log();
  EXPECT_TRUE(srv.stop());
  EXPECT_NE(srv.log().find("1 retransmissions trimmed"), std::string::npos) << srv.log();
}

}  // namespace
}  // namespace eco::itest
