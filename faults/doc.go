// Package faults is the fault-injection, hardening and hostile-input suite
// of zaki-agent. It holds tests only: each one runs the real agent binary
// with the real docker plugin against the real engine (internal/testenv)
// and checks, after every fault it injects, the invariants the agent
// promises:
//
//   - SIGKILL of the agent at random points of a churn workload: the
//     registry parses, each user has at most one container, no port is
//     held by two users, every running labelled container has an entry, no
//     user data dir is lost, and no instance that was running was stopped
//     or restarted by the agent's death;
//   - SIGKILL of the runtime plugin mid-operation, and the engine (dockerd)
//     stopped and started again: calls fail with 503 runtime_unavailable
//     while it is gone, the agent stays up, instances come back on their
//     own and the state is resynced;
//   - a full disk under the state dir (a small tmpfs): writes fail with an
//     error that says so (503 resource_exhausted), memory never runs ahead of the disk, nothing is
//     corrupted, and the agent recovers once space is freed; meanwhile
//     new instances are refused by the minFreeSpace floor, the others are
//     read, reused and started, and a purge frees its data before it
//     writes the registry;
//   - an engine that never answers (a docker CLI stand-in on PATH): every
//     call ends within its bound and the agent keeps serving other users;
//   - CIS Docker Benchmark v1.6 section 5, one test per item, read back
//     from `docker inspect` of an instance made with the agent's defaults;
//     tenant isolation (no connection between tenants or to the agent's
//     socket, a fork bomb held by the PIDs limit, a memory hog OOM-killed
//     alone, reported and restarted);
//   - hostile input (ids, env keys, file names and images built to
//     escape): refused with 400 before any engine call, and no file ever
//     written outside the user's data dir, symlinks included.
//
// The hardening, isolation and hostile-input tests take about a minute and
// run with every `go test ./...`. The fault injections stop and start the
// machine's engine and kill processes a hundred times over: their files
// carry the build tag "faults" and run with `make faults`
// (scripts/faults.sh: go test -tags faults), which also prints a table of
// faults injected, invariant checks run and violations found.
package faults
