// Command ingestbench sends the same Alertmanager alerts, as fast as N
// keep-alive connections allow, to one target on this machine, and
// reports how many it took per second, request latency, and the CPU the
// target spent per alert.
//
// Three shapes of target take the same alerts (10 per request by
// default, each with its own label set and so its own fingerprint):
//
//	hindsight     POST /hooks/alertmanager, Alertmanager's webhook payload
//	alertmanager  POST /api/v2/alerts, Alertmanager's postable alerts array
//	bare          the webhook payload, to bench/bareserver
//
// Usage:
//
//	ingestbench --shape hindsight --url http://127.0.0.1:9097 --pid 1234
//
// It first waits for the target's readiness path, sends for --warmup
// without counting, then counts the answers that arrive during
// --duration. With --pid it reads the target's CPU time (utime+stime)
// from /proc/PID/stat at both ends of the measured window; the
// load generator's own CPU is reported too, since on a small machine it
// competes with the target.
//
// # Caveats
//
// It only targets loopback: CPU per alert is read from /proc on this
// machine, and a load test belongs on a machine you own. Linux only for
// --pid. A request counts when its answer arrives in the window; alerts
// are counted from 2xx answers only (for hindsight, only answers that
// accepted every alert), repeats included.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	shape       string
	url         string
	connections int
	perReq      int
	services    int
	duration    time.Duration
	warmup      time.Duration
	repeat      float64
	pid         int
	token       string
	jsonOut     bool
	label       string
	round       int
	readyWait   time.Duration
	pprofURL    string
	profileOut  string
}

func run(args []string, stdout, stderr io.Writer) int {
	var c config
	fs := flag.NewFlagSet("ingestbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.shape, "shape", ShapeHindsight, "target: hindsight, alertmanager or bare")
	fs.StringVar(&c.url, "url", "http://127.0.0.1:9097", "target's base URL (loopback only)")
	fs.IntVar(&c.connections, "connections", 32, "keep-alive connections, each with one request at a time")
	fs.IntVar(&c.perReq, "alerts", 10, "alerts per request")
	fs.IntVar(&c.services, "services", 50, "services: requests take turns, each request holds one service's alerts")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long to measure")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "how long to send before measuring")
	fs.Float64Var(&c.repeat, "repeat-ratio", 0, "fraction of requests that resend the connection's previous request (same alerts)")
	fs.IntVar(&c.pid, "pid", 0, "the target's PID, to read its CPU time from /proc/PID/stat")
	fs.StringVar(&c.token, "token", os.Getenv("INGESTBENCH_TOKEN"), "bearer token sent with every request (default $INGESTBENCH_TOKEN)")
	fs.BoolVar(&c.jsonOut, "json", false, "print the result as JSON")
	fs.StringVar(&c.label, "label", "", "name of the target in the result (default: the shape)")
	fs.IntVar(&c.round, "round", 0, "round number to record in the result (bench/run.sh's rounds)")
	fs.StringVar(&c.pprofURL, "pprof", "", "base URL of the target's net/http/pprof (bench/profserve): take a CPU profile over the measured window")
	fs.StringVar(&c.profileOut, "profile-out", "cpu.pb.gz", "where --pprof's CPU profile is written")
	fs.DurationVar(&c.readyWait, "ready-timeout", time.Minute, "how long to wait for the target's readiness path")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := c.check(); err != nil {
		fmt.Fprintf(stderr, "ingestbench: %v\n", err)
		return 2
	}
	res, err := bench(context.Background(), c)
	if err != nil {
		fmt.Fprintf(stderr, "ingestbench: %v\n", err)
		return 1
	}
	if c.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
		fmt.Fprintf(stderr, "   %s: %.0f alerts/s, %.1f µs CPU/alert (%.2f cores), p50 %.1f ms, p99 %.1f ms, %d errors\n",
			res.Label, res.AlertsPerSecond, res.CPUMicrosPerAlert, res.TargetCores, res.P50Ms, res.P99Ms, res.Errors)
	} else {
		res.print(stdout)
	}
	return 0
}

func (c *config) check() error {
	if _, ok := shapePaths[c.shape]; !ok {
		return fmt.Errorf("--shape %q: want hindsight, alertmanager or bare", c.shape)
	}
	if err := loopbackURL(c.url); err != nil {
		return fmt.Errorf("--url %w", err)
	}
	if c.pprofURL != "" {
		if err := loopbackURL(c.pprofURL); err != nil {
			return fmt.Errorf("--pprof %w", err)
		}
	}
	switch {
	case c.connections < 1:
		return errors.New("--connections must be 1 or more")
	case c.perReq < 1 || c.perReq > 10000:
		return errors.New("--alerts must be 1 to 10000")
	case c.services < 1:
		return errors.New("--services must be 1 or more")
	case c.duration <= 0:
		return errors.New("--duration must be positive")
	case c.warmup < 0:
		return errors.New("--warmup must not be negative")
	case c.repeat < 0 || c.repeat > 1:
		return errors.New("--repeat-ratio must be from 0 to 1")
	}
	if c.label == "" {
		c.label = c.shape
	}
	return nil
}

// loopbackURL checks that s is an http URL of this machine.
func loopbackURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return fmt.Errorf("%q: want http://HOST:PORT", s)
	}
	ips, err := net.LookupIP(u.Hostname())
	if err != nil || len(ips) == 0 {
		return fmt.Errorf("%q: cannot resolve %s", s, u.Hostname())
	}
	for _, ip := range ips {
		if !ip.IsLoopback() {
			return fmt.Errorf("%q: %s is not loopback; ingestbench only loads this machine", s, ip)
		}
	}
	return nil
}

// Result is one measured run against one target.
type Result struct {
	Label            string         `json:"label"`
	Round            int            `json:"round,omitempty"`
	Shape            string         `json:"shape"`
	URL              string         `json:"url"`
	Connections      int            `json:"connections"`
	AlertsPerRequest int            `json:"alerts_per_request"`
	Services         int            `json:"services"`
	RepeatRatio      float64        `json:"repeat_ratio"`
	WarmupSeconds    float64        `json:"warmup_seconds"`
	Seconds          float64        `json:"seconds"`
	Requests         int            `json:"requests"`
	OK               int            `json:"ok"`
	Errors           int            `json:"errors"`
	ByStatus         map[string]int `json:"by_status"`
	AlertsPerSecond  float64        `json:"alerts_per_second"`
	RequestsPerSec   float64        `json:"requests_per_second"`
	P50Ms            float64        `json:"p50_ms"`
	P99Ms            float64        `json:"p99_ms"`
	MaxMs            float64        `json:"max_ms"`
	PID              int            `json:"pid,omitempty"`
	// TargetCPUSeconds is the target's utime+stime over the window;
	// TargetCores that divided by the window; CPUMicrosPerAlert that
	// divided by the alerts counted. Zero without --pid.
	TargetCPUSeconds  float64 `json:"target_cpu_seconds,omitempty"`
	TargetCores       float64 `json:"target_cores,omitempty"`
	CPUMicrosPerAlert float64 `json:"cpu_us_per_alert,omitempty"`
	ClientCPUSeconds  float64 `json:"client_cpu_seconds"`
	ClientCores       float64 `json:"client_cores"`
	Note              string  `json:"note,omitempty"`
}

// Phases of a run.
const (
	phaseWarmup int32 = iota
	phaseMeasure
	phaseDone
)

type worker struct {
	lat      []time.Duration
	ok       int
	byStatus map[string]int
	alerts   int
}

func bench(ctx context.Context, c config) (*Result, error) {
	paths := shapePaths[c.shape]
	base := c.url
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	tr := &http.Transport{
		MaxIdleConns:        c.connections,
		MaxIdleConnsPerHost: c.connections,
		MaxConnsPerHost:     c.connections,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	if err := waitReady(ctx, client, base+paths.ready, c.readyWait); err != nil {
		return nil, err
	}

	var runTag [3]byte
	_, _ = rand.Read(runTag[:])
	gen := newGenerator(c.shape, c.perReq, c.services, fmt.Sprintf("%06x", runTag[:])[:5])
	var (
		seq   atomic.Uint64
		phase atomic.Int32
		wg    sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	target := base + paths.post
	wantAccepted := []byte(`"accepted":` + strconv.Itoa(c.perReq) + `,`)
	workers := make([]*worker, c.connections)
	for i := range workers {
		w := &worker{byStatus: map[string]int{}}
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			rnd := mrand.New(mrand.NewPCG(uint64(i), 0x5eed))
			var body, prev, answer []byte
			for ctx.Err() == nil {
				if prev != nil && c.repeat > 0 && rnd.Float64() < c.repeat {
					body = append(body[:0], prev...)
				} else {
					body = gen.body(body[:0], seq.Add(1)-1, time.Now().Add(-30*time.Second))
					prev = append(prev[:0], body...)
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if c.token != "" {
					req.Header.Set("Authorization", "Bearer "+c.token)
				}
				start := time.Now()
				resp, err := client.Do(req)
				status := "transport"
				if err == nil {
					buf := bytes.NewBuffer(answer[:0])
					_, err = buf.ReadFrom(resp.Body)
					resp.Body.Close()
					answer = buf.Bytes()
					status = strconv.Itoa(resp.StatusCode)
					if err == nil && resp.StatusCode/100 == 2 && c.shape == ShapeHindsight && !bytes.Contains(answer, wantAccepted) {
						status += " (not every alert accepted)"
					}
				}
				lat := time.Since(start)
				if phase.Load() != phaseMeasure {
					if err != nil && ctx.Err() == nil {
						time.Sleep(10 * time.Millisecond) // a refused connection must not spin
					}
					continue
				}
				w.byStatus[status]++
				if status[0] == '2' && len(status) == 3 {
					w.ok++
					w.alerts += c.perReq
					w.lat = append(w.lat, lat)
				} else if err != nil {
					time.Sleep(10 * time.Millisecond)
				}
			}
		}()
	}

	time.Sleep(c.warmup)
	profDone := make(chan error, 1)
	if c.pprofURL != "" {
		go func() { profDone <- fetchProfile(c.pprofURL, c.duration, c.profileOut) }()
	} else {
		profDone <- nil
	}
	cpu0, cpuErr := procCPU(c.pid)
	self0 := selfCPU()
	t0 := time.Now()
	phase.Store(phaseMeasure)
	time.Sleep(c.duration)
	phase.Store(phaseDone)
	elapsed := time.Since(t0)
	cpu1, cpuErr1 := procCPU(c.pid)
	self1 := selfCPU()
	cancel()
	wg.Wait()
	profErr := <-profDone

	res := &Result{
		Label: c.label, Round: c.round, Shape: c.shape, URL: target, Connections: c.connections,
		AlertsPerRequest: c.perReq, Services: c.services, RepeatRatio: c.repeat,
		WarmupSeconds: c.warmup.Seconds(), Seconds: elapsed.Seconds(), ByStatus: map[string]int{},
		ClientCPUSeconds: (self1 - self0).Seconds(),
	}
	res.ClientCores = res.ClientCPUSeconds / res.Seconds
	var lat []time.Duration
	alerts := 0
	for _, w := range workers {
		for s, n := range w.byStatus {
			res.ByStatus[s] += n
			res.Requests += n
		}
		res.OK += w.ok
		alerts += w.alerts
		lat = append(lat, w.lat...)
	}
	res.Errors = res.Requests - res.OK
	res.AlertsPerSecond = float64(alerts) / res.Seconds
	res.RequestsPerSec = float64(res.OK) / res.Seconds
	slices.Sort(lat)
	res.P50Ms, res.P99Ms = ms(percentile(lat, 50)), ms(percentile(lat, 99))
	if len(lat) > 0 {
		res.MaxMs = ms(lat[len(lat)-1])
	}
	switch {
	case c.pid == 0:
		res.Note = "no --pid: target CPU not measured"
	case cpuErr != nil || cpuErr1 != nil:
		res.Note = fmt.Sprintf("target CPU not measured: %v", errors.Join(cpuErr, cpuErr1))
	default:
		res.PID = c.pid
		res.TargetCPUSeconds = (cpu1 - cpu0).Seconds()
		res.TargetCores = res.TargetCPUSeconds / res.Seconds
		if alerts > 0 {
			res.CPUMicrosPerAlert = res.TargetCPUSeconds * 1e6 / float64(alerts)
		}
	}
	if profErr != nil {
		res.Note = strings.TrimPrefix(res.Note+"; ", "; ") + "CPU profile failed: " + profErr.Error()
	}
	if res.OK == 0 {
		return res, fmt.Errorf("no 2xx answer in %s from %s (answers: %v)", elapsed.Round(time.Millisecond), target, res.ByStatus)
	}
	return res, nil
}

// fetchProfile takes a CPU profile of d from a net/http/pprof endpoint
// and writes it to out.
func fetchProfile(base string, d time.Duration, out string) error {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	u := strings.TrimSuffix(base, "/") + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs)
	resp, err := http.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(out, b, 0o644)
}

// waitReady polls u until it answers 200.
func waitReady(ctx context.Context, client *http.Client, u string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %s: %s", u, limit, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// percentile is nearest-rank: the smallest value that p% of sorted are at
// or below.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "target      %s (%s) %s, %d connections, %d alerts/request, %d services, repeats %.0f%%\n",
		r.Label, r.Shape, r.URL, r.Connections, r.AlertsPerRequest, r.Services, r.RepeatRatio*100)
	fmt.Fprintf(w, "measured    %.1fs after %.1fs of warm-up\n", r.Seconds, r.WarmupSeconds)
	fmt.Fprintf(w, "answers     %d: %d 2xx, %d errors %v\n", r.Requests, r.OK, r.Errors, r.ByStatus)
	fmt.Fprintf(w, "throughput  %.0f alerts/s (%.0f requests/s)\n", r.AlertsPerSecond, r.RequestsPerSec)
	fmt.Fprintf(w, "latency     p50 %.2f ms, p99 %.2f ms, max %.2f ms (2xx requests)\n", r.P50Ms, r.P99Ms, r.MaxMs)
	if r.PID != 0 {
		fmt.Fprintf(w, "target CPU  %.2fs (%.2f cores), %.1f µs per alert (pid %d)\n", r.TargetCPUSeconds, r.TargetCores, r.CPUMicrosPerAlert, r.PID)
	}
	fmt.Fprintf(w, "client CPU  %.2fs (%.2f cores)\n", r.ClientCPUSeconds, r.ClientCores)
	if r.Note != "" {
		fmt.Fprintf(w, "note        %s\n", r.Note)
	}
}
