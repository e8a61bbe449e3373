package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	platformlog "github.com/waypost/waypost/internal/platform/log"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// migrate applies every component's pending migrations and prints the status.
func migrate(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("migrate", args, environ, stderr, nil)
	if err != nil {
		return err
	}
	logger, err := platformlog.New(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	db, err := sqldb.Open(ctx, cfg.SQLDSN(), logger)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Migrate(ctx, migrationSets()...); err != nil {
		return err
	}
	status, err := db.MigrationStatus(ctx, migrationSets()...)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "COMPONENT\tVERSION\tFILE\tAPPLIED AT")
	for _, s := range status {
		at := "pending"
		if s.Applied {
			at = s.AppliedAt.UTC().Format("2006-01-02 15:04:05Z")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", s.Component, s.Version, s.File, at)
	}
	return tw.Flush()
}
