package natstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ClusterName is the --cluster_name of the servers StartCluster runs.
const ClusterName = "hindsight"

// Timeouts of the cluster helpers: generous, because the tests that use them
// run under the race detector on small, busy machines.
const (
	clusterStartTimeout = 90 * time.Second
	clusterPollInterval = 50 * time.Millisecond
)

// Cluster is n external nats-server processes (built by ServerBinary)
// forming one JetStream cluster on loopback. Its methods call t.Fatal, so
// call them from the test's goroutine.
type Cluster struct {
	t       testing.TB
	servers []*clusterServer
	http    *http.Client

	mu sync.Mutex
	nc *nats.Conn // the helper's own connection, made on first use
	js jetstream.JetStream
}

type clusterServer struct {
	name                           string
	port, clusterPort, monitorPort int
	storeDir, logPath              string
	cmd                            *exec.Cmd
	exited                         chan struct{} // closed when cmd has exited
	exitErr                        error         // cmd.Wait's result, once exited is closed
	starts                         int
}

// StartCluster runs n nats-servers with JetStream, each on its own free
// loopback client, cluster and monitoring ports, with its own store
// directory and server name (hindsight-0, hindsight-1, ...), routed to each
// other, and returns once every server is healthy, they agree on a
// JetStream meta leader, their routes have settled, and a client of any of
// them gets answers from the JetStream API. Each server logs to a file in
// the test's temporary directory. The servers are killed (SIGKILL) when
// the test ends; if it failed, the tails of their logs are logged first.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("StartCluster(%d): want at least one server", n)
	}
	dir := t.TempDir()
	ports := freePorts(t, 3*n)
	c := &Cluster{t: t, http: &http.Client{Timeout: 5 * time.Second}}
	for i := range n {
		name := fmt.Sprintf("hindsight-%d", i)
		s := &clusterServer{
			name: name, port: ports[3*i], clusterPort: ports[3*i+1], monitorPort: ports[3*i+2],
			storeDir: filepath.Join(dir, name, "js"),
			logPath:  filepath.Join(dir, name+".log"),
		}
		if err := os.MkdirAll(s.storeDir, 0o750); err != nil {
			t.Fatal(err)
		}
		c.servers = append(c.servers, s)
	}
	t.Cleanup(func() {
		c.mu.Lock()
		if c.nc != nil {
			c.nc.Close()
		}
		c.mu.Unlock()
		if t.Failed() {
			t.Logf("nats-server logs (tails):\n%s", c.LogTails(60))
		}
		for i := range c.servers {
			c.kill(i)
		}
	})
	ServerBinary(t) // build before starting the clock on anything
	for i := range c.servers {
		c.spawn(i)
	}
	spawned := time.Now()
	deadline := spawned.Add(clusterStartTimeout)
	for i := range c.servers {
		c.waitHealthy(i, deadline)
	}
	c.waitMetaLeader(deadline)
	c.settle(spawned)
	for i := range c.servers {
		c.waitJetStreamAPI(i, deadline)
	}
	return c
}

// routeSettle is how long after a start the routes may still be changing:
// a server retries a route that was refused (its peer not yet listening)
// once a second, and the retry that connects makes the pair close one of
// two duplicate routes. Once, during such churn, Hindsight's stream
// creation got no answer and waited out its whole 30s, though every server
// was healthy and agreed on the meta leader; the cluster is left to settle
// before a test uses it.
const routeSettle = 2500 * time.Millisecond

func (c *Cluster) settle(since time.Time) {
	time.Sleep(time.Until(since.Add(routeSettle)))
}

// freePorts returns k distinct loopback ports that were free a moment ago:
// the listeners are held until all k are chosen, so none repeats.
func freePorts(t testing.TB, k int) []int {
	t.Helper()
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range k {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// N is the number of servers.
func (c *Cluster) N() int { return len(c.servers) }

// Name is server i's name (-n), as JetStream reports it.
func (c *Cluster) Name(i int) string { return c.servers[i].name }

// Index is the index of the server named name, or -1.
func (c *Cluster) Index(name string) int {
	for i, s := range c.servers {
		if s.name == name {
			return i
		}
	}
	return -1
}

// URL is server i's client URL.
func (c *Cluster) URL(i int) string { return "nats://127.0.0.1:" + strconv.Itoa(c.servers[i].port) }

// URLs is every server's client URL, comma-separated, as Hindsight's
// --nats-url takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.servers))
	for i := range c.servers {
		urls[i] = c.URL(i)
	}
	return strings.Join(urls, ",")
}

// MonitorURL is server i's HTTP monitoring base URL.
func (c *Cluster) MonitorURL(i int) string {
	return "http://127.0.0.1:" + strconv.Itoa(c.servers[i].monitorPort)
}

// LogPath is server i's log file; restarts append to it.
func (c *Cluster) LogPath(i int) string { return c.servers[i].logPath }

// Running reports whether server i's process is running.
func (c *Cluster) Running(i int) bool {
	s := c.servers[i]
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// Kill stops server i with SIGKILL and waits for the process to exit.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if !c.Running(i) {
		c.t.Fatalf("Kill(%d): %s is not running", i, c.servers[i].name)
	}
	c.kill(i)
}

func (c *Cluster) kill(i int) {
	s := c.servers[i]
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Start restarts server i, killed before, on the same ports and store, and
// returns once it is healthy again (nats-server's /healthz: it has rejoined
// the cluster and its streams and consumers are current), its routes have
// settled, and clients connected to it get answers from JetStream.
func (c *Cluster) Start(i int) {
	c.t.Helper()
	if c.Running(i) {
		c.t.Fatalf("Start(%d): %s is already running", i, c.servers[i].name)
	}
	spawned := time.Now()
	deadline := spawned.Add(clusterStartTimeout)
	c.spawn(i)
	c.waitHealthy(i, deadline)
	c.settle(spawned)
	c.waitJetStreamAPI(i, deadline)
}

func (c *Cluster) spawn(i int) {
	c.t.Helper()
	s := c.servers[i]
	var routes []string
	for j, o := range c.servers {
		if j != i {
			routes = append(routes, "nats://127.0.0.1:"+strconv.Itoa(o.clusterPort))
		}
	}
	args := []string{
		"-a", "127.0.0.1", "-p", strconv.Itoa(s.port),
		"-n", s.name,
		"-m", strconv.Itoa(s.monitorPort),
		"-js", "-sd", s.storeDir,
		"--cluster_name", ClusterName,
		"--cluster", "nats://127.0.0.1:" + strconv.Itoa(s.clusterPort),
		"-l", s.logPath,
	}
	if len(routes) > 0 {
		args = append(args, "--routes", strings.Join(routes, ","))
	}
	s.starts++
	if f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
		fmt.Fprintf(f, "===== natstest: start #%d of %s at %s: nats-server %s\n", s.starts, s.name, time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
		f.Close()
	}
	cmd := exec.Command(ServerBinary(c.t), args...)
	var stderr bytes.Buffer // before -l takes effect, and panics
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", s.name, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	exited := s.exited
	go func() {
		s.exitErr = cmd.Wait()
		if stderr.Len() > 0 {
			if f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
				fmt.Fprintf(f, "===== natstest: %s's stdout and stderr:\n%s", s.name, stderr.Bytes())
				f.Close()
			}
		}
		close(exited)
	}()
}

// waitHealthy waits until server i answers /healthz with 200: connections
// accepted, JetStream enabled, a meta leader known, and the server's
// streams and consumers current.
func (c *Cluster) waitHealthy(i int, deadline time.Time) {
	c.t.Helper()
	s := c.servers[i]
	var last string
	for {
		if !c.Running(i) {
			c.t.Fatalf("%s exited while starting: %v (its log is below)", s.name, s.exitErr)
		}
		code, body, err := c.get(i, "/healthz")
		if err == nil && code == http.StatusOK {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d %s", code, bytes.TrimSpace(body))
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s not healthy within %s: last /healthz: %s", s.name, clusterStartTimeout, last)
		}
		time.Sleep(clusterPollInterval)
	}
}

// waitJetStreamAPI waits until a client connected to server i gets an
// answer from the JetStream API (account info, which only the meta leader
// answers): requests from that server reach the meta leader and back.
func (c *Cluster) waitJetStreamAPI(i int, deadline time.Time) {
	c.t.Helper()
	var err error
	for {
		err = c.askJetStream(i)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: the JetStream API does not answer: %v", c.servers[i].name, err)
		}
		time.Sleep(clusterPollInterval)
	}
}

func (c *Cluster) askJetStream(i int) error {
	nc, err := nats.Connect(c.URL(i), nats.Name("natstest"), nats.NoReconnect(), nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// waitMetaLeader waits until every running server names the same
// JetStream meta leader, and that leader is running.
func (c *Cluster) waitMetaLeader(deadline time.Time) {
	c.t.Helper()
	for {
		leader, err := c.metaLeader()
		if err == nil {
			if j := c.Index(leader); j >= 0 && c.Running(j) {
				return
			}
			err = fmt.Errorf("meta leader %q is not a running server", leader)
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("no JetStream meta leader: %v", err)
		}
		time.Sleep(clusterPollInterval)
	}
}

// MetaLeader is the index of the JetStream meta leader, waiting (up to
// 90s) until the running servers agree on one.
func (c *Cluster) MetaLeader() int {
	c.t.Helper()
	c.waitMetaLeader(time.Now().Add(clusterStartTimeout))
	leader, _ := c.metaLeader()
	return c.Index(leader)
}

func (c *Cluster) metaLeader() (string, error) {
	var leader string
	for i := range c.servers {
		if !c.Running(i) {
			continue
		}
		var jsz struct {
			Meta *struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		}
		code, body, err := c.get(i, "/jsz")
		if err != nil {
			return "", err
		}
		if code != http.StatusOK {
			return "", fmt.Errorf("%s /jsz: %d %s", c.servers[i].name, code, body)
		}
		if err := json.Unmarshal(body, &jsz); err != nil {
			return "", fmt.Errorf("%s /jsz: %v", c.servers[i].name, err)
		}
		if jsz.Meta == nil || jsz.Meta.Leader == "" {
			return "", fmt.Errorf("%s knows no meta leader", c.servers[i].name)
		}
		if leader != "" && jsz.Meta.Leader != leader {
			return "", fmt.Errorf("servers disagree on the meta leader: %s and %s", leader, jsz.Meta.Leader)
		}
		leader = jsz.Meta.Leader
	}
	if leader == "" {
		return "", errors.New("no server is running")
	}
	return leader, nil
}

// get fetches a monitoring path from server i.
func (c *Cluster) get(i int, path string) (int, []byte, error) {
	res, err := c.http.Get(c.MonitorURL(i) + path)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, body, err
}

// Monitor fetches a monitoring path (such as "/jsz?streams=true") from
// server i and decodes its JSON into v.
func (c *Cluster) Monitor(i int, path string, v any) error {
	code, body, err := c.get(i, path)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("%s %s: %d %s", c.servers[i].name, path, code, bytes.TrimSpace(body))
	}
	return json.Unmarshal(body, v)
}

// JetStream is a JetStream context on the helper's own connection to the
// cluster (every server's URL, reconnecting for ever), closed when the
// test ends.
func (c *Cluster) JetStream() jetstream.JetStream {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.js != nil {
		return c.js
	}
	nc, err := nats.Connect(c.URLs(), nats.Name("natstest"), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond), nats.Timeout(5*time.Second))
	if err != nil {
		c.t.Fatalf("connect to the cluster: %v", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		c.t.Fatalf("jetstream: %v", err)
	}
	c.nc, c.js = nc, js
	return js
}

// StreamInfo is the stream's info, as its leader answers it, retrying
// (up to 90s) while the stream has no leader.
func (c *Cluster) StreamInfo(stream string) *jetstream.StreamInfo {
	c.t.Helper()
	info, err := c.streamInfo(stream, time.Now().Add(clusterStartTimeout), func(*jetstream.StreamInfo) error { return nil })
	if err != nil {
		c.t.Fatal(err)
	}
	return info
}

// StreamLeader is the index of the server that leads the stream, waiting
// (up to 90s) until it has a leader that is running.
func (c *Cluster) StreamLeader(stream string) int {
	c.t.Helper()
	info, err := c.streamInfo(stream, time.Now().Add(clusterStartTimeout), func(info *jetstream.StreamInfo) error {
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return errors.New("no leader")
		}
		if j := c.Index(info.Cluster.Leader); j < 0 || !c.Running(j) {
			return fmt.Errorf("leader %q is not a running server", info.Cluster.Leader)
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return c.Index(info.Cluster.Leader)
}

// ConsumerLeader is the index of the server that leads a stream's
// consumer, waiting (up to 90s) until it has a leader that is running.
func (c *Cluster) ConsumerLeader(stream, consumer string) int {
	c.t.Helper()
	js := c.JetStream()
	deadline := time.Now().Add(clusterStartTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var info *jetstream.ConsumerInfo
		cons, err := js.Consumer(ctx, stream, consumer)
		if err == nil {
			info, err = cons.Info(ctx)
		}
		cancel()
		if err == nil {
			if info.Cluster == nil || info.Cluster.Leader == "" {
				err = errors.New("no leader")
			} else if j := c.Index(info.Cluster.Leader); j < 0 || !c.Running(j) {
				err = fmt.Errorf("leader %q is not a running server", info.Cluster.Leader)
			} else {
				return j
			}
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("consumer %s > %s: %v", stream, consumer, err)
		}
		time.Sleep(clusterPollInterval)
	}
}

// WaitStreamCurrent waits (up to limit) until the stream has a running
// leader and every other replica is online and current: then any one
// server can be lost and the others hold everything the stream
// acknowledged.
func (c *Cluster) WaitStreamCurrent(stream string, limit time.Duration) *jetstream.StreamInfo {
	c.t.Helper()
	info, err := c.streamInfo(stream, time.Now().Add(limit), func(info *jetstream.StreamInfo) error {
		if info.Cluster == nil || info.Cluster.Leader == "" {
			return errors.New("no leader")
		}
		if j := c.Index(info.Cluster.Leader); j < 0 || !c.Running(j) {
			return fmt.Errorf("leader %q is not a running server", info.Cluster.Leader)
		}
		if len(info.Cluster.Replicas)+1 != info.Config.Replicas {
			return fmt.Errorf("%d replicas besides the leader, want %d", len(info.Cluster.Replicas), info.Config.Replicas-1)
		}
		for _, p := range info.Cluster.Replicas {
			if p.Offline || !p.Current {
				return fmt.Errorf("replica %s: offline=%v current=%v lag=%d", p.Name, p.Offline, p.Current, p.Lag)
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return info
}

func (c *Cluster) streamInfo(stream string, deadline time.Time, ok func(*jetstream.StreamInfo) error) (*jetstream.StreamInfo, error) {
	js := c.JetStream()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var info *jetstream.StreamInfo
		s, err := js.Stream(ctx, stream)
		if err == nil {
			info, err = s.Info(ctx)
		}
		cancel()
		if err == nil {
			if err = ok(info); err == nil {
				return info, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("stream %s: %v", stream, err)
		}
		time.Sleep(clusterPollInterval)
	}
}

// ConnectedTo is the indexes of the running servers that have a client
// connection named name (nats.Name; Hindsight's is "hindsight").
func (c *Cluster) ConnectedTo(name string) []int {
	c.t.Helper()
	var out []int
	for i := range c.servers {
		if !c.Running(i) {
			continue
		}
		var connz struct {
			Conns []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		if err := c.Monitor(i, "/connz?limit=1024", &connz); err != nil {
			c.t.Fatalf("connz: %v", err)
		}
		for _, cn := range connz.Conns {
			if cn.Name == name {
				out = append(out, i)
				break
			}
		}
	}
	return out
}

// LogTails is the last lines of every server's log.
func (c *Cluster) LogTails(lines int) string {
	var b strings.Builder
	for _, s := range c.servers {
		fmt.Fprintf(&b, "--- %s (%s, client port %d, cluster port %d) ---\n%s\n", s.name, s.logPath, s.port, s.clusterPort, tail(s.logPath, lines))
	}
	return b.String()
}

// tail is the last lines of a log, without the warnings the helpers' own
// /healthz polling causes.
func tail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var ls []string
	for _, l := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
		if !strings.Contains(l, "Healthcheck failed") {
			ls = append(ls, l)
		}
	}
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
