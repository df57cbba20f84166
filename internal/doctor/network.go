package doctor

import (
	"net"
	"time"
)

// tcpOpen says whether a TCP connection to addr opens within timeout.
func tcpOpen(addr string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	return c.Close()
}
