package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client talks to a running Hindsight.
type client struct {
	server   string
	token    string
	user     string
	password string
	http     *http.Client
}

func (c *client) flags(fs interface {
	StringVar(*string, string, string, string)
}, tokenFlag, tokenHelp string) {
	fs.StringVar(&c.server, "server", "http://127.0.0.1:9097", "Hindsight's base URL")
	fs.StringVar(&c.token, tokenFlag, "", tokenHelp)
	fs.StringVar(&c.user, "user", "", "basic auth user")
	fs.StringVar(&c.password, "password", "", "basic auth password")
}

func (c *client) url(path string) (string, error) {
	u, err := url.Parse(strings.TrimRight(c.server, "/") + path)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", usageError{fmt.Errorf("--server %q: want a URL like http://127.0.0.1:9097", c.server)}
	}
	return u.String(), nil
}

// do sends a request, retrying connection failures and 5xx answers (the
// body is the same each time, so the event ID is too: retries collapse).
func (c *client) do(ctx context.Context, method, path, contentType string, body []byte) ([]byte, error) {
	u, err := c.url(path)
	if err != nil {
		return nil, err
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: 30 * time.Second}
	}
	var lastErr error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Duration(1<<attempt) * 500 * time.Millisecond):
			}
		}
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		switch {
		case c.token != "":
			req.Header.Set("Authorization", "Bearer "+c.token)
		case c.user != "":
			req.SetBasicAuth(c.user, c.password)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			lastErr = err
			continue
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		resp.Body.Close()
		if err != nil {
			lastErr = err
			continue
		}
		if resp.StatusCode >= 500 {
			lastErr = fmt.Errorf("%s %s: %s", method, u, answer(resp.Status, data))
			continue
		}
		if resp.StatusCode >= 300 {
			return nil, fmt.Errorf("%s %s: %s", method, u, answer(resp.Status, data))
		}
		return data, nil
	}
	return nil, lastErr
}

// answer renders an error response: its JSON error message if it has one.
func answer(status string, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return status + ": " + e.Error
	}
	return status + ": " + strings.TrimSpace(string(body))
}
