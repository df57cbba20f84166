// Package audit writes the security audit trail of a DC: every gMSA password read
// (granted or denied), every KDS root key read and every directory change, as JSON
// lines, whatever the log level. It is the record that reveals a Golden gMSA attack
// (someone reading root keys, or passwords they should not). Records are encoded by
// hand, without reflection, because a busy DC writes one per password read.
package audit

import (
	"bufio"
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

// Log writes records to a writer, one JSON object per line.
type Log struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte

	file    *os.File      // OpenFile only
	bw      *bufio.Writer // OpenFile only
	stop    chan struct{}
	done    chan struct{}
	onError func(error) // called once, on the first failed write
	failed  bool
}

// New returns a Log writing each record to w as it happens.
func New(w io.Writer) *Log { return &Log{w: w} }

// Discard is a Log that writes nothing.
func Discard() *Log { return New(io.Discard) }

// FlushEvery bounds how long a record of OpenFile's Log waits in memory.
const FlushEvery = 200 * time.Millisecond

// OpenFile appends to path (created 0600; an existing regular file is set to 0600). Records are
// buffered and written every FlushEvery and on Close, so a busy server does not pay one
// write per record. onError (may be nil) hears of the first write that fails (a full
// disk, say): from then on records are lost, and the operator must know.
func OpenFile(path string, onError func(error)) (*Log, error) {
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
	bw := bufio.NewWriterSize(f, 64<<10)
	l := &Log{w: bw, file: f, bw: bw, stop: make(chan struct{}), done: make(chan struct{}), onError: onError}
	go l.flushLoop()
	return l, nil
}

func (l *Log) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.mu.Lock()
			l.check(l.bw.Flush())
			l.mu.Unlock()
		}
	}
}

// Close writes what is buffered and closes the file of OpenFile; it does nothing to
// the writer of New.
func (l *Log) Close() error {
	if l.file == nil {
		return nil
	}
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.bw.Flush()
	l.check(err)
	if cerr := l.file.Close(); err == nil {
		err = cerr
	}
	return err
}

// Record writes one record: when it happened, its level and message, then the
// key/value pairs in order (an odd last key gets an empty value).
func (l *Log) Record(at time.Time, level, msg string, kv ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := append(l.buf[:0], `{"at":"`...)
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
	b = append(b, "}\n"...)
	l.buf = b
	_, err := l.w.Write(b)
	l.check(err)
}

// check reports the first write error. Called with l.mu held.
func (l *Log) check(err error) {
	if err != nil && !l.failed {
		l.failed = true
		if l.onError != nil {
			l.onError(fmt.Errorf("audit log: %w", err))
		}
	}
}

// appendString appends s as a JSON string ([RFC 8259] 7); invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
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
	return append(b, '"')
}
