// Package app wires Hindsight's parts into one program: the embedded or
// external NATS, the bbolt state, the correlator, and the HTTP surface,
// according to the roles a process runs. cmd/hindsight parses flags and
// calls Run; tests boot the same program in-process with New.
//
// # Caveats
//
// The draft role renders from the local bbolt state, so it needs the
// correlate role in the same process.
package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/api"
	"github.com/hindsight-sre/hindsight/boltstore"
	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/draft"
	"github.com/hindsight-sre/hindsight/ingest"
	"github.com/hindsight-sre/hindsight/natsbus"
	"github.com/hindsight-sre/hindsight/sink"
	"github.com/hindsight-sre/hindsight/web"
)

// Roles a process can run.
const (
	RoleIngest    = "ingest"
	RoleCorrelate = "correlate"
	RoleDraft     = "draft"
)

// AllRoles is the default: everything in one process.
var AllRoles = []string{RoleIngest, RoleCorrelate, RoleDraft}

// Options are the program's settings (flags and environment).
type Options struct {
	Listen     string   // default 127.0.0.1:9097
	DataDir    string   // default ./hindsight-data
	NatsURL    string   // empty: embedded nats-server
	Roles      []string // default AllRoles
	ConfigFile string
	// TemplateFile replaces the built-in postmortem template (Go
	// text/template executed with draft.Data); empty: the built-in one.
	TemplateFile string
	// Insecure allows a non-loopback listen address without auth.
	Insecure bool
	Logger   *slog.Logger
	// Now stamps received_at; tests fix it.
	Now func() time.Time
}

// App is a running Hindsight.
type App struct {
	opts      Options
	log       *slog.Logger
	reg       *prometheus.Registry
	ns        *server.Server
	bus       *natsbus.Bus
	store     *boltstore.Store
	incidents api.Incidents
	drafts    *draft.Renderer // nil without the draft role
	rules     int             // correlation rules in the config
	listener  net.Listener
	http      *http.Server
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	unlock    func()
	stopWatch context.CancelFunc
	closeMu   sync.Mutex
	closed    bool
}

// Run starts Hindsight and serves until ctx is done, then shuts down
// gracefully.
func Run(ctx context.Context, o Options) error {
	a, err := New(ctx, o)
	if err != nil {
		return err
	}
	config := cmp.Or(a.opts.ConfigFile, "(none: the defaults)")
	a.log.Info("Hindsight is ready", "listen", a.Addr(), "roles", strings.Join(a.opts.Roles, ","), "data_dir", a.opts.DataDir,
		"config", config, "correlation_rules", a.rules)
	<-ctx.Done()
	a.log.Info("shutting down")
	return a.Close()
}

// New starts everything the roles need and begins serving.
func New(ctx context.Context, o Options) (_ *App, err error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:9097"
	}
	if o.DataDir == "" {
		o.DataDir = "hindsight-data"
	}
	if len(o.Roles) == 0 {
		o.Roles = AllRoles
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if err := checkRoles(o.Roles); err != nil {
		return nil, err
	}
	cfg, err := LoadConfig(o.ConfigFile)
	if err != nil {
		return nil, err
	}
	auth, err := cfg.auth()
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", o.ConfigFile, err)
	}
	if err := checkListen(o, auth); err != nil {
		return nil, err
	}

	a := &App{opts: o, log: o.Logger, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Bind first: a port in use is the commonest startup error, and
	// nothing else should start before it is known.
	a.listener, err = net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", o.Listen, err)
	}
	if a.opts.NatsURL == "" || a.has(RoleCorrelate) {
		if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("create data directory: %w", err)
		}
		if a.unlock, err = lockDataDir(o.DataDir); err != nil {
			return nil, err
		}
		if err := writeConfigPath(o.DataDir, o.ConfigFile); err != nil {
			return nil, err
		}
	}
	if err := a.startNATS(ctx, cfg); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	runCtx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if a.has(RoleCorrelate) {
		if err := a.startCorrelator(runCtx, cfg, mux, auth); err != nil {
			return nil, err
		}
	}
	if a.has(RoleIngest) {
		var incs ingest.Incidents
		if a.store != nil {
			incs = a.incidents
		}
		h, err := ingest.New(ingest.Options{
			Publisher: a.bus, Incidents: incs, Auth: auth, MaxBodyBytes: cfg.Limits.MaxBodyBytes, MaxAlertmanagerBodyBytes: cfg.Limits.MaxAlertmanagerBodyBytes,
			Now: o.Now, Logger: a.log, Registerer: a.reg,
		})
		if err != nil {
			return nil, err
		}
		for _, route := range h.Routes() {
			mux.Handle(route, h)
		}
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			tick(runCtx, a.bus, tickEvery, o.Now, a.log.With("component", "clock"))
		}()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		api.JSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", a.readyz)

	handler := jsonErrors(mux)
	if len(auth.Unprotected()) > 0 && !o.Insecure {
		handler = loopbackOnly(handler)
	}
	a.http = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.With("component", "http").Handler(), slog.LevelWarn),
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.http.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	return a, nil
}

func (a *App) has(role string) bool { return slices.Contains(a.opts.Roles, role) }

func checkRoles(roles []string) error {
	for _, r := range roles {
		if !slices.Contains(AllRoles, r) {
			return fmt.Errorf("unknown role %q: roles are %s", r, strings.Join(AllRoles, ","))
		}
	}
	if slices.Contains(roles, RoleDraft) && !slices.Contains(roles, RoleCorrelate) {
		return errors.New("role draft renders from the correlator's state: run it with correlate (--roles correlate,draft)")
	}
	return nil
}

// checkListen refuses to expose unauthenticated endpoints beyond loopback.
func checkListen(o Options, auth ingest.AuthConfig) error {
	host, _, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", o.Listen, err)
	}
	if isLoopback(host) || o.Insecure {
		return nil
	}
	open := auth.Unprotected()
	if len(open) == 0 {
		return nil
	}
	return fmt.Errorf("refusing to listen on %s: %s would accept requests without credentials; configure auth in --config, listen on 127.0.0.1, or pass --insecure", o.Listen, strings.Join(open, ", "))
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (a *App) startNATS(ctx context.Context, cfg Config) error {
	bo := cfg.NATS.streamOptions()
	bo.URL, bo.Logger = a.opts.NatsURL, a.log.With("component", "nats")
	if a.opts.NatsURL == "" {
		sync, _ := cfg.syncInterval()
		// Besides in-process, the server listens on a random loopback
		// port behind a random token, written to <data-dir>/nats.url
		// below: so hindsight replay reads the stream while we run,
		// instead of starting a second nats-server on our store.
		bo.Token = natsbus.NewToken()
		ns, err := natsbus.StartEmbedded(natsbus.EmbeddedOptions{StoreDir: filepath.Join(a.opts.DataDir, "jetstream"),
			SyncInterval: sync, Port: -1, Token: bo.Token, Logger: a.log})
		if err != nil {
			return err
		}
		a.ns, bo.Server = ns, ns
		reserve := uint64(cfg.NATS.MinFreeDisk)
		if cfg.NATS.MinFreeDisk == 0 {
			reserve = 64 << 20
		}
		store := filepath.Join(a.opts.DataDir, "jetstream")
		bo.Guard = natsbus.NewDiskGuard(store, reserve)
		a.wg.Add(1)
		watch, stop := context.WithCancel(context.Background())
		a.stopWatch = stop
		go func() {
			defer a.wg.Done()
			bo.Guard.Run(watch, ns, store, time.Second, a.log.With("component", "nats"))
		}()
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bus, err := natsbus.Open(octx, bo)
	if err != nil {
		return err
	}
	a.bus = bus
	if a.has(RoleCorrelate) {
		// The correlator publishes incident notices there; sinks follow them.
		if err := bus.OpenNotices(octx, natsbus.NoticeStreamOptions{}); err != nil {
			return err
		}
	}
	if a.ns != nil {
		if err := natsbus.WriteURLFile(filepath.Join(a.opts.DataDir, natsbus.URLFile), a.ns, bo.Token); err != nil {
			return err
		}
	}
	return nil
}

func (a *App) startCorrelator(ctx context.Context, cfg Config, mux *http.ServeMux, auth ingest.AuthConfig) error {
	cc, _ := cfg.CorrelateConfig()
	a.rules = len(cc.Rules)
	path := filepath.Join(a.opts.DataDir, "hindsight.db")
	store, err := boltstore.Open(path)
	if err != nil {
		return err
	}
	a.store = store
	c, err := correlate.New(cc, store, a.log.With("component", "correlate"), a.reg)
	if err != nil {
		return err
	}
	// After each commit: the lifecycle notices on NATS, for sinks and
	// live pages (never failing the fold).
	c.Notify(a.bus.Notifier(a.reg))
	durable := cfg.NATS.Consumer
	if durable == "" {
		durable = "hindsight-correlate"
	}
	poison := prometheus.NewCounter(prometheus.CounterOpts{Name: "hindsight_events_parked_total",
		Help: "Events the correlator could never apply (undecodable, or failing while the stream flowed past them), parked in the HINDSIGHT_PARKED stream."})
	a.reg.MustRegister(poison,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hindsight_incidents_open", Help: "Incidents now open."}, func() float64 {
			n, _ := store.OpenIncidents()
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hindsight_incidents_pending",
			Help: "Alert groups a correlation rule's open_after holds back while they fire (not yet incidents)."}, func() float64 {
			n, _ := store.PendingIncidents()
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "hindsight_consumer_lag_messages",
			Help: "Events in the stream the correlator has not yet folded (pending plus unacknowledged)."}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			n, err := a.bus.Pending(ctx, durable)
			if err != nil {
				return -1
			}
			return float64(n)
		}))

	exitAfterCommit := os.Getenv("HINDSIGHT_FAILPOINT") == "exit-after-commit"
	fold := func() {
		defer a.wg.Done()
		err := a.bus.Consume(ctx, natsbus.ConsumerOptions{Durable: durable, Batch: 2048, StartAfter: store.LastSeq, OnPoison: func(uint64, error) { poison.Inc() }},
			func(ctx context.Context, ds []natsbus.Delivery) error {
				events := make([]hindsight.Event, len(ds))
				for i, d := range ds {
					events[i] = d.Event
				}
				if err := c.Apply(ctx, events, ds[len(ds)-1].Seq); err != nil {
					return err
				}
				if exitAfterCommit {
					// Failpoint for the crash tests: die between the bbolt
					// commit and the JetStream ack.
					a.log.Warn("failpoint exit-after-commit: exiting before the ack", "seq", ds[len(ds)-1].Seq)
					os.Exit(86)
				}
				return nil
			})
		if err != nil {
			a.log.Error("correlator stopped", "err", err)
		}
	}

	var drafts api.Renderer
	if a.has(RoleDraft) {
		var src string
		if f := a.opts.TemplateFile; f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return fmt.Errorf("--template: %w", err)
			}
			if src = string(b); strings.TrimSpace(src) == "" {
				return fmt.Errorf("--template %s: the file is empty", f)
			}
		}
		r, err := draft.New(draft.Options{Template: src})
		if err != nil {
			if a.opts.TemplateFile != "" {
				return fmt.Errorf("--template %s: %w", a.opts.TemplateFile, err)
			}
			return err
		}
		drafts = r
		a.drafts = r
	}
	a.incidents = api.Enriched{Store: store, Config: cc}
	opts := api.Options{Incidents: a.incidents, Drafts: drafts, Logger: a.log.With("component", "api")}
	if auth.API.Configured() {
		opts.Authorize, opts.Challenge = auth.API.Authorized, auth.API.Challenge
	}
	api.Register(mux, opts)
	if c := auth.API; c.BearerToken != "" && c.Username == "" {
		a.log.Warn("the web UI needs basic auth: auth.api has only a bearer token, which a browser cannot send; add username and password to auth.api to use the pages")
	}
	web.Register(mux, web.Options{Incidents: a.incidents, Drafts: drafts, Authorize: opts.Authorize, Challenge: opts.Challenge,
		Watch: a.bus.WatchNotices, Logger: a.log.With("component", "web")})
	if err := a.startSinks(ctx, cfg, store, durable); err != nil {
		return err
	}
	// The correlator folds once the sinks follow its notices: they
	// follow only notices published after they first do.
	a.wg.Add(1)
	go fold()
	return nil
}

// startSinks runs the sinks the config's sinks section sets up, following
// the incident notices (docs/sinks.md).
func (a *App) startSinks(ctx context.Context, cfg Config, store *boltstore.Store, consumer string) error {
	dir, hook, base, err := cfg.Sinks.sinkOptions(a.Addr(), consumer)
	if err != nil {
		return fmt.Errorf("config %s: %w", a.opts.ConfigFile, err)
	}
	if dir == nil && hook == nil {
		return nil
	}
	r := a.drafts
	if r == nil {
		if r, err = draft.New(draft.Options{}); err != nil {
			return err
		}
	}
	sinks, err := sink.New(sink.Options{Source: a.bus, Incidents: a.incidents, Renderer: r, Applied: store.LastSeq, ExternalURL: base,
		Directory: dir, Webhook: hook, Logger: a.log.With("component", "sink"), Registerer: a.reg})
	if err != nil {
		return err
	}
	sinks.Prepare(ctx, 5*time.Second)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		sinks.Run(ctx)
	}()
	return nil
}

func (a *App) readyz(w http.ResponseWriter, _ *http.Request) {
	checks := map[string]string{}
	ready := true
	if err := a.bus.Ready(); err != nil {
		checks["nats"], ready = err.Error(), false
	} else if a.ns != nil && !a.ns.JetStreamEnabled() {
		checks["nats"], ready = "embedded JetStream is restarting", false
	} else {
		checks["nats"] = "ok"
	}
	if a.store != nil {
		if err := a.store.Ready(); err != nil {
			checks["bbolt"], ready = err.Error(), false
		} else {
			checks["bbolt"] = "ok"
		}
	}
	status, code := "ready", http.StatusOK
	if !ready {
		status, code = "not ready", http.StatusServiceUnavailable
	}
	api.JSON(w, code, map[string]any{"status": status, "checks": checks})
}

// Addr is the address the HTTP server listens on.
func (a *App) Addr() string { return a.listener.Addr().String() }

// Registry is the metrics registry, for tests.
func (a *App) Registry() *prometheus.Registry { return a.reg }

// Store is the bbolt state, nil without the correlate role.
func (a *App) Store() *boltstore.Store { return a.store }

// Incidents reads incidents as the API serves them: enriched with their
// suspected changes, deploys and related incidents. Nil without the
// correlate role.
func (a *App) Incidents() api.Incidents { return a.incidents }

// Close stops serving, lets requests in flight finish, stops the
// correlator after its current batch, and closes NATS and bbolt.
func (a *App) Close() error {
	a.closeMu.Lock()
	defer a.closeMu.Unlock()
	if a.closed {
		return nil
	}
	a.closed = true
	var errs []error
	if a.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		errs = append(errs, a.http.Shutdown(ctx))
		cancel()
	}
	if a.cancel != nil {
		a.cancel()
	}
	if a.stopWatch != nil {
		a.stopWatch()
	}
	if a.ns != nil {
		// Ours: the data directory's lock is held while a.ns is set.
		os.Remove(filepath.Join(a.opts.DataDir, natsbus.URLFile))
	}
	a.wg.Wait()
	if a.bus != nil {
		a.bus.Close()
	}
	if a.store != nil {
		errs = append(errs, a.store.Close())
	}
	if a.ns != nil {
		a.ns.Shutdown()
		a.ns.WaitForShutdown()
	}
	if a.listener != nil && a.http == nil {
		a.listener.Close() // failed during startup, before serving
	}
	if a.unlock != nil {
		os.Remove(filepath.Join(a.opts.DataDir, ConfigPathFile))
		a.unlock()
	}
	return errors.Join(errs...)
}

// ConfigPathFile is the file in the data directory where serve leaves
// the absolute path of its --config (empty: the defaults) while it runs,
// so that replay compares candidate rules with what serve folds by.
const ConfigPathFile = "serve.config"

func writeConfigPath(dir, config string) error {
	if config != "" {
		abs, err := filepath.Abs(config)
		if err != nil {
			return err
		}
		config = abs
	}
	tmp := filepath.Join(dir, ConfigPathFile+".tmp")
	if err := os.WriteFile(tmp, []byte(config+"\n"), 0o600); err != nil {
		return fmt.Errorf("write %s: %w", ConfigPathFile, err)
	}
	return os.Rename(tmp, filepath.Join(dir, ConfigPathFile))
}
