package sink

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hindsight-sre/hindsight"
)

// WebhookOptions configures the webhook sink.
type WebhookOptions struct {
	// URL receives a POST of a JSON Summary per notice.
	URL string
	// BearerToken, when set, goes in an Authorization header.
	BearerToken string
	// Headers are added to every request.
	Headers map[string]string
	// Timeout of one request (default 5s).
	Timeout time.Duration
	// On are the changes posted (default resolved).
	On []string
	// SkipOlderThan skips a change that happened longer ago than this
	// (default 1h; negative: never skip): a correlator refolding its
	// history must not repost it.
	SkipOlderThan time.Duration
	// Consumer is the sink's durable consumer.
	Consumer string
}

// Summary is what the webhook sink posts. Text is for chat (Slack takes
// the field as the message); the rest for machines.
type Summary struct {
	Text      string     `json:"text"`
	Change    string     `json:"change"`
	Incident  string     `json:"incident"`
	Title     string     `json:"title"`
	Service   string     `json:"service"`
	Severity  string     `json:"severity"`
	Status    string     `json:"status"`
	StartedAt *time.Time `json:"started_at"`
	// ResolvedAt and Duration are null while the incident is open.
	ResolvedAt      *time.Time `json:"resolved_at"`
	DurationSeconds *float64   `json:"duration_seconds"`
	Into            string     `json:"into,omitempty"`
	URL             string     `json:"url"`
}

// maxTitle is the most characters of a title a summary carries.
const maxTitle = 200

type webhook struct {
	o      WebhookOptions
	base   string
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
}

// WebhookChanges are the changes a webhook can be set to post.
var WebhookChanges = []string{hindsight.NoticeOpened, hindsight.NoticeReopened, hindsight.NoticeResolved,
	hindsight.NoticeUpdated, hindsight.NoticeMerged, hindsight.NoticePublished}

func newWebhook(o WebhookOptions, so Options) (*webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook sink: url %q: want an http:// or https:// URL", o.URL)
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if len(o.On) == 0 {
		o.On = []string{hindsight.NoticeResolved}
	}
	for _, c := range o.On {
		if !slices.Contains(WebhookChanges, c) {
			return nil, fmt.Errorf("webhook sink: on %q: want one of %s", c, strings.Join(WebhookChanges, ", "))
		}
	}
	if o.SkipOlderThan == 0 {
		o.SkipOlderThan = time.Hour
	}
	if o.Consumer == "" {
		o.Consumer = "hindsight-sink-webhook"
	}
	return &webhook{o: o, base: strings.TrimRight(so.ExternalURL, "/"), client: &http.Client{Timeout: o.Timeout},
		now: so.Now, log: so.Logger.With("sink", "webhook")}, nil
}

func (w *webhook) name() string    { return "webhook" }
func (w *webhook) durable() string { return w.o.Consumer }

func (w *webhook) wants(n hindsight.Notice) bool { return slices.Contains(w.o.On, w.change(n)) }

// change is the change a notice reports as the webhook posts it: an
// incident that opened and resolved within one commit (both alerts in one
// batch, a backfill) has an opened notice with status resolved, which a
// webhook on resolved posts as resolved.
func (w *webhook) change(n hindsight.Notice) string {
	if n.Change == hindsight.NoticeOpened && n.Status == hindsight.StatusResolved && slices.Contains(w.o.On, hindsight.NoticeResolved) {
		return hindsight.NoticeResolved
	}
	return n.Change
}

func (w *webhook) deliver(ctx context.Context, n hindsight.Notice, inc *hindsight.Incident) error {
	n.Change = w.change(n)
	s := w.summary(n, inc)
	if at := changedAt(n, inc); w.o.SkipOlderThan > 0 && !at.IsZero() && w.now().Sub(at) > w.o.SkipOlderThan {
		w.log.Info("change too old to post (a refold of the history?); skipped", "incident", n.Incident, "change", n.Change,
			"changed_at", at, "skip_older_than", w.o.SkipOlderThan)
		return nil
	}
	body, err := json.Marshal(s)
	if err != nil {
		return permanent(fmt.Errorf("encode summary: %w", err))
	}
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.o.URL, bytes.NewReader(body))
	if err != nil {
		return permanent(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "hindsight")
	for k, v := range w.o.Headers {
		req.Header.Set(k, v)
	}
	if w.o.BearerToken != "" {
		req.Header.Set("Authorization", "Bearer "+w.o.BearerToken)
	}
	res, err := w.client.Do(req)
	if err != nil {
		// The URL may carry a secret (Slack's does): say only where.
		return fmt.Errorf("post to %s: %w", redact(w.o.URL), unwrapURLError(err))
	}
	defer res.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(res.Body, 512))
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		w.log.Info("posted", "incident", n.Incident, "change", n.Change, "status", res.StatusCode)
		return nil
	case res.StatusCode == http.StatusRequestTimeout || res.StatusCode == http.StatusTooManyRequests || res.StatusCode >= 500:
		return fmt.Errorf("post to %s: %s: %s", redact(w.o.URL), res.Status, clip(string(reply), 200))
	}
	return permanent(fmt.Errorf("post to %s: %s: %s", redact(w.o.URL), res.Status, clip(string(reply), 200)))
}

// summary is what to post about n; inc (nil when the store has none)
// gives the times.
func (w *webhook) summary(n hindsight.Notice, inc *hindsight.Incident) Summary {
	s := Summary{Change: n.Change, Incident: n.Incident, Title: clip(n.Title, maxTitle), Service: n.Service,
		Severity: n.Severity, Status: string(n.Status), Into: n.Into}
	link := n.Incident
	if n.Into != "" {
		link = n.Into
	}
	s.URL = w.base + "/incidents/" + url.PathEscape(link)
	var after string
	if inc != nil {
		start := inc.Postmortem.ImpactStart(inc.StartedAt).UTC()
		s.StartedAt = &start
		if inc.ResolvedAt != nil && n.Change != hindsight.NoticeReopened && n.Change != hindsight.NoticeOpened {
			end := inc.ResolvedAt.UTC()
			d := end.Sub(start)
			secs := d.Seconds()
			s.ResolvedAt, s.DurationSeconds = &end, &secs
			after = " after " + hindsight.FormatDuration(d)
		}
	}
	verb := map[string]string{
		hindsight.NoticeOpened: "Opened", hindsight.NoticeReopened: "Reopened", hindsight.NoticeResolved: "Resolved",
		hindsight.NoticeUpdated: "Updated", hindsight.NoticeMerged: "Merged", hindsight.NoticePublished: "Postmortem published",
	}[n.Change]
	if verb == "" {
		verb = "Changed"
	}
	if n.Change != hindsight.NoticeResolved {
		after = ""
	}
	// Labels are untrusted too: one line each, and short.
	text := fmt.Sprintf("%s: %s (%s, %s)%s — %s", verb, chat(s.Title), chat(clip(orNone(n.Service), 100)), chat(clip(orNone(n.Severity), 40)), after, s.URL)
	if n.Change == hindsight.NoticeMerged && n.Into != "" {
		text = fmt.Sprintf("Merged: %s into %s — %s", chat(n.Incident), chat(n.Into), s.URL)
	}
	s.Text = text
	return s
}

// changedAt is when Hindsight learned of the change a notice reports: the
// correlator's watermark when it made it (a late resolution received now
// is news; a refold of last month is not), else, from a correlator that
// does not say, the incident's own times; zero when nothing says.
func changedAt(n hindsight.Notice, inc *hindsight.Incident) time.Time {
	if !n.At.IsZero() {
		return n.At
	}
	if inc == nil {
		return time.Time{}
	}
	switch n.Change {
	case hindsight.NoticeResolved:
		if inc.ResolvedAt != nil {
			return *inc.ResolvedAt
		}
	case hindsight.NoticeOpened:
		if inc.DetectedAt != nil {
			return *inc.DetectedAt
		}
		return inc.StartedAt
	case hindsight.NoticePublished:
		if inc.Postmortem.PublishedAt != nil {
			return *inc.Postmortem.PublishedAt
		}
	}
	return time.Time{}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// clip shortens s to at most n characters, on one line.
func clip(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	s = strings.TrimSpace(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}

// chat escapes what Slack's mrkdwn reads as markup in the text field:
// <...> makes links and mentions (<!channel>), & starts an entity.
func chat(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// redact keeps a URL's scheme and host: its path and query may hold a
// secret.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(the webhook URL)"
	}
	return u.Scheme + "://" + u.Host + "/…"
}

// unwrapURLError drops *url.Error's copy of the URL.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
