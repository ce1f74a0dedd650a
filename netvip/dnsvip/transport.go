package dnsvip

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"time"
)

func newID() uint16 {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint16(b[:])
}

// roundTrip sends msg to the server and returns the reply with the same
// ID, within the backend's timeout and ctx: over TCP with the two-byte
// length prefix, over UDP ignoring datagrams that do not match.
func (b *Backend) roundTrip(ctx context.Context, msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, b.net, b.server)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	// Closing the connection ends a read blocked past a cancel.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	id := binary.BigEndian.Uint16(msg)
	wrap := func(err error) error {
		if ctx.Err() != nil {
			return fmt.Errorf("no answer within %v: %w", b.timeout, ctx.Err())
		}
		return err
	}
	if b.net == "tcp" {
		out := binary.BigEndian.AppendUint16(make([]byte, 0, len(msg)+2), uint16(len(msg)))
		if _, err := conn.Write(append(out, msg...)); err != nil {
			return nil, wrap(err)
		}
		var l [2]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return nil, wrap(err)
		}
		r := make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(conn, r); err != nil {
			return nil, wrap(err)
		}
		if len(r) < 12 || binary.BigEndian.Uint16(r) != id {
			return nil, errShort
		}
		return r, nil
	}
	if _, err := conn.Write(msg); err != nil {
		return nil, wrap(err)
	}
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, wrap(err)
		}
		if n >= 12 && binary.BigEndian.Uint16(buf) == id {
			return buf[:n], nil
		}
	}
}
