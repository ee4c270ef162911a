// Peer: Go net echo server, a goroutine per connection doing io.Copy(c, c),
// the way Go programs are usually written; UDP on the same port. Benchmark
// reference only, not part of eco. Standard library only.
//
//	go_net PORT [THREADS]   (THREADS sets GOMAXPROCS; default: Go's own choice)
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: go_net PORT [THREADS]")
		os.Exit(2)
	}
	port := os.Args[1]
	if len(os.Args) > 2 {
		n, err := strconv.Atoi(os.Args[2])
		if err != nil || n < 1 {
			fmt.Fprintln(os.Stderr, "go_net: bad THREADS")
			os.Exit(2)
		}
		runtime.GOMAXPROCS(n)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_net:", err)
		os.Exit(1)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "go_net:", err)
		os.Exit(1)
	}
	go func() {
		buf := make([]byte, 65536)
		for {
			n, addr, err := pc.ReadFrom(buf)
			if err != nil {
				continue
			}
			pc.WriteTo(buf[:n], addr)
		}
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			continue // e.g. EMFILE: keep serving the connections we have
		}
		go func(c net.Conn) {
			defer c.Close()
			io.Copy(c, c) // Go sets TCP_NODELAY by default
		}(c)
	}
}
