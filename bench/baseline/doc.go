// Package baseline is a faithful Go re-creation of the engine zaki-agent
// replaces: the platform's Node instance-manager (and OpenClaw's sandbox
// code), which shells out to the docker CLI for every request. It exists
// to be benchmarked against (package bench), never to run instances.
//
// Per Ensure, as the old engine did:
//
//  1. `docker inspect` of the user's container, to learn whether it exists,
//     runs, and with which config hash (a label);
//  2. read registry.json, change the user's entry (lastUsedAtMs, or a new
//     entry with the lowest free port), and rewrite the file whole with a
//     plain write: no temp file, no fsync, no rename. Registry access is
//     serialised, as Node's single thread with synchronous fs calls
//     serialised it;
//  3. when the container is missing or was made from another config:
//     `docker rm -f` of the old one and `docker run -d` with the same flags
//     as the agent's defaults (RunArgs, built from the agent's own Config
//     so that the two never drift), then wait until the port answers the
//     agent's readiness check (agent.Probe). A stopped container is
//     `docker start`ed and waited for the same way.
//
// Two choices differ from a line-by-line port, both in the old engine's
// favour or neutral, and the benchmark says so:
//
//   - env is passed by an env file (mode 0600, removed after the run), not
//     by -e as the old engine did: a secret never goes on a command line in
//     this repository (the agent's plugins pass an in-memory file), and
//     writing the file is a tiny part of a run (BENCHMARKS.md);
//   - port picking holds the registry lock from read to write, so that
//     concurrent creates cannot pick the same port (the old engine's race
//     would make the 50-user scenario fail rather than measure it).
//
// List reads registry.json and runs one `docker ps` for the states of all
// containers: the cheapest way the old design can answer "what runs".
package baseline
