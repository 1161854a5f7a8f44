package bench

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// NotifySocket is a unixgram socket that plays systemd's NOTIFY_SOCKET:
// the agent started with NOTIFY_SOCKET=Path sends its sd_notify messages
// here, so that start-up is measured until exactly what systemd sees.
type NotifySocket struct {
	Path string
	conn *net.UnixConn
}

// ListenNotify listens on a new socket at path.
func ListenNotify(path string) (*NotifySocket, error) {
	os.Remove(path)
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	return &NotifySocket{Path: path, conn: c}, nil
}

// Drain discards the messages already queued.
func (n *NotifySocket) Drain() {
	buf := make([]byte, 4096)
	for {
		n.conn.SetReadDeadline(time.Now())
		if _, _, err := n.conn.ReadFromUnix(buf); err != nil {
			return
		}
	}
}

// WaitReady blocks until a message holding READY=1 arrives and returns
// when it arrived.
func (n *NotifySocket) WaitReady(ctx context.Context) (time.Time, error) {
	buf := make([]byte, 4096)
	for {
		dl, ok := ctx.Deadline()
		if !ok {
			dl = time.Now().Add(time.Minute)
		}
		n.conn.SetReadDeadline(dl)
		m, _, err := n.conn.ReadFromUnix(buf)
		at := time.Now()
		if err != nil {
			return time.Time{}, fmt.Errorf("wait for READY=1: %w", err)
		}
		for line := range strings.SplitSeq(string(buf[:m]), "\n") {
			if line == "READY=1" {
				return at, nil
			}
		}
	}
}

// Close closes the socket and removes its file.
func (n *NotifySocket) Close() error {
	err := n.conn.Close()
	os.Remove(n.Path)
	return err
}
