package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// bodySigner is a credential carried by a signature over the body: an
// HMAC that the sender computes with a shared secret. Unlike a bearer
// token it can only be checked once the body has been read, so
// endpoint.read reads the body (within its limit) and checks the
// signature before anything decodes it.
type bodySigner interface {
	// present reports whether h carries the scheme's signature, so that
	// a request without it is refused before its body is read.
	present(h http.Header) bool
	// missing is the message of the 401 for a request without it.
	missing() string
	// verify checks the signature of body; it returns a *requestError
	// with status 401 when it does not match.
	verify(h http.Header, body []byte, now time.Time) error
}

func unauthorized(format string, args ...any) *requestError {
	return &requestError{status: http.StatusUnauthorized, reason: reasonUnauthorized, msg: fmt.Sprintf(format, args...)}
}

// GitHub signs every delivery of a webhook that has a secret with
// X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the raw body
// keyed with the secret.
const headerGitHubSignature = "X-Hub-Signature-256"

type gitHubSigner struct{ secret []byte }

func (gitHubSigner) present(h http.Header) bool { return h.Get(headerGitHubSignature) != "" }

func (gitHubSigner) missing() string {
	return "missing " + headerGitHubSignature + " header: give the GitHub webhook the secret Hindsight is configured with"
}

func (s gitHubSigner) verify(h http.Header, body []byte, _ time.Time) error {
	return verifyGitHubSignature(s.secret, h.Get(headerGitHubSignature), body)
}

// verifyGitHubSignature checks an X-Hub-Signature-256 value against body.
// The comparison is constant-time (hmac.Equal).
func verifyGitHubSignature(secret []byte, header string, body []byte) error {
	hexSig, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if !ok {
		return unauthorized("%s %q does not start with sha256=", headerGitHubSignature, clip(header))
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return unauthorized("%s is not sha256= and %d hex digits", headerGitHubSignature, 2*sha256.Size)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return unauthorized("%s does not match the body: check that the GitHub webhook and Hindsight have the same secret", headerGitHubSignature)
	}
	return nil
}

// read authenticates r and returns its body, checked for media type,
// size and encoding. Credentials in headers are checked before anything
// is read. A request that relies on a signature over its body instead is
// refused unread when it carries none; else its body is read within the
// limit and the signature verified before anything else is checked.
func (ep endpoint) read(w http.ResponseWriter, r *http.Request, now time.Time) ([]byte, error) {
	signed, err := ep.authenticate(r)
	if err != nil {
		return nil, err
	}
	checkType := ep.checkType
	if checkType == nil {
		checkType = checkContentType
	}
	if !signed {
		if err := checkType(r.Header); err != nil {
			return nil, err
		}
	}
	body, err := readBody(w, r, ep.maxBody)
	if err != nil {
		return nil, err
	}
	if signed {
		if err := ep.sig.verify(r.Header, body, now); err != nil {
			return nil, err
		}
		if err := checkType(r.Header); err != nil {
			return nil, err
		}
	}
	if err := checkUTF8(body); err != nil {
		return nil, err
	}
	return body, nil
}

// authenticate accepts r on its Authorization header, or defers to the
// signature over its body (signed) when ep takes one and r carries it.
func (ep endpoint) authenticate(r *http.Request) (signed bool, err error) {
	if ep.sig == nil {
		if ep.creds.Authorized(r) {
			return false, nil
		}
		return false, unauthorized("missing or wrong credentials")
	}
	if ep.creds.Configured() && ep.creds.Authorized(r) {
		return false, nil
	}
	if ep.sig.present(r.Header) {
		return true, nil
	}
	return false, unauthorized("%s", ep.sig.missing())
}
