package ingest

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Credentials protect one endpoint. With a BearerToken the caller must send
// "Authorization: Bearer <token>"; with a Username and Password it must use
// basic auth; with both, either is accepted; with neither, the endpoint is
// open.
type Credentials struct {
	BearerToken string
	Username    string
	Password    string
}

// Configured reports whether c requires any authentication.
func (c Credentials) Configured() bool {
	return c.BearerToken != "" || c.hasBasic()
}

func (c Credentials) hasBasic() bool { return c.Username != "" || c.Password != "" }

// validate refuses half-configured basic auth: an empty password would
// otherwise be a valid password, which is never what the operator meant.
func (c Credentials) validate() error {
	if c.hasBasic() && (c.Username == "" || c.Password == "") {
		return errors.New("basic auth needs both username and password")
	}
	return nil
}

// AuthConfig holds the credentials of each endpoint group.
type AuthConfig struct {
	Alertmanager Credentials // POST /hooks/alertmanager
	Deploy       Credentials // POST /hooks/deploy
	API          Credentials // POST /api/v1/incidents/{id}/notes

	// DeployStandardWebhooksSecret ("whsec_" and the base64 of the key)
	// lets POST /hooks/deploy also accept requests signed as Standard
	// Webhooks do (webhook-id, webhook-timestamp, webhook-signature),
	// within StandardWebhooksTolerance of Hindsight's clock. Deploy's
	// credentials, when set, are accepted too.
	DeployStandardWebhooksSecret string
	// GitHubSecret is the secret of the GitHub webhook that calls POST
	// /hooks/github: every request must then carry a matching
	// X-Hub-Signature-256. Without it the route takes what POST
	// /hooks/deploy takes (GitHub can send basic auth from the URL's
	// user:password@), and is open only when that is.
	GitHubSecret string
}

// Unprotected lists the route patterns that accept requests without any
// credentials, so that the caller can refuse to listen beyond loopback.
// The notes route and the human acts are listed even when no Incidents is
// configured (and they are therefore not served): API protects more than
// this package.
func (a AuthConfig) Unprotected() []string {
	var open []string
	if !a.Alertmanager.Configured() {
		open = append(open, RouteAlertmanager)
	}
	deployOpen := !a.Deploy.Configured() && a.DeployStandardWebhooksSecret == ""
	if deployOpen {
		open = append(open, RouteDeploy)
	}
	if deployOpen && a.GitHubSecret == "" {
		open = append(open, RouteGitHub)
	}
	if !a.API.Configured() {
		open = append(open, RouteNotes, RouteDeclare, RouteDraft, RouteHidden, RouteState, RouteEnd)
	}
	return open
}

// Authorized reports whether r carries credentials that c accepts; with
// nothing configured every request is. It is exported so that other
// routes (the read API) can share the API credentials. Secrets are
// compared as SHA-256 digests in constant time, so neither their content
// nor their length leaks through timing.
func (c Credentials) Authorized(r *http.Request) bool {
	if !c.Configured() {
		return true
	}
	if c.BearerToken != "" {
		if tok, ok := bearerToken(r); ok && secretEqual(tok, c.BearerToken) == 1 {
			return true
		}
	}
	if c.hasBasic() {
		if user, pass, ok := r.BasicAuth(); ok {
			// Both comparisons always run: & rather than && keeps a wrong
			// username as slow as a wrong password.
			if secretEqual(user, c.Username)&secretEqual(pass, c.Password) == 1 {
				return true
			}
		}
	}
	return false
}

// Challenge adds one WWW-Authenticate header per scheme c accepts, for a
// 401 answer.
func (c Credentials) Challenge(h http.Header) {
	if c.BearerToken != "" {
		h.Add("WWW-Authenticate", `Bearer realm="hindsight"`)
	}
	if c.hasBasic() {
		h.Add("WWW-Authenticate", `Basic realm="hindsight", charset="UTF-8"`)
	}
}

func bearerToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// secretEqual returns 1 when got equals want, else 0.
func secretEqual(got, want string) int {
	g := sha256.Sum256([]byte(got))
	w := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:])
}

// signers returns the body signatures that POST /hooks/deploy and POST
// /hooks/github accept (nil when none is configured).
func (a AuthConfig) signers() (deploy, gitHub bodySigner, err error) {
	if a.DeployStandardWebhooksSecret != "" {
		sw, err := newStandardWebhooksSigner(a.DeployStandardWebhooksSecret)
		if err != nil {
			return nil, nil, fmt.Errorf("deploy Standard Webhooks secret: %w", err)
		}
		deploy = sw
	}
	if a.GitHubSecret != "" {
		gitHub = gitHubSigner{secret: []byte(a.GitHubSecret)}
	}
	return deploy, gitHub, nil
}
