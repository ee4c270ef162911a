/* Peer "tight C": the smallest fast echo server one would write by hand.
 * Benchmark reference only, not part of eco. One thread, one epoll set,
 * edge-triggered, non-blocking sockets, one fixed buffer per connection for
 * the bytes the client has not yet taken back (so a slow reader never loses
 * data). Serves TCP and UDP on 127.0.0.1:PORT.
 *
 *   tight_epoll PORT
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE 65536

struct conn {
  int fd;
  size_t off, len; /* pending bytes buf[off, off+len) not yet written back */
  char buf[BUF_SIZE];
};

static void die(const char* what) {
  perror(what);
  exit(1);
}

static int listen_on(int type, int port) {
  int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt");
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(fd, (struct sockaddr*)&a, sizeof a) < 0) die("bind");
  if (type == SOCK_STREAM && listen(fd, 4096) < 0) die("listen");
  return fd;
}

static void close_conn(struct conn* c) {
  close(c->fd); /* closing removes it from the epoll set */
  free(c);
}

/* Write back what is pending; returns 0 when all sent, 1 when the socket is
 * full (EPOLLOUT will call us again), -1 on error. */
static int flush(struct conn* c) {
  while (c->len > 0) {
    ssize_t n = send(c->fd, c->buf + c->off, c->len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN ? 1 : -1;
    c->off += (size_t)n;
    c->len -= (size_t)n;
  }
  c->off = 0;
  return 0;
}

/* Edge-triggered: read until EAGAIN, echoing as we go. Stops reading while
 * the peer does not take its echo (buffer full); EPOLLOUT resumes. */
static void serve(struct conn* c) {
  for (;;) {
    int f = flush(c);
    if (f < 0) return close_conn(c);
    if (f > 0) return; /* wait for EPOLLOUT */
    ssize_t n = recv(c->fd, c->buf, BUF_SIZE, 0);
    if (n > 0) {
      c->len = (size_t)n;
      continue;
    }
    if (n == 0) return close_conn(c);
    if (errno == EINTR) continue;
    if (errno != EAGAIN) return close_conn(c);
    return;
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: tight_epoll PORT\n");
    return 2;
  }
  int port = atoi(argv[1]);
  signal(SIGPIPE, SIG_IGN);
  int lfd = listen_on(SOCK_STREAM, port);
  int ufd = listen_on(SOCK_DGRAM, port);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die("epoll_create1");
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) die("epoll_ctl");
  static struct conn udp_marker;
  ev.data.ptr = &udp_marker;
  if (epoll_ctl(ep, EPOLL_CTL_ADD, ufd, &ev) < 0) die("epoll_ctl");

  struct epoll_event events[256];
  static char dgram[65536];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      struct conn* c = events[i].data.ptr;
      if (c == NULL) { /* listener: accept everything pending */
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break; /* EAGAIN, or EMFILE: try again on the next event */
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          struct conn* nc = malloc(sizeof *nc);
          if (!nc) {
            close(fd);
            continue;
          }
          nc->fd = fd;
          nc->off = nc->len = 0;
          struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = nc};
          if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &cev) < 0) {
            close_conn(nc);
            continue;
          }
        }
      } else if (c == &udp_marker) { /* UDP: echo every datagram until EAGAIN */
        for (;;) {
          struct sockaddr_storage from;
          socklen_t fl = sizeof from;
          ssize_t r = recvfrom(ufd, dgram, sizeof dgram, 0, (struct sockaddr*)&from, &fl);
          if (r < 0) break;
          sendto(ufd, dgram, (size_t)r, 0, (struct sockaddr*)&from, fl);
        }
      } else {
        serve(c);
      }
    }
  }
}
