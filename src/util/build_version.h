#pragma once
// The version of this build as `git describe` says it (0.1.0-172-g65c8860, with
// -dirty for a changed work tree), or the project version outside git. Written at
// build time by cmake/version.cmake, so a new commit recompiles one file.
namespace eco {

extern const char kBuildVersion[];
inline const char* build_version() { return kBuildVersion; }

}  // namespace eco
