package podman

import (
	"net"
	"strings"
)

// pullArgs is `podman pull` of ref. A registry on this host (localhost,
// a loopback address) is pulled from without TLS verification
// (--tls-verify=false), as docker trusts 127.0.0.0/8 by default; every
// other registry keeps podman's settings (registries.conf). Podman prints
// its progress on stderr (Dialect.PullOnStderr).
func pullArgs(ref string) []string {
	args := []string{"pull"}
	if loopbackRegistry(ref) {
		args = append(args, "--tls-verify=false")
	}
	return append(args, "--", ref)
}

// loopbackRegistry reports whether ref names a registry on this host:
// its first path element has a dot or a port, or is localhost, and the
// host is localhost or a loopback address.
func loopbackRegistry(ref string) bool {
	domain, _, ok := strings.Cut(ref, "/")
	if !ok || !(strings.ContainsAny(domain, ".:") || domain == "localhost" || strings.HasPrefix(domain, "[")) {
		return false
	}
	host := domain
	if h, _, err := net.SplitHostPort(domain); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
