package install

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
)

// state records what pghook last wrote: path → sha256 of the content (or,
// for pghook.yaml, of the scope's managed keys under "<path>#scopes.<s>").
// A file whose content no longer matches was edited by someone else.
type state struct {
	Files map[string]string `json:"files"`
}

func loadState(path string) (*state, error) {
	s := &state{Files: map[string]string{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, err
	}
	if s.Files == nil {
		s.Files = map[string]string{}
	}
	return s, nil
}

func (s *state) encode() []byte {
	b, _ := json.MarshalIndent(s, "", "  ")
	return append(b, '\n')
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
