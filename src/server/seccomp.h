#pragma once
// `--seccomp`: once eco serve has bound its sockets, started its threads and set up
// its engine, an allow-list of the system calls serving needs is installed on every
// thread (libseccomp, with TSYNC). Anything else fails with EPERM.
#include <string_view>

#include "util/result.h"

namespace eco::server {

// `engine` is the engine that runs: "uring" adds its three syscalls (the operations it
// submits are not seen by seccomp at all); "sockmap" adds bpf(), for the three map
// commands its loops use on maps they already hold (look up, update, delete), and no
// other command: no program can be loaded or attached once serving. Needs
// PR_SET_NO_NEW_PRIVS (set_no_new_privs).
Status install_seccomp(std::string_view engine);

// Test hook: with ECO_TEST_SECCOMP_PROBE=execve|openat|socket|bpf in the environment, tries
// that call once the filter is in and logs "seccomp probe: <call> refused (...)" or
// "seccomp probe: <call> allowed". Does nothing without the variable.
void run_seccomp_probe();

}  // namespace eco::server
