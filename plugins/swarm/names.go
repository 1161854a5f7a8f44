package swarm

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// swarmkit's rule for a service name: letters and digits, with runs of
// "-" and "_" between them only, at most maxServiceName characters.
var serviceNameRE = regexp.MustCompile(`^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$`)

const (
	maxServiceName = 63
	hashLen        = 10 // hex digits of the suffix of a mapped name
)

// serviceName returns the swarm service name of container name: name
// itself when swarmkit accepts it, otherwise a name it accepts made from
// it deterministically: the characters it refuses (".") become "-", the
// result is cut to leave room for "-" and hashLen hex digits of the
// SHA-256 of the whole name, which tell apart the names that map to the
// same readable part ("a.b" and "a-b" included). The requested name is
// kept in the service's LabelName, which is what Container.Name reads.
func serviceName(name string) string {
	if len(name) <= maxServiceName && serviceNameRE.MatchString(name) {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	suffix := hex.EncodeToString(sum[:])[:hashLen]
	base := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, name)
	base = strings.Trim(base, "-_")
	if max := maxServiceName - 1 - hashLen; len(base) > max {
		base = strings.TrimRight(base[:max], "-_")
	}
	if base == "" {
		return "zaki-" + suffix
	}
	return base + "-" + suffix
}
