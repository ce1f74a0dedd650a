package install

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/pghook/pghook/internal/config"
	"gopkg.in/yaml.v3"
)

// scopeSettings are the keys install manages in pghook.yaml for a scope.
type scopeSettings struct {
	PatroniConfig string
	VIPBackend    string
	VIPAddresses  []string // one: address; several: addresses (one per subnet)
	VIPInterface  string
	VIPLabel      string
	VIPHelper     string
	DNS           config.DNS  // backend dns
	Exec          config.Exec // backend exec
}

// mergePghookYAML returns existing pghook.yaml with this scope's managed
// keys set. Everything else (other scopes, keys and comments the user
// added) is kept. Without a VIP, an existing vip section is left alone.
func mergePghookYAML(existing []byte, scope string, s scopeSettings) ([]byte, error) {
	var doc yaml.Node
	if len(bytes.TrimSpace(existing)) > 0 {
		if err := yaml.Unmarshal(existing, &doc); err != nil {
			return nil, fmt.Errorf("existing pghook.yaml is not valid YAML: %w", err)
		}
	}
	if doc.Kind == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode,
			HeadComment: "pghook's settings (see `pghook callback --help`). `pghook install` manages\n" +
				"scopes.<scope>.patroni_config and .vip; other keys and scopes are kept."}}}
	}
	if len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("existing pghook.yaml is not a mapping")
	}
	root := doc.Content[0]
	if s.VIPBackend == "netlink" && (lookup(root, "vip_helper") == nil || s.VIPHelper != VIPHelper) {
		helper := s.VIPHelper
		if helper == "" {
			helper = VIPHelper
		}
		setScalar(root, "vip_helper", helper)
	}
	scopes, err := mapping(root, "scopes")
	if err != nil {
		return nil, err
	}
	sec, err := mapping(scopes, scope)
	if err != nil {
		return nil, err
	}
	setScalar(sec, "patroni_config", s.PatroniConfig)
	if s.VIPBackend != "" {
		vip, err := mapping(sec, "vip")
		if err != nil {
			return nil, err
		}
		setScalar(vip, "backend", s.VIPBackend)
		switch s.VIPBackend {
		case "none":
			// Turned off: the old VIP's keys would only mislead.
			for _, k := range []string{"address", "interface", "label", "dns", "exec"} {
				deleteKey(vip, k)
			}
		case "dns":
			for _, k := range []string{"address", "label", "exec"} {
				deleteKey(vip, k)
			}
			for _, k := range []string{"addresses"} {
				deleteKey(vip, k)
			}
			setScalar(vip, "interface", s.VIPInterface)
			if err := setDNS(vip, s.DNS); err != nil {
				return nil, err
			}
		case "exec":
			for _, k := range []string{"interface", "label", "dns", "addresses"} {
				deleteKey(vip, k)
			}
			if len(s.VIPAddresses) == 1 {
				setScalar(vip, "address", s.VIPAddresses[0])
			} else {
				deleteKey(vip, "address")
			}
			e, err := mapping(vip, "exec")
			if err != nil {
				return nil, err
			}
			for _, kv := range []struct {
				key  string
				argv []string
			}{{"hold", s.Exec.Hold}, {"release", s.Exec.Release}, {"check", s.Exec.Check}} {
				setList(e, kv.key, kv.argv)
			}
			if s.Exec.Timeout > 0 {
				setScalar(e, "timeout", s.Exec.Timeout.String())
			} else {
				deleteKey(e, "timeout")
			}
		default:
			deleteKey(vip, "dns")
			deleteKey(vip, "exec")
			if len(s.VIPAddresses) == 1 {
				deleteKey(vip, "addresses")
				setScalar(vip, "address", s.VIPAddresses[0])
			} else {
				deleteKey(vip, "address")
				setSeq(vip, "addresses", s.VIPAddresses)
			}
			if s.DNS.Name != "" {
				if err := setDNS(vip, s.DNS); err != nil {
					return nil, err
				}
			}
			setScalar(vip, "interface", s.VIPInterface)
			if s.VIPLabel != "" {
				setScalar(vip, "label", s.VIPLabel)
			}
		}
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	enc.Close()
	if _, err := config.Parse(bytes.NewReader(buf.Bytes())); err != nil {
		return nil, fmt.Errorf("pghook.yaml after the update would not load: %w", err)
	}
	return buf.Bytes(), nil
}

// setDNS sets the record's keys in vip's dns mapping.
func setDNS(vip *yaml.Node, dns config.DNS) error {
	d, err := mapping(vip, "dns")
	if err != nil {
		return err
	}
	for _, kv := range [][2]string{{"name", dns.Name}, {"zone", dns.Zone}, {"server", dns.Server}, {"tsig_key_file", dns.TSIGKeyFile}} {
		setScalar(d, kv[0], kv[1])
	}
	// Set when given; a replica_name written by hand stays.
	if dns.ReplicaName != "" {
		setScalar(d, "replica_name", dns.ReplicaName)
	}
	return nil
}

// setSeq sets key of m to a flow sequence of vals.
func setSeq(m *yaml.Node, key string, vals []string) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, v := range vals {
		seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: v})
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content[i+1] = seq
			return
		}
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, seq)
}

func lookup(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// mapping returns the mapping at key, creating it when absent or null.
func mapping(m *yaml.Node, key string) (*yaml.Node, error) {
	v := lookup(m, key)
	if v == nil {
		v = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
		m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
		return v, nil
	}
	if v.Kind == yaml.ScalarNode && (v.Tag == "!!null" || v.Value == "") {
		*v = yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	}
	if v.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("pghook.yaml: key %s is not a mapping", key)
	}
	v.Style = 0
	return v, nil
}

func deleteKey(m *yaml.Node, key string) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			return
		}
	}
}

func setScalar(m *yaml.Node, key, value string) {
	if v := lookup(m, key); v != nil {
		if v.Kind == yaml.ScalarNode && v.Value == value {
			return
		}
		*v = yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value, LineComment: v.LineComment}
		return
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// setList sets key to a flow sequence of values (an argument list).
func setList(m *yaml.Node, key string, values []string) {
	seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Style: yaml.FlowStyle}
	for _, v := range values {
		seq.Content = append(seq.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v})
	}
	if v := lookup(m, key); v != nil {
		seq.LineComment = v.LineComment
		*v = *seq
		return
	}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, seq)
}
