#pragma once
// `--seccomp`: once eco serve has bound its sockets, started its threads and set up
// its engine, an allow-list of the system calls serving needs is installed on every
// thread (libseccomp, with TSYNC). Anything else fails with EPERM.
#include "util/result.h"

namespace eco::server {

// `uring`: the io_uring engine runs (its three syscalls are allowed; the operations
// it submits are not seen by seccomp at all). Needs PR_SET_NO_NEW_PRIVS (set_no_new_privs).
Status install_seccomp(bool uring);

// Test hook: with ECO_TEST_SECCOMP_PROBE=execve|openat|socket in the environment, tries
// that call once the filter is in and logs "seccomp probe: <call> refused (...)" or
// "seccomp probe: <call> allowed". Does nothing without the variable.
void run_seccomp_probe();

}  // namespace eco::server
