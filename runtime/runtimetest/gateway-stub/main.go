// Command gateway-stub stands in for the OpenClaw gateway in tests and in
// `make run`, where no real image can be pulled. It is built static and
// shipped in a FROM scratch image (see the Dockerfile beside it).
//
// It serves HTTP on -addr (":18789"):
//
//	GET  /health             200 "ok" (the readiness and health probe)
//	GET  /                   a one-line greeting with the user id
//	POST /files/{name}       writes the body to {data}/{name}
//	GET  /files/{name}       reads {data}/{name}
//	POST /write?path=P       writes the body to the absolute path P, anywhere;
//	                         reports "written" or "error: ERRNO: message"
//	GET  /env/{key}          whether the variable is set (never its value)
//	GET  /dial?addr=h:p      tries a TCP connection, reports "connected" or the error
//	POST /spawn?n=N          starts N sleeping children; reports how many started
//	POST /alloc?mb=N         allocates and touches N MiB, then holds it
//	POST /exit?code=N        exits with code N
//
// On start it writes {data}/gateway-stub.started so tests can see that the
// data mount is writable. With STUB_STOP_DELAY set (a Go duration) it goes
// on serving that long after a SIGTERM before it stops: a gateway slow to
// stop. `gateway-stub -probe` checks /health and exits 0
// or 1, for HEALTHCHECK. `gateway-stub -sleep` sleeps forever (a spawned child).
//
// `gateway-stub -exec VERB ARGS...` is a command for exec tests (the image
// has no shell), with known output, exit code and duration:
//
//	echo WORDS...      prints the words on stdout
//	stderr WORDS...    prints the words on stderr
//	exit N             exits with code N
//	sleep SECONDS      sleeps, then exits 0
//	tree SECONDS       starts a child "-exec sleep SECONDS", then sleeps too
//	spam BYTES         writes BYTES bytes on stdout and as many on stderr
//	id                 prints uid:gid
//	procs WORD         prints how many other processes have WORD in their
//	                   command line (read from /proc)
//	mkdir PATH UID GID makes the directory PATH (and its missing parents),
//	                   mode 0700, owned by UID:GID (the swarm runtime's
//	                   PrepareDir job runs it as root on a node)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "gateway-stub: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gateway-stub", flag.ContinueOnError)
	addr := fs.String("addr", ":18789", "listen address")
	data := fs.String("data", envOr("GATEWAY_DATA_DIR", "/home/node/.openclaw"), "data directory")
	probe := fs.Bool("probe", false, "check /health on -addr and exit 0 (healthy) or 1")
	sleep := fs.Bool("sleep", false, "sleep until killed")
	execVerb := fs.Bool("exec", false, "run an exec-test verb (see the package doc)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *execVerb:
		os.Exit(execTest(fs.Args()))
	case *sleep:
		select {}
	case *probe:
		return doProbe(*addr)
	}
	return serve(*addr, *data)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func doProbe(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/health")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("health: %s", resp.Status)
	}
	return nil
}

func serve(addr, data string) error {
	user := os.Getenv("ZAKI_USER_ID")
	if err := os.WriteFile(filepath.Join(data, "gateway-stub.started"), []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "gateway-stub: cannot write to data dir: %v\n", err)
	}
	var held [][]byte
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "gateway-stub for user %q\n", user)
	})
	mux.HandleFunc("POST /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := dataPath(data, r.PathValue("name"))
		if !ok {
			http.Error(w, "bad name", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "written\n")
	})
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		p, ok := dataPath(data, r.PathValue("name"))
		if !ok {
			http.Error(w, "bad name", http.StatusBadRequest)
			return
		}
		b, err := os.ReadFile(p)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("POST /write", func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Query().Get("path")
		if !filepath.IsAbs(p) {
			http.Error(w, "path must be absolute", http.StatusBadRequest)
			return
		}
		b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err := os.WriteFile(p, b, 0o600); err != nil {
			name := "unknown"
			var errno syscall.Errno
			if errors.As(err, &errno) {
				name = unix.ErrnoName(errno)
			}
			fmt.Fprintf(w, "error: %s: %v\n", name, err)
			return
		}
		io.WriteString(w, "written\n")
	})
	mux.HandleFunc("GET /env/{key}", func(w http.ResponseWriter, r *http.Request) {
		_, ok := os.LookupEnv(r.PathValue("key"))
		fmt.Fprintf(w, "%v\n", ok)
	})
	mux.HandleFunc("GET /dial", func(w http.ResponseWriter, r *http.Request) {
		c, err := net.DialTimeout("tcp", r.URL.Query().Get("addr"), 2*time.Second)
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
			return
		}
		c.Close()
		io.WriteString(w, "connected\n")
	})
	mux.HandleFunc("POST /spawn", func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("n"))
		self, _ := os.Executable()
		started := 0
		var firstErr error
		for range n {
			cmd := exec.Command(self, "-sleep")
			if err := cmd.Start(); err != nil {
				firstErr = err
				break
			}
			started++
		}
		fmt.Fprintf(w, "started %d\n", started)
		if firstErr != nil {
			fmt.Fprintf(w, "error: %v\n", firstErr)
		}
	})
	mux.HandleFunc("POST /alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, _ := strconv.Atoi(r.URL.Query().Get("mb"))
		for range mb {
			b := make([]byte, 1<<20)
			for i := range b {
				b[i] = 1
			}
			held = append(held, b)
		}
		fmt.Fprintf(w, "holding %d MiB\n", len(held))
	})
	mux.HandleFunc("POST /exit", func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		io.WriteString(w, "bye\n")
		go func() { time.Sleep(50 * time.Millisecond); os.Exit(code) }()
	})
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Printf("%s %s %s\n", time.Now().UTC().Format(time.RFC3339), r.Method, r.URL.Path)
		mux.ServeHTTP(w, r)
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("gateway-stub listening on %s (user %q, data %s)\n", ln.Addr(), user, data)
	srv := &http.Server{Handler: logged, ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	stopDelay, err := time.ParseDuration(envOr("STUB_STOP_DELAY", "0s"))
	if err != nil {
		return fmt.Errorf("STUB_STOP_DELAY: %w", err)
	}
	go func() {
		<-ctx.Done()
		time.Sleep(stopDelay)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	fmt.Println("gateway-stub stopped")
	return nil
}

// dataPath joins name to the data dir, refusing anything but a plain name.
func dataPath(data, name string) (string, bool) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", false
	}
	return filepath.Join(data, name), true
}

// execTest runs one verb of -exec and returns the exit code.
func execTest(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "gateway-stub -exec: no verb")
		return 2
	}
	verb, rest := args[0], args[1:]
	num := func() float64 {
		if len(rest) == 0 {
			return 0
		}
		n, _ := strconv.ParseFloat(rest[0], 64)
		return n
	}
	switch verb {
	case "echo":
		fmt.Println(strings.Join(rest, " "))
	case "stderr":
		fmt.Fprintln(os.Stderr, strings.Join(rest, " "))
	case "exit":
		return int(num())
	case "sleep":
		time.Sleep(time.Duration(num() * float64(time.Second)))
	case "tree":
		self, _ := os.Executable()
		if err := exec.Command(self, "-exec", "sleep", rest[0]).Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		time.Sleep(time.Duration(num() * float64(time.Second)))
	case "spam":
		n := int(num())
		os.Stdout.Write([]byte(strings.Repeat("x", n)))
		os.Stderr.Write([]byte(strings.Repeat("y", n)))
	case "id":
		fmt.Printf("%d:%d\n", os.Getuid(), os.Getgid())
	case "procs":
		fmt.Println(countProcs(strings.Join(rest, " ")))
	case "mkdir":
		if err := mkdirOwned(rest); err != nil {
			fmt.Fprintf(os.Stderr, "gateway-stub -exec mkdir: %v\n", err)
			return 1
		}
	default:
		fmt.Fprintf(os.Stderr, "gateway-stub -exec: unknown verb %q\n", verb)
		return 2
	}
	return 0
}

// mkdirOwned makes args[0] a directory of mode 0700 owned by args[1]:args[2].
func mkdirOwned(args []string) error {
	if len(args) != 3 || !filepath.IsAbs(args[0]) {
		return fmt.Errorf("want an absolute PATH, UID and GID, got %q", args)
	}
	uid, err1 := strconv.Atoi(args[1])
	gid, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil || uid < 0 || gid < 0 {
		return fmt.Errorf("uid %q, gid %q: want numbers", args[1], args[2])
	}
	if err := os.MkdirAll(args[0], 0o700); err != nil {
		return err
	}
	if err := os.Chmod(args[0], 0o700); err != nil {
		return err
	}
	return os.Chown(args[0], uid, gid)
}

// countProcs counts the processes other than this one whose command line
// (arguments joined by spaces) holds word.
func countProcs(word string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), word) {
			n++
		}
	}
	return n
}
