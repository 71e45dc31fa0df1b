package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/hindsight-sre/hindsight"
)

// tickEvery is how often the ingest role writes the time into the stream.
const tickEvery = 15 * time.Second

// publisher is the part of the bus ticks need.
type publisher interface {
	Publish(ctx context.Context, events []hindsight.Event) (int, error)
}

// tick writes a clock tick into the stream every interval until ctx is
// done, so that event time moves on while no other event comes: a rule's
// open_after for: then opens an incident on time, and a replay of the
// stream reaches the same decision. Ticks of one second from several
// ingest processes collapse into one event.
func tick(ctx context.Context, p publisher, every time.Duration, now func() time.Time, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		at := now().UTC().Truncate(time.Second)
		e := hindsight.Event{ID: hindsight.TickEventID(at), Kind: hindsight.KindTick, Source: hindsight.SourceClock,
			Time: at, ReceivedAt: at, Summary: "clock tick"}
		pctx, cancel := context.WithTimeout(ctx, every)
		if _, err := p.Publish(pctx, []hindsight.Event{e}); err != nil && ctx.Err() == nil {
			log.Debug("clock tick not published; the next one will do", "err", err)
		}
		cancel()
	}
}
