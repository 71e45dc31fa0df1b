package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// ServerBinary builds nats-server from the module version in go.mod, once
// per test binary, so external-server tests run the version Hindsight
// is built against.
func ServerBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nats-server-bin")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "nats-server")
		out, err := exec.Command("go", "build", "-o", binary, "github.com/nats-io/nats-server/v2").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build nats-server: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// Process is an external nats-server.
type Process struct {
	Port    int
	dir     string
	cmd     *exec.Cmd
	t       testing.TB
	logPath string
}

// StartProcess runs nats-server with JetStream storing in dir on a free
// loopback port; Stop and Start restart it on the same port and store.
func StartProcess(t testing.TB, dir string) *Process {
	t.Helper()
	p := &Process{Port: FreePort(t), dir: dir, t: t, logPath: filepath.Join(dir, "nats-server.log")}
	p.Start()
	t.Cleanup(func() { p.Kill() })
	return p
}

// URL is the client URL.
func (p *Process) URL() string { return "nats://127.0.0.1:" + strconv.Itoa(p.Port) }

// Start starts the server and waits until it accepts connections.
func (p *Process) Start() {
	p.t.Helper()
	p.cmd = exec.Command(ServerBinary(p.t), "-a", "127.0.0.1", "-p", strconv.Itoa(p.Port), "-js", "-sd", filepath.Join(p.dir, "js"),
		"-l", p.logPath)
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(p.logPath)
			p.t.Fatalf("nats-server did not start: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server with SIGKILL and waits for it to exit.
func (p *Process) Kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
		p.cmd = nil
	}
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
