package runtime

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// handshake runs a TLS handshake between client and server over an
// in-memory connection and returns each side's error.
func handshake(client, server *tls.Config) (cerr, serr error) {
	a, b := net.Pipe()
	done := make(chan error, 1)
	go func() {
		s := tls.Server(a, server)
		err := s.Handshake()
		if err == nil {
			_, err = s.Write([]byte{1}) // the client reads this, or the server's alert
		}
		a.Close()
		done <- err
	}()
	c := tls.Client(b, client)
	cerr = c.Handshake()
	if cerr == nil {
		var one [1]byte
		_, cerr = c.Read(one[:])
	}
	b.Close()
	return cerr, <-done
}

func TestLaunchKeys(t *testing.T) {
	k, err := newLaunchKeys()
	assert.NilError(t, err)
	payload := bytes.Clone(k.payload)
	server, err := parseLaunchKeys(payload)
	assert.NilError(t, err)
	cerr, serr := handshake(k.client, server)
	assert.NilError(t, cerr)
	assert.NilError(t, serr)

	// Keys of another launch, on either side, fail the handshake.
	k2, err := newLaunchKeys()
	assert.NilError(t, err)
	server2, err := parseLaunchKeys(bytes.Clone(k2.payload))
	assert.NilError(t, err)
	cerr, _ = handshake(k.client, server2)
	assert.Check(t, is.ErrorContains(cerr, "certificate"), "the agent took another launch's plugin")
	_, serr = handshake(k2.client, server)
	assert.Check(t, is.ErrorContains(serr, "certificate"), "the plugin took another launch's agent")

	// TLS 1.3 and the P-256 keys only.
	old := k.client.Clone()
	old.MinVersion, old.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
	cerr, _ = handshake(old, server)
	assert.Check(t, cerr != nil, "TLS 1.2 was served")
	for _, c := range append(server.Certificates, k.client.Certificates...) {
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		assert.NilError(t, err)
		assert.Check(t, !leaf.IsCA, "a launch's certificate can sign others")
		pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
		assert.Check(t, ok && pub.Curve == elliptic.P256(), "%T", leaf.PublicKey)
	}

	// sendLaunchKeys clears what it was given once it is in the pipe.
	r, err := sendLaunchKeys(payload)
	assert.NilError(t, err)
	defer r.Close()
	assert.Check(t, bytes.Count(payload, []byte{0}) == len(payload))
}

func TestParseLaunchKeysRefuses(t *testing.T) {
	k, err := newLaunchKeys()
	assert.NilError(t, err)
	var blocks []*pem.Block
	for rest := k.payload; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	assert.Assert(t, is.Len(blocks, 3))
	other, err := newLaunchKeys()
	assert.NilError(t, err)
	otherKey, _ := pem.Decode(other.payload[bytes.Index(other.payload, []byte("-----BEGIN PRIVATE KEY")):])
	enc := func(bs ...*pem.Block) []byte {
		var out []byte
		for _, b := range bs {
			out = append(out, pem.EncodeToMemory(b)...)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"empty", nil, "want 3 PEM blocks, got 0"},
		{"two blocks", enc(blocks[0], blocks[1]), "got 2"},
		{"a fourth block", enc(blocks[0], blocks[1], blocks[2], blocks[2]), "bytes more"},
		{"out of order", enc(blocks[1], blocks[0], blocks[2]), `PEM block 1 is "PRIVATE KEY"`},
		{"another key", enc(blocks[0], otherKey, blocks[2]), "private key does not match public key"},
		{"junk after", append(enc(blocks...), "junk"...), "bytes more"},
		{"junk agent certificate", enc(blocks[0], blocks[1], &pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")}), "the agent's certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseLaunchKeys(tc.payload)
			assert.Check(t, is.ErrorContains(err, tc.want))
		})
	}
}

func TestReadLaunchKeys(t *testing.T) {
	k, err := newLaunchKeys()
	assert.NilError(t, err)
	r, err := sendLaunchKeys(bytes.Clone(k.payload))
	assert.NilError(t, err)
	fd, err := syscall.Dup(int(r.Fd()))
	assert.NilError(t, err)
	r.Close()
	t.Setenv(launchKeysEnv, strconv.Itoa(fd))

	// The fd is made close-on-exec first (init does it in a plugin).
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	assert.NilError(t, err)
	assert.Assert(t, flags&unix.FD_CLOEXEC == 0)
	closeOnExecLaunchKeys()
	flags, err = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	assert.NilError(t, err)
	assert.Check(t, flags&unix.FD_CLOEXEC != 0)

	cfg, err := readLaunchKeys()
	assert.NilError(t, err)
	assert.Check(t, cfg != nil)
	_, ok := os.LookupEnv(launchKeysEnv)
	assert.Check(t, !ok, "the variable is left")
	_, err = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	assert.Check(t, is.ErrorIs(err, syscall.EBADF), "the fd is left open")

	// No variable: nothing to read (an older agent).
	cfg, err = readLaunchKeys()
	assert.NilError(t, err)
	assert.Check(t, cfg == nil)

	t.Setenv(launchKeysEnv, "2")
	_, err = readLaunchKeys()
	assert.Check(t, is.ErrorContains(err, "want an fd number from 3 up"))
}
