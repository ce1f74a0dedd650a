package patroni

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// DefaultTTL is Patroni's default leader key ttl.
const DefaultTTL = 30 * time.Second

// TTL is the leader key's ttl: dynamic, the DCS's dynamic configuration
// (the JSON of the `config` key, which `patronictl edit-config` changes;
// "" when it could not be read), else bootstrap.dcs.ttl of patroni.yml,
// else Patroni's default of 30 s.
func (c *Config) TTL(dynamic string) time.Duration {
	if dynamic != "" {
		var dyn struct {
			TTL json.RawMessage `json:"ttl"`
		}
		if json.Unmarshal([]byte(dynamic), &dyn) == nil {
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

// StandbyCluster reports whether the cluster replicates from another one
// (a standby cluster, whose leader is a standby_leader, never a primary):
// dynamic's standby_cluster section (the `config` key's JSON; "" when it
// could not be read), else bootstrap.dcs.standby_cluster of patroni.yml.
func (c *Config) StandbyCluster(dynamic string) bool {
	if dynamic != "" {
		var dyn map[string]json.RawMessage
		if json.Unmarshal([]byte(dynamic), &dyn) == nil {
			v, ok := dyn["standby_cluster"]
			return ok && !emptyJSON(v)
		}
	}
	n := c.Bootstrap.DCS.StandbyCluster
	switch {
	case n.IsZero(), n.Tag == "!!null", n.Kind == yaml.MappingNode && len(n.Content) == 0:
		return false
	case n.Kind == yaml.ScalarNode:
		return n.Value != ""
	}
	return true
}

// emptyJSON: null, {} or "" — Patroni treats a standby_cluster section
// like these as absent.
func emptyJSON(v json.RawMessage) bool {
	switch strings.TrimSpace(string(v)) {
	case "null", "{}", `""`:
		return true
	}
	return false
}
