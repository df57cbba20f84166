package audit

import (
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"
)

// maxSources bounds the sources the limiter tracks; past it, new sources share one
// bucket, so that a client cycling through addresses cannot grow memory or the trail.
const maxSources = 4096

// limiter aggregates noisy records per source ([RecordNoisy]).
type limiter struct {
	log    *Log
	now    func() time.Time
	burst  int
	window time.Duration

	mu      sync.Mutex
	sources map[string]*window
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// window counts one source's records in the current window.
type window struct {
	start      time.Time
	n          int    // records seen in the window
	suppressed int    // of those, not written
	msg        string // the last suppressed message
}

func newLimiter(l *Log, opt Options) *limiter {
	lim := &limiter{log: l, now: opt.Now, burst: opt.Burst, window: opt.Window, sources: map[string]*window{}, stop: make(chan struct{}), done: make(chan struct{})}
	if lim.burst <= 0 {
		lim.burst = 5
	}
	if lim.window <= 0 {
		lim.window = 10 * time.Second
	}
	go lim.sweep()
	return lim
}

// allow reports whether a record from source may be written now; suppressed ones are
// counted for the window's summary.
func (lim *limiter) allow(source string, at time.Time, msg string) bool {
	if host, _, err := net.SplitHostPort(source); err == nil {
		source = host // one client, whatever port it comes from
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	w, ok := lim.sources[source]
	if !ok {
		if len(lim.sources) >= maxSources {
			source = "(other sources)"
			if w, ok = lim.sources[source]; !ok {
				w = &window{start: at}
				lim.sources[source] = w
			}
		} else {
			w = &window{start: at}
			lim.sources[source] = w
		}
	}
	w.n++
	if w.n <= lim.burst {
		return true
	}
	w.suppressed++
	w.msg = msg
	return false
}

// sweep ends the windows that have run out, writing one summary per source that had
// records suppressed.
func (lim *limiter) sweep() {
	defer close(lim.done)
	t := time.NewTicker(lim.window / 4)
	defer t.Stop()
	for {
		select {
		case <-lim.stop:
			lim.expire(time.Time{})
			return
		case <-t.C:
			lim.expire(lim.now())
		}
	}
}

// expire ends windows started before now − window (every window when now is zero).
func (lim *limiter) expire(now time.Time) {
	type summary struct {
		source, msg string
		n           int
		since       time.Time
	}
	var out []summary
	lim.mu.Lock()
	for src, w := range lim.sources {
		if !now.IsZero() && now.Sub(w.start) < lim.window {
			continue
		}
		if w.suppressed > 0 {
			out = append(out, summary{src, w.msg, w.suppressed, w.start})
		}
		delete(lim.sources, src)
	}
	lim.mu.Unlock()
	at := now
	if at.IsZero() {
		at = lim.now()
	}
	for _, s := range out {
		lim.log.Record(at, Warn, "records suppressed", "source", s.source, "count", strconv.Itoa(s.n),
			"last", s.msg, "since", s.since.UTC().Format(time.RFC3339), "reason",
			fmt.Sprintf("more than %d records from one source within %s", lim.burst, lim.window))
	}
}

// close writes the summaries of the open windows and stops the sweeper.
func (lim *limiter) close() {
	lim.once.Do(func() { close(lim.stop) })
	<-lim.done
}
