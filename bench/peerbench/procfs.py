"""Reading a server's CPU time and memory, and the machine's busy time, from /proc."""
import os
import time

CLK_TCK = os.sysconf('SC_CLK_TCK')


def proc_stat_fields(pid):
    """(ppid, utime, stime, cutime, cstime) in ticks; None if gone."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(')') + 2:].split()  # comm may hold spaces and ')'
    return int(rest[1]), int(rest[11]), int(rest[12]), int(rest[13]), int(rest[14])


def process_tree(root):
    children = {}
    for d in os.listdir('/proc'):
        if d.isdigit():
            f = proc_stat_fields(d)
            if f:
                children.setdefault(f[0], []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def status_kib(pid, key):
    try:
        with open(f'/proc/{pid}/status') as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kib(pid):
    try:
        with open(f'/proc/{pid}/smaps_rollup') as f:
            for line in f:
                if line.startswith('Pss:'):
                    return int(line.split()[1])
    except OSError:
        pass
    return status_kib(pid, 'VmRSS')


def run_ns(pid):
    """On-CPU nanoseconds of a process's live threads (schedstat: exact, where
    /proc/PID/stat counts whole clock ticks and truncates each process's share,
    which reads 0 for a tree of many small socat processes)."""
    total = 0
    try:
        for tid in os.listdir(f'/proc/{pid}/task'):
            try:
                with open(f'/proc/{pid}/task/{tid}/schedstat') as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    return total


def server_sample(root, tree):
    """CPU time and memory of the server, its children included (live ones
    directly, exited and reaped ones through cutime/cstime). ns is the total
    on-CPU time; user/kern are clock ticks, used only for the user share."""
    pids = process_tree(root) if tree else [root]
    user = kern = ns = 0
    rss = pss = 0
    for p in pids:
        f = proc_stat_fields(p)
        if not f:
            continue
        user += f[1] + f[3]
        kern += f[2] + f[4]
        ns += run_ns(p) + (f[3] + f[4]) * 1_000_000_000 // CLK_TCK
        rss += status_kib(p, 'VmRSS')
        pss += pss_kib(p) if tree else 0
    return dict(t=time.monotonic(), user=user, kern=kern, ns=ns, rss_kib=rss, pss_kib=pss if tree else rss,
                hwm_kib=status_kib(root, 'VmHWM'), nproc=len(pids))


def machine_busy_ticks():
    with open('/proc/stat') as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal: busy excludes idle+iowait
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
