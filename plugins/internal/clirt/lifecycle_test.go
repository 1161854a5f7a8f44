package clirt

import (
	"regexp"
	"strings"
	"testing"

	"gotest.tools/v3/assert"

	"github.com/zaki-platform/zaki-agent/plugins/internal/cli"
	"github.com/zaki-platform/zaki-agent/runtime"
)

// TestAttribute: a client that names a failed container by its full ID
// (podman); the refs it neither printed nor names are gone (success) or
// get the lines no container claims; the client's log lines are notes.
func TestAttribute(t *testing.T) {
	e := New(Config{Binary: "podman"}, Dialect{
		Classify: Classes{{Class: runtime.ErrInvalidArgument, RE: regexp.MustCompile(`container state improper`)}}.Match,
		Note:     regexp.MustCompile(`^time="[^"]*" level=`).MatchString,
	})
	idC := strings.Repeat("c", 64)
	idD := strings.Repeat("d", 64)
	ee := &cli.ExitError{Command: "podman rm", ExitCode: 2}
	stderr := "time=\"2026-11-26T22:59:54Z\" level=error msg=\"Removing timer for container " + idC + " healthcheck: unable to get systemd connection: dial unix /run/systemd/private: connect: no such file or directory\"\n" +
		"Error: cannot remove container " + idC + " as it is running - running or paused containers cannot be removed without force: container state improper\n"
	pending := []string{"c", "gone", "d1"}
	left := map[string]Identity{"c": {ID: idC, Name: "c"}, "d1": {ID: idD, Name: "d"}}
	err := e.attribute(ee, pending, left, stderr)
	be, ok := err.(*runtime.BatchError)
	assert.Assert(t, ok, "got %T %v", err, err)
	assert.Equal(t, len(be.Failed), 2)
	assert.Equal(t, runtime.Class(be.Failed["c"]), runtime.ErrInvalidArgument)
	// d1 is still there but no line names it: it gets the unclaimed lines
	// (none here), so the batch's own error.
	assert.Equal(t, be.Failed["d1"], error(ee))
	_, failed := be.Failed["gone"]
	assert.Assert(t, !failed)

	assert.NilError(t, e.attribute(ee, []string{"gone"}, map[string]Identity{}, stderr))
}

// TestAttributeAsGiven: a client that names failed containers as given
// (docker); a ref is not found inside a longer one, and a line saying the
// container does not exist is success.
func TestAttributeAsGiven(t *testing.T) {
	e := New(Config{Binary: "docker"}, Dialect{
		Classify: Classes{{Class: runtime.ErrNotFound, RE: regexp.MustCompile(`No such container`)}}.Match,
	})
	ee := &cli.ExitError{Command: "docker rm", ExitCode: 1}
	stderr := "Error response from daemon: No such container: x1\nError response from daemon: cannot remove x10: it is running...\n"
	pending := []string{"x1", "x10"}
	left := map[string]Identity{"x1": {}, "x10": {}}
	err := e.attribute(ee, pending, left, stderr)
	be, ok := err.(*runtime.BatchError)
	assert.Assert(t, ok, "got %T %v", err, err)
	assert.Equal(t, len(be.Failed), 1)
	assert.ErrorContains(t, be.Failed["x10"], "cannot remove x10")
}

func TestDedupe(t *testing.T) {
	assert.DeepEqual(t, dedupe([]string{"a", "b", "a", "c", "b"}), []string{"a", "b", "c"})
}
