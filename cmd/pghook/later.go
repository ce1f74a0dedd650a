package main

import (
	"github.com/urfave/cli/v2"
)

// notBuilt answers for a command of CONTRACT.md that a later issue owns.
// Exit 2 makes Patroni fall back to its next create_replica method.
func notBuilt(name, issue string) cli.ActionFunc {
	return func(*cli.Context) error {
		return cli.Exit("pghook "+name+": not built yet ("+issue+"); exit 2", exitUsage)
	}
}

func (a *app) createReplicaCommand() *cli.Command {
	return &cli.Command{
		Name:            "create-replica",
		Usage:           "[not built yet] Patroni create_replica method: restore from a shared-storage backup",
		ArgsUsage:       "--scope=S --datadir=D --role=R --connstring=C [--k=v…]",
		SkipFlagParsing: true, // Patroni passes --key=value for every key of the method section
		Action:          notBuilt("create-replica", "issue #4"),
	}
}

func (a *app) backupCommand() *cli.Command {
	return &cli.Command{
		Name:   "backup",
		Usage:  "[not built yet] take a pg_basebackup into shared storage, published atomically",
		Flags:  []cli.Flag{&cli.StringFlag{Name: "scope"}},
		Action: notBuilt("backup", "issue #4"),
	}
}

func (a *app) installCommand() *cli.Command {
	return &cli.Command{
		Name:            "install",
		Usage:           "[not built yet] lay down patroni.yml, pghook.yaml and the systemd unit",
		SkipFlagParsing: true,
		Action:          notBuilt("install", "issue #5"),
	}
}
