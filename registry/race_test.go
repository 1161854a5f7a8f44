//go:build race

package registry

// raceEnabled: the race detector makes every child process several times
// slower to start, so the crash test kills fewer of them under -race (the
// full count runs in the normal build, as make test runs it).
const raceEnabled = true
