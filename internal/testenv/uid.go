package testenv

import (
	"fmt"
	"os/exec"
)

// LoginUID is the host's first login account on Debian: the uid every
// instance ran as while instance.user defaulted to "1000:1000".
const LoginUID = 1000

// AsUID runs argv as uid:uid with no supplementary groups (setpriv) and
// returns its combined output and error.
func AsUID(uid int, argv ...string) (string, error) {
	args := append([]string{fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups", "--"}, argv...)
	out, err := exec.Command("setpriv", args...).CombinedOutput()
	return string(out), err
}
