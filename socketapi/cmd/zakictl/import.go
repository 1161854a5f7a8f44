package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/zaki-platform/zaki-agent/socketapi"
)

var importCmd = &command{
	name: "import", nargs: 0,
	summary: "bring the Zaki platform's existing users over",
	help: `
Reads the router's users file and data dirs (<users-dir>/user-<id>/),
copies each user's data into the agent's data dir (never symlinks,
devices, fifos, sockets or hard-linked files: those are skipped and
listed), keeps the user's port when it is free, and replaces the router's
unlabelled container zaki-user-<id> with an instance (running when it ran).
The source is only read. A user imported before is reported "exists":
running it twice changes nothing. Try --dry-run first.

Examples:
  zakictl import --dry-run
  zakictl import --user 123456789
  zakictl import --users-file /srv/router/users.json --users-dir /srv/users --json`,
	setup: func(c *cli, fs *pflag.FlagSet) func(context.Context, []string) error {
		file := fs.String("users-file", socketapi.DefaultImportUsersFile, "the router's users file (`PATH`)")
		dir := fs.String("users-dir", socketapi.DefaultImportUsersDir, "the dir of the users' data dirs, user-<id>/ (`PATH`)")
		dry := fs.Bool("dry-run", false, "report what would be done, change nothing")
		users := fs.StringArray("user", nil, "import only this user `ID` (repeatable)")
		maxBytes := fs.Int64("max-bytes", socketapi.DefaultImportMaxBytes, "bound on one user's data, in `BYTES`")
		maxFiles := fs.Int("max-files", socketapi.DefaultImportMaxFiles, "bound on one user's entries (files, dirs, others)")
		return func(ctx context.Context, _ []string) error {
			res, err := c.client.Import(ctx, socketapi.ImportRequest{
				UsersFile: *file, UsersDir: *dir, DryRun: *dry, Users: *users,
				MaxBytes: *maxBytes, MaxFiles: *maxFiles,
			})
			if err != nil {
				return err
			}
			if c.json {
				if err := c.printJSON(res); err != nil {
					return err
				}
			} else {
				writeImport(c.stdout, res)
			}
			failed := 0
			for _, it := range res.Users {
				if it.Action == socketapi.ImportFailed || it.Action == socketapi.ImportInvalid {
					failed++
				}
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d users not imported (see their messages)", failed, len(res.Users))
			}
			return nil
		}
	},
}

// writeImport prints what an import did (or would do), a user a line,
// then the entries it skipped.
func writeImport(w io.Writer, res socketapi.ImportResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
	fmt.Fprintln(tw, "USER\tACTION\tPORT\tOLD PORT\tFILES\tBYTES\tSKIPPED\tMESSAGE")
	count := map[string]int{}
	for _, it := range res.Users {
		count[it.Action]++
		old := "-"
		if it.OldPort != 0 {
			old = fmt.Sprint(it.OldPort)
		}
		port := "-"
		if it.Port != 0 {
			port = fmt.Sprint(it.Port)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", it.UserID, it.Action, port, old, it.Files, it.Bytes, len(it.Skipped), it.Message)
	}
	tw.Flush()
	for _, it := range res.Users {
		for _, s := range it.Skipped {
			fmt.Fprintf(w, "skipped %s: %s\n", it.UserID, s)
		}
	}
	var parts []string
	for _, a := range []string{socketapi.ImportImported, socketapi.ImportWouldImport, socketapi.ImportExists, socketapi.ImportFailed, socketapi.ImportInvalid} {
		if count[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[a], a))
		}
	}
	summary := strings.Join(parts, ", ")
	if summary == "" {
		summary = "no users"
	}
	if res.DryRun {
		summary = "dry run: " + summary
	}
	fmt.Fprintln(w, summary)
}
