// Package podman is the podman-CLI runtime: a runtime.Runtime that drives
// rootful podman (Debian 12's podman 4.3: netavark, cgroupfs on cgroup
// v1, the file events backend) through the `podman` command-line client.
// It is the CLI engine of package plugins/internal/clirt in podman's
// dialect (podman.go), which keeps the docker plugin's promises: only
// machine-readable output is parsed; caller values go as --flag=value and
// the image ends the options; environment values go through an
// --env-file that is an in-memory file inherited as /dev/fd/3, never on
// disk (podman opens the path as docker does); bad input
// is refused before any podman command runs; podman's stderr is
// classified in one place (classify.go); Stop and Remove take many
// containers in one call. The plugin binary (cmd/zaki-runtime-podman)
// serves it over go-plugin; the agent takes it with runtime = "podman" and
// nothing else changed.
//
// Podman's reading of some ContainerSpec fields, and what Create adds:
//
//   - podman raises a container's nofile and nproc limits to its own
//     maximum unless told otherwise, which root without CAP_SYS_RESOURCE
//     may not do: Create sets each one the spec leaves out to the
//     plugin's own limits (nproc no higher than pid_max, podman's own
//     ceiling; create.go), and they read back as absent;
//   - Create never pulls (--pull never), and a short name resolves
//     against local images only ("zaki/gateway-stub:latest" finds
//     "localhost/zaki/gateway-stub:latest"); the reference as given is
//     kept in an annotation and is what Image reads back;
//   - --read-only comes with --read-only-tmpfs=false: only the spec's
//     tmpfs are writable, as with docker; podman's default tmpfs options
//     (rw, rprivate, nosuid, nodev, tmpcopyup) read back as absent;
//   - podman stores the effective capabilities, so a spec that dropped
//     ALL is marked by an annotation and reads back as ALL plus the
//     capabilities the container has;
//   - a healthcheck is given as a JSON array, the exec form: no shell
//     needed (a one-word test is podman's shell form; see health.go);
//     without systemd as PID 1, Run runs the checks (healthd.go);
//   - DisableICC is netavark's isolate option plus a FORWARD rule that
//     drops traffic between the bridge's ports (icc.go);
//   - Stop and Remove pass --ignore (without it, one missing container
//     fails the whole command before it touches any), and Remove with
//     Force kills at once (--time=0), as docker's rm -f; podman names a
//     failed container by its full ID, so a failed batch is sorted out
//     with one more inspect (identify, lifecycle.go);
//   - Events matches the label selector itself: podman ORs label filters
//     and cannot match a key alone; podman says "died" and "remove" for
//     docker's die and destroy, and has no stop event on `podman stop`
//     and no oom event (events.go); on this host (runc, cgroup v1) an
//     OOM kill is a died event with exit code 137, and inspect's
//     OOMKilled stays false;
//   - a followed tail of Logs is cut at the moment of the call (logs.go);
//   - Log is the k8s-file driver with max-size only: conmon keeps one
//     file and empties it when it reaches the size (podman 4.3 takes
//     --log-opt max-file and ignores it, so it is not passed); the size
//     reads back from an annotation (inspect prints it rounded) and
//     MaxFiles as 1;
//   - a registry on a loopback address is pulled from without TLS
//     verification, as docker trusts 127.0.0.0/8;
//   - Info's cgroup version and security options come from one `podman
//     info` that Run makes at start (it takes seconds on a loaded host);
//   - every command runs with --log-level=error, so that podman's notes
//     about the host stay out of errors and logs.
package podman
