#pragma once
// `--seccomp`: once eco serve has bound its sockets, started its threads and set up
// its engine, an allow-list of the system calls serving needs is installed on every
// thread (libseccomp, with TSYNC). Anything else fails with EPERM.
#include "engine/engine.h"
#include "util/result.h"

namespace eco::server {

// The common allow-list plus the calls the engine's table row names (io_uring's three
// calls, whose submitted operations seccomp never sees; sockmap's bpf() for map
// commands only). Needs PR_SET_NO_NEW_PRIVS (set_no_new_privs).
Status install_seccomp(const engine::EngineInfo& engine);

// Test hook: with ECO_TEST_SECCOMP_PROBE=execve|openat|socket|bpf in the environment, tries
// that call once the filter is in and logs "seccomp probe: <call> refused (...)" or
// "seccomp probe: <call> allowed". Does nothing without the variable.
void run_seccomp_probe();

}  // namespace eco::server
