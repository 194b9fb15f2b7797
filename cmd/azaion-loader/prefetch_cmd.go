package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/azaion/loader/control"
)

const prefetchUsage = `Usage: azaion-loader prefetch [--addr ADDR] [--no-wait] FOLDER/NAME...

Fetches resources whole into the running loader's cache (POST /prefetch),
so that they open later without the CDN, and waits until each is done or
has failed, with a progress line on standard error on a terminal. Each
resource is then listed on standard output: "FOLDER/NAME: done, N bytes"
or "FOLDER/NAME: error: WHY". Stopping the command does not stop the
loader's prefetch; GET /status shows it.

Example:
  azaion-loader prefetch models/yolo.onnx models/sam.onnx
` + clientExits + `prefetch also exits 6 when any resource could not be fetched.

Flags:
`

func runPrefetch(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("prefetch", flag.ContinueOnError)
	addr := clientFlags(fset)
	noWait := fset.Bool("no-wait", false, "return once queued")
	timeout := fset.Duration("timeout", 2*time.Hour, "give up waiting after this `DURATION`")
	if err := parseFlags(fset, prefetchUsage, stdout, interspersed(args, "addr", "timeout")); err != nil {
		return err
	}
	if fset.NArg() == 0 {
		return usageError{error: errors.New("prefetch: want one or more FOLDER/NAME")}
	}
	if _, err := control.ParsePrefetch(fset.Args()); err != nil {
		return usageError{error: fmt.Errorf("prefetch: %w", err)}
	}
	c := newClient(*addr)
	var queued struct{ Resources []control.PrefetchItem }
	if err := c.postJSON(ctx, "/prefetch", map[string]any{"resources": fset.Args()}, &queued); err != nil {
		return err
	}
	if *noWait {
		for _, it := range queued.Resources {
			fmt.Fprintf(stdout, "%s/%s: %s\n", it.Folder, it.Name, it.State)
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	items := queued.Resources
	bar := newProgress(stderr, "prefetch", -1)
	for {
		var done, total int64
		finished, known := 0, true
		for _, it := range items {
			done, total = done+it.Bytes, total+it.Total
			known = known && (it.Total > 0 || it.State == control.PrefetchDone || it.State == control.PrefetchError)
			if it.State == control.PrefetchDone || it.State == control.PrefetchError {
				finished++
			}
		}
		if bar != nil && known {
			bar.total = total
		}
		bar.set(done)
		if finished == len(items) {
			break
		}
		select {
		case <-ctx.Done():
			return exitError{exitFailure, fmt.Errorf("prefetch: %d of %d resources still fetching: %w", len(items)-finished, len(items), ctx.Err())}
		case <-time.After(500 * time.Millisecond):
		}
		var st struct {
			Prefetch struct{ Resources []control.PrefetchItem }
		}
		if err := c.getJSON(ctx, "/status", &st); err != nil {
			return err
		}
		now := map[string]control.PrefetchItem{}
		for _, it := range st.Prefetch.Resources {
			now[it.Folder+"/"+it.Name] = it
		}
		for i, it := range items {
			if it.State == control.PrefetchDone || it.State == control.PrefetchError {
				continue
			}
			cur, ok := now[it.Folder+"/"+it.Name]
			if !ok {
				// The loader restarted, or dropped it from a full list.
				cur = it
				cur.State, cur.Error = control.PrefetchError, "no longer in the loader's prefetch status"
			}
			items[i] = cur
		}
	}
	bar.finish()
	failed := 0
	for _, it := range items {
		if it.State == control.PrefetchDone {
			fmt.Fprintf(stdout, "%s/%s: done, %d bytes\n", it.Folder, it.Name, it.Total)
			continue
		}
		failed++
		fmt.Fprintf(stdout, "%s/%s: error: %s\n", it.Folder, it.Name, it.Error)
	}
	if failed > 0 {
		return exitError{exitPrefetchFailed, fmt.Errorf("prefetch: %d of %d resources failed", failed, len(items))}
	}
	return nil
}
