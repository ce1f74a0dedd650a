//go:build !linux

package netvip

import (
	"context"
	"net"
	"net/netip"
	"time"
)

func whoHas(context.Context, string, netip.Addr, time.Duration) ([]net.HardwareAddr, error) {
	return nil, errNotLinux
}

func neighbours(string) ([]Neighbour, error) { return nil, errNotLinux }
