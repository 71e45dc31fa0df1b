package app

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hindsight-sre/hindsight/correlate"
	"github.com/hindsight-sre/hindsight/ingest"
)

// Config is the --config file: correlation, auth, limits and stream
// settings. Every field is optional.
type Config struct {
	Auth struct {
		Alertmanager CredentialsConfig `yaml:"alertmanager"`
		Deploy       CredentialsConfig `yaml:"deploy"`
		API          CredentialsConfig `yaml:"api"`
		// GitHub is the secret of the GitHub webhook calling
		// /hooks/github; without it that route takes auth.deploy's
		// credentials.
		GitHub *SecretConfig `yaml:"github"`
	} `yaml:"auth"`
	Correlation struct {
		KeyLabels      []string      `yaml:"key_labels"`
		ReopenWindow   time.Duration `yaml:"reopen_window"`
		ChangeLookback time.Duration `yaml:"change_lookback"`
		SeverityLabel  string        `yaml:"severity_label"`
	} `yaml:"correlation"`
	Limits struct {
		MaxBodyBytes             int64 `yaml:"max_body_bytes"`
		MaxAlertmanagerBodyBytes int64 `yaml:"max_alertmanager_body_bytes"`
	} `yaml:"limits"`
	NATS struct {
		StreamReplicas  int           `yaml:"stream_replicas"`
		DuplicateWindow time.Duration `yaml:"duplicate_window"`
		MaxAge          time.Duration `yaml:"max_age"`
		// Consumer is the correlator's durable consumer name; each
		// correlator with its own state file needs its own.
		Consumer string `yaml:"consumer"`
		// SyncInterval of the embedded server; empty or "always" fsyncs
		// before every acknowledgement.
		SyncInterval string `yaml:"sync_interval"`
		// MinFreeDisk is the free space (bytes) below which the embedded
		// JetStream refuses events with 503 instead of failing a write
		// (default 64 MiB).
		MinFreeDisk int64 `yaml:"min_free_disk"`
	} `yaml:"nats"`
}

// CredentialsConfig is one endpoint's auth.
type CredentialsConfig struct {
	BearerToken     *string `yaml:"bearer_token"`
	BearerTokenFile string  `yaml:"bearer_token_file"`
	BasicAuth       *struct {
		Username     string `yaml:"username"`
		Password     string `yaml:"password"`
		PasswordFile string `yaml:"password_file"`
	} `yaml:"basic_auth"`
	// StandardWebhooks is a signing secret ("whsec_..."): requests
	// signed with it are accepted too. Only auth.deploy takes one.
	StandardWebhooks *SecretConfig `yaml:"standard_webhooks"`
}

// SecretConfig is a shared signing secret, inline or from a file.
type SecretConfig struct {
	Secret     *string `yaml:"secret"`
	SecretFile string  `yaml:"secret_file"`
}

// LoadConfig reads and checks a config file; "" gives the defaults.
func LoadConfig(path string) (Config, error) {
	var c Config
	if path == "" {
		return c, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("read config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("config %s: %s", path, yamlMessage(err))
	}
	if _, err := c.CorrelateConfig(); err != nil {
		return c, fmt.Errorf("config %s: correlation: %w", path, err)
	}
	if c.Limits.MaxBodyBytes < 0 || c.Limits.MaxAlertmanagerBodyBytes < 0 {
		return c, fmt.Errorf("config %s: limits: a body limit is negative", path)
	}
	if _, err := c.syncInterval(); err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// goTypes matches the Go type names yaml puts in its messages, which mean
// nothing to the person who wrote the file.
var goTypes = regexp.MustCompile(` (in|into) type [^\n]*`)

func yamlMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	msg = goTypes.ReplaceAllStringFunc(msg, func(m string) string {
		switch {
		case strings.HasPrefix(m, " in type"):
			return " (no such setting; see deploy/hindsight.yml)"
		case strings.Contains(m, "time.Duration"):
			return " as a duration (like 10m or 1h30m)"
		}
		return ""
	})
	return msg
}

// CorrelateConfig is the correlation settings over the defaults.
func (c Config) CorrelateConfig() (correlate.Config, error) {
	cc := correlate.DefaultConfig()
	if len(c.Correlation.KeyLabels) > 0 {
		cc.KeyLabels = c.Correlation.KeyLabels
	}
	if c.Correlation.ReopenWindow != 0 {
		cc.ReopenWindow = c.Correlation.ReopenWindow
	}
	if c.Correlation.ChangeLookback != 0 {
		cc.ChangeLookback = c.Correlation.ChangeLookback
	}
	if c.Correlation.SeverityLabel != "" {
		cc.SeverityLabel = c.Correlation.SeverityLabel
	}
	return cc, cc.Validate()
}

func (c Config) syncInterval() (time.Duration, error) {
	switch v := c.NATS.SyncInterval; v {
	case "", "always":
		return 0, nil
	default:
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return 0, fmt.Errorf("nats.sync_interval %q: want \"always\" or a positive duration such as 2m", v)
		}
		return d, nil
	}
}

// auth resolves the credentials, reading secret files.
func (c Config) auth() (ingest.AuthConfig, error) {
	var a ingest.AuthConfig
	var err error
	for _, x := range []struct {
		name string
		in   CredentialsConfig
		out  *ingest.Credentials
	}{{"alertmanager", c.Auth.Alertmanager, &a.Alertmanager}, {"deploy", c.Auth.Deploy, &a.Deploy}, {"api", c.Auth.API, &a.API}} {
		if *x.out, err = x.in.resolve(); err != nil {
			return a, fmt.Errorf("auth.%s: %w", x.name, err)
		}
		if x.in.StandardWebhooks != nil && x.name != "deploy" {
			return a, fmt.Errorf("auth.%s: standard_webhooks is accepted only under auth.deploy", x.name)
		}
	}
	if sw := c.Auth.Deploy.StandardWebhooks; sw != nil {
		if a.DeployStandardWebhooksSecret, err = sw.resolve(); err != nil {
			return a, fmt.Errorf("auth.deploy.standard_webhooks: %w", err)
		}
	}
	if gh := c.Auth.GitHub; gh != nil {
		if a.GitHubSecret, err = gh.resolve(); err != nil {
			return a, fmt.Errorf("auth.github: %w", err)
		}
	}
	return a, nil
}

func (sc SecretConfig) resolve() (string, error) {
	switch {
	case sc.Secret != nil && sc.SecretFile != "":
		return "", errors.New("set secret or secret_file, not both")
	case sc.SecretFile != "":
		return readSecret(sc.SecretFile)
	case sc.Secret == nil:
		return "", errors.New("set secret or secret_file")
	case *sc.Secret == "":
		// An unset variable in a templated config, most likely.
		return "", errors.New("secret is empty")
	}
	return *sc.Secret, nil
}

func (cc CredentialsConfig) resolve() (ingest.Credentials, error) {
	var out ingest.Credentials
	if cc.BearerToken != nil && cc.BearerTokenFile != "" {
		return out, errors.New("set bearer_token or bearer_token_file, not both")
	}
	if cc.BearerToken != nil {
		if *cc.BearerToken == "" {
			// An unset variable in a templated config, most likely:
			// refuse rather than run without the auth that was meant.
			return out, errors.New("bearer_token is empty")
		}
		out.BearerToken = *cc.BearerToken
	}
	if cc.BearerTokenFile != "" {
		t, err := readSecret(cc.BearerTokenFile)
		if err != nil {
			return out, err
		}
		out.BearerToken = t
	}
	if b := cc.BasicAuth; b != nil {
		if b.Username == "" {
			return out, errors.New("basic_auth.username is empty")
		}
		if b.Password != "" && b.PasswordFile != "" {
			return out, errors.New("set basic_auth.password or password_file, not both")
		}
		out.Username, out.Password = b.Username, b.Password
		if b.PasswordFile != "" {
			p, err := readSecret(b.PasswordFile)
			if err != nil {
				return out, err
			}
			out.Password = p
		}
		if out.Password == "" {
			return out, errors.New("basic_auth has no password")
		}
	}
	return out, nil
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read secret: %w", err)
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}
