/* Types and constants shared by echo.bpf.c and the sockmap engine's loader (C and
 * C++). Fixed-width kernel types only, so the layout is the same on both sides. */
#ifndef ECO_BPF_ECHO_SHARED_H
#define ECO_BPF_ECHO_SHARED_H

#include <linux/types.h>

#define ECO_BPF_MAX_CONNS 65536
/* Redirect budget floor: a fresh socket's send buffer is small (16 KiB), and a
 * budget below one segment would hand every bulk sender to user space at once. */
#define ECO_BPF_MIN_BUDGET (64 * 1024)

enum eco_conn_flags {
  ECO_CONN_BASE = 1, /* base_seq recorded */
  ECO_CONN_PASS = 2, /* handed to user space: every skb is passed, none redirected */
  ECO_CONN_SEQ = 4,  /* next_seq recorded */
  ECO_CONN_BROKEN = 8, /* an overlap could not be cut: user space resets it */
};

struct eco_conn_state {
  __u64 redirected; /* bytes redirected to egress (echoed in-kernel) */
  __u64 passed;     /* bytes passed to user space */
  __u64 tag;        /* user space's connection tag, echoed in the handoff record */
  __u32 base_seq;   /* write_seq when the first skb was judged */
  __u32 flags;      /* eco_conn_flags */
  __u32 next_seq;   /* end of the last skb judged (TCP sequence of the peer's bytes) */
  __u32 repeats;    /* retransmitted skbs whose old bytes were dropped or cut off */
  __u32 unchecked;  /* skbs whose sequence numbers did not add up (not checked) */
};

struct eco_handoff {
  __u64 cookie;
  __u64 tag;
};

/* Key of the loop-wide totals in eco_conns: .redirected = bytes echoed in-kernel,
 * .passed = connections handed to user space, .repeats = connections marked broken
 * (ECO_CONN_BROKEN), which user space looks for only when this count moves. */
#define ECO_TOTALS_KEY 0ULL
enum eco_stat {
  ECO_STAT_BYTES = 0,
  ECO_STAT_HANDOFFS = 1,
  ECO_STAT_BROKEN = 2,
};

#endif
