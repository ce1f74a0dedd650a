package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ErrWALRecord is wrapped when a WAL record in a backup's range does not
// parse or its CRC32C does not match: the backup cannot reach consistency.
var ErrWALRecord = errors.New("replica: invalid WAL record")

// The WAL layout (src/include/access/xlog_internal.h, xlogrecord.h).
const (
	walShortHeader = 24 // SizeOfXLogShortPHD
	walLongHeader  = 40 // SizeOfXLogLongPHD
	walRecHeader   = 24 // SizeOfXLogRecord
	walRecCRCOff   = 20 // offsetof(XLogRecord, xl_crc)
	// xlp_info flags.
	xlpFirstIsContRecord          = 0x0001
	xlpFirstIsOverwriteContRecord = 0x0008
	// A record longer than this is garbage (PostgreSQL caps records at 1 GB).
	walMaxRecord = 1 << 30
	rmXLOG       = 0    // RM_XLOG_ID
	xlogSwitch   = 0x40 // XLOG_SWITCH
)

// walWalker checks every WAL record of one WAL range, the way
// pg_verifybackup's pg_waldump does: from the range's start LSN, each
// record's header (which may span pages) must be sane, point back at the
// previous record, continue on the next page where the page header says so
// (XLP_FIRST_IS_CONTRECORD with the remaining length), and carry a CRC32C
// over its data and header that matches; pages must sit where their
// header says, segments must be of this system. The walk ends at the first
// record that does not end by the range's end LSN. An XLOG_SWITCH record
// ends its segment. Memory stays constant: a record's CRC is computed as
// its bytes go by.
//
// It is fed whole segments in order (begin, Write…, endSegment); done tells
// when the range is covered.
type walWalker struct {
	tli        uint32
	start, end LSN
	segSize    uint64
	blck       uint64
	sysid      uint64
	magic      uint16

	seg      uint64 // segment being fed (or next expected)
	feeding  bool
	pos      LSN // LSN of the next byte fed
	page     []byte
	have     int
	inRec    bool
	hdr      [walRecHeader]byte
	hdrHave  int
	recStart LSN
	tot      uint64 // the record's xl_tot_len (0: not read yet)
	got      uint64 // bytes of its data (after the header) read
	crc      uint32
	prev     LSN // start of the previous record (0: unknown)
	next     LSN // where the next record starts
	records  int
	done     bool
	err      error
}

// newWALWalker walks r in segments described by h (the first segment's
// long header: magic, segment size, block size, system).
func newWALWalker(r WALRange, h WALHeader) (*walWalker, error) {
	if h.BlockSize < 1024 || h.BlockSize > 65536 || h.BlockSize&(h.BlockSize-1) != 0 {
		return nil, fmt.Errorf("%w: WAL block size %d", ErrWALRecord, h.BlockSize)
	}
	if r.End < r.Start {
		return nil, fmt.Errorf("%w: WAL range ends (%s) before it starts (%s)", ErrWALRecord, r.End, r.Start)
	}
	w := &walWalker{tli: r.Timeline, start: r.Start, end: r.End, segSize: uint64(h.SegSize), blck: uint64(h.BlockSize),
		sysid: h.SystemID, magic: h.Magic, page: make([]byte, h.BlockSize)}
	w.seg = uint64(r.Start) / w.segSize
	w.next = r.Start
	if r.Start == r.End {
		w.done = true
	}
	return w, nil
}

// wants reports whether the segment named name is the one the walker
// needs next.
func (w *walWalker) wants(name string) bool {
	if w.done || w.err != nil || w.feeding || len(name) != 24 {
		return false
	}
	return name == SegmentName(w.tli, LSN(w.seg*w.segSize), w.segSize)
}

// nextSegment is the name of the segment the walker needs next, or "".
func (w *walWalker) nextSegment() string {
	if w.done || w.err != nil {
		return ""
	}
	return SegmentName(w.tli, LSN(w.seg*w.segSize), w.segSize)
}

// begin starts feeding the next segment.
func (w *walWalker) begin() {
	w.feeding, w.pos, w.have = true, LSN(w.seg*w.segSize), 0
}

// Write feeds bytes of the segment begun; it never fails (the walk's
// verdict is result's), so it can sit beside a file's writes.
func (w *walWalker) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 && !w.done && w.err == nil {
		if w.have == 0 && len(b) >= len(w.page) { // a whole page in place
			w.err = w.walkPage(w.pos, b[:len(w.page)])
			w.pos += LSN(w.blck)
			b = b[len(w.page):]
			continue
		}
		k := copy(w.page[w.have:], b)
		w.have += k
		b = b[k:]
		if w.have == len(w.page) {
			w.err = w.walkPage(w.pos, w.page)
			w.pos += LSN(w.blck)
			w.have = 0
		}
	}
	return n, nil
}

// endSegment ends the segment begun: it must have been fed whole.
func (w *walWalker) endSegment() {
	if !w.feeding {
		return
	}
	w.feeding = false
	if w.err == nil && !w.done && (w.have != 0 || uint64(w.pos) != (w.seg+1)*w.segSize) {
		w.err = fmt.Errorf("%w: WAL segment %s is %d bytes, want %d", ErrWALRecord,
			SegmentName(w.tli, LSN(w.seg*w.segSize), w.segSize), uint64(w.pos)-w.seg*w.segSize+uint64(w.have), w.segSize)
	}
	w.seg++
}

// walkSegment feeds a whole segment from r.
func (w *walWalker) walkSegment(r io.Reader) error {
	w.begin()
	if _, err := io.CopyBuffer(w, io.LimitReader(r, int64(w.segSize)), make([]byte, 256<<10)); err != nil {
		w.feeding = false
		return err
	}
	w.endSegment()
	return w.err
}

// result is the walk's verdict once every segment was fed.
func (w *walWalker) result() error {
	if w.err != nil {
		return w.err
	}
	if !w.done {
		return fmt.Errorf("%w: the WAL ends at %s, before the backup's end %s (segment %s is missing)", ErrWALRecord,
			LSN(w.seg*w.segSize), w.end, w.nextSegment())
	}
	return nil
}

func maxAlign(l LSN) LSN { return (l + 7) &^ 7 }

// walkPage checks one page at addr and the records on it.
func (w *walWalker) walkPage(addr LSN, p []byte) error {
	if w.done {
		return nil
	}
	pageEnd := addr + LSN(w.blck)
	if pageEnd <= w.start || (!w.inRec && w.next >= pageEnd) {
		return nil // before the range, or after an XLOG_SWITCH
	}
	magic := binary.LittleEndian.Uint16(p[0:])
	info := binary.LittleEndian.Uint16(p[2:])
	tli := binary.LittleEndian.Uint32(p[4:])
	pageAddr := LSN(binary.LittleEndian.Uint64(p[8:]))
	remLen := binary.LittleEndian.Uint32(p[16:])
	if magic != w.magic {
		return fmt.Errorf("%w: page %s: magic %04X, want %04X", ErrWALRecord, addr, magic, w.magic)
	}
	if pageAddr != addr {
		return fmt.Errorf("%w: page %s says it is page %s (a recycled or misplaced segment)", ErrWALRecord, addr, pageAddr)
	}
	if tli == 0 || tli > w.tli {
		return fmt.Errorf("%w: page %s is of timeline %d, the range is on %d", ErrWALRecord, addr, tli, w.tli)
	}
	off := uint64(walShortHeader)
	if uint64(addr)%w.segSize == 0 {
		h, err := ParseWALHeader(p)
		if err != nil {
			return fmt.Errorf("%w: page %s: %v", ErrWALRecord, addr, err)
		}
		if h.SystemID != w.sysid || uint64(h.SegSize) != w.segSize || uint64(h.BlockSize) != w.blck {
			return fmt.Errorf("%w: segment at %s is of system %d (segment size %d, block %d), want %d (%d, %d)", ErrWALRecord,
				addr, h.SystemID, h.SegSize, h.BlockSize, w.sysid, w.segSize, w.blck)
		}
		off = walLongHeader
	}
	switch {
	case w.inRec && info&xlpFirstIsContRecord != 0:
		if left := w.tot - uint64(w.hdrHave) - w.got; w.tot == 0 || uint64(remLen) != left {
			return fmt.Errorf("%w: record at %s continues on page %s with %d bytes, the page says %d", ErrWALRecord, w.recStart, addr, left, remLen)
		}
	case w.inRec && info&xlpFirstIsOverwriteContRecord != 0:
		// The record was never finished (a crash) and WAL went on here.
		w.inRec = false
		w.next = addr + LSN(off)
	case w.inRec:
		return fmt.Errorf("%w: record at %s continues on page %s, which has no continuation flag", ErrWALRecord, w.recStart, addr)
	case info&xlpFirstIsContRecord != 0 && w.records == 0:
		// the walk starts on this page: skip the end of a record begun before
		w.next = max(w.next, maxAlign(addr+LSN(off)+LSN(remLen)))
	case info&xlpFirstIsContRecord != 0 && w.next <= addr+LSN(off):
		return fmt.Errorf("%w: page %s continues a record, but the record before ended at %s", ErrWALRecord, addr, w.next)
	}
	if !w.inRec && w.next < addr+LSN(off) {
		w.next = addr + LSN(off)
	}
	for off < w.blck {
		at := addr + LSN(off)
		if !w.inRec {
			if at < w.next {
				off = uint64(w.next - addr)
				continue
			}
			if at >= w.end {
				w.done = true
				return nil
			}
			w.inRec, w.hdrHave, w.recStart, w.tot, w.got, w.crc = true, 0, at, 0, 0, 0
		}
		if at >= w.end {
			w.done = true // a record that does not end by the end LSN is not the backup's
			return nil
		}
		avail := min(w.blck-off, uint64(w.end-at))
		if w.hdrHave < walRecHeader {
			k := min(uint64(walRecHeader-w.hdrHave), avail)
			copy(w.hdr[w.hdrHave:], p[off:off+k])
			w.hdrHave += int(k)
			off += k
			avail -= k
			if w.tot == 0 && w.hdrHave >= 4 {
				tot := binary.LittleEndian.Uint32(w.hdr[0:])
				if tot < walRecHeader || tot > walMaxRecord {
					return fmt.Errorf("%w: record at %s: invalid length %d", ErrWALRecord, w.recStart, tot)
				}
				w.tot = uint64(tot)
			}
			if w.hdrHave == walRecHeader {
				if prev := LSN(binary.LittleEndian.Uint64(w.hdr[8:])); w.prev != 0 && prev != w.prev {
					return fmt.Errorf("%w: record at %s points back to %s, the record before is at %s", ErrWALRecord, w.recStart, prev, w.prev)
				}
			}
		}
		if w.hdrHave == walRecHeader && w.got < w.tot-walRecHeader {
			k := min(w.tot-walRecHeader-w.got, avail)
			w.crc = crc32.Update(w.crc, castagnoli(), p[off:off+k])
			off += k
			w.got += k
		}
		if w.hdrHave < walRecHeader || w.got < w.tot-walRecHeader {
			continue // on the next page (or past the end LSN: done above)
		}
		if err := w.finishRecord(addr + LSN(off)); err != nil {
			return err
		}
	}
	return nil
}

// finishRecord checks the CRC of the record just read, ending at end.
func (w *walWalker) finishRecord(end LSN) error {
	w.inRec = false
	crc := crc32.Update(w.crc, castagnoli(), w.hdr[:walRecCRCOff])
	if want := binary.LittleEndian.Uint32(w.hdr[walRecCRCOff:]); crc != want {
		return fmt.Errorf("%w: record at %s: CRC32C %08X, the record says %08X", ErrWALRecord, w.recStart, crc, want)
	}
	w.prev = w.recStart
	w.records++
	w.next = maxAlign(end)
	if w.hdr[17] == rmXLOG && w.hdr[16]&0xF0 == xlogSwitch {
		// the rest of the segment is unused: the next record starts the next one
		seg := LSN(w.segSize)
		w.next = (end + seg - 1) / seg * seg
	}
	if w.next >= w.end {
		w.done = true
	}
	return nil
}
