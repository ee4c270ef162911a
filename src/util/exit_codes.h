#pragma once
// Exit codes shared by every subcommand (documented in the README).
namespace eco {
inline constexpr int kExitOk = 0;
inline constexpr int kExitMismatch = 1;    // the echo differed (send/ping/bench), or a runtime failure
inline constexpr int kExitUsage = 2;       // bad flags, addresses or files; cannot listen
inline constexpr int kExitConnection = 3;  // cannot connect, reset, timed out
}  // namespace eco
