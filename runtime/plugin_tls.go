package runtime

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strconv"
	"syscall"
	"time"
)

// The channel between the agent and its runtime plugin is mutual TLS 1.3
// over the plugin's Unix socket: the agent talks only to the plugin it
// launched, and the plugin only to the agent that launched it; any other
// local process that connects to the socket fails the handshake.
//
// Its keys are made by the agent at each launch (a relaunch makes new
// ones): two self-signed ECDSA P-256 certificates, the plugin's and the
// agent's. The agent keeps its own key and trusts exactly the plugin's
// certificate; it hands the plugin the plugin's certificate and key and
// its own certificate through a pipe the plugin inherits as fd 3
// (launchKeysFD), named by ZAKI_PLUGIN_TLS_FD=3 in the plugin's
// environment (the fd's number, not a secret): never in the environment
// or argv, which other processes of the same uid can read in /proc. The
// agent writes everything and closes its end before the plugin starts;
// the plugin reads to EOF and closes the fd before it serves.
//
// This replaces go-plugin's AutoMTLS, where each side makes an ECDSA P-521
// key at every launch and both sign and verify with P-521 in the
// handshake: about ten times the CPU of P-256, paid at every start-up and
// relaunch, and multiplied by a loaded machine. A plugin started without
// ZAKI_PLUGIN_TLS_FD (by an agent older than this) falls back to AutoMTLS
// when the agent asked for it (PLUGIN_CLIENT_CERT set), and refuses to
// serve in the clear otherwise. An agent with these keys needs a plugin
// that reads them: a plugin binary older than the agent serves without
// TLS and the agent's handshake fails (they ship in one package).

const (
	// launchKeysEnv names, in the plugin's environment, the fd from which
	// it reads its TLS keys.
	launchKeysEnv = "ZAKI_PLUGIN_TLS_FD"
	// launchKeysFD is that fd: the first of exec.Cmd.ExtraFiles.
	launchKeysFD = 3
	// maxLaunchKeys bounds what the plugin reads from the fd.
	maxLaunchKeys = 64 << 10
	// pluginServerName is the name the agent expects in the plugin's
	// certificate (the one go-plugin's AutoMTLS uses too).
	pluginServerName = "localhost"
)

// launchKeys is what one launch of a plugin uses: the agent's TLS config
// and what the plugin reads from its fd.
type launchKeys struct {
	client  *tls.Config
	payload []byte // PEM: the plugin's certificate, its key, the agent's certificate
}

// newLaunchKeys makes the keys of one launch.
func newLaunchKeys() (*launchKeys, error) {
	serverDER, serverKey, err := selfSigned("zaki-runtime-plugin", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	clientDER, clientKey, err := selfSigned("zaki-agent", x509.ExtKeyUsageClientAuth)
	if err != nil {
		return nil, err
	}
	serverLeaf, err := x509.ParseCertificate(serverDER)
	if err != nil {
		return nil, err
	}
	serverKeyDER, err := x509.MarshalPKCS8PrivateKey(serverKey)
	if err != nil {
		return nil, err
	}
	var payload bytes.Buffer
	for _, b := range []*pem.Block{
		{Type: "CERTIFICATE", Bytes: serverDER},
		{Type: "PRIVATE KEY", Bytes: serverKeyDER},
		{Type: "CERTIFICATE", Bytes: clientDER},
	} {
		if err := pem.Encode(&payload, b); err != nil {
			return nil, err
		}
	}
	clear(serverKeyDER)
	client := &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{clientDER}, PrivateKey: clientKey}},
		RootCAs:      certPool(serverLeaf),
		ServerName:   pluginServerName,
		MinVersion:   tls.VersionTLS13,
		// X25519 alone: the channel is a local socket, which no one can
		// record to break later; the hybrid post-quantum exchange would
		// add a third of the handshake's CPU.
		CurvePreferences: []tls.CurveID{tls.X25519},
		VerifyConnection: pinned(serverDER),
	}
	return &launchKeys{client: client, payload: payload.Bytes()}, nil
}

// selfSigned makes a P-256 key and a self-signed certificate for it, for
// one use (not a CA: it can sign nothing else).
func selfSigned(name string, usage x509.ExtKeyUsage) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, fmt.Errorf("plugin TLS key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.AddDate(30, 0, 0), // a plugin may run for years: gRPC handshakes again if it reconnects
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.DNSNames = []string{pluginServerName}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("plugin TLS certificate: %w", err)
	}
	return der, key, nil
}

func certPool(c *x509.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return pool
}

// pinned accepts a connection only when the peer presented exactly the
// certificate der, on top of the chain check against the pool holding it
// alone (which that certificate, no CA, passes only by itself). The pin
// holds even where the pool does not: go-plugin's client replaces the
// config's RootCAs with any certificate a plugin prints in its handshake
// line (AutoMTLS's way).
func pinned(der []byte) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, der) {
			return errors.New("the peer is not the one this launch made keys for")
		}
		return nil
	}
}

// parseLaunchKeys is the plugin's side of newLaunchKeys: its TLS config
// from the payload.
func parseLaunchKeys(payload []byte) (*tls.Config, error) {
	want := []string{"CERTIFICATE", "PRIVATE KEY", "CERTIFICATE"}
	var blocks []*pem.Block
	rest := payload
	for range want {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		blocks = append(blocks, b)
	}
	if len(blocks) != len(want) || len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("want %d PEM blocks, got %d and %d bytes more", len(want), len(blocks), len(bytes.TrimSpace(rest)))
	}
	for i, b := range blocks {
		if b.Type != want[i] {
			return nil, fmt.Errorf("PEM block %d is %q, want %q", i+1, b.Type, want[i])
		}
	}
	certPEM, keyPEM := pem.EncodeToMemory(blocks[0]), pem.EncodeToMemory(blocks[1])
	defer clear(keyPEM)
	cert, err := tls.X509KeyPair(certPEM, keyPEM) // checks that the key is the certificate's
	if err != nil {
		return nil, fmt.Errorf("the plugin's certificate and key: %w", err)
	}
	agent, err := x509.ParseCertificate(blocks[2].Bytes)
	if err != nil {
		return nil, fmt.Errorf("the agent's certificate: %w", err)
	}
	return &tls.Config{
		Certificates:     []tls.Certificate{cert},
		ClientAuth:       tls.RequireAndVerifyClientCert,
		ClientCAs:        certPool(agent),
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{tls.X25519},
		VerifyConnection: pinned(agent.Raw),
	}, nil
}

// readLaunchKeys reads the plugin's TLS config from the fd that
// ZAKI_PLUGIN_TLS_FD names, to EOF, and closes the fd. No variable: nil,
// nil (the agent is older than the launch keys).
func readLaunchKeys() (*tls.Config, error) {
	s, ok := os.LookupEnv(launchKeysEnv)
	if !ok {
		return nil, nil
	}
	os.Unsetenv(launchKeysEnv) // the fd is gone: no child must look for it
	fd, err := strconv.Atoi(s)
	if err != nil || fd < 3 {
		return nil, fmt.Errorf("%s=%q: want an fd number from 3 up", launchKeysEnv, s)
	}
	f := os.NewFile(uintptr(fd), "launch-keys")
	if f == nil {
		return nil, fmt.Errorf("%s=%d: no such fd", launchKeysEnv, fd)
	}
	payload, err := io.ReadAll(io.LimitReader(f, maxLaunchKeys+1))
	f.Close()
	defer clear(payload)
	switch {
	case err != nil:
		return nil, fmt.Errorf("read the TLS keys from fd %d: %w", fd, err)
	case len(payload) > maxLaunchKeys:
		return nil, fmt.Errorf("read the TLS keys from fd %d: more than %d bytes", fd, maxLaunchKeys)
	}
	cfg, err := parseLaunchKeys(payload)
	if err != nil {
		return nil, fmt.Errorf("the TLS keys from fd %d: %w", fd, err)
	}
	return cfg, nil
}

// init marks the fd of the launch keys close-on-exec at once, so that no
// process the plugin starts before Serve reads it (a CLI engine's first
// commands) inherits it. Nothing happens in a process without
// ZAKI_PLUGIN_TLS_FD (the agent).
func init() { closeOnExecLaunchKeys() }

func closeOnExecLaunchKeys() {
	if fd, err := strconv.Atoi(os.Getenv(launchKeysEnv)); err == nil && fd >= 3 {
		syscall.CloseOnExec(fd)
	}
}

// sendLaunchKeys writes payload into a new pipe, closes the write end and
// returns the read end, for the plugin to inherit (the payload is far
// below a pipe's buffer, so the write never waits for a reader). The
// payload is cleared.
func sendLaunchKeys(payload []byte) (*os.File, error) {
	defer clear(payload)
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("plugin TLS keys: %w", err)
	}
	_, err = w.Write(payload)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("plugin TLS keys: %w", err)
	}
	return r, nil
}

// pipeInode is f's inode, 0 if unknown.
func pipeInode(f *os.File) uint64 {
	var st syscall.Stat_t
	if syscall.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	return st.Ino
}
