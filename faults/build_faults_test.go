//go:build faults

package faults

// faultsBuild is true in `make faults` (the build tag faults), false in
// `make test`, which runs this package's untagged tests: the costliest
// parts of those run in make faults only.
const faultsBuild = true
