// Package envfile keeps container environment values off command lines
// and off disk: the docker and podman clients both read `--env-file` the
// same way (one KEY=value a line, the rest of the line taken literally,
// `#` lines and blank lines skipped, at most runtime.MaxEnvLine bytes a
// line), and both open the path they are given, so both plugins hand the
// values over in an anonymous in-memory file (memfd) that the client
// inherits as descriptor 3 and reads as /dev/fd/3.
//
// The file has no name in any filesystem: it lives only as long as a
// descriptor to it is open, that is as long as the create call and the
// client it runs. A plugin killed in the middle of a create leaves
// nothing behind (its client dies with it: package cli's Pdeathsig), so
// there is no sweep of orphans. Env files of older versions (directories
// zaki-env-* under the temporary directory) are left to the unit's
// PrivateTmp, which discards them when the service stops.
package envfile
