#pragma once
// Privileges: eco never gains any (PR_SET_NO_NEW_PRIVS) and, started as root with
// --user/--group, gives them up once its sockets are bound.
#include <string>
#include <sys/types.h>

#include "util/result.h"

namespace eco::server {

// PR_SET_NO_NEW_PRIVS: no exec from here on can raise privileges (setuid binaries,
// file capabilities). Also the precondition for an unprivileged seccomp filter.
Status set_no_new_privs();

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string user, group;  // for logs
};

// Looks up --user and --group (names, or numeric ids) while /etc is still readable.
// Without --group the user's primary group is used. Fails unless running as root,
// so a forgotten sudo is an error rather than a silent no-op.
Result<Identity> resolve_identity(const std::string& user, const std::string& group);

// setgroups, setgid, setuid, in that order (each needs the privilege the next drops),
// then checks that neither root uid nor root gid can be taken back.
Status drop_privileges(const Identity& id);

}  // namespace eco::server
