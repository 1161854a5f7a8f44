//go:build !faults

package faults

// faultsBuild: see build_faults_test.go.
const faultsBuild = false
