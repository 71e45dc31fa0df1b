package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// RSS is the server's memory, read from /proc/PID/status (Linux).
type RSS struct {
	PID int `json:"pid,omitempty"`
	// StartBytes is VmRSS when the run began.
	StartBytes int64 `json:"start_bytes,omitempty"`
	// MaxSampledBytes is the largest VmRSS sampled during the run.
	MaxSampledBytes int64 `json:"max_sampled_bytes,omitempty"`
	// PeakBytes is VmHWM at the end: the process's peak RSS over its
	// whole life, so it includes anything before the run.
	PeakBytes int64 `json:"peak_bytes,omitempty"`
	// MaxAnonBytes is the largest RssAnon sampled: resident memory that
	// is not a mapped file (the Go heap, stacks). The rest of VmRSS is
	// mostly pages of the state file bbolt maps, which are the page
	// cache's: the kernel drops them under memory pressure.
	MaxAnonBytes int64  `json:"max_anon_bytes,omitempty"`
	Samples      int    `json:"samples,omitempty"`
	Note         string `json:"note,omitempty"`
}

// procMem is what /proc/PID/status says of a process's memory, in bytes.
type procMem struct {
	rss, hwm, anon int64
}

// procStatus reads VmRSS, VmHWM and RssAnon from /proc/pid/status.
func procStatus(pid int) (procMem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return procMem{}, err
	}
	defer f.Close()
	return parseStatus(f)
}

func parseStatus(f io.Reader) (procMem, error) {
	var m procMem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		var into *int64
		switch k {
		case "VmRSS":
			into = &m.rss
		case "VmHWM":
			into = &m.hwm
		case "RssAnon":
			into = &m.anon
		}
		if !ok || into == nil {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) != 2 || fields[1] != "kB" {
			return procMem{}, fmt.Errorf("%s: unexpected %q", k, v)
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return procMem{}, fmt.Errorf("%s: %w", k, err)
		}
		*into = n * 1024
	}
	if err := sc.Err(); err != nil {
		return procMem{}, err
	}
	if m.rss == 0 || m.hwm == 0 {
		return procMem{}, fmt.Errorf("no VmRSS or VmHWM")
	}
	return m, nil
}

// rssSampler reads a process's RSS every interval until stopped.
type rssSampler struct {
	pid  int
	quit chan struct{}
	wg   sync.WaitGroup
	mu   sync.Mutex
	rep  RSS
}

func startRSS(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, quit: make(chan struct{}), rep: RSS{PID: pid}}
	s.sample()
	s.rep.StartBytes = s.rep.MaxSampledBytes
	s.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.quit:
				return
			case <-t.C:
				s.sample()
			}
		}
	})
	return s
}

func (s *rssSampler) sample() {
	m, err := procStatus(s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		if s.rep.Note == "" {
			s.rep.Note = fmt.Sprintf("cannot read the RSS of pid %d: %v", s.pid, err)
		}
		return
	}
	s.rep.Samples++
	s.rep.MaxSampledBytes = max(s.rep.MaxSampledBytes, m.rss)
	s.rep.PeakBytes = max(s.rep.PeakBytes, m.hwm)
	s.rep.MaxAnonBytes = max(s.rep.MaxAnonBytes, m.anon)
}

func (s *rssSampler) stop() RSS {
	close(s.quit)
	s.wg.Wait()
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rep
}
