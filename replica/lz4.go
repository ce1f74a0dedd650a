package replica

import (
	"fmt"
	"io"

	"github.com/pierrec/lz4/v4"
)

// builtinLZ4 names, in a Decompressors table, pghook's own LZ4 frame
// decoder instead of a program. LZ4 decodes so fast that the pipe from the
// lz4 program costs more than the decoding: on the benchmark machine
// `lz4 -d | cat` moved a 2.2 GB base.tar in 1.3 s where the decoder alone
// took 0.6–0.7 s, and a restore of that backup used 1.6–2.0 s of CPU
// instead of 2.3–2.4 s. The package costs ~0.03 ms of initialisation per
// pghook start (klauspost/compress's zstd cost 0.2–0.3 ms on every
// callback Patroni runs: zstd and gzip stay programs).
const builtinLZ4 = "(built-in lz4)"

// lz4Reader decodes LZ4 frames (pg_basebackup's client-side lz4 writes
// one) from src. A read error of src is returned as it is (an I/O error,
// or a cancellation); any other failure is a corrupt stream.
type lz4Reader struct {
	src *sourceErr
	zr  *lz4.Reader
}

// sourceErr remembers the last error its reader returned other than EOF.
type sourceErr struct {
	r   io.Reader
	err error
}

func (s *sourceErr) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

func newLZ4Reader(r io.Reader) io.ReadCloser {
	src := &sourceErr{r: r}
	return &lz4Reader{src: src, zr: lz4.NewReader(src)}
}

func (l *lz4Reader) Read(b []byte) (int, error) {
	n, err := l.zr.Read(b)
	switch {
	case err == nil, err == io.EOF:
		return n, err
	case l.src.err != nil:
		return n, l.src.err
	}
	return n, fmt.Errorf("lz4: %w", err)
}

// Close implements io.Closer; the source is the caller's to close.
func (l *lz4Reader) Close() error { return nil }
