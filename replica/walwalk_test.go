package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

const (
	tWALSeg  = 1 << 20
	tWALBlck = 1024
)

// walk feeds the generator's segments, in order, to a walker of [start,end).
func walk(t testing.TB, g *walGen, start, end LSN, skip map[uint64]bool) (*walWalker, error) {
	w, err := newWALWalker(WALRange{Timeline: g.tli, Start: start, End: end}, g.header(start))
	if err != nil {
		return nil, err
	}
	for _, n := range g.segNumbers() {
		name := SegmentName(g.tli, LSN(n*g.segSize), g.segSize)
		if skip[n] || !w.wants(name) {
			continue
		}
		if err := w.walkSegment(bytes.NewReader(g.segs[n])); err != nil {
			return w, err
		}
	}
	return w, w.result()
}

func data(n int, fill byte) []byte { return bytes.Repeat([]byte{fill}, n) }

func TestWALWalker(t *testing.T) {
	const start = LSN(tWALSeg + 40) // right after segment 1's long header
	type built struct {
		g          *walGen
		start, end LSN
		skip       map[uint64]bool
	}
	small := func(n int) built {
		g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
		for i := 0; i < n; i++ {
			g.add(walRec{rmid: 10, info: 0x10, data: data(40+i, byte(i))})
		}
		return built{g: g, start: start, end: g.pos}
	}
	// spanning is one record continued over three pages (segment 1's
	// pages 0 to 2).
	spanning := func() built {
		g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
		g.add(walRec{rmid: 10, data: data(2500, 7)})
		return built{g: g, start: start, end: g.pos}
	}
	flip := func(b built, at LSN) built {
		b.g.segs[uint64(at)/tWALSeg][uint64(at)%tWALSeg] ^= 0x01
		return b
	}
	cases := []struct {
		name    string
		build   func() built
		records int
		err     string // "" = valid
	}{
		{"records on one page", func() built { return small(5) }, 5, ""},
		{"empty range", func() built { b := small(1); b.end = b.start; return b }, 0, ""},
		{"record spanning three pages", func() built {
			b := spanning()
			b.g.add(walRec{rmid: 10, data: data(8, 8)})
			b.end = b.g.pos
			return b
		}, 2, ""},
		{"header split across pages", func() built {
			g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
			// fill the first page up to 8 bytes before its end: the next header is split
			g.add(walRec{rmid: 10, data: data(tWALBlck-40-24-8, 1)})
			g.add(walRec{rmid: 10, data: data(100, 2)})
			g.add(walRec{rmid: 10, data: data(3, 3)})
			return built{g: g, start: start, end: g.pos}
		}, 3, ""},
		{"record ending on a page boundary", func() built {
			g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
			g.add(walRec{rmid: 10, data: data(tWALBlck-40-24, 1)})
			g.add(walRec{rmid: 10, data: data(16, 2)})
			return built{g: g, start: start, end: g.pos}
		}, 2, ""},
		{"record spanning segments", func() built {
			g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
			for g.pos < 2*tWALSeg-3000 {
				g.add(walRec{rmid: 10, data: data(900, 4)})
			}
			g.add(walRec{rmid: 10, data: data(6000, 5)})
			g.add(walRec{rmid: 10, data: data(10, 6)})
			return built{g: g, start: start, end: g.pos}
		}, -1, ""},
		{"XLOG_SWITCH ends its segment", func() built {
			g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
			g.add(walRec{rmid: 10, data: data(50, 1)})
			g.add(walRec{rmid: rmXLOG, info: xlogSwitch})
			g.add(walRec{rmid: 10, data: data(50, 2)})
			return built{g: g, start: start, end: g.pos}
		}, 3, ""},
		{"a record crossing the end LSN is not the backup's", func() built {
			b := small(3)
			b.end = b.g.starts[2] + 10
			return b
		}, 2, ""},
		{"start in a page whose first record began earlier", func() built {
			g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
			g.add(walRec{rmid: 10, data: data(1500, 1)})
			s := g.add(walRec{rmid: 10, data: data(20, 2)})
			g.add(walRec{rmid: 10, data: data(20, 3)})
			return built{g: g, start: s, end: g.pos}
		}, 2, ""},
		{"flipped data byte", func() built { b := small(3); return flip(b, b.g.starts[1]+30) }, 0, "CRC32C"},
		{"flipped xl_info", func() built { b := small(3); return flip(b, b.g.starts[2]+16) }, 0, "CRC32C"},
		{"flipped byte in the continued part", func() built { return flip(spanning(), start+2000) }, 0, "CRC32C"},
		{"wrong xl_prev", func() built {
			b := small(3)
			o := uint64(b.g.starts[2]) % tWALSeg
			binary.LittleEndian.PutUint64(b.g.segs[1][o+8:], 0x1234)
			return b
		}, 0, "points back"},
		// The header of the page the record continues on: xlp_info at +2,
		// xlp_pageaddr at +8, xlp_rem_len at +16.
		{"continuation length wrong", func() built {
			b := spanning()
			binary.LittleEndian.PutUint32(b.g.segs[1][tWALBlck+16:], 5)
			return b
		}, 0, "continues on page"},
		{"continuation flag missing", func() built {
			b := spanning()
			binary.LittleEndian.PutUint16(b.g.segs[1][tWALBlck+2:], 0)
			return b
		}, 0, "no continuation flag"},
		{"page of another place (recycled segment)", func() built {
			b := spanning()
			binary.LittleEndian.PutUint64(b.g.segs[1][tWALBlck+8:], 99*tWALSeg)
			return b
		}, 0, "says it is page"},
		{"second segment of another system", func() built {
			g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
			g.add(walRec{rmid: rmXLOG, info: xlogSwitch})
			g.add(walRec{rmid: 10, data: data(10, 1)})
			binary.LittleEndian.PutUint64(g.segs[2][24:], 43)
			return built{g: g, start: start, end: g.pos}
		}, 0, "of system 43"},
		{"end beyond the written WAL", func() built { b := small(2); b.end += 200; return b }, 0, "invalid length 0"},
		{"segment missing", func() built {
			g := newWALGen(42, 1, tWALSeg, tWALBlck, start)
			g.add(walRec{rmid: rmXLOG, info: xlogSwitch})
			g.add(walRec{rmid: 10, data: data(10, 1)})
			return built{g: g, start: start, end: g.pos, skip: map[uint64]bool{2: true}}
		}, 0, "000000010000000000000002 is missing"},
		{"zero length", func() built {
			b := small(3)
			binary.LittleEndian.PutUint32(b.g.segs[1][uint64(b.g.starts[1])%tWALSeg:], 0)
			return b
		}, 0, "invalid length"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.build()
			w, err := walk(t, b.g, b.start, b.end, b.skip)
			if c.err == "" {
				if err != nil {
					t.Fatalf("valid WAL refused: %v", err)
				}
				if c.records >= 0 && w.records != c.records {
					t.Fatalf("walked %d records, want %d", w.records, c.records)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrWALRecord) || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("got %v, want an ErrWALRecord with %q", err, c.err)
			}
		})
	}
}

// TestWALWalkerFedInPieces: the walk does not depend on how the bytes are
// split into writes (the extraction writes in 1 MB buffers, tar in 512 B
// blocks).
func TestWALWalkerFedInPieces(t *testing.T) {
	g := newWALGen(42, 1, tWALSeg, tWALBlck, tWALSeg+40)
	for i := 0; i < 300; i++ {
		g.add(walRec{rmid: 10, data: data(17*i%3000, byte(i))})
	}
	for _, piece := range []int{1, 7, 512, 4096, 1 << 20} {
		w, err := newWALWalker(WALRange{Timeline: 1, Start: tWALSeg + 40, End: g.pos}, g.header(tWALSeg+40))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range g.segNumbers() {
			if !w.wants(SegmentName(1, LSN(n*tWALSeg), tWALSeg)) {
				continue
			}
			w.begin()
			s := g.segs[n]
			for i := 0; i < len(s); i += piece {
				w.Write(s[i:min(i+piece, len(s))])
			}
			w.endSegment()
		}
		if err := w.result(); err != nil || w.records != 300 {
			t.Fatalf("pieces of %d: %d records, %v", piece, w.records, err)
		}
	}
}

func TestWALWalkerShortSegment(t *testing.T) {
	g := newWALGen(42, 1, tWALSeg, tWALBlck, tWALSeg+40)
	g.add(walRec{rmid: rmXLOG, info: xlogSwitch})
	g.add(walRec{rmid: 10, data: data(10, 1)})
	w, _ := newWALWalker(WALRange{Timeline: 1, Start: tWALSeg + 40, End: g.pos}, g.header(tWALSeg+40))
	w.walkSegment(bytes.NewReader(g.segs[1][:5000]))
	if err := w.result(); err == nil || !strings.Contains(err.Error(), "bytes, want") {
		t.Fatalf("a truncated segment: %v", err)
	}
}

// BenchmarkWALWalker: the walk's rate over 16 MB segments of mixed
// records (what create-replica adds per WAL byte extracted).
func BenchmarkWALWalker(b *testing.B) {
	const seg = 16 << 20
	g := newWALGen(42, 1, seg, 8192, seg+40)
	for i := 0; uint64(g.pos) < 3*seg-70000; i++ {
		g.add(walRec{rmid: 10, data: data(50+(i*7919)%9000, byte(i))})
	}
	end := g.pos
	hdr := g.header(seg + 40)
	b.SetBytes(int64(uint64(end) - seg))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		w, _ := newWALWalker(WALRange{Timeline: 1, Start: seg + 40, End: end}, hdr)
		for _, n := range g.segNumbers() {
			if w.wants(SegmentName(1, LSN(n*seg), seg)) {
				w.walkSegment(bytes.NewReader(g.segs[n]))
			}
		}
		if err := w.result(); err != nil {
			b.Fatal(err)
		}
	}
}
