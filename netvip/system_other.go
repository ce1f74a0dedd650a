//go:build !linux

package netvip

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"time"
)

// osSystem is a stub: the netlink backend works on Linux only.
type osSystem struct{}

var errNotLinux = errors.New("netvip: the netlink backend needs Linux")

func (osSystem) link(string) (linkInfo, error)                  { return linkInfo{}, errNotLinux }
func (osSystem) addrs(linkInfo, netip.Addr) ([]addrInfo, error) { return nil, errNotLinux }
func (osSystem) addrReplace(linkInfo, addrSpec) error           { return errNotLinux }
func (osSystem) addrDel(linkInfo, addrSpec) error               { return errNotLinux }
func (osSystem) announce(linkInfo, netip.Addr) error            { return errNotLinux }
func (osSystem) localRoute(netip.Addr, bool) error              { return errNotLinux }
func (osSystem) arpIgnore(string) int                           { return -1 }
func (osSystem) probe(context.Context, linkInfo, netip.Addr, time.Duration) (net.HardwareAddr, bool, error) {
	return nil, false, errNotLinux
}
