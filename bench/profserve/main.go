// Command profserve runs Hindsight exactly as `hindsight serve` does
// (app.Run with the same options) and also serves net/http/pprof on a
// second loopback address, so a CPU profile can be taken while
// bench/ingestbench loads it:
//
//	profserve --listen 127.0.0.1:9097 --data-dir /tmp/d --pprof 127.0.0.1:6060 &
//	go tool pprof -proto -output cpu.pb.gz 'http://127.0.0.1:6060/debug/pprof/profile?seconds=10'
//
// `hindsight serve` has no pprof endpoint, and bench/ owns no code of
// the program; this wrapper adds the endpoint without touching it.
//
// # Caveats
//
// The pprof address must be loopback. Logs go to stderr at level warn.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"github.com/hindsight-sre/hindsight/app"
)

func main() {
	var o app.Options
	flag.StringVar(&o.Listen, "listen", "127.0.0.1:9097", "address to serve Hindsight's HTTP on")
	flag.StringVar(&o.DataDir, "data-dir", "./hindsight-data", "data directory, as serve's")
	flag.StringVar(&o.ConfigFile, "config", "", "YAML config, as serve's")
	roles := flag.String("roles", strings.Join(app.AllRoles, ","), "roles, as serve's")
	addr := flag.String("pprof", "127.0.0.1:6060", "loopback address for /debug/pprof/")
	blockRate := flag.Int("block-profile-rate", 0, "runtime.SetBlockProfileRate (0: off); also sets the mutex profile fraction to 1 when on")
	flag.Parse()
	for _, r := range strings.Split(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			o.Roles = append(o.Roles, r)
		}
	}
	if err := run(o, *addr, *blockRate); err != nil {
		fmt.Fprintf(os.Stderr, "profserve: %v\n", err)
		os.Exit(1)
	}
}

func run(o app.Options, addr string, blockRate int) error {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--pprof %q: want a loopback IP and port", addr)
	}
	if blockRate > 0 {
		runtime.SetBlockProfileRate(blockRate)
		runtime.SetMutexProfileFraction(1)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	go func() { _ = http.Serve(ln, mux) }()
	o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := app.Run(ctx, o); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
