package app_test

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A header flood gets 431 without reaching a handler.
func TestHeaderFloodIs431(t *testing.T) {
	a := boot(t, t.TempDir(), "")
	req, _ := http.NewRequest("POST", "http://"+a.Addr()+"/hooks/deploy", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "application/json")
	for i := range 2000 {
		req.Header.Add("X-Flood", strings.Repeat("x", 50)+string(rune('a'+i%26)))
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d, want 431", res.StatusCode)
	}
}

// A client that sends its headers slowly (slowloris) is cut off by the
// server's header timeout instead of holding a connection forever.
func TestSlowClientIsCutOff(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 5s header timeout")
	}
	a := boot(t, t.TempDir(), "")
	conn, err := net.Dial("tcp", a.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := conn.Write([]byte("POST /hooks/deploy HTTP/1.1\r\nHost: x\r\n")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = bufio.NewReader(conn).ReadString('\n')
	took := time.Since(start)
	if err == nil && took > 20*time.Second {
		t.Fatal("connection still open after 20s")
	}
	if took > 10*time.Second {
		t.Fatalf("slow client held the connection for %s, want it closed after the 5s header timeout", took)
	}
	t.Logf("slow client cut off after %s", took.Round(time.Millisecond))
}
