package natsbus

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
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
	// (in-process connections only), -1 a random port.
	Port int
	// Token, when set, is required of every client, in-process ones
	// included: they pass it as Options.Token.
	Token  string
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
		Authorization:      o.Token,
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

// URLFile is the file in the data directory where serve writes the
// address of its embedded nats-server's loopback listener, with the token
// it requires, so that readers of the stream on the same machine
// (hindsight replay) connect to it instead of starting a second
// nats-server on the same store, which must never happen.
const URLFile = "nats.url"

// NewToken returns a random token for EmbeddedOptions.Token.
func NewToken() string { return rand.Text() }

// WriteURLFile writes the nats:// URL of ns's loopback listener, with
// token, to path, readable by its owner only. It replaces the file
// whole, so a reader never sees half of it.
func WriteURLFile(path string, ns *server.Server, token string) error {
	u, err := url.Parse(ns.ClientURL())
	if err != nil || ns.Addr() == nil {
		return fmt.Errorf("the embedded nats-server has no client listener to write to %s", path)
	}
	if token != "" {
		u.User = url.User(token)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err = tmp.WriteString(u.String() + "\n"); err == nil {
		err = tmp.Sync() // CreateTemp makes it 0600
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ReadURLFile reads a file WriteURLFile wrote and returns the URL without
// its token, and the token, for Options.URL and Options.Token: so the
// token never shows in an error message that names the URL.
func ReadURLFile(path string) (addr, token string, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	u, err := url.Parse(strings.TrimSpace(string(data)))
	if err != nil || u.Scheme != "nats" || u.Host == "" {
		return "", "", errors.New(path + " does not hold a nats:// URL")
	}
	if u.User != nil {
		token = u.User.Username()
		u.User = nil
	}
	return u.String(), token, nil
}

// serverLogger adapts slog to nats-server's logger.
type serverLogger struct{ l *slog.Logger }

func (s *serverLogger) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Errorf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Debugf(format string, v ...any)  { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s *serverLogger) Tracef(format string, v ...any)  {}
