package main

import (
	"cmp"
	"context"
	"fmt"
	"github.com/spf13/pflag"
	"os"
	"text/tabwriter"
	"time"

	"github.com/lifeboat-dr/lifeboat/starter"
	"github.com/lifeboat-dr/lifeboat/workflows"
)

func cmdDrillSchedule(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	cron := fs.String("cron", "", `when, as a cron line in the time zone of --tz, e.g. "0 3 1 * *"`)
	mode := fs.String("mode", workflows.ModeDrill, "drill or tabletop")
	tz := fs.String("tz", "", "IANA time zone of the cron line (default UTC)")
	pause := fs.Bool("pause-on-failure", false, "pause the schedule when a scheduled run does not succeed")
	as := fs.String("as", defaultUser(), "who owns the schedule (recorded as the requester of each run)")
	return func(ctx context.Context, pos []string) error {
		req := starter.ScheduleRequest{Runbook: pos[0], Mode: *mode, Cron: *cron, TimeZone: *tz, PauseOnFailure: *pause, RequestedBy: *as}
		if err := req.Check(); err != nil {
			return err
		}
		st, c, cfg, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		req.Plan = isPlanName(cfg.Catalog, pos[0])
		id, err := st.CreateSchedule(ctx, req)
		if err != nil {
			return err
		}
		info, err := st.DescribeSchedule(ctx, id)
		if err != nil {
			return err
		}
		if *cf.output == "json" {
			return printJSON(info)
		}
		fmt.Printf("scheduled %s of %s: %s\n  schedule: %s\n", req.Mode, req.Runbook, req.Cron, id)
		if len(info.NextRuns) > 0 {
			fmt.Printf("  next run: %s\n", info.NextRuns[0].Local().Format(time.RFC1123))
		}
		fmt.Printf("  run now:  lifeboat drill trigger %s\n", id)
		return nil
	}
}

func cmdDrillSchedules(fs *pflag.FlagSet) runner {
	cf := addClientFlags(fs)
	return func(ctx context.Context, _ []string) error {
		st, c, _, err := cf.connect()
		if err != nil {
			return err
		}
		defer c.Close()
		list, err := st.Schedules(ctx)
		if err != nil {
			return err
		}
		if *cf.output == "json" {
			return printJSON(list)
		}
		if len(list) == 0 {
			fmt.Println("no drill schedules: lifeboat drill schedule NAME --cron \"0 3 1 * *\"")
			return nil
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SCHEDULE\tRUNBOOK\tMODE\tCRON\tSTATE\tNEXT RUN\tLAST RUN\tLAST RESULT")
		for _, s := range list {
			state := "active"
			if s.Paused {
				state = "paused"
				if s.Note != "" {
					state += " (" + s.Note + ")"
				}
			}
			next, last, result := "—", "—", "—"
			if len(s.NextRuns) > 0 && !s.Paused {
				next = s.NextRuns[0].Local().Format("2006-01-02 15:04")
			}
			if s.LastRun != nil {
				last, result = s.LastRun.At.Local().Format("2006-01-02 15:04"), s.LastRun.Result+" "+s.LastRun.WorkflowID
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, s.Runbook, s.Mode, s.Cron, state, next, last, result)
		}
		return tw.Flush()
	}
}

// scheduleOp is pause, unpause, trigger or delete of one schedule.
func scheduleOp(op string) func(*pflag.FlagSet) runner {
	return func(fs *pflag.FlagSet) runner {
		cf := addClientFlags(fs)
		note := fs.String("note", "", "why (shown in drill schedules)")
		return func(ctx context.Context, pos []string) error {
			st, c, _, err := cf.connect()
			if err != nil {
				return err
			}
			defer c.Close()
			id := pos[0]
			switch op {
			case "pause":
				err = st.PauseSchedule(ctx, id, cmp.Or(*note, "paused by "+defaultUser()))
			case "unpause":
				err = st.UnpauseSchedule(ctx, id, *note)
			case "trigger":
				err = st.TriggerSchedule(ctx, id)
			case "delete":
				err = st.DeleteSchedule(ctx, id)
			}
			if err != nil {
				return err
			}
			msg := map[string]string{"pause": "paused", "unpause": "resumed", "trigger": "triggered: the drill starts now (see lifeboat drill schedules)", "delete": "deleted; its past runs and their evidence stay"}[op]
			fmt.Printf("schedule %s %s\n", id, msg)
			return nil
		}
	}
}
