#include "server/privileges.h"

#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <charconv>
#include <vector>

#include <fmt/format.h>

namespace eco::server {
namespace {

bool parse_id(const std::string& s, unsigned& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

}  // namespace

Status set_no_new_privs() {
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return sys_error("prctl(PR_SET_NO_NEW_PRIVS)");
  return {};
}

Result<Identity> resolve_identity(const std::string& user, const std::string& group_name) {
  if (user.empty() && !group_name.empty()) return Error{"--group needs --user (eco drops both or neither)"};
  if (geteuid() != 0)
    return Error{fmt::format("--user {} needs eco to be started as root (it is running as uid {})", user, geteuid())};
  Identity id;
  std::vector<char> buf(16384);
  passwd pw{};
  passwd* pwp = nullptr;
  int err = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &pwp);
  unsigned num = 0;
  if (pwp) {
    id.uid = pw.pw_uid;
    id.gid = pw.pw_gid;
  } else if (parse_id(user, num)) {
    id.uid = num;
    id.gid = num;
  } else {
    return err ? sys_error(fmt::format("cannot look up user '{}'", user), err)
               : Error{fmt::format("unknown user '{}' (--user takes a name from the passwd database or a uid)", user)};
  }
  id.user = user;
  id.group = pwp ? std::to_string(id.gid) : user;
  if (!group_name.empty()) {
    struct group gr {};
    struct group* grp = nullptr;
    err = getgrnam_r(group_name.c_str(), &gr, buf.data(), buf.size(), &grp);
    if (grp) {
      id.gid = gr.gr_gid;
    } else if (parse_id(group_name, num)) {
      id.gid = num;
    } else {
      return err ? sys_error(fmt::format("cannot look up group '{}'", group_name), err)
                 : Error{fmt::format("unknown group '{}' (--group takes a name from the group database or a gid)",
                                     group_name)};
    }
    id.group = group_name;
  }
  if (id.uid == 0) return Error{fmt::format("--user {} is root: nothing would be dropped", user)};
  return id;
}

Status drop_privileges(const Identity& id) {
  // Supplementary groups first (root's would otherwise survive), then the gid while
  // still root, then the uid, which also clears every capability.
  if (setgroups(1, &id.gid) != 0) return sys_error("setgroups");
  if (setgid(id.gid) != 0) return sys_error(fmt::format("setgid({})", id.gid));
  if (setuid(id.uid) != 0) return sys_error(fmt::format("setuid({})", id.uid));
  if (setuid(0) == 0 || seteuid(0) == 0) return Error{"dropping privileges failed: root could be regained"};
  if (id.gid != 0 && (setgid(0) == 0 || setegid(0) == 0))
    return Error{"dropping privileges failed: group root could be regained"};
  if (getuid() != id.uid || geteuid() != id.uid || getgid() != id.gid || getegid() != id.gid)
    return Error{"dropping privileges failed: the ids did not change"};
  return {};
}

}  // namespace eco::server
