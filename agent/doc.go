// Package agent owns the per-user instances of one host: it decides what
// each user's container should be, asks a runtime.Runtime to make it so,
// and records the outcome in the registry.
//
// The contract, whatever the caller or the engine does:
//
//   - one user, one container: calls for a user are serialised by a per-user
//     lock (locks.go), other users proceed in parallel, and a bounded number
//     of engine operations run at once;
//   - Ensure (ensure.go) returns only when the instance accepts connections
//     on its port; a container with the same config hash is reused (no
//     engine call when it runs), one with another hash is recreated unless
//     it is hot, then kept and marked stale;
//   - each user keeps one host port for life (ports.go): a new user's port
//     is held in memory while its container is made, then reserved by its
//     record;
//   - the registry never runs ahead of the engine the wrong way: a record is
//     written after the container exists, and a container the registry does
//     not know is adopted from its labels (reconcile.go), never duplicated;
//   - pruning (prune.go) stops and removes containers, never a user's data
//     dir; stopping the agent stops no container;
//   - an import (import.go) brings the Zaki platform's router users over:
//     it copies their tenant-writable data dirs without following
//     anything out of them, keeps their ports when free, and replaces
//     their unlabelled containers; it never writes to the source;
//   - with a runtime that places instances on nodes (cluster.go), each user
//     is pinned to one node for life, where its data lives: a user whose
//     node is not ready is missing, and its ensure is refused
//     (ErrNodeUnavailable), never made on another node; a local runtime
//     sees none of it;
//   - errors are classes of internal/errdefs, wrapped with the user and the
//     step where they arose.
//
// The agent's view of the engine is kept in memory: fed by the runtime's
// event stream and by full resyncs at start-up and after the stream breaks
// (reconcile.go, outage.go). Config (config.go) holds only the instance,
// prune and hot settings; the daemon's own settings and the config-file
// loader live in package agent/daemon. ARCHITECTURE.md at the top of the
// repository shows how the layers fit.
package agent
