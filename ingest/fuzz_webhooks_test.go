package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func FuzzGitHubPayload(f *testing.F) {
	for _, name := range []string{"deployment_status.json", "ping.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "github", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add("deployment_status", b)
		f.Add("ping", b)
	}
	f.Add("deployment_status", []byte(`{"deployment_status":{"state":"queued","updated_at":"2026-11-22T04:10:02+01:00"},"deployment":{"id":7,"ref":"","sha":"9f2c1ab5d7e0","payload":"{\"service\":\"payments\"}"},"repository":{"name":"checkout"}}`))
	f.Add("deployment_status", []byte(`{"deployment_status":{"state":"inactive"},"deployment":{"id":7},"repository":{"name":"checkout"}}`))
	f.Add("deployment_status", []byte(`{"deployment_status":{"state":"error","created_at":"1999-12-31T23:59:59Z"},"deployment":{"id":-1,"payload":{"service":" "}},"repository":{"name":"x"}}`))
	f.Add("push", []byte(`{}`))
	f.Add("", []byte(`{}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		ev, reply, err := parseGitHub(event, body, fuzzReceivedAt)
		if err != nil {
			var re *requestError
			if !errors.As(err, &re) || re.status != http.StatusBadRequest || re.reason == "" || re.msg == "" {
				t.Fatalf("error %#v: want a *requestError with a 400, a reason and a message", err)
			}
			if reply != nil || ev.ID != "" {
				t.Fatalf("event %+v or reply %+v beside error %v", ev, reply, err)
			}
			return
		}
		if reply != nil {
			if ev.ID != "" || reply.Ignored == "" || reply.Reason == "" || len(reply.Ignored) > 64+len("…") {
				t.Fatalf("reply %+v (event %+v): want only a reply, naming what it ignored and why, clipped", reply, ev)
			}
			return
		}
		if event != "deployment_status" {
			t.Fatalf("event type %q recorded %+v", event, ev)
		}
		checkEvent(t, ev)
		if err := ev.Validate(); err != nil {
			t.Fatalf("invalid event: %v", err)
		}
		if !ev.Kind.IsDeploy() || ev.Deploy == nil || ev.Service == "" || ev.Labels["service"] != ev.Service ||
			!strings.HasPrefix(ev.Deploy.ID, "github-deployment-") {
			t.Fatalf("deploy event %+v without deploy kind, details, service or GitHub deploy ID", ev)
		}
		again, againReply, err := parseGitHub(event, body, fuzzReceivedAt)
		if err != nil || againReply != nil || !reflect.DeepEqual(again, ev) {
			t.Fatalf("second parse differs: %v\n%+v\nwant\n%+v", err, again, ev)
		}
		// The ID names the deployment and status, not the delivery's time.
		if later, _, err := parseGitHub(event, body, fuzzReceivedAt.Add(time.Hour)); err == nil && later.ID != ev.ID {
			t.Fatalf("ID %s became %s an hour later", ev.ID, later.ID)
		}
	})
}

func FuzzGitHubSignature(f *testing.F) {
	f.Add([]byte("It's a Secret to Everybody"), []byte("Hello, World!"), "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	f.Add([]byte("It's a Secret to Everybody"), []byte("Hello, World!"), "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17")
	f.Add([]byte("s"), []byte(""), "sha1=0aa1")
	f.Add([]byte(""), []byte("{}"), "sha256=")
	f.Fuzz(func(t *testing.T, secret, body []byte, header string) {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if err := verifyGitHubSignature(secret, want, body); err != nil {
			t.Fatalf("the right signature %s was refused: %v", want, err)
		}
		err := verifyGitHubSignature(secret, header, body)
		if err == nil {
			if !strings.EqualFold(strings.TrimSpace(header), want) {
				t.Fatalf("signature %q accepted, want only %s", header, want)
			}
			return
		}
		var re *requestError
		if !errors.As(err, &re) || re.status != http.StatusUnauthorized || re.reason != reasonUnauthorized || re.msg == "" {
			t.Fatalf("error %#v: want a 401 unauthorized *requestError", err)
		}
		if len(re.msg) > 200 {
			t.Fatalf("message of %d bytes echoes too much of the header", len(re.msg))
		}
	})
}

func FuzzStandardWebhooksSignature(f *testing.F) {
	key, _ := base64.StdEncoding.DecodeString("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	const vector = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	f.Add(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`), vector, int64(1614265330))
	f.Add(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`), "v1a,x v1,AAAA "+vector, int64(1614265630))
	f.Add(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", "01614265330", []byte(`{"test": 2432232314}`), vector, int64(1614265631))
	f.Add([]byte{0}, "", "-1", []byte{}, "v1,", int64(0))
	f.Fuzz(func(t *testing.T, key []byte, id, stamp string, body []byte, signatures string, now int64) {
		if len(key) == 0 {
			return
		}
		// A real clock: from 1970 to about 36812, so that now ± the
		// tolerance cannot overflow.
		at := time.Unix(now&(1<<40-1), 0)
		s, err := newStandardWebhooksSigner(standardWebhooksPrefix + base64.StdEncoding.EncodeToString(key))
		if err != nil || !reflect.DeepEqual(s.key, key) {
			t.Fatalf("whsec_ round trip: %v, key %x, want %x", err, s.key, key)
		}
		ts, tsErr := strconv.ParseInt(stamp, 10, 64)
		own := "v1," + s.sign(id, ts, body)
		if id != "" && tsErr == nil {
			if err := s.verifyAt(id, stamp, own, body, time.Unix(ts, 0)); err != nil {
				t.Fatalf("own signature refused at its own time: %v", err)
			}
		}
		err = s.verifyAt(id, stamp, signatures, body, at)
		if err == nil {
			inWindow := tsErr == nil && ts >= at.Unix()-300 && ts <= at.Unix()+300
			listed := false
			for _, entry := range strings.Fields(signatures) {
				listed = listed || entry == own
			}
			if id == "" || !inWindow || !listed {
				t.Fatalf("accepted id %q, timestamp %q (clock %d), signatures %q: want an id, a timestamp within 5m, and %s listed",
					id, stamp, at.Unix(), signatures, own)
			}
			return
		}
		var re *requestError
		if !errors.As(err, &re) || re.status != http.StatusUnauthorized || re.reason != reasonUnauthorized || re.msg == "" {
			t.Fatalf("error %#v: want a 401 unauthorized *requestError", err)
		}
	})
}
