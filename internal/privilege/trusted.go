package privilege

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// MaxTrustedSize bounds a trusted file: pghook.yaml is a few hundred bytes.
const MaxTrustedSize = 1 << 20

// ErrUntrusted is wrapped by every refusal of ReadTrusted and CheckDir
// that is about ownership or permissions (not about a missing file).
var ErrUntrusted = errors.New("not trusted")

// ReadTrusted returns the content of the file at the absolute path p when
// root may have written it and nobody else: every directory from / down,
// and the file itself, owned by root and not writable by group or others.
// The path is walked one component at a time with openat(O_NOFOLLOW), and
// each check is made on the open descriptor (fstat), so a symlink, a
// renamed directory or a file swapped after the check cannot slip in. The
// file must be a regular file outside procfs and sysfs (whose files a
// process with file capabilities sees as root's while their content is
// its caller's) and at most max bytes long (0: MaxTrustedSize).
func ReadTrusted(p string, max int64) ([]byte, error) {
	if max <= 0 {
		max = MaxTrustedSize
	}
	fd, err := openTrusted(p, func(st *unix.Stat_t) error { return rootOnly(st, p, "file") })
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("%s: %w: not a regular file", p, ErrUntrusted)
	}
	if st.Size > max {
		return nil, fmt.Errorf("%s: %w: %d bytes, more than %d", p, ErrUntrusted, st.Size, max)
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", p, ErrUntrusted, max)
	}
	return b, nil
}

// CheckDir checks the directory at the absolute path p for a socket that
// only trusted users may create: every parent owned by root and not
// writable by group or others, and p itself owned by root or by one of
// owners, not writable by group or others. Checks are made on descriptors
// opened without following symlinks.
func CheckDir(p string, owners ...int) error {
	fd, err := openTrusted(p, func(st *unix.Stat_t) error {
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s: %w: not a directory", p, ErrUntrusted)
		}
		ok := st.Uid == 0
		for _, o := range owners {
			ok = ok || int(st.Uid) == o
		}
		if !ok {
			return fmt.Errorf("%s: %w: owned by uid %d (want root or uid %v)", p, ErrUntrusted, st.Uid, owners)
		}
		if st.Mode&0o022 != 0 {
			return fmt.Errorf("%s: %w: writable by group or others (mode %04o)", p, ErrUntrusted, st.Mode&0o7777)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// openTrusted opens p component by component from /, checking every
// directory on the way with rootOnly and the last component with last.
// It returns the last component's descriptor (O_RDONLY, O_NONBLOCK so
// that a FIFO cannot block it).
func openTrusted(p string, last func(*unix.Stat_t) error) (int, error) {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
		return -1, fmt.Errorf("%s: %w: want a clean absolute path", p, ErrUntrusted)
	}
	dir, err := unix.Open("/", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening /: %w", err)
	}
	if err := checkFD(dir, "/", func(st *unix.Stat_t) error { return rootOnly(st, "/", "directory") }); err != nil {
		unix.Close(dir)
		return -1, err
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	walked := ""
	for i, name := range parts {
		walked += "/" + name
		final := i == len(parts)-1
		flags := unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_NONBLOCK
		if !final {
			flags |= unix.O_DIRECTORY
		}
		fd, err := unix.Openat(dir, name, flags, 0)
		unix.Close(dir)
		if err != nil {
			if errors.Is(err, unix.ELOOP) {
				return -1, fmt.Errorf("%s: %w: a symbolic link", walked, ErrUntrusted)
			}
			if errors.Is(err, unix.ENOTDIR) {
				return -1, fmt.Errorf("%s: %w: not a directory (or a symbolic link)", walked, ErrUntrusted)
			}
			return -1, fmt.Errorf("opening %s: %w", walked, &os.PathError{Op: "open", Path: walked, Err: err})
		}
		check := func(st *unix.Stat_t) error { return rootOnly(st, walked, "directory") }
		if final {
			check = last
		}
		if err := checkFD(fd, walked, check); err != nil {
			unix.Close(fd)
			return -1, err
		}
		dir = fd
	}
	return dir, nil
}

// checkFD refuses descriptors on procfs or sysfs, then applies check.
func checkFD(fd int, p string, check func(*unix.Stat_t) error) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	switch fs.Type {
	case unix.PROC_SUPER_MAGIC, unix.SYSFS_MAGIC:
		return fmt.Errorf("%s: %w: on procfs or sysfs", p, ErrUntrusted)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	return check(&st)
}

// rootOnly refuses what is not owned by root or is writable by group or
// others.
func rootOnly(st *unix.Stat_t, p, what string) error {
	if st.Uid != 0 {
		return fmt.Errorf("%s: %w: %s owned by uid %d, not root", p, ErrUntrusted, what, st.Uid)
	}
	if st.Mode&0o022 != 0 {
		return fmt.Errorf("%s: %w: %s writable by group or others (mode %04o)", p, ErrUntrusted, what, st.Mode&0o7777)
	}
	return nil
}
