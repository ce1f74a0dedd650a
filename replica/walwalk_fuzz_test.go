package replica

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// FuzzWALWalker builds valid WAL from the input (record sizes, switches),
// then flips the bytes the rest of the input names. The walker must never
// panic, must accept the WAL untouched, and must refuse only with
// ErrWALRecord.
func FuzzWALWalker(f *testing.F) {
	f.Add([]byte{3, 40, 200, 0xFF, 9}, []byte{})
	f.Add([]byte{3, 40, 200, 0xFF, 9}, []byte{0, 0, 0x40, 0x30})
	f.Add([]byte{250, 250, 250, 250, 250, 250}, []byte{1, 0x10, 0x11, 0x08})
	f.Add([]byte{0, 0xFE, 1}, []byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, shape, flips []byte) {
		if len(shape) > 64 {
			shape = shape[:64]
		}
		const start = LSN(tWALSeg + 40)
		g := newWALGen(7, 1, tWALSeg, tWALBlck, start)
		for i, s := range shape {
			switch {
			case s == 0xFF:
				g.add(walRec{rmid: rmXLOG, info: xlogSwitch})
			default:
				g.add(walRec{rmid: 10, info: byte(i), data: data(int(s)*int(s)/4, s)})
			}
			if uint64(g.pos) >= 3*tWALSeg {
				break
			}
		}
		end := g.pos
		hdr := g.header(start)
		mutated := false
		for i := 0; i+4 <= len(flips) && i < 64; i += 4 {
			off := uint64(binary.LittleEndian.Uint32(flips[i:])) % (3 * tWALSeg)
			if seg, ok := g.segs[off/tWALSeg]; ok && flips[i+3]|1 != 0 {
				seg[off%tWALSeg] ^= flips[i+3] | 1
				if LSN(off) >= start-40 && LSN(off) < end {
					mutated = true
				}
			}
		}
		w, err := newWALWalker(WALRange{Timeline: 1, Start: start, End: end}, hdr)
		if err != nil {
			if mutated {
				return
			}
			t.Fatal(err)
		}
		for _, n := range g.segNumbers() {
			if w.wants(SegmentName(1, LSN(n*tWALSeg), tWALSeg)) {
				w.walkSegment(bytes.NewReader(g.segs[n]))
			}
		}
		err = w.result()
		if !mutated && err != nil {
			t.Fatalf("untouched WAL refused: %v", err)
		}
		if err != nil && !errors.Is(err, ErrWALRecord) {
			t.Fatalf("refused without ErrWALRecord: %v", err)
		}
	})
}
