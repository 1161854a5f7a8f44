// Package benchtab turns `go test -bench` output into one small table per
// benchmark group, each variant set against the group's baseline: the
// table `make bench` prints.
//
// A benchmark named BenchmarkGroup/variant-N (N is GOMAXPROCS) is the
// variant "variant" of the group "Group"; a benchmark without a slash is a
// group of one unnamed variant. Sub-benchmarks nested deeper keep the rest
// of their path in the variant name (BenchmarkA/b/c: group A, variant b/c).
// With -count, a variant's ns/op is the median of its runs.
//
// The baseline of a group is, in order: the variant Options.Baseline names
// for that group ("Group=variant"), the variant Options.Baseline names for
// every group (a bare "variant"), the variant named "baseline", and else the
// group's first variant in the output (so a benchmark that runs its
// baseline first needs no flag).
//
// Scenario benchmarks that run once and report custom metrics (p99-ms,
// total-s, rss-MB, ...) are read by ParseMetrics instead, and a targets
// file (ParseTargets) turns them into one table: each row a metric of a
// subject variant, its reference variant's figure, the ratio, the target
// and PASS or MISS (Evaluate, WriteTargets).
package benchtab
