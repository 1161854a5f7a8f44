package runtime_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
	"github.com/zaki-platform/zaki-agent/runtime"
	pb "github.com/zaki-platform/zaki-agent/runtime/proto"
)

// TestLaunchTLS: a launch hands the plugin its keys on a pipe that the
// plugin closes, nothing secret is in its environment or argv, calls go
// through, and no one else gets through the plugin's socket.
func TestLaunchTLS(t *testing.T) {
	ctx := context.Background()
	p, _ := launchFake(t, runtime.PluginConfig{})
	_, err := p.Info(ctx)
	assert.NilError(t, err)

	agentTLS, pipe, addr := p.LaunchTLS()
	assert.Assert(t, agentTLS != nil)
	assert.Assert(t, pipe != 0)
	assert.Assert(t, addr != nil)
	pid := p.Pid()
	assert.Assert(t, pid != 0)

	t.Run("no secret in env or argv", func(t *testing.T) {
		env := procFile(t, pid, "environ")
		assert.Check(t, is.Contains(env, "\x00ZAKI_PLUGIN_TLS_FD=3\x00"))
		for _, s := range []string{"PRIVATE KEY", "BEGIN", "PLUGIN_CLIENT_CERT"} {
			assert.Check(t, !strings.Contains(env, s), "%q in the plugin's environment", s)
			assert.Check(t, !strings.Contains(procFile(t, pid, "cmdline"), s), "%q in the plugin's argv", s)
		}
	})

	t.Run("the plugin closed the pipe", func(t *testing.T) {
		fds := procFDs(t, pid)
		assert.Assert(t, len(fds) > 3, "the plugin's fds: %v", fds) // the listing works
		assert.Check(t, !slices.Contains(fds, fmt.Sprintf("pipe:[%d]", pipe)), "the plugin's fds: %v", fds)
	})

	// dial connects to the plugin's socket over TLS with cfg and says
	// whether the plugin serves it: after the handshake a gRPC server
	// sends its HTTP/2 settings, or a TLS alert when it refused the client
	// (in TLS 1.3 the client's handshake ends before the server checks
	// the client's certificate).
	dial := func(t *testing.T, cfg *tls.Config) error {
		t.Helper()
		cfg = cfg.Clone()
		cfg.NextProtos = []string{"h2"}
		conn, err := net.Dial(addr.Network(), addr.String())
		assert.NilError(t, err)
		defer conn.Close()
		assert.NilError(t, conn.SetDeadline(time.Now().Add(10*time.Second)))
		tc := tls.Client(conn, cfg)
		if err := tc.Handshake(); err != nil {
			return err
		}
		// A refusing plugin may have sent its alert and closed before
		// the preface is written (the write then fails with a broken
		// pipe): the alert is still there to read, and says why.
		_, werr := tc.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		var b [1]byte
		if _, err = tc.Read(b[:]); err != nil {
			return err
		}
		return werr
	}

	t.Run("the agent's keys get through", func(t *testing.T) {
		assert.NilError(t, dial(t, agentTLS)) // so that the refusals below can be told apart
	})
	t.Run("no client certificate", func(t *testing.T) {
		cfg := agentTLS.Clone()
		cfg.Certificates = nil
		err := dial(t, cfg)
		assert.Check(t, is.ErrorContains(err, "certificate required"))
	})
	t.Run("another client certificate", func(t *testing.T) {
		cfg := agentTLS.Clone()
		cfg.Certificates = []tls.Certificate{otherCert(t, "zaki-agent", x509.ExtKeyUsageClientAuth)}
		err := dial(t, cfg)
		assert.Check(t, err != nil, "a stranger's certificate was served")
		t.Log(err)
	})
	t.Run("a client that trusts any plugin", func(t *testing.T) {
		cfg := agentTLS.Clone()
		cfg.Certificates = nil
		cfg.InsecureSkipVerify = true
		cfg.VerifyConnection = nil
		var served *x509.Certificate
		cfg.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			served, _ = x509.ParseCertificate(raw[0])
			return nil
		}
		err := dial(t, cfg)
		assert.Check(t, err != nil)
		// A stranger sees the plugin's certificate, never its key.
		assert.Assert(t, served != nil)
		assert.Check(t, is.Equal(served.Subject.CommonName, "zaki-runtime-plugin"))
	})
	t.Run("no TLS", func(t *testing.T) {
		conn, err := grpc.NewClient("unix:"+addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		assert.NilError(t, err)
		defer conn.Close()
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_, err = pb.NewRuntimeClient(conn).Info(cctx, &pb.InfoRequest{})
		assert.Check(t, err != nil, "a call in the clear was served")
	})

	// The plugin still serves the agent.
	_, err = p.Info(ctx)
	assert.NilError(t, err)

	// A relaunch makes new keys: the last launch's no longer get through.
	assert.NilError(t, syscall.Kill(pid, syscall.SIGKILL))
	select {
	case <-p.Relaunched():
	case <-time.After(30 * time.Second):
		t.Fatal("no relaunch")
	}
	_, err = p.Info(ctx)
	assert.NilError(t, err)
	agentTLS2, pipe2, addr2 := p.LaunchTLS()
	assert.Check(t, pipe2 != 0 && pipe2 != pipe)
	assert.Check(t, addr2.String() != addr.String())
	assert.Check(t, !bytes.Equal(agentTLS2.Certificates[0].Certificate[0], agentTLS.Certificates[0].Certificate[0]), "the agent's certificate is the same")
	addr = addr2
	assert.Check(t, dial(t, agentTLS2))
	assert.Check(t, dial(t, agentTLS) != nil, "the last launch's keys got through")
}

// TestLaunchTLSPluginMismatch: a plugin that presents another certificate
// than the one its launch made fails the launch; so does one that gets no
// keys (it does not serve in the clear). The plugin runs under a shell
// wrapper that changes what it finds on fd 3.
func TestLaunchTLSPluginMismatch(t *testing.T) {
	fake := testenv.Binary(t, "zaki-runtime-fake")
	dir := t.TempDir()
	wrapper := func(name, pre, redirect string) string {
		path := filepath.Join(dir, name)
		script := fmt.Sprintf("#!/bin/sh\n%s\nexec '%s' %s\n", pre, fake, redirect)
		assert.NilError(t, os.WriteFile(path, []byte(script), 0o700))
		return path
	}
	other, err := runtime.NewLaunchKeysPayload()
	assert.NilError(t, err)
	otherKeys := filepath.Join(dir, "other-keys.pem")
	assert.NilError(t, os.WriteFile(otherKeys, other, 0o600))

	// launch launches path and returns the error, and what the agent
	// logged meanwhile (the plugin's records included), in one string.
	launch := func(path string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		rec := newRecorder()
		p, err := runtime.Launch(ctx, runtime.PluginConfig{Name: "fake", Path: path, Logger: slog.New(rec)})
		if err == nil {
			_, err = p.Info(ctx)
			assert.Check(t, p.Close())
		}
		t.Logf("launch %s: %v", filepath.Base(path), err)
		var logs strings.Builder
		for _, r := range rec.all() {
			fmt.Fprintln(&logs, r.Message, r.Attrs)
		}
		return logs.String(), err
	}

	// The wrapper itself changes nothing.
	_, err = launch(wrapper("same.sh", "", ""))
	assert.NilError(t, err)

	_, err = launch(wrapper("other.sh", "", "3<'"+otherKeys+"'"))
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	assert.Check(t, is.ErrorContains(err, "certificate"))

	// A plugin that takes the agent's certificate from fd 3 but answers
	// with AutoMTLS: go-plugin trusts the certificate it prints in its
	// handshake line, the launch's pin does not.
	_, err = launch(wrapper("automtls.sh", `PLUGIN_CLIENT_CERT=$(awk '/BEGIN CERTIFICATE/ {n++} n == 2' <&3)
export PLUGIN_CLIENT_CERT
unset ZAKI_PLUGIN_TLS_FD`, "3<&-"))
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	assert.Check(t, is.ErrorContains(err, "the peer is not the one this launch made keys for"))

	logs, err := launch(wrapper("empty.sh", "", "3</dev/null"))
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	assert.Check(t, is.Contains(logs, "the TLS keys from fd 3: want 3 PEM blocks, got 0"))

	logs, err = launch(wrapper("none.sh", "unset ZAKI_PLUGIN_TLS_FD", "3<&-"))
	assert.Check(t, is.ErrorIs(err, runtime.ErrUnavailable))
	assert.Check(t, is.Contains(logs, "not serving in the clear"))
	assert.Check(t, is.DeepEqual(childPlugins(), []int(nil)))
}

// TestLaunchAutoMTLSFallback: a plugin started by an agent without launch
// keys (one older than them: go-plugin's AutoMTLS) still serves it.
func TestLaunchAutoMTLSFallback(t *testing.T) {
	p, _ := launchFake(t, runtime.WithAutoMTLS(runtime.PluginConfig{}))
	_, err := p.Info(context.Background())
	assert.NilError(t, err)
	env := procFile(t, p.Pid(), "environ")
	// What the test above looks for is there on this path (a public
	// certificate), so its absence there means something.
	assert.Check(t, is.Contains(env, "PLUGIN_CLIENT_CERT=-----BEGIN CERTIFICATE"))
	assert.Check(t, !strings.Contains(env, "ZAKI_PLUGIN_TLS_FD"))
}

func procFile(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	assert.NilError(t, err)
	return "\x00" + string(b)
}

// procFDs lists what the fds of process pid point at.
func procFDs(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	assert.NilError(t, err)
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// otherCert is a fresh self-signed P-256 certificate no launch made.
func otherCert(t *testing.T, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	assert.NilError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	assert.NilError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
