package replica

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// VerifyResult is what VerifyBackup found.
type VerifyResult struct {
	Backup     Meta // as derived from the files (Dir set; ID, Scope, CreatedAt empty for an unpublished directory)
	Bytes      int64
	WALRecords int
	Took       time.Duration
}

// VerifyBackup checks the backup in bdir the way a restore does, without
// writing anything: the manifest's checksum, the archive names, every
// entry's name and type, every file's size and checksum against the
// manifest (and that none is missing), the tablespace archives against
// tablespace_map, pg_control's CRC and system identifier, that the WAL
// covers the backup and that every WAL record from its start to its end
// parses and has a matching CRC32C. It does not ask the leader anything.
// Errors carry create-replica's exit codes.
func VerifyBackup(ctx context.Context, bdir string, progs Decompressors, log zerolog.Logger) (res VerifyResult, err error) {
	start := time.Now()
	defer func() { err = cancelled(ctx, err) }()
	if exists(filepath.Join(bdir, MetaFile)) { // published: retention must not remove it meanwhile
		lock, lerr := lockBackup(bdir)
		if lerr != nil {
			return res, failf(ExitNoBackup, "backup %s: %v", bdir, lerr)
		}
		defer lock.Close()
		m, merr := readMeta(bdir)
		if merr != nil {
			return res, failf(ExitVerify, "%v", merr)
		}
		if ferr := checkMetaFiles(m); ferr != nil {
			return res, ferr
		}
		defer func() {
			if err == nil {
				err = checkMetaAgrees(m, &plan{wal: WALHeader{SystemID: res.Backup.SystemID}})
			}
		}()
	}
	p, err := planBackup(bdir, progs)
	if err != nil {
		return res, err
	}
	res.Backup = p.meta()
	res.Backup.Dir = bdir
	x := newExtractor(nil, p.manifest, nil)
	var tsx []*extractor
	var archives []string
	for _, t := range p.tablespaces {
		tsx = append(tsx, x.sub(nil, nil))
		archives = append(archives, p.tsArchives[t.OID])
	}
	n, err := streamArchives(ctx, log, p, x, tsx, archives, p.wal.SystemID, 0)
	res.Bytes = n
	if err != nil {
		return res, backupErr(bdir, err)
	}
	res.WALRecords = x.walRecords()
	cd, err := ParseControl(x.kept["global/pg_control"])
	if err != nil {
		return res, failf(ExitVerify, "backup %s: global/pg_control: %v", bdir, err)
	}
	if cd.SystemID != p.wal.SystemID {
		return res, failf(ExitVerify, "backup %s: pg_control is of system %d, its WAL of system %d", bdir, cd.SystemID, p.wal.SystemID)
	}
	if strings.Contains(string(x.kept["backup_label"]), "INCREMENTAL FROM") {
		return res, failf(ExitVerify, "backup %s is incremental: it needs pg_combinebackup", bdir)
	}
	res.Took = time.Since(start)
	return res, nil
}

// meta is the metadata derived from a checked backup's files.
func (p *plan) meta() Meta {
	var m Meta
	m.SystemID = p.wal.SystemID
	m.PGVersion = p.wal.MajorVersion()
	m.WALSegSize = p.wal.SegSize
	tli, s := p.manifest.Start()
	m.Timeline = tli
	m.StartLSN = s.String()
	m.EndLSN = p.end.String()
	m.DataBytes = p.manifest.DataSize()
	m.StoredBytes = p.storedBytes
	m.FromStandby = p.fromStandby
	m.Compression = p.compression
	m.startTime = p.label.StartTime
	m.Files = []string{filepath.Base(p.base), filepath.Base(p.walTar), "backup_manifest"}
	for _, t := range p.tablespaces {
		m.Files = append(m.Files, filepath.Base(p.tsArchives[t.OID]))
		m.Tablespaces = append(m.Tablespaces, t)
	}
	return m
}

// checkMetaFiles checks a published backup's directory against its
// pghook.json before anything is read: every file it lists is there, and
// no archive is there that it does not list.
func checkMetaFiles(m Meta) error {
	if len(m.Files) == 0 {
		return nil // written before pghook.json listed its files
	}
	for _, f := range m.Files {
		if f == ConfigSubdir+"/" {
			continue
		}
		if _, err := os.Lstat(filepath.Join(m.Dir, f)); err != nil {
			return failf(ExitVerify, "backup %s: %s lists %s, which is missing from the backup directory (%v)", m.Dir, MetaFile, f, err)
		}
	}
	ents, err := os.ReadDir(m.Dir)
	if err != nil {
		return fail(ExitIO, fmt.Errorf("backup %s: %w", m.Dir, err))
	}
	for _, e := range ents {
		if compressionOf(e.Name()) != "" && !slices.Contains(m.Files, e.Name()) {
			return failf(ExitVerify, "backup %s holds %s, which its %s does not list: the directory was changed after it was published", m.Dir, e.Name(), MetaFile)
		}
	}
	return nil
}

// checkMetaAgrees checks that pghook.json describes the backup its files
// are.
func checkMetaAgrees(m Meta, p *plan) error {
	if m.SystemID != p.wal.SystemID {
		return failf(ExitVerify, "backup %s: %s says system %d, its WAL is of system %d", m.Dir, MetaFile, m.SystemID, p.wal.SystemID)
	}
	return nil
}

// cancelled rewrites an error that a cancellation caused (SIGTERM from
// Patroni) to say so, with exit 1.
func cancelled(ctx context.Context, err error) error {
	if err == nil || ctx.Err() == nil {
		return err
	}
	return &Error{Code: ExitFailure, Err: fmt.Errorf("stopped: %v", context.Cause(ctx))}
}
