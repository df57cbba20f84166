// Package audit writes the security audit trail of a DC: every gMSA password read
// (granted or denied), every KDS root key read, every directory change and every failed
// authentication, as JSON lines, whatever the log level. It is the record that reveals
// a Golden gMSA attack (someone reading root keys, or passwords they should not).
//
// Records are group-committed: Record queues one and returns at once; Barrier hands
// everything queued to the operating system in one write (and fsyncs it, by policy),
// in the goroutine that waits — while one write is under way, the records queued
// meanwhile go out together in the next. A background flush every FlushEvery writes
// records nobody waits for. A transport acknowledges nothing before Barrier returns — Gate wraps its
// connection so that no response byte leaves before the records queued ahead of it
// are written: a killed process loses no record of an operation a client saw succeed.
// Records are encoded by hand, without reflection, because a busy DC writes one per
// password read.
package audit

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
	"unicode/utf8"
)

// Levels of a record.
const (
	Info = "INFO" // an operation that happened
	Warn = "WARN" // a refusal, or a read of the most sensitive data (root keys)
)

// MaxValue bounds one value of a record: longer ones (a 1 MiB bind name) are cut and
// marked, so that no client can grow the trail by more than it is allowed to.
const MaxValue = 256

// Log writes records to a writer, one JSON object per line.
type Log struct {
	mu       sync.Mutex
	cur      *batch // records queued and not yet taken by the writer
	inflight *batch // the batch being written, if any
	kick     chan struct{}
	reopenc  chan chan error
	stop     chan struct{}
	done     chan struct{}
	closed   bool

	// Held while writing; guards the fields below.
	wmu     sync.Mutex
	w       io.Writer
	file    *os.File // OpenFile only
	path    string
	fsync   bool
	onError func(error) // hears of the first failed write of a run of failures
	onWrite func(time.Duration, error)
	failing bool
	spare   []byte // the buffer of the batch written last, for the next one

	observe func(msg string)
	now     func() time.Time

	limiter *limiter
}

// batch is what one write hands to the operating system.
type batch struct {
	buf  []byte
	n    int
	done chan struct{}
	err  error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// maxSpare bounds the buffer kept from one batch to the next.
const maxSpare = 64 << 10

// Options configure a Log.
type Options struct {
	Fsync   bool        // fsync after every write, before anything waiting on it is released
	OnError func(error) // the first write of a run of failures (a full disk): from then on operations fail
	Now     func() time.Time
	// Per-source limits of RecordNoisy: at most Burst records from one source per
	// Window; the rest are counted and summarized.
	Burst  int
	Window time.Duration
	// Observe hears the message of every record queued (metrics count them); it must
	// not block.
	Observe func(msg string)
	// OnWrite hears how long each write (and fsync) took and whether it failed.
	OnWrite func(time.Duration, error)
	// Shared: another process may be appending to the file too (an admin command beside
	// a running server): a torn tail is not cut, only ended with a newline, so that the
	// other writer's record in flight is never cut.
	Shared bool
}

// New returns a Log writing to w.
func New(w io.Writer, opt Options) *Log {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	l := &Log{cur: newBatch(), kick: make(chan struct{}, 1), reopenc: make(chan chan error), stop: make(chan struct{}),
		done: make(chan struct{}), w: w, fsync: opt.Fsync, onError: opt.OnError, onWrite: opt.OnWrite, observe: opt.Observe, now: opt.Now}
	l.limiter = newLimiter(l, opt)
	go l.writer()
	return l
}

// Discard is a Log that writes nothing.
func Discard() *Log { return New(io.Discard, Options{}) }

// OpenFile appends to path (created 0600; an existing regular file is set to 0600).
//
// A record torn by a crash (a write the kernel cut short when the process was killed:
// its operation was never acknowledged) is cut off, and the cut is itself recorded, so
// every line of the trail stays a whole JSON record.
func OpenFile(path string, opt Options) (*Log, error) {
	var torn int64
	var err error
	if !opt.Shared {
		if torn, err = cutTornTail(path); err != nil {
			return nil, err
		}
	}
	f, err := openFile(path)
	if err != nil {
		return nil, err
	}
	if opt.Shared {
		if err := endLine(f); err != nil {
			f.Close()
			return nil, err
		}
	}
	l := New(f, opt)
	l.file, l.path = f, path
	if torn > 0 {
		now := time.Now
		if opt.Now != nil {
			now = opt.Now
		}
		l.Record(now(), Warn, "audit log: a record torn by a crash was cut off", "bytes", fmt.Sprint(torn))
	}
	return l, nil
}

// cutTornTail truncates a regular file after its last newline and returns how many
// bytes it cut.
func cutTornTail(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if os.IsNotExist(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return 0, nil
	}
	size := st.Size()
	buf := make([]byte, 64<<10)
	for end := size; end > 0; {
		start := max(end-int64(len(buf)), 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && n < int(end-start) {
			return 0, fmt.Errorf("audit log: %w", err)
		}
		for i := n - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				keep := start + int64(i) + 1
				if keep == size {
					return 0, nil
				}
				return size - keep, truncate(f, keep)
			}
		}
		end = start
	}
	return size, truncate(f, 0)
}

// endLine appends a newline to f when its last byte is not one, so that what is
// appended next starts a line (the file is opened for appending).
func endLine(f *os.File) error {
	r, err := os.Open(f.Name())
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	defer r.Close()
	st, err := r.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() == 0 {
		return nil
	}
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, st.Size()-1); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if last[0] != '\n' {
		if _, err := f.Write([]byte("\n")); err != nil {
			return fmt.Errorf("audit log: %w", err)
		}
	}
	return nil
}

func truncate(f *os.File, n int64) error {
	if err := f.Truncate(n); err != nil {
		return fmt.Errorf("audit log: cutting a torn record: %w", err)
	}
	return f.Sync()
}

func openFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	st, err := f.Stat()
	if err == nil && st.Mode().IsRegular() && st.Mode().Perm() != 0o600 { // a pipe or device is the operator's
		err = f.Chmod(0o600)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return f, nil
}

// FlushEvery bounds how long a record nobody waits for stays in memory.
const FlushEvery = 200 * time.Millisecond

// maxQueued is the batch size past which Record asks for a write at once.
const maxQueued = 256 << 10

// writer writes what is queued every FlushEvery, when a batch grows large, and at Close.
func (l *Log) writer() {
	defer close(l.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-l.kick:
		case <-t.C:
		case reply := <-l.reopenc:
			reply <- l.doReopen()
			continue
		case <-l.stop:
			l.flush() // what was queued before Close
			return
		}
		l.flush()
	}
}

// flush writes the current batch, if it holds anything.
func (l *Log) flush() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.flushLocked()
}

// flushLocked is flush with the write lock held.
func (l *Log) flushLocked() {
	l.mu.Lock()
	b := l.cur
	if b.n == 0 {
		l.mu.Unlock()
		return
	}
	l.cur, l.inflight = &batch{buf: l.spare, done: make(chan struct{})}, b
	l.mu.Unlock()
	start := time.Now()
	_, err := l.w.Write(b.buf)
	if err == nil && l.fsync && l.file != nil {
		err = l.file.Sync()
	}
	if l.onWrite != nil {
		l.onWrite(time.Since(start), err)
	}
	if err != nil {
		err = fmt.Errorf("audit log: %w", err)
		if !l.failing && l.onError != nil {
			l.onError(err)
		}
	}
	l.failing = err != nil
	b.err = err
	if cap(b.buf) <= maxSpare { // waiters read only done and err: the buffer is free
		l.spare = b.buf[:0]
	} else {
		l.spare = nil
	}
	b.buf = nil
	close(b.done)
	l.mu.Lock()
	l.inflight = nil
	l.mu.Unlock()
}

// doReopen opens the path again (after logrotate moved the file away).
func (l *Log) doReopen() error {
	if l.file == nil {
		return nil
	}
	l.flush()
	l.wmu.Lock()
	defer l.wmu.Unlock()
	f, err := openFile(l.path)
	if err != nil {
		return err
	}
	l.file.Close()
	l.file, l.w = f, f
	return nil
}

// Reopen closes the file and opens its path again, for log rotation (SIGHUP).
func (l *Log) Reopen() error {
	reply := make(chan error)
	select {
	case l.reopenc <- reply:
		return <-reply
	case <-l.done:
		return fmt.Errorf("audit log: closed")
	}
}

// Close writes what is queued and closes the file of OpenFile; it does nothing to
// the writer of New.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.limiter.close()
	close(l.stop)
	<-l.done
	l.flush() // queued after the writer stopped
	l.wmu.Lock()
	defer l.wmu.Unlock()
	var err error
	if l.file != nil {
		err = l.file.Sync()
		if cerr := l.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Record queues one record: when it happened, its level and message, then the
// key/value pairs in order (an odd last key gets an empty value). It does not wait:
// the operation it records is acknowledged only after Barrier.
func (l *Log) Record(at time.Time, level, msg string, kv ...string) {
	l.mu.Lock()
	b := l.cur
	b.buf = appendRecord(b.buf, at, level, msg, kv)
	b.n++
	large := len(b.buf) > maxQueued
	l.mu.Unlock()
	if l.observe != nil {
		l.observe(msg)
	}
	if large {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
}

// Barrier waits until every record queued before it has been handed to the operating
// system (and fsynced, by policy), and reports a failure to write any of them.
func (l *Log) Barrier() error {
	l.mu.Lock()
	b, f, queued := l.cur, l.inflight, l.cur.n
	closed := l.closed
	l.mu.Unlock()
	if queued == 0 { // nothing queued: wait for the write under way, if any
		if f == nil {
			return nil
		}
		<-f.done
		return f.err
	}
	if closed {
		return fmt.Errorf("audit log: closed")
	}
	l.wmu.Lock()
	l.mu.Lock()
	taken := l.cur != b
	l.mu.Unlock()
	if taken { // the write before ours took b: it is done, since we hold the write lock
		l.wmu.Unlock()
	} else {
		l.flushLocked() // b, and every record queued while the write before it ran
		l.wmu.Unlock()
	}
	<-b.done
	return b.err
}

// Healthy reports whether the trail takes records. After a failed write it tries one
// record saying the trail is writable again, so that a trail that recovers (space freed,
// the file reopened) is noticed without waiting for an operation; the record reaches the
// trail only if it is true.
func (l *Log) Healthy() error {
	l.wmu.Lock()
	failing := l.failing
	l.wmu.Unlock()
	if !failing {
		return nil
	}
	l.Record(l.now(), Info, "audit log: writable again")
	return l.Barrier()
}

// RecordNoisy records an event an unauthenticated client can cause at will (a failed
// bind): at most Burst records per source per Window, the rest summarized in one
// record when the window ends, so that no client grows the trail faster than a few
// hundred bytes a second.
func (l *Log) RecordNoisy(source string, at time.Time, level, msg string, kv ...string) {
	if l.limiter.allow(source, at, msg) {
		l.Record(at, level, msg, kv...)
	}
}

// appendRecord appends one JSON line.
func appendRecord(b []byte, at time.Time, level, msg string, kv []string) []byte {
	b = append(b, `{"at":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, level...)
	b = append(b, `","msg":`...)
	b = appendString(b, msg)
	for i := 0; i < len(kv); i += 2 {
		b = append(b, ',')
		b = appendString(b, kv[i])
		b = append(b, ':')
		if i+1 < len(kv) {
			b = appendString(b, kv[i+1])
		} else {
			b = append(b, `""`...)
		}
	}
	return append(b, "}\n"...)
}

// appendString appends s as a JSON string ([RFC 8259] 7), cut at MaxValue bytes (on a
// character boundary, marked with "…"); invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	cut := false
	if len(s) > MaxValue {
		n := MaxValue
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], true
	}
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	if cut {
		b = append(b, "…"...)
	}
	return append(b, '"')
}

// Gate returns a writer that passes writes to w only after l's Barrier: a transport
// sends its responses through it, so none acknowledges an operation whose audit
// record could still be lost. A failed barrier fails the write (and the connection).
func Gate(w io.Writer, l *Log) io.Writer { return gate{w, l} }

type gate struct {
	w io.Writer
	l *Log
}

func (g gate) Write(p []byte) (int, error) {
	if err := g.l.Barrier(); err != nil {
		return 0, err
	}
	return g.w.Write(p)
}
