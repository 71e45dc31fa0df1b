package natsbus

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedOptions configures the embedded nats-server.
type EmbeddedOptions struct {
	// StoreDir holds JetStream's files.
	StoreDir string
	// SyncInterval is how often JetStream fsyncs; zero means before every
	// acknowledgement (SyncAlways), the durable default.
	SyncInterval time.Duration
	// Port to listen on for clients on 127.0.0.1; 0 means no listener
	// (in-process connections only), -1 a random port (tests).
	Port   int
	Logger *slog.Logger
}

// StartEmbedded starts a nats-server with JetStream on file storage and
// waits until it accepts connections.
func StartEmbedded(o EmbeddedOptions) (*server.Server, error) {
	opts := &server.Options{
		ServerName:         "hindsight-embedded",
		JetStream:          true,
		StoreDir:           o.StoreDir,
		Host:               "127.0.0.1",
		Port:               o.Port,
		DontListen:         o.Port == 0,
		NoSigs:             true,
		MaxPayload:         8 << 20,
		JetStreamMaxMemory: 64 << 20,
	}
	if o.SyncInterval > 0 {
		opts.SyncInterval = o.SyncInterval
	} else {
		opts.SyncAlways = true
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded nats-server: %w", err)
	}
	if o.Logger != nil {
		ns.SetLoggerV2(&serverLogger{o.Logger.With("component", "nats-server")}, false, false, false)
	}
	ns.Start()
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats-server with store %s did not become ready within 30s (is another Hindsight using this data directory?)", o.StoreDir)
	}
	return ns, nil
}

// serverLogger adapts slog to nats-server's logger.
type serverLogger struct{ l *slog.Logger }

func (s *serverLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Tracef(format string, v ...any)  {}
