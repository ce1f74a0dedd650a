// Package rules holds the Prometheus alerting rules and the Grafana
// dashboard that pghook ships (/usr/share/pghook/prometheus/) and prints
// (`pghook metrics rules`, `pghook metrics dashboard`).
package rules

import _ "embed"

// Rules is pghook.rules.yml.
//
//go:embed pghook.rules.yml
var Rules string

// Dashboard is pghook-dashboard.json.
//
//go:embed pghook-dashboard.json
var Dashboard string
