package server

import (
	"net"
	"sync"
	"testing"
	"time"
)

// The KDC's UDP sockets share one port, and the kernel spreads datagrams from
// different sources over them; each is read by its own worker.
func TestUDPSocketsShareThePort(t *testing.T) {
	l, pcs, err := listenTwin("127.0.0.1:0", 4)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make([]int, len(pcs))
	var wg sync.WaitGroup
	for i, pc := range pcs {
		defer pc.Close()
		if pc.LocalAddr().String() != l.Addr().String() {
			t.Fatalf("socket %d on %s, TCP on %s", i, pc.LocalAddr(), l.Addr())
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			for {
				pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				got[i]++
				pc.WriteTo(buf[:n], from)
			}
		}()
	}
	const sources = 64
	for range sources {
		c, err := net.Dial("udp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(make([]byte, 16)); err != nil {
			t.Fatalf("no answer: %v", err)
		}
		c.Close()
	}
	wg.Wait()
	used, total := 0, 0
	for _, n := range got {
		total += n
		if n > 0 {
			used++
		}
	}
	if total != sources || used < 2 {
		t.Fatalf("datagrams per socket %v: want %d spread over several", got, sources)
	}
}
