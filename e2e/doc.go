// Package e2e holds zaki-agent's end-to-end test: the .deb built by
// `make packages` is installed into a Debian 12 container that boots systemd
// and uses the host's Docker engine, and the test then drives the installed
// units as an operator would (socket activation, ensure, restart, stop,
// watchdog, remove, purge, reinstall), and, in a second such container,
// with runtime = "podman" and the shipped drop-in for it. It runs with `make e2e` (scripts/e2e.sh), behind
// the build tag e2e; image.sh builds and caches the container image.
//
// The untagged tests here check the packaged files themselves (the
// configuration file documents every key).
package e2e
