// Package runtimetest holds what every runtime.Runtime is tested with: an
// in-memory fake and a conformance suite.
//
// NewFake returns a Fake: an in-memory runtime.Runtime that keeps the
// contract of runtime.Runtime (validation first, idempotent stop and
// remove, ErrAlreadyExists on a taken name, references by ID, name or
// unique ID prefix, specs read back as an engine reads them), safe for
// concurrent use and faithful enough for the agent's unit tests. It opens
// no ports and runs no processes. Its hooks:
//
//   - faults per method (Methods): Fail, FailNext, Delay, Block, and Inject
//     for the general Fault (an error, a delay, a gate, a block until ctx
//     ends; for N calls or all; for one container only); ClearFaults;
//   - call counts: Calls, CallCounts, TotalCalls, ResetCalls;
//   - the engine going away: Down, Up, BreakEvents;
//   - things done behind the caller's back: Exit, Kill, OOM,
//     RemoveBehindBack, SetHealth, WriteLog, AddImage, RemoveImage;
//   - looking without calling: Container, Containers, CreatedSpec
//     (Env included), Networks, Subscribers.
//
// NewFakeCluster returns a FakeCluster: the same fake in cluster mode, a
// runtime.Cluster of fake nodes that honours ContainerSpec.Placement,
// reports Container.Node and NodeAddr, lists fields it cannot enforce
// (WithUnenforced), and takes nodes down and up (SetNodeDown, SetNodeUp).
// A plain Fake is one local engine and does not implement runtime.Cluster.
//
// Run is the conformance suite that every runtime passes: the fake in this
// package's tests, the gRPC shims and plugin process in package runtime,
// and the docker and podman plugins against their real engines, where
// Config.Engine turns on the checks that need real containers (HTTP on
// the published port, the healthcheck, the data mount, the read-only
// root, logs, exit codes and the restart policy) with the gateway
// stand-in image (testenv.StubImage).
//
// FullSpec and ClassifySamples are the fixtures the plugins' parse tests
// share: a spec with every field set, and the runner of a client's stderr
// samples against its classifier.
package runtimetest
