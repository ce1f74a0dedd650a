package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"regexp"
	"sync"
)

// ControlData is what pghook reads from global/pg_control.
type ControlData struct {
	SystemID       uint64
	ControlVersion uint32
	CatalogVersion uint32
	State          uint32
}

// ParseControl reads pg_control. The CRC32C of the struct sits right after
// it and its offset depends on the version (288 in PG15), so the CRC is
// found by searching for an offset k where crc32c(b[:k]) == LE32(b[k:]).
func ParseControl(b []byte) (ControlData, error) {
	if len(b) < 24 {
		return ControlData{}, errors.New("pg_control: too short")
	}
	ok := false
	for k := 24; k+4 <= len(b) && k <= 1024; k += 4 {
		if crc32.Checksum(b[:k], castagnoli()) == binary.LittleEndian.Uint32(b[k:]) {
			ok = true
			break
		}
	}
	if !ok {
		return ControlData{}, errors.New("pg_control: CRC does not match")
	}
	return ControlData{
		SystemID:       binary.LittleEndian.Uint64(b[0:]),
		ControlVersion: binary.LittleEndian.Uint32(b[8:]),
		CatalogVersion: binary.LittleEndian.Uint32(b[12:]),
		State:          binary.LittleEndian.Uint32(b[16:]),
	}, nil
}

// WALHeader is the long page header at the start of every WAL segment.
type WALHeader struct {
	Magic     uint16
	Timeline  uint32
	PageAddr  LSN
	SystemID  uint64
	SegSize   uint32
	BlockSize uint32
}

const xlpLongHeader = 0x0002

// ParseWALHeader reads the long header of a WAL segment's first page.
func ParseWALHeader(b []byte) (WALHeader, error) {
	if len(b) < 40 {
		return WALHeader{}, errors.New("WAL segment: header too short")
	}
	h := WALHeader{
		Magic:     binary.LittleEndian.Uint16(b[0:]),
		Timeline:  binary.LittleEndian.Uint32(b[4:]),
		PageAddr:  LSN(binary.LittleEndian.Uint64(b[8:])),
		SystemID:  binary.LittleEndian.Uint64(b[24:]),
		SegSize:   binary.LittleEndian.Uint32(b[32:]),
		BlockSize: binary.LittleEndian.Uint32(b[36:]),
	}
	info := binary.LittleEndian.Uint16(b[2:])
	if info&xlpLongHeader == 0 {
		return h, errors.New("WAL segment: first page has no long header")
	}
	if h.SegSize < 1<<20 || h.SegSize > 1<<30 || h.SegSize&(h.SegSize-1) != 0 {
		return h, fmt.Errorf("WAL segment: segment size %d is not a power of two in 1MB..1GB", h.SegSize)
	}
	return h, nil
}

// walMagicMajor maps XLOG_PAGE_MAGIC to PostgreSQL major versions.
var walMagicMajor = map[uint16]int{0xD106: 13, 0xD10D: 14, 0xD110: 15, 0xD113: 16, 0xD116: 17, 0xD118: 18}

// MajorVersion returns the PostgreSQL major version of the WAL format, or 0.
func (h WALHeader) MajorVersion() int { return walMagicMajor[h.Magic] }

var (
	walSegmentRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-F]{24}$`) })
	walHistoryRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9A-F]{8}\.history$`) })
	walStatusRE  = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^archive_status/([0-9A-F]{24}|[0-9A-F]{8}\.history)\.done$`)
	})
)
