package netvip

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// Helper is the backend of an unprivileged process (a callback running as
// postgres): it runs the privileged VIP helper — a copy of pghook that
// alone holds CAP_NET_ADMIN and CAP_NET_RAW as file capabilities, and that
// only group postgres may execute — for each operation. PostgreSQL and
// Patroni never hold those capabilities.
//
// The helper reads the VIP settings from the root-owned config only; the
// caller passes the scope and the config path, never an address.
type Helper struct {
	// Path of the helper, e.g. /usr/lib/pghook/pghook-vip.
	Path string
	// Args come after the operation: --scope S --config F.
	Args []string
	// Backend names the backend the helper runs, for logs.
	Backend string
}

// Name implements Backend.
func (h Helper) Name() string { return h.Backend + " via " + h.Path }

// Hold implements Backend.
func (h Helper) Hold(ctx context.Context) error { _, err := h.run(ctx, "up"); return err }

// Release implements Backend.
func (h Helper) Release(ctx context.Context) error { _, err := h.run(ctx, "down"); return err }

// Status implements Backend.
func (h Helper) Status(ctx context.Context) (Status, error) {
	out, err := h.run(ctx, "status", "--json")
	if err != nil {
		return Status{}, err
	}
	var st Status
	if err := json.Unmarshal(out, &st); err != nil {
		return Status{}, fmt.Errorf("vip helper %s status: %w: %q", h.Path, err, out)
	}
	return st, nil
}

func (h Helper) run(ctx context.Context, op string, extra ...string) ([]byte, error) {
	args := append([]string{op}, h.Args...)
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, h.Path, args...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr // the helper's own log lines go where ours go
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("vip helper %s %s %s: %w", h.Path, op, strings.Join(h.Args, " "), err)
	}
	return out.Bytes(), nil
}
