package agent

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/internal/testenv"
)

func TestProbe(t *testing.T) {
	ctx := context.Background()

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound) // any answer is an answer
	}))
	defer srv.Close()
	assert.NilError(t, probe(ctx, strings.TrimPrefix(srv.URL, "http://")))

	// Accepts and says nothing: a proxy still trying to reach the gateway.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	assert.ErrorContains(t, probe(ctx, silent.Addr().String()), "no answer")

	// Accepts and closes at once: a proxy that found nothing listening.
	closing, err := net.Listen("tcp", "127.0.0.1:0")
	assert.NilError(t, err)
	defer closing.Close()
	go func() {
		for {
			c, err := closing.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	assert.ErrorContains(t, probe(ctx, closing.Addr().String()), "without an answer")

	// Nothing on the port.
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.ClosedPort(t))
	assert.Assert(t, probe(ctx, addr) != nil)
}
