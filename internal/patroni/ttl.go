package patroni

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"
)

// DefaultTTL is Patroni's default leader key ttl.
const DefaultTTL = 30 * time.Second

// TTL is the leader key's ttl: the DCS's dynamic configuration (the
// `config` key, which `patronictl edit-config` changes), else
// bootstrap.dcs.ttl of patroni.yml, else Patroni's default of 30 s. The
// DCS read is bounded by timeout; a DCS pghook cannot read is no error.
func (c *Config) TTL(ctx context.Context, timeout time.Duration) time.Duration {
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if v, found, err := c.ReadKey(rctx, timeout, "config"); err == nil && found {
		var dyn struct {
			TTL json.RawMessage `json:"ttl"`
		}
		if json.Unmarshal([]byte(v), &dyn) == nil {
			if d, ok := seconds(string(dyn.TTL)); ok {
				return d
			}
		}
	}
	if d, ok := seconds(c.Bootstrap.DCS.TTL.Value); ok {
		return d
	}
	return DefaultTTL
}

// seconds reads a ttl as Patroni writes it: a number of seconds, possibly
// quoted.
func seconds(s string) (time.Duration, bool) {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n <= 0 || n > 86400 {
		return 0, false
	}
	return time.Duration(n * float64(time.Second)), true
}
