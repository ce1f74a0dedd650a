package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// SystemInfo is the answer to IDENTIFY_SYSTEM.
type SystemInfo struct {
	SystemID uint64
	Timeline uint32
	XLogPos  LSN
}

// Leader is the replication connection create-replica uses to check the
// backup against the running cluster.
type Leader interface {
	// IdentifySystem runs IDENTIFY_SYSTEM.
	IdentifySystem(ctx context.Context) (SystemInfo, error)
	// ProbeWAL reports (nil) whether the server can still stream WAL from
	// at on timeline tli; ErrWALGone when it cannot.
	ProbeWAL(ctx context.Context, tli uint32, at LSN) error
	Close()
}

// ErrWALGone is wrapped when the leader cannot stream the WAL a restored
// replica would need next.
var ErrWALGone = errors.New("replica: the leader no longer has the WAL needed after the backup")

// DialLeader opens a physical replication connection with connstring (a
// libpq key/value string or URL). The password comes from PGPASSFILE or
// ~/.pgpass, as with libpq; pghook never takes one on its command line.
func DialLeader(ctx context.Context, connstring string) (Leader, error) {
	cfg, err := pgconn.ParseConfig(connstring)
	if err != nil {
		return nil, fmt.Errorf("parsing --connstring: %w", err)
	}
	cfg.RuntimeParams["replication"] = "true"
	delete(cfg.RuntimeParams, "dbname")
	if cfg.ConnectTimeout == 0 || cfg.ConnectTimeout > 10*time.Second {
		cfg.ConnectTimeout = 10 * time.Second
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to the leader (%s:%d as %s): %w", cfg.Host, cfg.Port, cfg.User, err)
	}
	return &pgLeader{conn: conn}, nil
}

type pgLeader struct{ conn *pgconn.PgConn }

func (l *pgLeader) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	l.conn.Close(ctx)
}

func (l *pgLeader) IdentifySystem(ctx context.Context) (SystemInfo, error) {
	res, err := l.conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if err != nil {
		return SystemInfo{}, fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) < 3 {
		return SystemInfo{}, errors.New("IDENTIFY_SYSTEM: unexpected answer")
	}
	row := res[0].Rows[0]
	var si SystemInfo
	if si.SystemID, err = strconv.ParseUint(string(row[0]), 10, 64); err != nil {
		return si, fmt.Errorf("IDENTIFY_SYSTEM: systemid %q: %w", row[0], err)
	}
	tli, err := strconv.ParseUint(string(row[1]), 10, 32)
	if err != nil {
		return si, fmt.Errorf("IDENTIFY_SYSTEM: timeline %q: %w", row[1], err)
	}
	si.Timeline = uint32(tli)
	if si.XLogPos, err = ParseLSN(string(row[2])); err != nil {
		return si, fmt.Errorf("IDENTIFY_SYSTEM: %w", err)
	}
	return si, nil
}

// ProbeWAL starts physical replication at the given point and waits for
// the server's first word. The walsender reads the requested segment as
// soon as streaming starts, so a recycled segment is an ErrorResponse
// ("requested WAL segment … has already been removed") within
// milliseconds, as is a start point off the server's timeline history or
// ahead of its WAL; WAL data means it can stream. A server with nothing
// to send yet stays silent: after 300 ms of quiet the probe asks for a
// keepalive (asking earlier could let the keepalive overtake the error).
// The connection is unusable afterwards.
func (l *pgLeader) ProbeWAL(ctx context.Context, tli uint32, at LSN) error {
	fe := l.conn.Frontend()
	fe.Send(&pgproto3.Query{String: fmt.Sprintf("START_REPLICATION PHYSICAL %s TIMELINE %d", at, tli)})
	if err := fe.Flush(); err != nil {
		return fmt.Errorf("START_REPLICATION: %w", err)
	}
	started, asked := false, false
	deadline := time.Now().Add(15 * time.Second)
	for {
		wait := 300 * time.Millisecond
		if asked {
			wait = 5 * time.Second
		}
		rctx, cancel := context.WithTimeout(ctx, wait)
		msg, err := l.conn.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			if !pgconn.Timeout(err) || ctx.Err() != nil || time.Now().After(deadline) {
				return fmt.Errorf("START_REPLICATION: %w", err)
			}
			if !started {
				continue
			}
			if asked {
				return nil // streaming, silent, and no error: nothing to send yet
			}
			fe.Send(&pgproto3.CopyData{Data: standbyStatus(true)})
			if err := fe.Flush(); err != nil {
				return fmt.Errorf("START_REPLICATION: %w", err)
			}
			asked = true
			continue
		}
		switch m := msg.(type) {
		case *pgproto3.CopyBothResponse:
			started = true
		case *pgproto3.CopyData:
			if len(m.Data) > 0 && m.Data[0] == 'w' {
				return nil
			}
			if len(m.Data) > 0 && m.Data[0] == 'k' && asked {
				return nil
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("%w: START_REPLICATION at %s on timeline %d: %s (SQLSTATE %s)", ErrWALGone, at, tli, m.Message, m.Code)
		}
	}
}

// standbyStatus is a Standby Status Update ('r') reporting nothing
// received, optionally asking for an immediate reply.
func standbyStatus(reply bool) []byte {
	b := make([]byte, 34)
	b[0] = 'r'
	// write, flush, apply positions 0; client clock: microseconds since 2000-01-01.
	binary.BigEndian.PutUint64(b[25:], uint64(time.Since(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).Microseconds()))
	if reply {
		b[33] = 1
	}
	return b
}

// IdentifyLeader runs IDENTIFY_SYSTEM on the server of connstring.
func IdentifyLeader(ctx context.Context, connstring string) (SystemInfo, error) {
	l, err := DialLeader(ctx, connstring)
	if err != nil {
		return SystemInfo{}, err
	}
	defer l.Close()
	return l.IdentifySystem(ctx)
}

// LeaderHasWAL reports whether the server of connstring can still stream
// the WAL a replica restored from backup m would ask for first (the same
// probe create-replica runs).
func LeaderHasWAL(ctx context.Context, connstring string, m Meta) (bool, error) {
	end, err := ParseLSN(m.EndLSN)
	if err != nil || m.WALSegSize == 0 {
		return false, fmt.Errorf("backup %s: pghook.json has no end_lsn or wal_segment_size", m.ID)
	}
	l, err := DialLeader(ctx, connstring)
	if err != nil {
		return false, err
	}
	defer l.Close()
	si, err := l.IdentifySystem(ctx)
	if err != nil {
		return false, err
	}
	if si.SystemID != m.SystemID {
		return false, fmt.Errorf("the leader is system %d, the backup of system %d", si.SystemID, m.SystemID)
	}
	p := plan{wal: WALHeader{SegSize: m.WALSegSize}, end: end, endTLI: m.Timeline, fromStandby: m.FromStandby}
	tli, at := p.nextWAL()
	if seg := LSN(m.WALSegSize); si.Timeline == tli && at == si.XLogPos-si.XLogPos%seg {
		return true, nil
	}
	err = l.ProbeWAL(ctx, tli, at)
	if errors.Is(err, ErrWALGone) {
		return false, nil
	}
	return err == nil, err
}
