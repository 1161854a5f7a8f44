// Package version holds the build's version, set by the linker
// (-X github.com/zaki-platform/zaki-agent/internal/version.Version=...).
package version

// Version is the version of this build; "dev" when not set at link time.
var Version = "dev"
