package clirt

import (
	"slices"
	"testing"
)

// TestExecTree: the processes a timed-out exec leaves are the roots (a
// parent outside the container) with its arguments, other than the main
// process, and all they started; never the main process's tree.
func TestExecTree(t *testing.T) {
	docker := []byte(`PID                 PPID                COMMAND
11549               11511               /sbin/docker-init -- /gateway-stub
11610               11549               /gateway-stub
11898               11511               /gateway-stub -exec tree 300
11899               11898               /gateway-stub -exec sleep 300
11950               11511               /gateway-stub -exec sleep 300
12000               11511               /gateway-stub -probe
`)
	podman := []byte(`HPID        PID         PPID        COMMAND
15756       1           0           /run/podman-init -- /gateway-stub 
15766       6           1           /gateway-stub -exec tree 300 
15838       10          0           /gateway-stub -exec tree 300 
15839       11          10          /gateway-stub -exec sleep 300 
`)
	for _, tc := range []struct {
		name     string
		out      []byte
		withHost bool
		main     int
		args     string
		want     []int
	}{
		{"docker", docker, false, 11549, "/gateway-stub -exec tree 300", []int{11898, 11899}},
		{"docker other", docker, false, 11549, "/gateway-stub -exec sleep 300", []int{11950}},
		{"docker main's args", docker, false, 11549, "/sbin/docker-init -- /gateway-stub", nil},
		{"docker none", docker, false, 11549, "/gateway-stub -exec id", nil},
		// The main process's child with the same arguments is not exec'd.
		{"podman", podman, true, 15756, "/gateway-stub -exec tree 300", []int{15838, 15839}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			procs, err := parseTop(tc.out, tc.withHost)
			if err != nil {
				t.Fatal(err)
			}
			got := execTree(procs, tc.main, tc.args)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := parseTop([]byte("PID PPID COMMAND\nx 1 /a\n"), false); err == nil {
		t.Error("parseTop of a PID that is no number: got no error")
	}
}
