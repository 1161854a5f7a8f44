package benchtab

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Metrics are every metric of every benchmark in `go test -bench` output:
// benchmark name (its -N GOMAXPROCS suffix cut, so a name must not end in
// -digits of its own) to unit to the value of each run. Scenario
// benchmarks report custom units (b.ReportMetric) such as p99-ms or
// rss-MB, and often suppress ns/op.
type Metrics map[string]map[string][]float64

// Value returns the median of a benchmark's metric over its runs; ok is
// false when the output has none.
func (m Metrics) Value(name, unit string) (v float64, ok bool) {
	vs := m[name][unit]
	if len(vs) == 0 {
		return 0, false
	}
	return (&Variant{NsPerOp: vs}).Median(), true
}

var metricLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

// ParseMetrics reads `go test -bench` output (other lines are skipped).
func ParseMetrics(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		g := metricLine.FindStringSubmatch(sc.Text())
		if g == nil {
			continue
		}
		f := strings.Fields(g[2])
		if len(f)%2 != 0 {
			continue // not a result line after all
		}
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("parse %q: %w", sc.Text(), err)
			}
			if m[g[1]] == nil {
				m[g[1]] = map[string][]float64{}
			}
			m[g[1]][f[i+1]] = append(m[g[1]][f[i+1]], v)
		}
	}
	return m, sc.Err()
}

// Target is one row of a targets table: a metric of a subject variant,
// set against a reference variant, checked against bounds.
type Target struct {
	Bench     string // benchmark name without "Benchmark", e.g. "Fleet/list"
	Metric    string // unit, e.g. "p99-ms"
	Subject   string // variant measured, e.g. "zaki-agent"
	Reference string // variant to compare with; "" for none
	Checks    []Check
	Scenario  string // the row's label
}

// Check is one bound: on the subject's value (Ratio false) or on its ratio
// to the reference's (Ratio true).
type Check struct {
	Ratio bool
	Op    string // "<=", ">=" or "=="
	Bound float64
}

func (c Check) holds(v float64) bool {
	switch c.Op {
	case "<=":
		return v <= c.Bound
	case ">=":
		return v >= c.Bound
	default:
		return v == c.Bound
	}
}

var checkRE = regexp.MustCompile(`^(ratio)?(<=|>=|==)([0-9.eE+-]+)$`)

// ParseTargets reads a targets file: one target a line, blank lines and
// lines starting with # skipped, whitespace-separated fields
//
//	benchmark  metric  subject  reference  checks  scenario...
//
// reference and checks are "-" for none; checks are comma-separated
// bounds on the subject's value ("<=1", "==50") or on its ratio to the
// reference ("ratio<=1.10"); the scenario (the row's label) is the rest
// of the line.
func ParseTargets(r io.Reader) ([]Target, error) {
	var ts []Target
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			return nil, fmt.Errorf("targets line %d: want benchmark, metric, subject, reference, checks and scenario", n)
		}
		t := Target{Bench: strings.TrimPrefix(f[0], "Benchmark"), Metric: f[1], Subject: f[2], Scenario: strings.Join(f[5:], " ")}
		if f[3] != "-" {
			t.Reference = f[3]
		}
		if f[4] != "-" {
			for c := range strings.SplitSeq(f[4], ",") {
				g := checkRE.FindStringSubmatch(c)
				if g == nil {
					return nil, fmt.Errorf("targets line %d: bad check %q: want [ratio]<=N, >=N or ==N", n, c)
				}
				bound, err := strconv.ParseFloat(g[3], 64)
				if err != nil {
					return nil, fmt.Errorf("targets line %d: bad check %q: %w", n, c, err)
				}
				if g[1] != "" && t.Reference == "" {
					return nil, fmt.Errorf("targets line %d: a ratio check needs a reference", n)
				}
				t.Checks = append(t.Checks, Check{Ratio: g[1] != "", Op: g[2], Bound: bound})
			}
		}
		ts = append(ts, t)
	}
	return ts, sc.Err()
}

// Outcome is how a Target fared.
type Outcome struct {
	Target
	Value, RefValue  float64
	HasValue, HasRef bool
	// Result is PASS or MISS for a target with checks, "-" without, and
	// "n/a" when a figure it needs is missing.
	Result string
}

// Ratio is the subject's value over the reference's (NaN without both).
func (o Outcome) Ratio() float64 {
	if !o.HasValue || !o.HasRef || o.RefValue == 0 {
		return math.NaN()
	}
	return o.Value / o.RefValue
}

// Evaluate looks every target up in m.
func Evaluate(m Metrics, ts []Target) []Outcome {
	out := make([]Outcome, 0, len(ts))
	for _, t := range ts {
		o := Outcome{Target: t, Result: "-"}
		o.Value, o.HasValue = m.Value(t.Bench+"/"+t.Subject, t.Metric)
		if t.Reference != "" {
			o.RefValue, o.HasRef = m.Value(t.Bench+"/"+t.Reference, t.Metric)
		}
		if len(t.Checks) > 0 {
			o.Result = "PASS"
		}
		for _, c := range t.Checks {
			v, have := o.Value, o.HasValue
			if c.Ratio {
				v, have = o.Ratio(), o.HasValue && o.HasRef
			}
			switch {
			case !have:
				o.Result = "n/a"
			case !c.holds(v) && o.Result != "n/a":
				o.Result = "MISS"
			}
		}
		if !o.HasValue {
			o.Result = "n/a"
		}
		out = append(out, o)
	}
	return out
}

// WriteTargets prints the outcomes as one table: scenario, the subject's
// figure, the reference's figure (named), the ratio, the target and
// PASS/MISS, then a count of the targets met.
func WriteTargets(w io.Writer, subject string, outs []Outcome) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "scenario\t%s\treference\tratio\ttarget\tresult\n", subject)
	met, checked := 0, 0
	for _, o := range outs {
		val, ref, ratio := "n/a", "-", "-"
		if o.HasValue {
			val = formatValue(o.Value, o.Metric)
		}
		if o.Reference != "" {
			ref = "n/a (" + o.Reference + ")"
			if o.HasRef {
				ref = formatValue(o.RefValue, o.Metric) + " (" + o.Reference + ")"
			}
			if r := o.Ratio(); !math.IsNaN(r) {
				ratio = formatRatio(r)
			}
		}
		var target []string
		for _, c := range o.Checks {
			op := map[string]string{"<=": "≤", ">=": "≥", "==": "="}[c.Op]
			if c.Ratio {
				t := op + " " + strconv.FormatFloat(c.Bound, 'f', -1, 64) + "x"
				if c.Op == "<=" && c.Bound < 1 {
					t += fmt.Sprintf(" (%s× faster)", strconv.FormatFloat(math.Round(1/c.Bound*10)/10, 'f', -1, 64))
				}
				target = append(target, t)
			} else {
				target = append(target, op+" "+formatBound(c.Bound, o.Metric))
			}
		}
		if len(o.Checks) > 0 {
			checked++
			if o.Result == "PASS" {
				met++
			}
		}
		tstr := "-"
		if len(target) > 0 {
			tstr = strings.Join(target, ", ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", o.Scenario, val, ref, ratio, tstr, o.Result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%d of %d targets met\n", met, checked)
	return err
}

// formatValue prints v in the unit its metric's name ends in: -ms, -s,
// -MB, or a bare count.
func formatValue(v float64, metric string) string {
	unit := ""
	if i := strings.LastIndexByte(metric, '-'); i >= 0 {
		unit = metric[i+1:]
	}
	switch unit {
	case "ms", "s", "MB":
		return sig3(v) + " " + unit
	default:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
}

// formatBound prints a bound as written, in its metric's unit.
func formatBound(v float64, metric string) string {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if i := strings.LastIndexByte(metric, '-'); i >= 0 {
		if u := metric[i+1:]; u == "ms" || u == "s" || u == "MB" {
			s += " " + u
		}
	}
	return s
}

// sig3 prints v with three significant digits, no exponent.
func sig3(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

func formatRatio(r float64) string {
	if r < 0.01 {
		return strconv.FormatFloat(r, 'f', 4, 64) + "x"
	}
	return sig3(r) + "x"
}
