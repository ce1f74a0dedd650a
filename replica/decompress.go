package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Decompressors undo a backup's compression: the C implementations from
// Debian's zstd, isal, pigz and gzip packages, as child processes, and
// pghook's own LZ4 decoder (builtinLZ4). The programs are not replaced by
// Go libraries because every pghook process — above all the callback
// Patroni starts on each event — pays the package initialisation of
// everything linked into the binary: linking klauspost/compress's zstd
// made each callback 0.2–0.3 ms slower (measured), and the restore was no
// faster for it (less CPU, no pipe, but the same or a longer wall time —
// docs/BENCHMARKS.md §3); Go's inflate is 3–4× slower than igzip.
// pierrec/lz4 costs ~0.03 ms, so lz4 is decoded in the process. The first program found on
// PATH is used. For gzip: igzip (ISA-L's inflate, package isal) inflated
// a 2.2 GB base.tar in 1.1 s where pigz took 3.9–4.6 s and gzip 7.0 s;
// pigz beats gzip by moving reading, writing and the CRC to threads of
// their own. All three check the gzip trailer (CRC-32 and length) and
// exit non-zero when it does not match.
//
// Decompressors maps a compression to the programs that undo it, the
// first installed one is used.
type Decompressors map[string][][]string

// DefaultDecompressors is the table Restore uses unless told otherwise
// (RestoreOptions.Decompressors): for each compression, the programs to
// try in order, with their arguments.
func DefaultDecompressors() Decompressors {
	return Decompressors{
		"zstd": {{"zstd", "-d", "-c", "-q"}},
		"lz4":  {{builtinLZ4}, {"lz4", "-d", "-c", "-q"}},
		"gzip": {{"igzip", "-d", "-c", "-q"}, {"pigz", "-d", "-c", "-q"}, {"gzip", "-d", "-c"}},
	}
}

// pipeSize is the capacity asked for the pipes to and from a
// decompressor (the default 64 kB costs a context switch every 64 kB).
const pipeSize = 1 << 20

// look returns the path and argv of the first installed
// program for comp.
func (d Decompressors) look(comp string) (string, []string, error) {
	progs, ok := d[comp]
	if !ok {
		return "", nil, fmt.Errorf("unknown compression %q", comp)
	}
	var names []string
	for _, argv := range progs {
		if argv[0] == builtinLZ4 {
			return "", argv, nil
		}
		if path, err := exec.LookPath(argv[0]); err == nil {
			return path, argv, nil
		}
		names = append(names, argv[0])
	}
	return "", nil, ioErr{fmt.Errorf("a %s backup needs the %s program (apt-get install %s)", comp, strings.Join(names, " or "), progs[len(progs)-1][0])}
}

// fileSource is an archive file read for extraction, front to back:
// reads fail once ctx is done (SIGTERM, or another archive failed), count
// into prog (if not nil) and mark the file's read errors as I/O errors.
// Fed to a decompressor, its pages are spliced into the pipe. The pages
// read are dropped from the page cache behind the reader: the archive is
// read once, and reusing the same few pages instead of filling gigabytes
// of fresh ones made cold reads of a 2.2 GB base.tar take 0.7 s every
// time instead of 0.7–3.0 s on the benchmark machine.
type fileSource struct {
	ctx           context.Context
	f             *os.File
	prog          *progress
	read, dropped int64
}

// dropBehind is how far the reader gets before the pages behind it are
// dropped (far more than a pipe holds).
const dropBehind = 8 << 20

func (s *fileSource) Read(b []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.f.Read(b)
	s.count(n)
	if err != nil && err != io.EOF {
		err = ioErr{err}
	}
	return n, err
}

func (s *fileSource) count(n int) {
	if n <= 0 {
		return
	}
	if s.prog != nil {
		s.prog.done.Add(int64(n))
	}
	s.read += int64(n)
	if s.read-s.dropped >= dropBehind {
		// pages still in a pipe stay alive until read: only the cache lets go
		unix.Fadvise(int(s.f.Fd()), s.dropped, s.read-s.dropped, unix.FADV_DONTNEED)
		s.dropped = s.read
	}
}

// errNoSplice: the file cannot be spliced (nothing was moved yet).
var errNoSplice = errors.New("splice not supported")

// spliceTo moves the file's pages into the pipe pw with splice(2): the
// decompressor reads them from the page cache without a copy through
// pghook. pw is put in blocking mode: splice waits for room in the pipe
// rather than failing with EAGAIN. It returns errNoSplice when the file
// system cannot splice.
func (s *fileSource) spliceTo(pw *os.File) error {
	rfd, wfd := int(s.f.Fd()), int(pw.Fd()) // Fd: blocking mode
	moved := false
	for {
		if err := s.ctx.Err(); err != nil {
			return err
		}
		n, err := unix.Splice(rfd, nil, wfd, nil, pipeSize, unix.SPLICE_F_MOVE|unix.SPLICE_F_MORE)
		if n > 0 {
			s.count(int(n))
			moved = true
		}
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.EINVAL) && !moved:
			return errNoSplice
		case errors.Is(err, unix.EPIPE):
			return err // the decompressor is gone: its exit status says why
		case err != nil:
			return ioErr{fmt.Errorf("reading %s: %w", s.f.Name(), err)}
		case n == 0:
			return nil
		}
	}
}

// decompress wraps r according to the tar file's compression. An *os.File
// is handed to the decompressor as its standard input; a *fileSource is
// spliced into a pipe by a goroutine; any other reader is copied into a
// pipe by a goroutine, in 1 MB blocks.
func (d Decompressors) decompress(r io.Reader, comp string) (io.ReadCloser, error) {
	if comp == "none" {
		return io.NopCloser(r), nil
	}
	path, argv, err := d.look(comp)
	if err != nil {
		return nil, err
	}
	if argv[0] == builtinLZ4 {
		return newLZ4Reader(r), nil
	}
	cmd := exec.Command(path, argv[1:]...)
	stderr := &capped{max: 4096}
	cmd.Stderr = stderr
	p := &procReader{name: argv[0], cmd: cmd, stderr: stderr}
	var feed *os.File // our end of the stdin pipe, fed by a goroutine
	if f, ok := r.(*os.File); ok {
		cmd.Stdin = f
	} else {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, ioErr{fmt.Errorf("starting %s: %w", argv[0], err)}
		}
		setPipeSize(pw)
		cmd.Stdin, feed = pr, pw
		defer pr.Close() // the child has its copy
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		if feed != nil {
			feed.Close()
		}
		return nil, ioErr{fmt.Errorf("starting %s: %w", argv[0], err)}
	}
	if f, ok := out.(*os.File); ok {
		setPipeSize(f)
		// Blocking reads: the reader waits in read(2) for the next block
		// instead of an EAGAIN, a trip through the poller and a retry
		// (a decompressor writes 64–128 kB at a time).
		f.Fd()
	}
	p.out = out
	if err := cmd.Start(); err != nil {
		if feed != nil {
			feed.Close()
		}
		return nil, ioErr{fmt.Errorf("starting %s: %w", argv[0], err)}
	}
	if feed != nil {
		p.fed = make(chan struct{})
		go func() {
			defer close(p.fed)
			err := errNoSplice
			if src, ok := r.(*fileSource); ok {
				err = src.spliceTo(feed)
			}
			if err == errNoSplice {
				_, err = io.CopyBuffer(feed, onlyReader{r}, make([]byte, pipeSize))
			}
			feed.Close()
			if err != nil && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, os.ErrClosed) {
				p.feedErr = err
			}
		}()
	}
	return p, nil
}

// onlyReader hides any WriterTo of the reader so CopyBuffer uses its buffer.
type onlyReader struct{ io.Reader }

// setPipeSize enlarges a pipe's buffer; failure (an unprivileged process
// over /proc/sys/fs/pipe-max-size) only costs speed.
func setPipeSize(f *os.File) {
	if sc, err := f.SyscallConn(); err == nil {
		sc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, pipeSize) })
	}
}

// procReader reads a decompressor's output. At the end of the output it
// waits for the process: a non-zero exit (a corrupt or truncated stream)
// is returned as the read error, never as a clean EOF.
type procReader struct {
	name    string
	cmd     *exec.Cmd
	out     io.ReadCloser
	stderr  *capped
	fed     chan struct{} // closed when the feeding goroutine ends (nil: none)
	feedErr error         // its read error: the real cause of a failed stream
	once    sync.Once
	err     error
}

func (p *procReader) Read(b []byte) (int, error) {
	n, err := p.out.Read(b)
	if errors.Is(err, io.EOF) {
		if werr := p.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (p *procReader) wait() error {
	p.once.Do(func() {
		err := p.cmd.Wait()
		if p.fed != nil {
			<-p.fed
			if p.feedErr != nil {
				// reading the backup failed (or was cancelled): that is the cause
				p.err = p.feedErr
				return
			}
		}
		if err != nil {
			p.err = fmt.Errorf("%s: %w: %s", p.name, err, strings.TrimSpace(p.stderr.String()))
		}
	})
	return p.err
}

// Close stops the decompressor if it still runs and reaps it.
func (p *procReader) Close() error {
	p.out.Close()
	if p.cmd.ProcessState == nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
	}
	p.wait()
	return nil
}

// capped keeps the first max bytes written to it.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capped) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
