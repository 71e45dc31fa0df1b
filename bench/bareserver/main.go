// Command bareserver is the ceiling ingestbench measures Hindsight
// against: a net/http server that reads an Alertmanager webhook body,
// decodes it into the same types Hindsight's ingest decodes into
// (github.com/prometheus/alertmanager/template.Data and the webhook's
// version, groupKey and truncatedAlerts), and answers 200 with a small
// JSON body, storing nothing.
//
// Usage:
//
//	bareserver --listen 127.0.0.1:9099
//
// GET /healthz answers 200. It stops on SIGINT or SIGTERM.
//
// # Caveats
//
// It is a ceiling, not a server: no auth, no validation beyond JSON and
// the payload version, nothing kept. Anything Hindsight does beyond this
// (event IDs, publishing to JetStream, fsync, folding) is the distance
// from the ceiling.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/alertmanager/template"
)

// payload is Alertmanager's webhook body, as ingest decodes it.
type payload struct {
	template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts int    `json:"truncatedAlerts"`
}

const maxBody = 32 << 20 // ingest's default for Alertmanager notifications

func handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/alertmanager", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
		if err != nil {
			http.Error(w, `{"error":"read body"}`, http.StatusBadRequest)
			return
		}
		var p payload
		if err := json.Unmarshal(body, &p); err != nil || p.Version != "4" || len(p.Alerts) == 0 {
			http.Error(w, `{"error":"not an Alertmanager webhook payload, version 4, with alerts"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"accepted":` + strconv.Itoa(len(p.Alerts)) + `}` + "\n"))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

func main() {
	listen := flag.String("listen", "127.0.0.1:9099", "address to serve HTTP on")
	flag.Parse()
	srv := &http.Server{Addr: *listen, Handler: handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(os.Stderr, "bareserver: %v\n", err)
		os.Exit(1)
	}
}
