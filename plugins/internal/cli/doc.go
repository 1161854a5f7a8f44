// Package cli is the one exec wrapper the CLI-driven runtime plugins
// (docker, podman) run their engine's command-line client through.
//
// Its contract:
//
//   - argv only, never a shell: the arguments reach the child as they are;
//   - the binary is looked up on PATH at every call (not once at New), so a
//     PATH changed after New, or a binary installed later, is seen;
//   - the child runs in its own process group, and when ctx ends the whole
//     group is killed: a passed deadline is reported as runtime.ErrTimeout
//     (wrapping context.DeadlineExceeded), a cancellation as
//     context.Canceled;
//   - stdout and stderr are captured separately, each up to a cap;
//   - RunFiles hands the child open files as descriptors 3, 4, ... (an
//     env file in memory, read as /dev/fd/3), nothing else is inherited;
//   - a non-zero exit is an *ExitError that keeps the exit code, the first
//     two words of argv (the binary's base name and the subcommand, never
//     the environment or the other arguments) and a trimmed stderr, and
//     wraps the error class that the caller's Classify hook finds in
//     stderr;
//   - a missing or unrunnable binary is runtime.ErrUnavailable;
//   - Stream runs a long-lived command (events, logs, pull) and hands back
//     its output as a reader, the child killed when ctx ends or the stream
//     is closed.
//
// The package knows nothing of any engine: the binary, the extra
// environment (e.g. DOCKER_HOST) and the stderr classifier come from the
// caller.
package cli
