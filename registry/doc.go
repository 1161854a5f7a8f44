// Package registry keeps what the agent knows about each instance, and the
// users' port reservations, in one JSON file: registry.json in the state
// dir.
//
// # Durability
//
// Every change but a touch is durable before the call returns: Put,
// Delete and ReservePort stage the next state beside the current one,
// write it to a temp file in the state dir, fsync it, rename it over
// registry.json and fsync the directory, and only then publish it to
// readers. Memory never runs ahead of the disk, and a failed write (a full
// disk) changes nothing: not memory, not the file; its temp file is
// removed. A crash at any moment leaves registry.json holding the state
// before or after the interrupted change, never a mix and never an empty
// file; Open removes the temp files a crash leaves.
//
// Touch (and a Put that changes nothing but LastUsedAtMs) is the hot path:
// it moves lastUsedAtMs in memory only, and a flusher writes it at most
// FlushInterval (one second by default) after the first touch since the
// last write, as well as at Flush, at Close and with the next durable
// change. So a crash (SIGKILL, power loss) loses at most the lastUsedAtMs
// updates of the last FlushInterval (plus the few milliseconds one write
// takes), and nothing else. While writes fail (a full disk), touches wait
// in memory and the flusher retries every FlushInterval; a crash then also
// loses the touches made since the failures began.
//
// Reads (Get, List, Port, Ports, UID, UIDs, Node, Nodes) load an immutable snapshot and never wait
// for a write in progress.
//
// # The state dir
//
// Open takes an exclusive flock on agent.lock in the state dir and holds it
// until Close, so a second agent on the same dir fails at once with an
// error naming the PID that holds it. registry.json is never overwritten
// when it cannot be decoded: Open fails with an error that names the file
// and the problem, and leaves the file as it was. An empty file (zero
// bytes) counts as missing.
//
// # File format
//
//	{"version":1,"records":[
//	{"userId":"alice","containerName":"zaki-user-alice",...,"lastUsedAtMs":1700000000000}
//	],"ports":{
//	"alice":18790
//	},"uids":{
//	"alice":200000
//	},"nodes":{
//	"alice":"n1"
//	}}
//
// One record per line, sorted by user ID; ports maps each user ID to its
// host port, uids (written only when some user has one) to its uid, nodes
// (written only when some user is pinned) to its node.
// Record fields: userId, containerName, containerId, image,
// port, uid (when not 0), configHash, hashVersion, desiredHash, renew, state, labels,
// createdAtMs, lastUsedAtMs. A file with a newer version, an unknown field, a record
// whose port is not its user's reservation, or a port reserved twice is
// refused.
//
// # Legacy import
//
// The platform's old registry ({"entries": [{"containerName", "userId",
// "createdAtMs", "lastUsedAtMs", "port", "image", "configHash"}]}, no
// version field), found as registry.json or at Options.LegacyPath when the
// state dir has no registry yet, is imported: its bytes are copied to
// registry.legacy.json first (registry.legacy-<unix ms>.json when a
// different copy is there already), then registry.json is written in the
// current format. Imported config hashes get HashVersion 0 (encoding unknown),
// imported states are empty (unknown), and each entry's port becomes its
// user's reservation; two users on one port, or a user twice, fail the
// import instead of being silently resolved.
//
// # Ports
//
// A user's port is reserved once (ReservePort, or a Put adopting a
// record's port) and kept for life: Delete keeps it, no other user ever
// gets it, and a Put whose Port differs from the user's reservation fails
// with ErrPortConflict. Only MovePort changes it: when another process on
// the host holds the port, the user moves to a new one and the old one is
// nobody's.
//
// # Uids
//
// A user's uid (ReserveUID, or a Put adopting a record's UID) is kept for
// life in the same way, and never moves: the user's data on disk is owned
// by it. A record's UID is 0 (the container runs as a fixed user) or its
// user's reservation; anything else fails with ErrUIDConflict.
//
// # Nodes
//
// With a cluster runtime each user is pinned to a node (PinNode, or
// PinNodes learning a pin back from where its container runs), kept for
// life like its uid: the user's data lives on that node. Many users share
// a node; a user's pin never moves.
package registry
