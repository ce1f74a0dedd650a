package replica

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrUnsafeArchive is wrapped by every refusal of a tar entry: a name
// that is not local, a type other than file or directory, a file the
// manifest does not list or lists with another size.
var ErrUnsafeArchive = errors.New("replica: unsafe or unexpected archive entry")

// ErrChecksum is wrapped when a file's content does not match the manifest.
var ErrChecksum = errors.New("replica: checksum mismatch")

// compression of a tar file, from its name.
func compressionOf(name string) string {
	switch {
	case strings.HasSuffix(name, ".tar.gz"):
		return "gzip"
	case strings.HasSuffix(name, ".tar.lz4"):
		return "lz4"
	case strings.HasSuffix(name, ".tar.zst"):
		return "zstd"
	case strings.HasSuffix(name, ".tar"):
		return "none"
	}
	return ""
}

// limitedReader fails (instead of returning EOF) once more than n bytes
// are read: the decompression-bomb cap.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, fmt.Errorf("%w: archive larger than its manifest allows", ErrUnsafeArchive)
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// extractor writes tar entries under one os.Root. Safe for concurrent use
// by one base and one WAL tar.
type extractor struct {
	root     *os.Root
	manifest *Manifest
	// reserved are top-level names that existed before (dotfiles,
	// lost+found): no entry may write into them.
	reserved map[string]bool

	mu      *sync.Mutex     // guards the maps below, shared with sub-extractors
	dirs    map[string]bool // directories made under this root
	written map[string]bool // manifest files written (all roots)
	wal     map[string]bool // WAL file names written into pg_wal
	walHdr  *WALHeader      // header of the first WAL segment

	// walkers check the WAL records of each WAL range as the segments go by.
	walkers []*walWalker
	// Without a root (verify), files are read and checked but not written;
	// kept holds the content of the few the checks read afterwards, and
	// early the WAL segments that came before the walk needed them.
	kept      map[string][]byte
	early     map[string][]byte
	earlySize int64
}

// keptFiles are the files a verification without a root keeps in memory.
var keptFiles = map[string]bool{"global/pg_control": true, "backup_label": true}

// maxEarlyWAL bounds the WAL segments a verification holds in memory when
// the WAL archive is not in LSN order.
const maxEarlyWAL = 512 << 20

func newExtractor(root *os.Root, m *Manifest, reserved map[string]bool) *extractor {
	return &extractor{
		root: root, manifest: m, reserved: reserved, mu: new(sync.Mutex),
		dirs: map[string]bool{"": true, ".": true}, written: map[string]bool{}, wal: map[string]bool{},
		kept: map[string][]byte{}, early: map[string][]byte{},
	}
}

// sub is an extractor writing under another root (a tablespace directory)
// that shares x's manifest bookkeeping.
func (x *extractor) sub(root *os.Root, reserved map[string]bool) *extractor {
	return &extractor{
		root: root, manifest: x.manifest, reserved: reserved, mu: x.mu,
		dirs: map[string]bool{"": true, ".": true}, written: x.written, wal: map[string]bool{}, kept: x.kept,
	}
}

// checkName cleans a tar name and reports whether it is acceptable.
func (x *extractor) checkName(raw string) (string, error) {
	n := cleanName(raw)
	if n == "" {
		return "", nil // the root itself
	}
	if !localName(n) {
		return "", fmt.Errorf("%w: name %q is not local", ErrUnsafeArchive, raw)
	}
	top, _, _ := strings.Cut(n, "/")
	if x.reserved[top] {
		return "", fmt.Errorf("%w: %q would write into %q, which was there before pghook started", ErrUnsafeArchive, raw, top)
	}
	return n, nil
}

func (x *extractor) mkdirAll(dir string) error {
	x.mu.Lock()
	done := x.dirs[dir]
	x.mu.Unlock()
	if done {
		return nil
	}
	if x.root == nil {
		x.mu.Lock()
		x.dirs[dir] = true
		x.mu.Unlock()
		return nil
	}
	if err := x.root.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("creating directory %s: %w", dir, err)
	}
	fi, err := x.root.Lstat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s is not a directory", ErrUnsafeArchive, dir)
	}
	x.mu.Lock()
	x.dirs[dir] = true
	x.mu.Unlock()
	return nil
}

// entryType checks a header's type: only directories and regular files.
func entryType(h *tar.Header) (dir bool, err error) {
	switch h.Typeflag {
	case tar.TypeDir:
		return true, nil
	case tar.TypeReg: // tar.Reader turns the old TypeRegA ('\x00') into TypeReg or TypeDir
		if h.Size < 0 {
			return false, fmt.Errorf("%w: %q has a negative size", ErrUnsafeArchive, h.Name)
		}
		return false, nil
	case tar.TypeSymlink, tar.TypeLink:
		return false, fmt.Errorf("%w: %q is a link (to %q)", ErrUnsafeArchive, h.Name, h.Linkname)
	}
	return false, fmt.Errorf("%w: %q has type %q, not a file or directory", ErrUnsafeArchive, h.Name, string(h.Typeflag))
}

// writeFile creates name (which must not exist), copies size bytes from r
// into it through w and returns the bytes it began with (up to 64); h, if
// not nil, hashes the content. The writes themselves happen in w's
// goroutine: a failed write is returned by a later call or by w.finish.
func (x *extractor) writeFile(w *asyncWriter, name string, r io.Reader, size int64, h io.Writer) (head []byte, err error) {
	if x.root == nil {
		return x.readFile(name, r, size, h)
	}
	if err := w.failed(); err != nil {
		return nil, err
	}
	if err := x.mkdirAll(path.Dir(name)); err != nil {
		return nil, err
	}
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %s already exists", ErrUnsafeArchive, name)
	}
	if err != nil {
		return nil, ioErr{fmt.Errorf("creating %s: %w", name, err)}
	}
	defer w.close(f, name) // after the file's last write, in order
	var left = size
	for left > 0 {
		buf := w.buffer()
		n := int64(len(buf))
		if n > left {
			n = left
		}
		k, rerr := io.ReadFull(r, buf[:n])
		if k > 0 {
			if head == nil {
				head = append([]byte(nil), buf[:min(k, 64)]...)
			}
			if h != nil {
				h.Write(buf[:k])
			}
			left -= int64(k)
		}
		w.write(f, name, size, buf, k)
		if rerr != nil {
			if errors.Is(rerr, io.ErrUnexpectedEOF) || errors.Is(rerr, io.EOF) {
				return nil, fmt.Errorf("%w: %s: archive truncated", ErrUnsafeArchive, name)
			}
			return nil, fmt.Errorf("reading %s from archive: %w", name, rerr)
		}
		if err := w.failed(); err != nil {
			return nil, err
		}
	}
	return head, nil
}

// readFile is writeFile without a root: it reads the entry's size bytes
// through h, keeps the files of keptFiles, and writes nothing.
func (x *extractor) readFile(name string, r io.Reader, size int64, h io.Writer) ([]byte, error) {
	var keep *bytes.Buffer
	if keptFiles[name] && size <= 1<<20 {
		keep = new(bytes.Buffer)
	}
	bp := readBuffers.Get().(*[]byte)
	defer readBuffers.Put(bp)
	buf := *bp
	var head []byte
	for left := size; left > 0; {
		k, err := io.ReadFull(r, buf[:min(int64(len(buf)), left)])
		if k > 0 {
			if head == nil {
				head = append([]byte(nil), buf[:min(k, 64)]...)
			}
			if h != nil {
				h.Write(buf[:k])
			}
			if keep != nil {
				keep.Write(buf[:k])
			}
			left -= int64(k)
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: %s: archive truncated", ErrUnsafeArchive, name)
			}
			return nil, fmt.Errorf("reading %s from archive: %w", name, err)
		}
	}
	if keep != nil {
		x.mu.Lock()
		x.kept[name] = keep.Bytes()
		x.mu.Unlock()
	}
	return head, nil
}

var readBuffers = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// asyncWriter writes files in a goroutine of its own, so that reading
// (and decompressing, and checksumming) the next block of an archive
// overlaps with writing the previous one. One per archive: a file's
// writes and its close keep their order.
type asyncWriter struct {
	ops  chan writeOp
	free chan []byte
	done chan struct{}
	mu   sync.Mutex
	err  error
}

type writeOp struct {
	f    *os.File
	name string
	size int64  // the file's size
	buf  []byte // nil: close f
	n    int
}

// Buffers per archive and their size: 4 MB in flight per archive. Each
// buffer starts at a multiple of directAlign, so that it can be written
// with O_DIRECT.
const (
	writeBuffers = 4
	writeBufSize = 1 << 20
)

func newAsyncWriter() *asyncWriter {
	w := &asyncWriter{ops: make(chan writeOp, writeBuffers), free: make(chan []byte, writeBuffers), done: make(chan struct{})}
	for i := 0; i < writeBuffers; i++ {
		w.free <- alignedBuffer(writeBufSize)
	}
	go w.run()
	return w
}

func (w *asyncWriter) run() {
	defer close(w.done)
	open := map[*os.File]*fileOut{}
	for op := range w.ops {
		failed := w.failed() != nil
		if op.buf == nil {
			if o := open[op.f]; o != nil && !failed && o.size >= directMin {
				o.flush() // small files: left to the final syncfs, in one go
			}
			delete(open, op.f)
			if err := op.f.Close(); err != nil {
				w.setErr(ioErr{fmt.Errorf("closing %s: %w", op.name, err)})
			}
			continue
		}
		if !failed && op.n > 0 {
			o := open[op.f]
			if o == nil {
				o = startFile(op.f, op.size)
				open[op.f] = o
			}
			if err := o.write(op.buf[:op.n]); err != nil {
				w.setErr(ioErr{fmt.Errorf("writing %s: %w", op.name, err)})
			}
		}
		w.free <- op.buf
	}
}

func (w *asyncWriter) buffer() []byte { return <-w.free }

func (w *asyncWriter) write(f *os.File, name string, size int64, buf []byte, n int) {
	w.ops <- writeOp{f: f, name: name, size: size, buf: buf, n: n}
}

func (w *asyncWriter) close(f *os.File, name string) { w.ops <- writeOp{f: f, name: name} }

func (w *asyncWriter) setErr(err error) {
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *asyncWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// finish waits for every write and close, and returns the first error.
func (w *asyncWriter) finish() error {
	close(w.ops)
	<-w.done
	return w.failed()
}

// drain ends an archive's extraction: walkErr if the walk failed, else
// the first error of its writes.
func drain(w *asyncWriter, walkErr error) error {
	werr := w.finish()
	if walkErr != nil {
		return walkErr
	}
	return werr
}

// fileOut is how one file is written. A file of at least directMin bytes
// is written with O_DIRECT: from pghook's buffer straight to the disk,
// without a copy into the page cache, without the page cache's memory
// (which a restore would fill with gigabytes it never reads again) and
// without the kernel's write-back of it later. Only its tail (size not a
// multiple of directAlign) goes through the page cache. A file system
// that refuses O_DIRECT gets ordinary writes. Either way syncfs at the
// end is what makes the files durable: it commits the journal, which
// flushes the disk's cache.
//
// A large buffered file (a file system without O_DIRECT) has its
// write-out started while it is being written (sync_file_range
// SYNC_FILE_RANGE_WRITE, which does not wait) every writebackChunk bytes
// and at its end, so that the disk works during the extraction and the
// final syncfs has little left to write; it is a hint: errors are
// ignored. Files under directMin are left to the final syncfs, which
// writes them out together (a call per small file cost a syscall and a
// small I/O each).
type fileOut struct {
	f         *os.File
	fd        int
	size      int64
	direct    bool
	done, off int64 // bytes written; bytes whose write-out was started
}

const (
	// directMin is the smallest file written with O_DIRECT: below it, the
	// two fcntl calls and a write that waits for the disk cost more than
	// the copy they save.
	directMin = 1 << 20
	// directAlign is the alignment O_DIRECT needs of the buffer, the file
	// offset and the length (the logical block size, 4096 at most on the
	// disks pghook expects).
	directAlign = 4096
	// writebackChunk is how much of a buffered file is written before its
	// write-out is started.
	writebackChunk = 8 << 20
)

func startFile(f *os.File, size int64) *fileOut {
	o := &fileOut{f: f, fd: int(f.Fd()), size: size}
	if size >= directMin {
		o.direct = setDirect(o.fd, true) == nil
	}
	return o
}

// write writes b at the file's end. A short block (the file's tail), or
// one O_DIRECT refuses, is written through the page cache.
func (o *fileOut) write(b []byte) error {
	if o.direct && len(b)%directAlign != 0 {
		o.direct = false
		setDirect(o.fd, false)
	}
	n, err := o.f.Write(b)
	if err != nil && o.direct && errors.Is(err, unix.EINVAL) {
		// the file system wants another alignment: no more O_DIRECT
		o.direct = false
		if setDirect(o.fd, false) == nil {
			var m int
			m, err = o.f.Write(b[n:])
			n += m
		}
	}
	o.done += int64(n)
	if err != nil {
		return err
	}
	if o.direct {
		o.off = o.done // nothing in the page cache
	} else if o.done-o.off >= writebackChunk {
		o.flush()
	}
	return nil
}

// flush starts the write-out of what is still only in the page cache.
func (o *fileOut) flush() {
	if o.done > o.off {
		unix.SyncFileRange(o.fd, o.off, o.done-o.off, unix.SYNC_FILE_RANGE_WRITE)
		o.off = o.done
	}
}

// setDirect turns O_DIRECT on or off for fd.
func setDirect(fd int, on bool) error {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return err
	}
	if on {
		fl |= unix.O_DIRECT
	} else {
		fl &^= unix.O_DIRECT
	}
	_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl)
	return err
}

// alignedBuffer returns n bytes starting at a multiple of directAlign.
func alignedBuffer(n int) []byte {
	b := make([]byte, n+directAlign)
	off := int(uintptr(unsafe.Pointer(&b[0])) & (directAlign - 1))
	if off != 0 {
		off = directAlign - off
	}
	return b[off : off+n : off+n]
}

func newHash(alg string) (hash.Hash, error) {
	switch alg {
	case "CRC32C":
		return crc32.New(castagnoli()), nil
	case "SHA224":
		return sha256.New224(), nil
	case "SHA256":
		return sha256.New(), nil
	case "SHA384":
		return sha512.New384(), nil
	case "SHA512":
		return sha512.New(), nil
	case "NONE":
		return nil, nil
	}
	return nil, fmt.Errorf("%w: checksum algorithm %q not supported", ErrManifest, alg)
}

func sumOf(alg string, h hash.Hash) []byte {
	if alg == "CRC32C" {
		return crc32cBytes(h.(hash.Hash32).Sum32())
	}
	return h.Sum(nil)
}

// extractBase extracts base.tar: every file must be in the manifest with
// the same size, and its checksum must match.
func (x *extractor) extractBase(r io.Reader) error {
	w := newAsyncWriter()
	return drain(w, x.walk(w, r, "base", "the root", ""))
}

// nextEntry reads the next entry of archive (base, a tablespace) bound for
// x's root: its checked name, "" for the root itself (which must be a
// directory; root names it in the error), and whether it is a directory.
// It returns io.EOF at the end of the archive.
func (x *extractor) nextEntry(tr *tar.Reader, archive, root string) (h *tar.Header, name string, isDir bool, err error) {
	h, err = tr.Next()
	if err == io.EOF {
		return nil, "", false, io.EOF
	}
	if err != nil {
		return nil, "", false, archiveErr(archive, err)
	}
	if isDir, err = entryType(h); err != nil {
		return nil, "", false, err
	}
	if name, err = x.checkName(h.Name); err != nil {
		return nil, "", false, err
	}
	if name == "" && !isDir {
		return nil, "", false, fmt.Errorf("%w: %q names %s as a file", ErrUnsafeArchive, h.Name, root)
	}
	return h, name, isDir, nil
}

// walk extracts one tar archive (base, a tablespace's) under x's root:
// its directories, and the files the manifest lists as prefix+name with the
// same size and checksum. archive and root name the archive and x's root in
// errors. In the base archive (no prefix) pg_tblspc/<oid> is pghook's link
// to the tablespace directory, so it must hold nothing: tablespace files come
// only from their <oid>.tar.
func (x *extractor) walk(w *asyncWriter, r io.Reader, archive, root, prefix string) error {
	tr := tar.NewReader(bufio.NewReaderSize(r, 256<<10))
	for {
		h, n, isDir, err := x.nextEntry(tr, archive, root)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if n == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(n, "pg_tblspc/"); ok && prefix == "" && (isOID(rest) || strings.Contains(rest, "/")) {
			return fmt.Errorf("%w: base archive has %q: tablespace contents belong in their own archive", ErrUnsafeArchive, h.Name)
		}
		if isDir {
			if _, listed := x.manifest.Files[prefix+n]; listed {
				return fmt.Errorf("%w: %q is a file in the manifest but a directory in the archive", ErrUnsafeArchive, prefix+n)
			}
			if err := x.mkdirAll(n); err != nil {
				return err
			}
			continue
		}
		if err := x.extractListed(w, tr, prefix+n, n, h.Size); err != nil {
			return err
		}
	}
}

// extractListed writes the current tar entry (size bytes from r) to name
// under x's root; key is its path in the manifest, which must list it
// with that size, once, and with a matching checksum.
func (x *extractor) extractListed(w *asyncWriter, r io.Reader, key, name string, size int64) error {
	mf, ok := x.manifest.Files[key]
	if !ok {
		return fmt.Errorf("%w: %q is not in the manifest", ErrUnsafeArchive, key)
	}
	if mf.Size != size {
		return fmt.Errorf("%w: %q is %d bytes in the archive, %d in the manifest", ErrUnsafeArchive, key, size, mf.Size)
	}
	hs, err := newHash(mf.Algorithm)
	if err != nil {
		return err
	}
	x.mu.Lock()
	dup := x.written[key]
	x.written[key] = true
	x.mu.Unlock()
	if dup {
		return fmt.Errorf("%w: %q appears twice", ErrUnsafeArchive, key)
	}
	if _, err := x.writeFile(w, name, r, size, hs); err != nil {
		return err
	}
	if hs != nil {
		if got := sumOf(mf.Algorithm, hs); string(got) != string(mf.Checksum) {
			return fmt.Errorf("%w: %s: %s %x, manifest says %x", ErrChecksum, key, mf.Algorithm, got, mf.Checksum)
		}
	}
	return nil
}

// extractWAL extracts pg_wal.tar into pg_wal/: only segment and history
// files, segments all of one valid size and of sysid (when non-zero).
func (x *extractor) extractWAL(r io.Reader, sysid uint64) error {
	if err := x.mkdirAll("pg_wal"); err != nil {
		return err
	}
	w := newAsyncWriter()
	return drain(w, x.walkWAL(w, r, sysid))
}

func (x *extractor) walkWAL(w *asyncWriter, r io.Reader, sysid uint64) error {
	tr := tar.NewReader(bufio.NewReaderSize(r, 256<<10))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return archiveErr("WAL", err)
		}
		isDir, err := entryType(h)
		if err != nil {
			return err
		}
		n := cleanName(h.Name)
		if isDir {
			if n == "" || n == "archive_status" {
				if n != "" {
					if err := x.mkdirAll("pg_wal/" + n); err != nil {
						return err
					}
				}
				continue
			}
			return fmt.Errorf("%w: WAL archive has directory %q", ErrUnsafeArchive, h.Name)
		}
		if walStatusRE().MatchString(n) && h.Size == 0 {
			// pg_basebackup marks segments it completed as archived.
			if err := x.mkdirAll("pg_wal/archive_status"); err != nil {
				return err
			}
			if _, err := x.writeFile(w, "pg_wal/"+n, tr, 0, nil); err != nil {
				return err
			}
			continue
		}
		seg := walSegmentRE().MatchString(n)
		if !seg && !walHistoryRE().MatchString(n) {
			return fmt.Errorf("%w: %q in the WAL archive is not a WAL segment or history file", ErrUnsafeArchive, h.Name)
		}
		if !seg && h.Size > 1<<20 {
			return fmt.Errorf("%w: history file %q is %d bytes", ErrUnsafeArchive, n, h.Size)
		}
		x.mu.Lock()
		wantSize := int64(0)
		if x.walHdr != nil {
			wantSize = int64(x.walHdr.SegSize)
		}
		dup := x.wal[n]
		x.wal[n] = true
		x.mu.Unlock()
		if dup {
			return fmt.Errorf("%w: %q appears twice", ErrUnsafeArchive, n)
		}
		if seg && (h.Size < 1<<20 || h.Size > 1<<30 || (wantSize != 0 && h.Size != wantSize)) {
			return fmt.Errorf("%w: WAL segment %q has size %d", ErrUnsafeArchive, n, h.Size)
		}
		walker := x.walkerFor(n)
		var hw io.Writer
		var early *bytes.Buffer
		switch {
		case walker != nil:
			walker.begin()
			hw = walker
		case seg && x.root == nil && x.walkLater(n, h.Size):
			early = bytes.NewBuffer(make([]byte, 0, h.Size))
			hw = early
		}
		head, err := x.writeFile(w, "pg_wal/"+n, tr, h.Size, hw)
		if err != nil {
			return err
		}
		if walker != nil {
			walker.endSegment()
			if err := x.walkEarly(walker); err != nil {
				return err
			}
		}
		if early != nil {
			x.early[n] = early.Bytes()
			x.earlySize += h.Size
		}
		if !seg {
			continue
		}
		wh, err := ParseWALHeader(head)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrUnsafeArchive, n, err)
		}
		if int64(wh.SegSize) != h.Size {
			return fmt.Errorf("%w: WAL segment %s says segment size %d but is %d bytes", ErrUnsafeArchive, n, wh.SegSize, h.Size)
		}
		if sysid != 0 && wh.SystemID != sysid {
			return fmt.Errorf("%w: WAL segment %s belongs to system %d, not %d", ErrUnsafeArchive, n, wh.SystemID, sysid)
		}
		x.mu.Lock()
		if x.walHdr == nil {
			x.walHdr = &wh
		}
		x.mu.Unlock()
	}
}

// walkerFor returns the walker that needs segment n next, or nil.
func (x *extractor) walkerFor(n string) *walWalker {
	for _, w := range x.walkers {
		if w.wants(n) {
			return w
		}
	}
	return nil
}

// walkLater reports whether segment n (of size bytes) will be needed by a
// walker later and fits in memory until then.
func (x *extractor) walkLater(n string, size int64) bool {
	for _, w := range x.walkers {
		if w.done || w.err != nil || len(n) != 24 || n[:8] != w.nextSegment()[:8] || n < w.nextSegment() {
			continue
		}
		if last := SegmentName(w.tli, w.end, w.segSize); n <= last && x.earlySize+size <= maxEarlyWAL {
			return true
		}
	}
	return false
}

// walkEarly feeds w the segments held in memory it now needs.
func (x *extractor) walkEarly(w *walWalker) error {
	for {
		n := w.nextSegment()
		b, ok := x.early[n]
		if n == "" || !ok {
			return nil
		}
		delete(x.early, n)
		x.earlySize -= int64(len(b))
		w.walkSegment(bytes.NewReader(b))
	}
}

// finishWALWalks completes the walks from the segments written to pg_wal
// (an archive not in LSN order) and returns the first verdict that is not
// a pass.
func (x *extractor) finishWALWalks() error {
	for _, w := range x.walkers {
		for n := w.nextSegment(); n != "" && x.root != nil; n = w.nextSegment() {
			f, err := x.root.Open("pg_wal/" + n)
			if err != nil {
				break // result names the missing segment
			}
			err = w.walkSegment(f)
			f.Close()
			if err != nil && !errors.Is(err, ErrWALRecord) {
				return ioErr{fmt.Errorf("reading pg_wal/%s: %w", n, err)}
			}
		}
		if err := w.result(); err != nil {
			return err
		}
	}
	return nil
}

// walRecords is how many WAL records the walks checked.
func (x *extractor) walRecords() int {
	n := 0
	for _, w := range x.walkers {
		n += w.records
	}
	return n
}

// archiveErr wraps an error of tar.Reader.Next: a failed read of the file
// or a cancellation stays what it is; anything else is a bad archive.
func archiveErr(which string, err error) error {
	if errors.As(err, new(ioErr)) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("reading %s archive: %w", which, err)
	}
	return fmt.Errorf("%w: reading %s archive: %v", ErrUnsafeArchive, which, err)
}

// missing returns the manifest files not written.
func (x *extractor) missing() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for p := range x.manifest.Files {
		if !x.written[p] {
			out = append(out, p)
		}
	}
	return out
}

// firstWALHeader reads the long header of the first WAL segment in a WAL
// tar (history files are skipped) without extracting anything.
func firstWALHeader(r io.Reader) (WALHeader, string, error) {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return WALHeader{}, "", errors.New("WAL archive has no WAL segment")
		}
		if err != nil {
			return WALHeader{}, "", fmt.Errorf("reading WAL archive: %w", err)
		}
		n := cleanName(h.Name)
		if h.Typeflag != tar.TypeReg || !walSegmentRE().MatchString(n) {
			continue
		}
		buf := make([]byte, 40)
		if _, err := io.ReadFull(tr, buf); err != nil {
			return WALHeader{}, n, fmt.Errorf("reading WAL segment %s: %w", n, err)
		}
		wh, err := ParseWALHeader(buf)
		return wh, n, err
	}
}

// readLabelAndMap returns backup_label and tablespace_map (nil when the
// backup has no tablespaces) from the first entries of a base archive,
// where pg_basebackup puts them.
func readLabelAndMap(r io.Reader) (label, tsmap []byte, err error) {
	tr := tar.NewReader(r)
	for i := 0; i < 4; i++ {
		h, err := tr.Next()
		if err != nil {
			if label != nil {
				return label, tsmap, nil
			}
			return nil, nil, fmt.Errorf("reading base archive: %w", err)
		}
		n := cleanName(h.Name)
		if n != "backup_label" && n != "tablespace_map" {
			if label != nil {
				return label, tsmap, nil
			}
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Size > 64<<10 {
			return nil, nil, fmt.Errorf("%w: %s is not a small regular file", ErrUnsafeArchive, n)
		}
		b, err := io.ReadAll(io.LimitReader(tr, h.Size))
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", n, err)
		}
		if n == "backup_label" {
			label = b
		} else {
			tsmap = b
		}
		if label != nil && tsmap != nil {
			return label, tsmap, nil
		}
	}
	if label == nil {
		return nil, nil, errors.New("base archive does not start with backup_label")
	}
	return label, tsmap, nil
}

// BackupLabel is what pghook reads from backup_label.
type BackupLabel struct {
	From        string // primary or standby
	Timeline    uint32
	Incremental bool
	StartTime   string // as written, e.g. "2026-01-01 12:00:00 UTC"
}

// ParseBackupLabel parses backup_label's "KEY: value" lines.
func ParseBackupLabel(b []byte) BackupLabel {
	var l BackupLabel
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			continue
		}
		switch k {
		case "START TIME":
			l.StartTime = strings.TrimSpace(v)
		case "BACKUP FROM":
			l.From = strings.TrimSpace(v)
		case "START TIMELINE":
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32); err == nil {
				l.Timeline = uint32(n)
			}
		case "INCREMENTAL FROM LSN", "INCREMENTAL FROM TLI":
			l.Incremental = true
		}
	}
	return l
}
