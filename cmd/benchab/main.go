package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// side is one of the two builds.
type side struct {
	name   string // "A" or "B"
	rev    string // git revision, "" for the working tree
	pkg    string // package directory relative to the tree's root, "" to find it
	root   string // source tree
	binary string
}

// metricFlag collects -metric name=regexp.
type metricFlag []namedRegexp

type namedRegexp struct {
	name string
	re   *regexp.Regexp
}

func (m *metricFlag) String() string { return fmt.Sprint(len(*m)) }

func (m *metricFlag) Set(v string) error {
	name, expr, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return errors.New("want name=regexp with one capture group")
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return err
	}
	if re.NumSubexp() < 1 {
		return fmt.Errorf("%s: the regexp needs a capture group for the value", name)
	}
	*m = append(*m, namedRegexp{name, re})
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchab:", err)
		os.Exit(1)
	}
}

func run() error {
	a := &side{name: "A"}
	b := &side{name: "B"}
	var metrics metricFlag
	flag.StringVar(&a.rev, "a", "78fc3f8", "git revision of build A (the baseline)")
	flag.StringVar(&b.rev, "b", "", "git revision of build B; empty: the working tree")
	flag.StringVar(&a.pkg, "pkg-a", "", "package directory of the benchmark in A (default: found by name)")
	flag.StringVar(&b.pkg, "pkg-b", "", "package directory of the benchmark in B (default: found by name)")
	bench := flag.String("bench", "SignInWithIDToken", "name of the benchmark function, without the Benchmark prefix")
	rounds := flag.Int("rounds", 3, "runs of each build, alternated (at least 3)")
	benchtime := flag.String("benchtime", "1x", "-test.benchtime of each run")
	redisURL := flag.String("redis", "", "REDIS_URL for the benchmarks (default: the environment's)")
	flag.Var(&metrics, "metric", "name=regexp: also read a figure from the benchmark's output (repeatable)")
	flag.Parse()
	if *rounds < 3 {
		return errors.New("-rounds must be at least 3: fewer alternations say nothing on a shared machine")
	}
	if !regexp.MustCompile(`^[A-Za-z0-9_]+$`).MatchString(*bench) {
		return fmt.Errorf("-bench %q: give the function name without Benchmark, e.g. SignInWithIDToken", *bench)
	}
	if len(metrics) == 0 {
		_ = metrics.Set(`p99-ms=p99\s+([0-9.]+)\s*ms`)
	}
	if *redisURL != "" {
		os.Setenv("REDIS_URL", *redisURL)
	}
	repo, err := gitOutput("", "rev-parse", "--show-toplevel")
	if err != nil {
		return fmt.Errorf("not in a git repository: %w", err)
	}
	tmp, err := os.MkdirTemp("", "benchab-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	for _, s := range []*side{a, b} {
		if err := s.build(repo, tmp, *bench); err != nil {
			return fmt.Errorf("build %s: %w", s.name, err)
		}
		fmt.Printf("%s: %s, package ./%s\n", s.name, s.label(), s.pkg)
	}
	fmt.Printf("REDIS_URL=%q (empty: the embedded store)\n\n", os.Getenv("REDIS_URL"))

	results := map[string][]map[string]float64{}
	for r := range *rounds {
		order := []*side{a, b}
		if r%2 == 1 {
			order = []*side{b, a} // neither build always runs first
		}
		for _, s := range order {
			m, err := s.run(*bench, *benchtime, metrics)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", r+1, s.name, err)
			}
			results[s.name] = append(results[s.name], m)
			fmt.Printf("round %d %s: %s\n", r+1, s.name, format(m))
		}
	}
	report(results["A"], results["B"])
	return nil
}

func (s *side) label() string {
	if s.rev == "" {
		return "working tree (snapshot)"
	}
	return s.rev
}

// build exports the side's tree (the revision, or a snapshot of the working tree, so that edits
// made while the benchmark runs do not leak into it) and compiles the test binary of the package
// holding the benchmark.
func (s *side) build(repo, tmp, bench string) error {
	rev := s.rev
	if rev == "" {
		tree, err := snapshot(repo, tmp)
		if err != nil {
			return fmt.Errorf("snapshot of the working tree: %w", err)
		}
		rev = tree
	}
	s.root = filepath.Join(tmp, "src-"+s.name)
	if err := os.MkdirAll(s.root, 0o755); err != nil {
		return err
	}
	archive := exec.Command("git", "-C", repo, "archive", "--format=tar", rev)
	untar := exec.Command("tar", "-x", "-C", s.root)
	var err error
	if untar.Stdin, err = archive.StdoutPipe(); err != nil {
		return err
	}
	var stderr bytes.Buffer
	archive.Stderr, untar.Stderr = &stderr, &stderr
	if err := untar.Start(); err != nil {
		return err
	}
	if err := archive.Run(); err != nil {
		return fmt.Errorf("git archive %s: %w: %s", s.rev, err, stderr.String())
	}
	if err := untar.Wait(); err != nil {
		return fmt.Errorf("untar %s: %w: %s", s.rev, err, stderr.String())
	}
	if s.pkg == "" {
		pkg, err := findBenchmark(s.root, bench)
		if err != nil {
			return err
		}
		s.pkg = pkg
	}
	s.pkg = filepath.Clean(strings.TrimPrefix(s.pkg, "./"))
	s.binary = filepath.Join(tmp, s.name+".test")
	// -trimpath: both trees then share the build cache, whatever directory they sit in.
	cmd := exec.Command("go", "test", "-c", "-trimpath", "-o", s.binary, "./"+filepath.ToSlash(s.pkg))
	cmd.Dir = s.root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go test -c ./%s: %w\n%s", s.pkg, err, out)
	}
	return nil
}

// snapshot writes the working tree as it is now, untracked files included (ignored ones not),
// as a git tree object, through a copy of the index so that the real one is left alone.
func snapshot(repo, tmp string) (string, error) {
	indexPath, err := gitOutput(repo, "rev-parse", "--path-format=absolute", "--git-path", "index")
	if err != nil {
		return "", err
	}
	idx := filepath.Join(tmp, "index")
	if data, err := os.ReadFile(indexPath); err == nil {
		if err := os.WriteFile(idx, data, 0o600); err != nil {
			return "", err
		}
	}
	env := append(os.Environ(), "GIT_INDEX_FILE="+idx)
	add := exec.Command("git", "-C", repo, "add", "-A")
	add.Env = env
	if out, err := add.CombinedOutput(); err != nil {
		return "", fmt.Errorf("git add: %w: %s", err, out)
	}
	write := exec.Command("git", "-C", repo, "write-tree")
	write.Env = env
	out, err := write.Output()
	if err != nil {
		return "", fmt.Errorf("git write-tree: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// findBenchmark returns the directory, relative to root, of the one package declaring
// func Benchmark<name>.
func findBenchmark(root, name string) (string, error) {
	decl := regexp.MustCompile(`(?m)^func Benchmark` + name + `\(`)
	var found []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if decl.Match(src) {
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return err
			}
			found = append(found, rel)
		}
		return nil
	})
	switch {
	case err != nil:
		return "", err
	case len(found) == 0:
		return "", fmt.Errorf("no package in %s declares Benchmark%s", root, name)
	case len(found) > 1:
		return "", fmt.Errorf("Benchmark%s is declared in %v: name the package with -pkg-a/-pkg-b", name, found)
	}
	return found[0], nil
}

// run runs the benchmark once in the package's directory (where its tests expect to run) and
// returns its figures.
func (s *side) run(bench, benchtime string, extra metricFlag) (map[string]float64, error) {
	cmd := exec.Command(s.binary, "-test.run", "^$", "-test.bench", "^Benchmark"+bench+"$", "-test.benchtime", benchtime)
	cmd.Dir = filepath.Join(s.root, s.pkg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, out.String())
	}
	m, err := parse(out.String(), bench, extra)
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, out.String())
	}
	return m, nil
}

// parse reads the metrics of the benchmark's result line ("BenchmarkX-2  1  123 ns/op  45.6
// signins/s ...") and the extra figures from the rest of the output.
func parse(out, bench string, extra metricFlag) (map[string]float64, error) {
	m := map[string]float64{}
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) < 4 || (f[0] != "Benchmark"+bench && !strings.HasPrefix(f[0], "Benchmark"+bench+"-")) {
			continue
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("result line: %q is not a number", f[i])
			}
			m[f[i+1]] = v
		}
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("no result line of Benchmark%s", bench)
	}
	for _, x := range extra {
		if sub := x.re.FindStringSubmatch(out); sub != nil {
			v, err := strconv.ParseFloat(sub[1], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", x.name, sub[1])
			}
			m[x.name] = v
		}
	}
	return m, nil
}

func format(m map[string]float64) string {
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s=%.4g", k, m[k]))
	}
	return strings.Join(parts, "  ")
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// report prints, per metric both builds report, the medians and the median of the per-round
// ratios B/A (round i of B against round i of A, which ran next to it).
func report(a, b []map[string]float64) {
	fmt.Printf("\n%-22s %12s %12s %10s   %s\n", "metric", "median A", "median B", "B/A", "per-round B/A")
	for _, k := range sortedKeys(a[0]) {
		var va, vb, ratios []float64
		for i := range min(len(a), len(b)) {
			x, okA := a[i][k]
			y, okB := b[i][k]
			if !okA || !okB {
				continue
			}
			va, vb = append(va, x), append(vb, y)
			if x != 0 {
				ratios = append(ratios, y/x)
			}
		}
		if len(ratios) == 0 {
			continue
		}
		per := make([]string, len(ratios))
		for i, r := range ratios {
			per[i] = fmt.Sprintf("%.3f", r)
		}
		fmt.Printf("%-22s %12.4g %12.4g %10.3f   %s\n", k, median(va), median(vb), median(ratios), strings.Join(per, " "))
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

func gitOutput(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}
