package sink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hindsight-sre/hindsight"
	"github.com/hindsight-sre/hindsight/boltstore"
)

// DirectoryOptions configures the directory sink.
type DirectoryOptions struct {
	// Path is the directory the postmortems go to; created if missing.
	Path string
	// Consumer is the sink's durable consumer.
	Consumer string
}

// directory writes each published postmortem as
// <path>/<YYYY-MM-DD>-<service>-<incident id>.md.
type directory struct {
	o    DirectoryOptions
	incs Incidents
	r    Renderer
	log  *slog.Logger
}

func newDirectory(o DirectoryOptions, so Options) (*directory, error) {
	if o.Path == "" {
		return nil, errors.New("directory sink: no path")
	}
	if so.Renderer == nil {
		return nil, errors.New("directory sink: no postmortem renderer")
	}
	if o.Consumer == "" {
		o.Consumer = "hindsight-sink-directory"
	}
	if err := os.MkdirAll(o.Path, 0o755); err != nil {
		return nil, fmt.Errorf("directory sink: %w", err)
	}
	// Fail at startup, not at the first publish, when it is not writable.
	f, err := os.CreateTemp(o.Path, ".hindsight-check-*")
	if err != nil {
		return nil, fmt.Errorf("directory sink: %s is not writable: %w", o.Path, err)
	}
	f.Close()
	os.Remove(f.Name())
	return &directory{o: o, incs: so.Incidents, r: so.Renderer, log: so.Logger.With("sink", "directory")}, nil
}

func (d *directory) name() string    { return "directory" }
func (d *directory) durable() string { return d.o.Consumer }

func (d *directory) wants(n hindsight.Notice) bool { return n.Change == hindsight.NoticePublished }

func (d *directory) deliver(_ context.Context, n hindsight.Notice, inc *hindsight.Incident) error {
	if inc == nil {
		return permanent(fmt.Errorf("incident %s is not in the store", n.Incident))
	}
	if inc.Postmortem.State != hindsight.DraftStatePublished {
		// Taken back to draft since: the file stays as published.
		d.log.Info("postmortem no longer published; not written", "incident", inc.ID, "state", inc.Postmortem.State)
		return nil
	}
	return d.write(inc)
}

// FileName is the name the directory sink gives an incident's postmortem:
// <YYYY-MM-DD>-<service>-<incident id>.md, the date the incident started
// (UTC), the service and ID reduced to letters, digits, '.', '_' and '-'.
func FileName(inc *hindsight.Incident) string {
	return inc.StartedAt.UTC().Format("2006-01-02") + "-" + safeName(inc.Service, "no-service") + "-" + safeName(inc.ID, "no-id") + ".md"
}

// safeName keeps s usable in a file name on every common file system.
func safeName(s, empty string) string {
	var b strings.Builder
	dash := false
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.'
		if ok {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
		if b.Len() >= 64 {
			break
		}
	}
	out := strings.Trim(b.String(), "-.")
	if out == "" {
		return empty
	}
	return out
}

// write renders the postmortem and replaces its file atomically: a
// temporary file in the same directory, fsynced, renamed over it, and
// the directory fsynced.
func (d *directory) write(inc *hindsight.Incident) error {
	asOf := time.Time{}
	if t := inc.Postmortem.PublishedAt; t != nil {
		asOf = *t
	} else if inc.ResolvedAt != nil {
		asOf = *inc.ResolvedAt
	}
	var buf bytes.Buffer
	if err := d.r.Render(&buf, inc, inc.Postmortem.Fields, asOf); err != nil {
		return permanent(fmt.Errorf("render postmortem of %s: %w", inc.ID, err))
	}
	name := FileName(inc)
	if err := writeAtomic(d.o.Path, name, buf.Bytes()); err != nil {
		return err
	}
	d.log.Info("postmortem written", "incident", inc.ID, "file", filepath.Join(d.o.Path, name))
	return nil
}

func writeAtomic(dir, name string, data []byte) (err error) {
	f, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("rename %s: %w", name, err)
	}
	// The rename is durable once the directory is synced (not every
	// platform can sync a directory; the file is in place either way).
	if df, err := os.Open(dir); err == nil {
		_ = df.Sync()
		df.Close()
	}
	return nil
}

// catchUp writes every published postmortem whose file is missing: those
// published while this sink was not running, or whose notice was lost.
func (d *directory) catchUp(ctx context.Context) error {
	written, cursor := 0, ""
	for {
		incs, next, err := d.incs.List(ctx, boltstore.ListOptions{Status: hindsight.StatusResolved, Limit: 200, Cursor: cursor})
		if err != nil {
			return fmt.Errorf("list incidents: %w", err)
		}
		for i := range incs {
			inc := &incs[i]
			if inc.Postmortem.State != hindsight.DraftStatePublished {
				continue
			}
			_, err := os.Stat(filepath.Join(d.o.Path, FileName(inc)))
			if err == nil {
				continue
			}
			if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if err := d.write(inc); err != nil {
				return err
			}
			written++
		}
		if next == "" || ctx.Err() != nil {
			break
		}
		cursor = next
	}
	if written > 0 {
		d.log.Info("caught up: wrote published postmortems whose files were missing", "count", written)
	}
	return ctx.Err()
}
