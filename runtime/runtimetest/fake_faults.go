package runtimetest

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/zaki-platform/zaki-agent/runtime"
)

// Methods lists the names of runtime.Runtime's methods: the names Calls,
// Inject and the other fault hooks take.
var Methods = []string{
	"Info", "ImageID", "PullImage", "EnsureNetwork", "RemoveNetwork",
	"Create", "Start", "Stop", "Restart", "Pause", "Resume", "Remove", "Inspect", "List",
	"Events", "Logs", "Exec",
}

var isMethod = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range append(slices.Clone(Methods), ClusterMethods...) {
		m[n] = true
	}
	return m
}()

// Fault is a failure injected into calls of one method (Inject). A call
// that meets a fault first waits (Delay, then Gate, then Block), giving up
// with ctx's error when ctx ends, then returns Err, or proceeds as usual
// when Err is nil.
type Fault struct {
	// Err is what the call returns, wrapped with the call's context; nil
	// lets the call proceed after its wait.
	Err error
	// Delay is how long the call waits first.
	Delay time.Duration
	// Gate, when not nil, holds the call until it is closed.
	Gate <-chan struct{}
	// Block holds the call until its ctx ends, then fails it with ctx's
	// error (ErrTimeout for a deadline, context.Canceled otherwise).
	Block bool
	// Times is how many calls the fault applies to; 0 or less means every
	// call until ClearFaults.
	Times int
	// Ref limits the fault to calls about one container: its ID, name or
	// ID prefix (for Create, the new container's name). In Stop and Remove
	// only that reference fails, reported in a *runtime.BatchError, and the
	// others proceed.
	Ref string
}

type faultState struct {
	Fault
	left int
}

// Inject adds a fault to method (one of Methods; anything else panics).
// Faults apply in the order they were injected: a call meets the first one
// that matches it.
func (f *Fake) Inject(method string, fault Fault) {
	mustMethod(method)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults[method] = append(f.faults[method], &faultState{Fault: fault, left: fault.Times})
}

// Fail makes every call of method fail with err until ClearFaults.
func (f *Fake) Fail(method string, err error) { f.Inject(method, Fault{Err: err}) }

// FailNext makes the next n calls of method fail with err.
func (f *Fake) FailNext(method string, n int, err error) {
	if n <= 0 {
		panic(fmt.Sprintf("runtimetest: FailNext(%q, %d): n must be positive", method, n))
	}
	f.Inject(method, Fault{Err: err, Times: n})
}

// Delay makes every call of method wait d (or until its ctx ends) before
// it proceeds, until ClearFaults.
func (f *Fake) Delay(method string, d time.Duration) { f.Inject(method, Fault{Delay: d}) }

// Block makes every call of method hang until its ctx ends, until
// ClearFaults.
func (f *Fake) Block(method string) { f.Inject(method, Fault{Block: true}) }

// ClearFaults removes the faults of the given methods, or of every method
// when none is given.
func (f *Fake) ClearFaults(methods ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(methods) == 0 {
		f.faults = map[string][]*faultState{}
		return
	}
	for _, m := range methods {
		mustMethod(m)
		delete(f.faults, m)
	}
}

// Calls returns how many times method was called, whatever the outcome
// (calls refused by validation, a done ctx, a down engine or a fault
// count too). Hooks and the read-only helpers are not calls.
func (f *Fake) Calls(method string) int {
	mustMethod(method)
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

// CallCounts returns the number of calls of every method called so far.
func (f *Fake) CallCounts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return cloneCounts(f.calls)
}

// TotalCalls returns the number of calls of all methods.
func (f *Fake) TotalCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// ResetCalls sets every call count back to zero.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = map[string]int{}
}

func cloneCounts(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func mustMethod(m string) {
	if !isMethod[m] {
		names := append(slices.Clone(Methods), ClusterMethods...)
		sort.Strings(names)
		panic(fmt.Sprintf("runtimetest: unknown method %q (want one of %v)", m, names))
	}
}

// begin is the prologue of every method: it counts the call, then returns
// verr (the call's validation result: invalid input touches nothing), a
// done ctx's error, ErrUnavailable while the engine is down, or the outcome
// of the first fault that matches ref ("" for calls about no container).
func (f *Fake) begin(ctx context.Context, method string, verr error, ref string) error {
	f.mu.Lock()
	f.calls[method]++
	if verr != nil {
		f.mu.Unlock()
		return verr
	}
	if err := ctxErr(ctx); err != nil {
		f.mu.Unlock()
		return err
	}
	if f.down {
		f.mu.Unlock()
		return errDown
	}
	fs := f.takeFault(method, ref, false)
	f.mu.Unlock()
	return fs.apply(ctx)
}

// refFault applies the faults scoped to one reference of a batch call
// (Stop, Remove). f.mu must not be held.
func (f *Fake) refFault(ctx context.Context, method, ref string) error {
	f.mu.Lock()
	fs := f.takeFault(method, ref, true)
	f.mu.Unlock()
	return fs.apply(ctx)
}

// takeFault returns the first fault of method that matches ref and counts
// it used. scoped selects faults with a Ref (per-reference faults of batch
// calls); otherwise faults without a Ref match every call and faults with
// one match calls about the same container. f.mu must be held.
func (f *Fake) takeFault(method, ref string, scoped bool) *Fault {
	list := f.faults[method]
	for i, fs := range list {
		match := fs.Ref != "" && f.sameContainer(fs.Ref, ref)
		if !scoped && fs.Ref == "" {
			match = true
		}
		if !match {
			continue
		}
		fault := fs.Fault
		if fs.Times > 0 {
			fs.left--
			if fs.left <= 0 {
				f.faults[method] = append(list[:i:i], list[i+1:]...)
			}
		}
		return &fault
	}
	return nil
}

// sameContainer reports whether two references name the same container,
// or are the same string. f.mu must be held.
func (f *Fake) sameContainer(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	if a == b {
		return true
	}
	ca, err := f.lookup(a)
	if err != nil {
		return false
	}
	cb, err := f.lookup(b)
	return err == nil && ca == cb
}

// apply waits as the fault says and returns its error; a nil fault is no
// fault.
func (fault *Fault) apply(ctx context.Context) error {
	if fault == nil {
		return nil
	}
	if fault.Delay > 0 {
		t := time.NewTimer(fault.Delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctxErr(ctx)
		}
	}
	if fault.Gate != nil {
		select {
		case <-fault.Gate:
		case <-ctx.Done():
			return ctxErr(ctx)
		}
	}
	if fault.Block {
		<-ctx.Done()
		return ctxErr(ctx)
	}
	return fault.Err
}

var errDown = runtime.Errorf(runtime.ErrUnavailable, "fake engine is down")
