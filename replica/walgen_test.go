package replica

import (
	"encoding/binary"
	"hash/crc32"
)

// walRec is a record for walGen: its resource manager, info and data
// (the data is everything after the 24-byte header).
type walRec struct {
	rmid, info byte
	data       []byte
}

// walGen lays out WAL the way PostgreSQL writes it: page headers (long at
// a segment's start), records MAXALIGNed, headers and data continued on
// the next page with XLP_FIRST_IS_CONTRECORD and xlp_rem_len, xl_prev
// chained, CRC32C over data then header, XLOG_SWITCH ending its segment.
type walGen struct {
	sysid        uint64
	tli          uint32
	segSize      uint64
	blck         uint64
	segs         map[uint64][]byte
	pos          LSN
	prev         LSN
	starts, ends []LSN // each record's start and end
}

func newWALGen(sysid uint64, tli uint32, segSize, blck uint64, start LSN) *walGen {
	g := &walGen{sysid: sysid, tli: tli, segSize: segSize, blck: blck, segs: map[uint64][]byte{}}
	g.pos = start
	g.pageHeader(start-start%LSN(blck), false, 0)
	if uint64(start)%blck < g.hdrLen(start-start%LSN(blck)) {
		g.pos = start - start%LSN(blck) + LSN(g.hdrLen(start-start%LSN(blck)))
	}
	return g
}

func (g *walGen) hdrLen(page LSN) uint64 {
	if uint64(page)%g.segSize == 0 {
		return walLongHeader
	}
	return walShortHeader
}

func (g *walGen) seg(l LSN) []byte {
	n := uint64(l) / g.segSize
	s, ok := g.segs[n]
	if !ok {
		s = make([]byte, g.segSize)
		g.segs[n] = s
		// every page of a new segment gets its header (as the server's
		// buffer initialisation does), not continuing anything
		for p := uint64(0); p < g.segSize; p += g.blck {
			g.writePageHeader(s, LSN(n*g.segSize+p), false, 0)
		}
	}
	return s
}

func (g *walGen) writePageHeader(s []byte, page LSN, cont bool, rem uint32) {
	o := uint64(page) % g.segSize
	binary.LittleEndian.PutUint16(s[o:], 0xD110)
	info := uint16(0)
	if cont {
		info |= xlpFirstIsContRecord
	}
	if uint64(page)%g.segSize == 0 {
		info |= xlpLongHeader
		binary.LittleEndian.PutUint64(s[o+24:], g.sysid)
		binary.LittleEndian.PutUint32(s[o+32:], uint32(g.segSize))
		binary.LittleEndian.PutUint32(s[o+36:], uint32(g.blck))
	}
	binary.LittleEndian.PutUint16(s[o+2:], info)
	binary.LittleEndian.PutUint32(s[o+4:], g.tli)
	binary.LittleEndian.PutUint64(s[o+8:], uint64(page))
	binary.LittleEndian.PutUint32(s[o+16:], rem)
}

func (g *walGen) pageHeader(page LSN, cont bool, rem uint32) {
	g.writePageHeader(g.seg(page), page, cont, rem)
}

// add appends a record and returns its start.
func (g *walGen) add(r walRec) LSN {
	hdr := make([]byte, walRecHeader)
	binary.LittleEndian.PutUint32(hdr[0:], uint32(walRecHeader+len(r.data)))
	binary.LittleEndian.PutUint32(hdr[4:], 777)
	binary.LittleEndian.PutUint64(hdr[8:], uint64(g.prev))
	hdr[16], hdr[17] = r.info, r.rmid
	crc := crc32.Update(0, castagnoli(), r.data)
	crc = crc32.Update(crc, castagnoli(), hdr[:walRecCRCOff])
	binary.LittleEndian.PutUint32(hdr[walRecCRCOff:], crc)
	body := append(hdr, r.data...)
	if uint64(g.pos)%g.blck == 0 {
		g.pageHeader(g.pos, false, 0)
		g.pos += LSN(g.hdrLen(g.pos))
	}
	start := g.pos
	left := uint32(len(body))
	for len(body) > 0 {
		if uint64(g.pos)%g.blck == 0 {
			cont := left < uint32(walRecHeader+len(r.data))
			rem := uint32(0)
			if cont {
				rem = left
			}
			g.pageHeader(g.pos, cont, rem)
			g.pos += LSN(g.hdrLen(g.pos))
		}
		s := g.seg(g.pos)
		o := uint64(g.pos) % g.segSize
		room := g.blck - o%g.blck
		k := min(room, uint64(len(body)))
		copy(s[o:], body[:k])
		body = body[k:]
		left -= uint32(k)
		g.pos += LSN(k)
	}
	g.starts, g.ends = append(g.starts, start), append(g.ends, g.pos)
	g.prev = start
	g.pos = maxAlign(g.pos)
	if r.rmid == rmXLOG && r.info&0xF0 == xlogSwitch {
		seg := LSN(g.segSize)
		g.pos = (g.pos + seg - 1) / seg * seg
	}
	g.seg(g.pos) // the segment the next record goes to exists
	return start
}

// header is the long header of the first segment.
func (g *walGen) header(start LSN) WALHeader {
	h, err := ParseWALHeader(g.seg(start - start%LSN(g.segSize)))
	if err != nil {
		panic(err)
	}
	return h
}

// segNumbers returns the segment numbers from first to last, in order.
func (g *walGen) segNumbers() []uint64 {
	lo, hi := ^uint64(0), uint64(0)
	for n := range g.segs {
		lo, hi = min(lo, n), max(hi, n)
	}
	var out []uint64
	for n := lo; n <= hi; n++ {
		if _, ok := g.segs[n]; ok {
			out = append(out, n)
		}
	}
	return out
}
