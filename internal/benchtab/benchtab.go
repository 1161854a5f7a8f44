package benchtab

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Group is a benchmark and its variants, in the order they first ran.
type Group struct {
	Name     string
	Variants []*Variant
}

// Variant is one sub-benchmark and the ns/op of each of its runs.
type Variant struct {
	Name    string
	NsPerOp []float64
}

// Median returns the median ns/op of v's runs.
func (v *Variant) Median() float64 {
	s := slices.Clone(v.NsPerOp)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Spread returns how far v's runs stray from the median, as a fraction of
// it (the largest deviation, as benchstat's ± shows it).
func (v *Variant) Spread() float64 {
	m := v.Median()
	if len(v.NsPerOp) < 2 || m == 0 {
		return 0
	}
	var d float64
	for _, x := range v.NsPerOp {
		d = max(d, math.Abs(x-m))
	}
	return d / m
}

// benchLine matches a result line: name, iterations, ns/op.
var benchLine = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([0-9.eE+]+) ns/op`)

// Parse reads `go test -bench` output (other lines are skipped) and
// returns its groups in the order they first ran.
func Parse(r io.Reader) ([]*Group, error) {
	var groups []*Group
	byName := map[string]*Group{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		ns, err := strconv.ParseFloat(m[2], 64)
		if err != nil {
			return nil, fmt.Errorf("parse %q: %w", sc.Text(), err)
		}
		gname, vname, _ := strings.Cut(m[1], "/")
		g := byName[gname]
		if g == nil {
			g = &Group{Name: gname}
			byName[gname] = g
			groups = append(groups, g)
		}
		i := slices.IndexFunc(g.Variants, func(v *Variant) bool { return v.Name == vname })
		if i < 0 {
			g.Variants = append(g.Variants, &Variant{Name: vname})
			i = len(g.Variants) - 1
		}
		g.Variants[i].NsPerOp = append(g.Variants[i].NsPerOp, ns)
	}
	return groups, sc.Err()
}

// Options tune Write.
type Options struct {
	// Baseline names baselines: "variant" for every group, or
	// "Group=variant" for one, comma-separated.
	Baseline string
	// DiffLabel heads the difference column ("added per call" when empty).
	DiffLabel string
}

// baseline returns the index of g's baseline variant.
func (o Options) baseline(g *Group) int {
	var all, own string
	for item := range strings.SplitSeq(o.Baseline, ",") {
		item = strings.TrimSpace(item)
		if gname, v, ok := strings.Cut(item, "="); ok {
			if gname == g.Name {
				own = v
			}
		} else if item != "" {
			all = item
		}
	}
	for _, name := range []string{own, all, "baseline"} {
		if name == "" {
			continue
		}
		if i := slices.IndexFunc(g.Variants, func(v *Variant) bool { return v.Name == name }); i >= 0 {
			return i
		}
	}
	return 0
}

// Write prints one table per group: each variant's median time per
// operation in milliseconds (± its spread), its ratio to the baseline (n/a
// for a baseline under a microsecond), and the time it adds per call over
// the baseline.
func Write(w io.Writer, groups []*Group, o Options) error {
	label := o.DiffLabel
	if label == "" {
		label = "added per call"
	}
	for gi, g := range groups {
		if gi > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		bi := o.baseline(g)
		base := g.Variants[bi].Median()
		// The first column is padded here, left-aligned; tabwriter
		// right-aligns the numbers.
		width := len(g.Name)
		for _, v := range g.Variants {
			width = max(width, len(nameOf(v))+2)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "%-*s\tms/op\t±\tvs %s\t%s\truns\t\n", width, g.Name, nameOf(g.Variants[bi]), label)
		for i, v := range g.Variants {
			med := v.Median()
			name := nameOf(v)
			ratio, diff := "1.00x", "(baseline)"
			if i == bi {
				name += " *"
			} else {
				ratio = "n/a" // a baseline of next to nothing has no ratio
				if base >= 1000 {
					ratio = fmt.Sprintf("%.2fx", med/base)
				}
				diff = fmt.Sprintf("%+.3f ms", (med-base)/1e6)
			}
			fmt.Fprintf(tw, "%-*s\t%s\t%.0f%%\t%s\t%s\t%d\t\n", width, name, ms(med), 100*v.Spread(), ratio, diff, len(v.NsPerOp))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func nameOf(v *Variant) string {
	if v.Name == "" {
		return "-"
	}
	return v.Name
}

// ms formats nanoseconds as milliseconds with three significant digits
// at least.
func ms(ns float64) string {
	m := ns / 1e6
	switch {
	case m >= 100:
		return fmt.Sprintf("%.1f", m)
	case m >= 1:
		return fmt.Sprintf("%.3f", m)
	default:
		return fmt.Sprintf("%.4f", m)
	}
}
