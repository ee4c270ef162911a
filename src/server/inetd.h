#pragma once
namespace eco::server {

// `eco serve --inetd`: echo one connection handed over as stdin/stdout (inetd,
// xinetd, `systemd-socket-activate --inetd`), then exit. Returns the exit code.
int serve_inetd();

}  // namespace eco::server
