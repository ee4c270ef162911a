// SPDX-License-Identifier: GPL-2.0
// The sockmap engine's in-kernel echo: an sk_skb stream-verdict program
// attached to a sockhash. Every segment a member socket receives is redirected to the
// egress of the same socket, so the echo never wakes user space.
//
// Backpressure. A redirected skb waits on the socket's psock queue until the send
// buffer takes it, and that queue is charged to no socket: with a peer that never
// reads, the receive window would stay open and the queue grow without bound
// (measured on 6.18: 256 MiB sent, ~490 MB of kernel memory, /proc/net/sockstat
// unchanged). So a skb is redirected only while the bytes the socket already holds
// for sending (in the send queue, plus redirected but not yet written) stay under
// half its send buffer. Past that the connection is handed to user space for good:
// the skb and all later ones are passed (SK_PASS) to the socket's own receive path,
// where they are charged to sk_rmem_alloc (so the window closes), and user space
// echoes them with its usual bounded buffer. Passing is sticky because switching
// back could reorder bytes. Bytes stay in order across the switch: a passed skb is
// queued behind any redirected one still waiting on the psock queue.
//
// Only linux/bpf.h and libbpf's headers: no vmlinux.h, so it builds anywhere. The two
// kernel structs read below are declared with just the fields used; CO-RE
// (preserve_access_index) relocates them against the running kernel's BTF at load.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "echo_shared.h"

struct sock {
  int sk_sndbuf;
} __attribute__((preserve_access_index));

// The kernel's own skb behind the context, for the TCP sequence numbers in its
// control block (struct tcp_skb_cb: seq, end_seq first).
struct sk_buff {
  char cb[48];
} __attribute__((preserve_access_index));
extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;

struct tcp_sock {
  __u32 write_seq;  // next sequence number to be queued for sending
  __u32 snd_una;    // oldest unacknowledged sequence number
} __attribute__((preserve_access_index));

// Member sockets, keyed by socket cookie (unique per socket, stable, cheap to get
// from the skb); value: the socket (user space inserts the fd).
struct {
  __uint(type, BPF_MAP_TYPE_SOCKHASH);
  __uint(max_entries, ECO_BPF_MAX_CONNS);
  __type(key, __u64);
  __type(value, __u64);
} eco_socks SEC(".maps");

// Per-connection state, created by user space before the socket joins eco_socks and
// deleted at close. Written only by the verdict program, which the kernel runs for
// one socket at a time (under its lock), so plain adds are enough.
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, ECO_BPF_MAX_CONNS + 1);  // + the totals entry
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, __u64);
  __type(value, struct eco_conn_state);
} eco_conns SEC(".maps");

// One record per connection handed to user space or marked broken (struct
// eco_handoff, 24 bytes with the ring's header): 256 KiB holds ~10,900, enough for
// every connection of a busy loop to be handed over between two of its wake-ups.
struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 256 * 1024);
} eco_handoffs SEC(".maps");

// Loop-wide totals live in eco_conns under key 0 (no socket has cookie 0), added to
// atomically because sockets on several CPUs update them at once. (A per-CPU map would
// avoid the shared cache line but costs the process one more file descriptor per
// loop; with one small entry per skb the atomic add is cheap next to the redirect.)
static __always_inline void stat_add(int which, __u64 n) {
  __u64 key = ECO_TOTALS_KEY;
  struct eco_conn_state *t = bpf_map_lookup_elem(&eco_conns, &key);
  if (!t) return;
  if (which == ECO_STAT_BYTES) __sync_fetch_and_add(&t->redirected, n);
  else if (which == ECO_STAT_HANDOFFS) __sync_fetch_and_add(&t->passed, n);
  else __sync_fetch_and_add(&t->repeats, (__u32)n);
}

// Tells user space to look at this connection. If the ring is full the record is
// lost; user space's 100 ms tick then sees fewer records than the loop-wide counts
// (stat_add) and reads every connection's state (see sockmap.cpp).
static __always_inline void notify(struct eco_conn_state *st, __u64 cookie) {
  struct eco_handoff h = {.cookie = cookie, .tag = st->tag};
  bpf_ringbuf_output(&eco_handoffs, &h, sizeof h, 0);
}

static __always_inline int hand_off(struct eco_conn_state *st, __u64 cookie, __u32 len) {
  st->flags |= ECO_CONN_PASS;
  st->passed += len;
  stat_add(ECO_STAT_HANDOFFS, 1);
  notify(st, cookie);
  return SK_PASS;
}

// Removes the first n bytes of the skb. bpf_skb_adjust_room() removes at most 4095
// bytes per call (it pulls them into the linear head first), so a whole segment
// takes a few calls; this path runs only for overlapping retransmissions.
#define ECO_CUT_STEP 4095
#define ECO_CUT_CALLS 64  // up to 262,080 bytes: four 64 KiB segments
static __always_inline int cut_front(struct __sk_buff *skb, __u32 n) {
  for (int i = 0; i < ECO_CUT_CALLS && n > 0; i++) {
    __u32 step = n > ECO_CUT_STEP ? ECO_CUT_STEP : n;
    if (bpf_skb_adjust_room(skb, -(__s32)step, 0, 0) != 0) return -1;
    n -= step;
  }
  return n == 0 ? 0 : -1;
}

SEC("sk_skb/stream_verdict")
int eco_echo_verdict(struct __sk_buff *skb) {
  __u64 cookie = bpf_get_socket_cookie(skb);
  struct eco_conn_state *st = bpf_map_lookup_elem(&eco_conns, &cookie);
  if (!st) return SK_PASS;  // not set up (cannot happen for a member): let user space see it
  __u32 len = skb->len;
  // The peer's FIN reaches the verdict as an empty skb. Redirected, the psock's
  // send of zero bytes counts as a broken pipe (EPIPE on the socket, echo stopped);
  // TCP has already recorded the FIN (user space sees EPOLLRDHUP, recv() returns 0),
  // so the empty carrier is dropped.
  if (len == 0) return SK_DROP;
  // Retransmitted bytes. When a retransmission overlaps bytes TCP already has, TCP
  // queues the whole segment and leaves skipping the old part to the reader
  // (tcp_recvmsg starts at copied_seq - seq). The psock's reader, tcp_read_skb(),
  // hands the verdict whole skbs and skips nothing, so the old part would be echoed
  // twice. Seen here under load as one 65,483-byte segment repeated in the echo,
  // and in a trace as an skb starting where an already judged one started. The TCP
  // sequence numbers in the skb's control block say which bytes it holds: a segment
  // wholly judged before is dropped, and the judged front of a partial one is cut
  // off, so every byte is judged exactly once. Used only where the control block adds
  // up (end - start = payload, + 1 with a FIN), so another kernel's layout is never
  // misread.
  struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);
  __u32 seq = *(__u32 *)&kskb->cb[0];
  __u32 end_seq = *(__u32 *)&kskb->cb[4];
  __u32 span = end_seq - seq;
  if (span == len || span == len + 1) {
    if (st->flags & ECO_CONN_SEQ) {
      if ((__s32)(end_seq - st->next_seq) <= 0) {
        st->repeats++;
        return SK_DROP;
      }
      __s32 old = (__s32)(st->next_seq - seq);
      if (old > 0) {
        if (cut_front(skb, (__u32)old) != 0) {
          // Not cut (no memory, or more than a cut can take): the echo can no longer
          // be exact, so user space resets the connection rather than repeat bytes.
          st->flags |= ECO_CONN_BROKEN;
          stat_add(ECO_STAT_BROKEN, 1);
          notify(st, cookie);
          return SK_DROP;
        }
        st->repeats++;
        len = skb->len;
      }
    }
    st->next_seq = end_seq;
    st->flags |= ECO_CONN_SEQ;
  } else {
    st->unchecked++;
  }
  if (st->flags & ECO_CONN_BROKEN) return SK_DROP;
  if (st->flags & ECO_CONN_PASS) {
    st->passed += len;
    return SK_PASS;
  }
  struct bpf_sock *bs = skb->sk;
  if (!bs) return hand_off(st, cookie, len);
  struct tcp_sock *tp = bpf_skc_to_tcp_sock(bs);
  if (!tp) return hand_off(st, cookie, len);
  __u32 write_seq = tp->write_seq;
  if (!(st->flags & ECO_CONN_BASE)) {
    // First skb: nothing was written on this socket yet (the server never sends
    // before insertion), so write_seq here is where the echo starts.
    st->base_seq = write_seq;
    st->flags |= ECO_CONN_BASE;
  }
  // Redirected but not yet in the send queue (sequence arithmetic wraps mod 2^32).
  __u32 waiting = (__u32)st->redirected - (write_seq - st->base_seq);
  __u32 queued = write_seq - tp->snd_una;
  __u64 held = (__u64)waiting + queued + len;
  __u64 budget = (__u64)((struct sock *)tp)->sk_sndbuf / 2;
  if (budget < ECO_BPF_MIN_BUDGET) budget = ECO_BPF_MIN_BUDGET;
  if (held > budget) return hand_off(st, cookie, len);
  st->redirected += len;
  stat_add(ECO_STAT_BYTES, len);
  return bpf_sk_redirect_hash(skb, &eco_socks, &cookie, 0);
}

char LICENSE[] SEC("license") = "GPL";
