package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"time"
)

func deployCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("deploy", stderr)
	var c client
	c.flags(fs, "token", "bearer token for /hooks/deploy")
	var d struct {
		ID          string            `json:"id,omitempty"`
		Service     string            `json:"service"`
		Environment string            `json:"environment,omitempty"`
		Version     string            `json:"version,omitempty"`
		Status      string            `json:"status"`
		Time        string            `json:"time"`
		Actor       string            `json:"actor,omitempty"`
		Commit      string            `json:"commit,omitempty"`
		URL         string            `json:"url,omitempty"`
		Description string            `json:"description,omitempty"`
		Labels      map[string]string `json:"labels,omitempty"`
	}
	fs.StringVar(&d.ID, "id", "", "the pipeline's deploy ID (with --status, names the event: retries collapse)")
	fs.StringVar(&d.Service, "service", "", "service deployed (required)")
	fs.StringVar(&d.Environment, "environment", "", "environment, e.g. prod")
	fs.StringVar(&d.Version, "version", "", "version deployed")
	fs.StringVar(&d.Status, "status", "succeeded", "started, succeeded, failed or rolled_back")
	fs.StringVar(&d.Time, "time", "", "when it happened, RFC 3339 (default: now)")
	fs.StringVar(&d.Actor, "actor", "", "who deployed")
	fs.StringVar(&d.Commit, "commit", "", "commit deployed")
	fs.StringVar(&d.URL, "url", "", "link to the CI run")
	fs.StringVar(&d.Description, "description", "", "what changed")
	fs.Func("label", "where it went, as name=value (repeat it): --label cluster=eu1, for correlation rules' shared_labels", func(v string) error {
		name, value, ok := strings.Cut(v, "=")
		if !ok || name == "" {
			return fmt.Errorf("want name=value, like cluster=eu1")
		}
		if d.Labels == nil {
			d.Labels = map[string]string{}
		}
		d.Labels[name] = value
		return nil
	})
	if err := parse(fs, args); err != nil {
		return err
	}
	if d.Service == "" {
		return usageError{fmt.Errorf("deploy needs --service")}
	}
	if d.Time == "" {
		// Fixed once, so every retry sends the same event.
		d.Time = time.Now().UTC().Format(time.RFC3339Nano)
	}
	body, _ := json.Marshal(d)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out, err := c.do(ctx, "POST", "/hooks/deploy", "application/json", body)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func postmortemCmd(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("postmortem", stderr)
	var c client
	c.flags(fs, "token", "bearer token for the API")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{fmt.Errorf("postmortem takes one incident ID, got %d arguments", fs.NArg())}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	out, err := c.do(ctx, "GET", "/api/v1/incidents/"+url.PathEscape(fs.Arg(0))+"/postmortem.md", "", nil)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}
