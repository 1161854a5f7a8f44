package faults

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// tableEnv names a file the final table is also written to.
const tableEnv = "ZAKI_FAULTS_TABLE"

func TestMain(m *testing.M) {
	limits, err := setupUnitLimits()
	if err != nil {
		fmt.Fprintf(os.Stderr, "faults: the unit's limits: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	summary, violations := limits.report()
	limits.remove()
	for _, v := range violations {
		fmt.Fprintf(os.Stderr, "VIOLATION [unit limits]: %s\n", v)
		code = 1
	}
	if len(ledgers) > 0 {
		var b strings.Builder
		writeTable(&b)
		fmt.Fprintf(&b, "%s\n", summary)
		fmt.Print(b.String())
		if p := os.Getenv(tableEnv); p != "" {
			if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "faults: write table: %v\n", err)
			}
		}
	}
	os.Exit(code)
}

// ledger counts, for one fault class, the faults injected, the invariant
// checks run and the violations found. Every check that fails is a test
// error too: the table only sums up what the tests already assert.
type ledger struct {
	t                         testing.TB
	class                     string
	mu                        sync.Mutex
	faults, checks, violation int
	notApplicable             int
	start                     time.Time
	elapsed                   time.Duration
}

var (
	ledgersMu sync.Mutex
	ledgers   = map[string]*ledger{}
)

// newLedger returns the ledger of class for t (classes add up across tests).
func newLedger(t testing.TB, class string) *ledger {
	ledgersMu.Lock()
	defer ledgersMu.Unlock()
	l := ledgers[class]
	if l == nil {
		l = &ledger{class: class}
		ledgers[class] = l
	}
	l.mu.Lock()
	l.t, l.start = t, time.Now()
	l.mu.Unlock()
	t.Cleanup(func() {
		l.mu.Lock()
		l.elapsed += time.Since(l.start)
		l.mu.Unlock()
	})
	return l
}

// fault counts n injected faults.
func (l *ledger) fault(n int) {
	l.mu.Lock()
	l.faults += n
	l.mu.Unlock()
}

// check counts one invariant check; when ok is false it counts a violation
// and reports it as a test error. It returns ok.
func (l *ledger) check(ok bool, format string, args ...any) bool {
	l.mu.Lock()
	l.checks++
	if !ok {
		l.violation++
	}
	t := l.t
	l.mu.Unlock()
	if !ok {
		t.Helper()
		t.Errorf("VIOLATION [%s]: %s", l.class, fmt.Sprintf(format, args...))
	}
	return ok
}

// checkT is check for a subtest: the violation is reported on t.
func (l *ledger) checkT(t testing.TB, ok bool, format string, args ...any) bool {
	t.Helper()
	l.mu.Lock()
	l.checks++
	if !ok {
		l.violation++
	}
	l.mu.Unlock()
	if !ok {
		t.Errorf("VIOLATION [%s]: %s", l.class, fmt.Sprintf(format, args...))
	}
	return ok
}

// na counts a check that does not apply on this host.
func (l *ledger) na() {
	l.mu.Lock()
	l.notApplicable++
	l.mu.Unlock()
}

func writeTable(w io.Writer) {
	ledgersMu.Lock()
	defer ledgersMu.Unlock()
	names := make([]string, 0, len(ledgers))
	for n := range ledgers {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\n%-34s %8s %8s %10s %6s %8s\n", "fault class", "faults", "checks", "violations", "n/a", "seconds")
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", 79))
	var tf, tc, tv, tn int
	var te time.Duration
	for _, n := range names {
		l := ledgers[n]
		l.mu.Lock()
		fmt.Fprintf(w, "%-34s %8d %8d %10d %6d %8.0f\n", n, l.faults, l.checks, l.violation, l.notApplicable, l.elapsed.Seconds())
		tf, tc, tv, tn, te = tf+l.faults, tc+l.checks, tv+l.violation, tn+l.notApplicable, te+l.elapsed
		l.mu.Unlock()
	}
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", 79))
	fmt.Fprintf(w, "%-34s %8d %8d %10d %6d %8.0f\n", "total", tf, tc, tv, tn, te.Seconds())
}
