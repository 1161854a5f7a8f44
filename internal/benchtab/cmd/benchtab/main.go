// Command benchtab reads `go test -bench` output (files, or standard input)
// and prints one table per benchmark group: each variant's ms/op, its
// ratio to the group's baseline and the time it adds per call. See
// package benchtab for how groups, variants and baselines are named.
// With --targets FILE it prints instead one table of the targets FILE
// names (benchtab.ParseTargets), each against the figures of the input:
//
//	benchtab --targets bench/targets.txt .run/bench-issue7.txt
//
// With --missed as well it prints instead the benchmarks (top-level names,
// one a line) of the targets missed, for a script to look into them.
//
//	go test -run '^$' -bench . -count 5 ./plugins/docker/ | benchtab -baseline docker-cli
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/internal/benchtab"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "benchtab: %v\n", err)
		os.Exit(1)
	}
}

func run(_ context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := pflag.NewFlagSet("benchtab", pflag.ContinueOnError)
	var o benchtab.Options
	fs.StringVar(&o.Baseline, "baseline", "", `baseline variant: "variant" for every group, or "Group=variant", comma-separated (default: the variant named "baseline", else each group's first)`)
	fs.StringVar(&o.DiffLabel, "diff-label", "added per call", "heading of the difference column")
	targets := fs.String("targets", "", "print one table of the targets in this file (see benchtab.ParseTargets) instead of the per-group tables")
	subject := fs.String("subject", "zaki-agent", "heading of the subject's column of the targets table")
	missed := fs.Bool("missed", false, "with --targets: print the benchmarks of the targets missed, one a line, instead of the table")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var in []io.Reader
	for _, name := range fs.Args() {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = append(in, f)
	}
	if len(in) == 0 {
		in = append(in, stdin)
	}
	if *targets != "" {
		return writeTargets(*targets, *subject, *missed, io.MultiReader(in...), stdout)
	}
	groups, err := benchtab.Parse(io.MultiReader(in...))
	if err != nil {
		return err
	}
	if len(groups) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	return benchtab.Write(stdout, groups, o)
}

func writeTargets(file, subject string, missed bool, in io.Reader, stdout io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	ts, err := benchtab.ParseTargets(f)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	m, err := benchtab.ParseMetrics(in)
	if err != nil {
		return err
	}
	outs := benchtab.Evaluate(m, ts)
	if !missed {
		return benchtab.WriteTargets(stdout, subject, outs)
	}
	seen := map[string]bool{}
	for _, o := range outs {
		name, _, _ := strings.Cut(o.Bench, "/")
		if o.Result == "MISS" && !seen[name] {
			seen[name] = true
			fmt.Fprintln(stdout, name)
		}
	}
	return nil
}
