package app

import (
	"fmt"

	"github.com/pghook/pghook/internal/metrics/rules"
	"github.com/urfave/cli/v2"
)

func (a *app) metricsCommand() *cli.Command {
	print := func(name, usage, text string) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, Action: func(c *cli.Context) error {
			_, err := fmt.Fprint(c.App.Writer, text)
			return err
		}}
	}
	return &cli.Command{
		Name:  "metrics",
		Usage: "print the Prometheus alerting rules or the Grafana dashboard pghook ships",
		Description: "The VIP watcher serves /metrics on vip.metrics_listen; callback, backup and\n" +
			"create-replica write node_exporter textfiles into metrics_textfile_dir. The same\n" +
			"files are installed in /usr/share/pghook/prometheus/.",
		Subcommands: []*cli.Command{
			print("rules", "print the alerting rules (Prometheus rule file)", rules.Rules),
			print("dashboard", "print the Grafana dashboard (JSON)", rules.Dashboard),
		},
	}
}
