package replica

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// decompressors are the programs that decompress a compressed tar: the C
// implementations from Debian's zstd, lz4 and gzip packages. They run as
// child processes rather than Go libraries because every pghook process —
// above all the callback Patroni starts on each event — pays the package
// initialisation of everything linked into the binary (klauspost/compress
// and lz4 cost ~0.2 ms per start, docs/BENCHMARKS.md), and the C
// decompressors are at least as fast.
var decompressors = map[string][]string{
	"zstd": {"zstd", "-d", "-c", "-q"},
	"lz4":  {"lz4", "-d", "-c", "-q"},
	"gzip": {"gzip", "-d", "-c"},
}

// decompress wraps r according to the tar file's compression.
func decompress(r io.Reader, comp string) (io.ReadCloser, error) {
	if comp == "none" {
		return io.NopCloser(r), nil
	}
	argv, ok := decompressors[comp]
	if !ok {
		return nil, fmt.Errorf("unknown compression %q", comp)
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return nil, ioErr{fmt.Errorf("a %s backup needs the %s program (apt-get install %s): %w", comp, argv[0], argv[0], err)}
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Stdin = r
	stderr := &capped{max: 4096}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, ioErr{fmt.Errorf("starting %s: %w", argv[0], err)}
	}
	if err := cmd.Start(); err != nil {
		return nil, ioErr{fmt.Errorf("starting %s: %w", argv[0], err)}
	}
	return &procReader{name: argv[0], cmd: cmd, out: out, stderr: stderr}, nil
}

// procReader reads a decompressor's output. At the end of the output it
// waits for the process: a non-zero exit (a corrupt or truncated stream)
// is returned as the read error, never as a clean EOF.
type procReader struct {
	name   string
	cmd    *exec.Cmd
	out    io.ReadCloser
	stderr *capped
	once   sync.Once
	err    error
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
		if err := p.cmd.Wait(); err != nil {
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
