package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis-down: the one redis-server is stopped for real, under the mixed load, for downFor
// (20 s, the row; -redis-down), then started again from the executable and
// configuration file its INFO server named, with the same directory and so its AOF. It is
// stopped with SIGTERM, which is how an init system or an operator stops it: Redis writes and
// fsyncs the AOF, then exits (SHUTDOWN NOSAVE would do the same for the AOF, but it is a
// command, sent by a client, and needs the default user's right to it). Every write it
// acknowledged is in the AOF, so nothing Tongban was told succeeded is lost by the restart, and
// the verification over Redis must find everything.
//
// Only on one server. On a cluster one node down is a failover (master-kill); every master
// down is the cluster restarting, which is not Tongban's fault tolerance but the cluster's
// (its nodes.conf, epochs and replicas decide what comes back), and would take the suite's time
// waiting on Redis Cluster rather than on Tongban.
//
// Checks, beyond the load's: while Redis is gone, the load's error answers fail fast (median
// within downErrMedian) and nothing hangs; readiness turns 503 within downNotReady of the
// SIGTERM and 200 within downBack after Redis answers again, without flapping; the instance's
// goroutines and heap under the load after the fault are back to what they were before it
// (downGrowth).
var downFor = 20 * time.Second

const (
	// The issue saw error answers in ~100 ms (median) while Redis was down; Tongban dials a
	// port nobody listens on, refused at once.
	downErrMedian = 100 * time.Millisecond
	// The issue saw readiness 503 within 0.24 s and back 0.3–0.7 s after Redis. The probe asks
	// every downProbe, which the bounds include.
	downProbe    = 50 * time.Millisecond
	downNotReady = 240*time.Millisecond + downProbe
	downBack     = 700*time.Millisecond + downProbe
	// goneWithin bounds the SIGTERM's shutdown (the AOF's fsync); answerWithin the restart and
	// the AOF's loading.
	goneWithin   = 15 * time.Second
	answerWithin = 30 * time.Second
)

// downGrowth is the margin of goroutines and heap. Goroutines are read idle (no request in
// flight, the suite's keep-alive connections closed), before the load and after the
// verification: what a fault leaves behind stays, anything else ends; the margin is for what
// starts on first use. The heap is the goal the GC set (twice the live heap, GOGC 100), the
// median over the 3 s before the SIGTERM against the median of the readings once the burst of
// retries is over and two cycles have run (heapSettled): under the same load, it moves with
// what is in flight at a cycle's end, and with the load's own history: in five runs here the
// goal was 39-52 MiB before and 54-71 MiB after, and without a run of the same load with no
// outage the suite cannot tell how much of that is the outage's. The margin (twice, and 16 MiB)
// passes those and fails what an outage that kept its burst would leave (the goal at the burst
// was 150-190 MiB).
var downGrowth = growthMargin{goroutines: 16, heapFactor: 2, heapBytes: 16 << 20}

func runRedisDown(ctx context.Context, s *suite, r *result) {
	var gone, back time.Time
	underLoad{
		warmup: 6 * time.Second, after: 8 * time.Second, readyBound: 1500 * time.Millisecond,
		faultFor: downFor, probeEvery: downProbe, watch: true,
		inject: func(ctx context.Context) (window, error) {
			n, err := s.target.aMaster(ctx)
			if err != nil {
				return window{}, err
			}
			if err := restartable(ctx, s.target.rdb, n); err != nil {
				return window{}, err
			}
			if err := signalPID(n.pid, syscall.SIGTERM); err != nil {
				return window{}, err
			}
			from := time.Now()
			// However the scenario ends, the server is started again if it is not running.
			startNow := s.onExit(func() {
				if answers(context.Background(), n.addr) {
					return
				}
				if err := restart(n); err != nil {
					fmt.Println("faultsuite:", err)
				}
			})
			if err := waitGone(ctx, n, goneWithin); err != nil {
				startNow()
				return window{}, err
			}
			gone = time.Now()
			sleep(ctx, time.Until(from.Add(downFor)))
			startNow()
			start := time.Now()
			if err := waitAnswers(ctx, n.addr, answerWithin); err != nil {
				return window{}, err
			}
			back = time.Now()
			r.figure("stopped", "redis-server pid %d at %s with SIGTERM; gone %s after it; started again from %s after %s; answered %s after its start",
				n.pid, n.addr, gone.Sub(from).Round(time.Millisecond), n.configFile, start.Sub(from).Round(100*time.Millisecond),
				back.Sub(start).Round(time.Millisecond))
			return window{from, back}, nil
		},
		judge: func(r *result, seen seen) {
			judgeDown(r, seen, gone)
		},
	}.run(ctx, s, r)
}

// judgeDown adds redis-down's own figures and checks; gone is when the server had exited.
func judgeDown(r *result, seen seen, gone time.Time) {
	errs, ok := errorLatencies(seen.samples, gone, seen.fault.to)
	r.figure("while Redis was gone", "%d error answers, median %s, longest %s; %d answered ok",
		errs.n, errs.median.Round(time.Millisecond), errs.max.Round(time.Millisecond), ok)
	r.check(errs.n == 0, "no error answers while Redis was gone: the load did not reach the instance")
	r.check(errs.median > downErrMedian, "error answers while Redis was gone took %s (median): more than %s, not a fast failure",
		errs.median.Round(time.Millisecond), downErrMedian)

	notReady := notReadyAfter(seen.ready, gone)
	if notReady < 0 {
		r.figure("readiness 503", "never")
		r.fail("readiness never answered 503 while Redis was down")
	} else {
		r.figure("readiness 503", "%s after redis-server exited (probed every %s)", notReady.Round(time.Millisecond), downProbe)
		r.check(notReady > downNotReady, "readiness answered 503 only %s after redis-server exited: more than %s", notReady.Round(time.Millisecond), downNotReady)
	}
	r.check(seen.readyBack > downBack, "readiness came back %s after Redis answered again: more than %s", seen.readyBack.Round(time.Millisecond), downBack)

	judgeGrowth(r, seen)
}

// judgeGrowth compares the instance before and after the fault: goroutines idle (no request in
// flight, none of the suite's connections open), and the heap goal of the GC cycles before the
// fault and after it (heapSettled).
func judgeGrowth(r *result, seen seen) {
	before, nb := medianIn(seen.procs, seen.fault.from.Add(-3*time.Second), seen.fault.from, time.Time{})
	var after procSample
	na := 0
	if settled, ok := heapSettled(seen.procs, seen.fault); ok {
		after, na = medianIn(seen.procs, settled, seen.loadEnd.Add(time.Millisecond), settled)
	}
	var peak procSample
	for _, p := range seen.procs {
		if !p.at.Before(seen.fault.from) && !p.at.After(seen.fault.to) {
			peak.goroutines = max(peak.goroutines, p.goroutines)
			peak.heap = max(peak.heap, p.heap)
		}
	}
	if seen.idleAfter < 0 {
		r.fail("the instance's goroutines could not be read after the verification")
	} else {
		r.figure("goroutines", "%.0f idle before the load, %.0f idle after the verification (at most %.0f more allowed); under load %.0f before the fault, %.0f at most while down",
			seen.idleBefore, seen.idleAfter, downGrowth.goroutines, before.goroutines, peak.goroutines)
	}
	if nb == 0 || na == 0 {
		r.fail("the heap cannot be compared: %d readings before the fault, %d after the burst of retries and two GC cycles (the load went on up to %s waiting for them; %d scrapes failed)",
			nb, na, maxGCWait, seen.scrapesFailed)
	} else {
		r.figure("heap", "goal of the last GC %s before the fault, %s after (medians of %d and %d readings; at most ×%.1f + %s allowed), %s at most while down",
			mib(before.heap), mib(after.heap), nb, na, downGrowth.heapFactor, mib(downGrowth.heapBytes), mib(peak.heap))
	}
	if seen.idleAfter < 0 || nb == 0 || na == 0 {
		return
	}
	if g := growth(procSample{goroutines: seen.idleBefore, heap: before.heap}, procSample{goroutines: seen.idleAfter, heap: after.heap}, downGrowth); g != "" {
		r.fail("the instance grew across Redis being down: %s", g)
	}
}

// restartable refuses a server the suite could not start again as it was, or whose restart
// would lose what it acknowledged: it must have a configuration file (the restart's) that
// daemonizes it, and the AOF on.
func restartable(ctx context.Context, c redis.Cmdable, n node) error {
	if n.configFile == "" {
		return fmt.Errorf("redis-server %s was started without a configuration file (INFO server config_file is empty): the suite could not start it again; start it from a file, as .ci/run does", n.addr)
	}
	v, err := c.ConfigGet(ctx, "*").Result()
	if err != nil {
		return fmt.Errorf("CONFIG GET on %s: %w", n.addr, err)
	}
	return persistenceOK(v)
}

// persistenceOK: a server restarted from its files keeps every acknowledged write only with the
// AOF on (appendfsync everysec or always: on SIGTERM the AOF is flushed and fsynced whatever
// the policy) and daemonized (the suite's restart waits for the command to return).
func persistenceOK(cfg map[string]string) error {
	var missing []string
	if cfg["appendonly"] != "yes" {
		missing = append(missing, "appendonly yes (a restart without the AOF loses what Redis acknowledged since its last snapshot)")
	}
	if cfg["daemonize"] != "yes" {
		missing = append(missing, "daemonize yes (the suite starts it again from its configuration file and waits for that to return)")
	}
	if len(missing) > 0 {
		return errors.New("redis-down needs a redis-server with " + strings.Join(missing, " and "))
	}
	return nil
}

// waitGone waits until the stopped server's process has exited (gone, or a zombie nobody
// reaped). Redis stops answering before that (it shuts down in its next cron tick, then exits),
// but holds its clients' connections open until the exit: the exit is when they learn.
func waitGone(ctx context.Context, n node, limit time.Duration) error {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		if processGone(n.pid) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("redis-server pid %d at %s still running %s after SIGTERM", n.pid, n.addr, limit)
}

// processGone: no process pid, or only its zombie.
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) state …: comm may hold spaces and parentheses, the state follows the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

// answers: a PING on a fresh connection is answered PONG (not LOADING, not refused).
func answers(ctx context.Context, addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 300 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	return c.Ping(ctx).Err() == nil
}

func waitAnswers(ctx context.Context, addr string, limit time.Duration) error {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		if answers(ctx, addr) {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return fmt.Errorf("redis-server at %s does not answer PING %s after its restart", addr, limit)
}
