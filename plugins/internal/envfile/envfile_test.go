package envfile

import (
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestOpen(t *testing.T) {
	f, err := Open(map[string]string{"B": "two words = x", "A": "#not a comment"})
	assert.NilError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	assert.NilError(t, err)
	assert.Equal(t, string(b), "A=#not a comment\nB=two words = x\n")
	// No name in any filesystem: the descriptor's link is a memfd's.
	link, err := os.Readlink("/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10))
	assert.NilError(t, err)
	assert.Assert(t, strings.HasPrefix(link, "/memfd:zaki-env"), link)
	// Reopened by path, as the clients do, it reads the same from the
	// start; and it is sealed.
	r, err := os.Open("/proc/self/fd/" + strconv.FormatUint(uint64(f.Fd()), 10))
	assert.NilError(t, err)
	defer r.Close()
	b, err = io.ReadAll(r)
	assert.NilError(t, err)
	assert.Equal(t, string(b), "A=#not a comment\nB=two words = x\n")
	_, err = f.WriteAt([]byte("X"), 0)
	assert.Check(t, is.ErrorContains(err, "operation not permitted"))
}
