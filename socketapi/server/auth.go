package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

// peer is who is at the other end of a connection, as the kernel saw it
// when the peer connected.
type peer struct {
	ok       bool // credentials known (a Unix socket)
	uid, gid int
	pid      int
	groups   []int // supplementary groups (SO_PEERGROUPS)
}

type peerKey struct{}

// connContext records the peer's credentials of each new connection.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, peerKey{}, peerOf(c))
}

func peerFrom(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

// peerOf reads c's peer credentials; a connection that is not a Unix
// socket has none.
func peerOf(c net.Conn) peer {
	if ec, ok := c.(*envelopeConn); ok {
		c = ec.Conn
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{}
	}
	var p peer
	raw.Control(func(fd uintptr) {
		cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return
		}
		p = peer{ok: true, uid: int(cred.Uid), gid: int(cred.Gid), pid: int(cred.Pid)}
		p.groups, _ = peerGroups(int(fd))
	})
	return p
}

// peerGroups reads the peer's supplementary groups (Linux 4.13 and later;
// none before).
func peerGroups(fd int) ([]int, error) {
	buf := make([]uint32, 64)
	for range 2 {
		n := uint32(len(buf) * 4)
		_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_PEERGROUPS,
			uintptr(unsafe.Pointer(&buf[0])), uintptr(unsafe.Pointer(&n)), 0)
		if e == unix.ERANGE && n/4 > uint32(len(buf)) && n/4 <= 1<<16 {
			buf = make([]uint32, n/4)
			continue
		}
		if e != 0 {
			return nil, e
		}
		gs := make([]int, 0, n/4)
		for _, g := range buf[:n/4] {
			gs = append(gs, int(g))
		}
		return gs, nil
	}
	return nil, errors.New("peer groups: buffer too small")
}

// authorize lets root, the agent's own uid and the allowed uids and gids
// call, and refuses what a browser sends.
func (s *Server) authorize(p peer, r *http.Request) error {
	if !p.ok {
		return socketapi.Errorf(socketapi.ErrForbidden, "caller unknown: the API is served on a Unix socket only")
	}
	if !s.allowed(p) {
		return socketapi.Errorf(socketapi.ErrForbidden, "uid %d is not allowed to call zaki-agent (see api.allowUids and api.allowGids)", p.uid)
	}
	return refuseBrowser(r)
}

// refuseBrowser refuses what only a browser sends, should the socket ever
// be forwarded to TCP: an Origin or Referer header, any Sec-Fetch-*
// header (a same-origin fetch sends neither Origin nor Referer, but every
// modern browser sends these), and a Host a page could have reached by
// DNS, which is how a rebinding attack arrives.
func refuseBrowser(r *http.Request) error {
	for _, h := range []string{"Origin", "Referer"} {
		if _, ok := r.Header[h]; ok {
			return socketapi.Errorf(socketapi.ErrForbidden, "requests with an %s header are refused: a browser must not drive this API", h)
		}
	}
	for h := range r.Header {
		if strings.HasPrefix(h, "Sec-Fetch-") {
			return socketapi.Errorf(socketapi.ErrForbidden, "requests with a %s header are refused: a browser must not drive this API", h)
		}
	}
	if !localHost(r.Host) {
		return socketapi.Errorf(socketapi.ErrForbidden, "Host %q is refused: the API answers only to a host without a domain (localhost), a loopback address, or none", r.Host)
	}
	return nil
}

// localHost tells whether a request's Host could not have come from a
// name an attacker's DNS answers for: none, a single label (localhost,
// zaki, d: what curl --unix-socket and Node send), a name under
// .localhost, or a loopback address.
func localHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	lower := strings.ToLower(host)
	return !strings.Contains(host, ".") || lower == "localhost" || strings.HasSuffix(lower, ".localhost")
}

func (s *Server) allowed(p peer) bool {
	if p.uid == 0 || p.uid == s.selfUID || s.allowU[p.uid] || s.allowG[p.gid] {
		return true
	}
	for _, g := range p.groups {
		if s.allowG[g] {
			return true
		}
	}
	return false
}
