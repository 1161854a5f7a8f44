// Package envfile keeps container environment values off command lines:
// the docker and podman clients both read `--env-file` the same way (one
// KEY=value a line, the rest of the line taken literally, `#` lines and
// blank lines skipped), so both plugins hand the values over in a file of
// mode 0600, in a directory of mode 0700 of its own, that lives only as
// long as the `create` call.
//
// A plugin killed in the middle of a create leaves its directory behind;
// Sweep removes such orphans (each plugin calls it when it starts).
package envfile
