// Command azaion-resource-api runs the reference Azaion Resource API
// (resources/refapi) from a YAML config:
//
//	azaion-resource-api --config FILE [--listen 127.0.0.1:8081]
//	azaion-resource-api --version
//
// It stops gracefully on SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/azaion/loader/cmd/internal/buildinfo"
	"github.com/azaion/loader/resources/refapi"
)

func main() {
	configPath := flag.String("config", "", "YAML config file (required)")
	listen := flag.String("listen", "127.0.0.1:8081", "address to listen on")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(buildinfo.Line("azaion-resource-api"))
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if *configPath == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: azaion-resource-api --config FILE [--listen 127.0.0.1:8081]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, log, *configPath, *listen); err != nil {
		log.Error("azaion-resource-api", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, configPath, listen string) error {
	cfg, err := refapi.LoadConfig(configPath)
	if err != nil {
		return err
	}
	if len(cfg.SigningKey) == 0 {
		log.Warn("no signing key configured: a random one is used, tokens die with the process")
	}
	cfg.Logger = log
	srv, err := refapi.New(cfg)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	bi := buildinfo.Get()
	log.Info("azaion-resource-api starting", "version", bi.Version, "commit", bi.Commit, "go", bi.GoVersion)
	log.Info("resource api listening", "addr", ln.Addr().String(), "data_dir", cfg.DataDir, "users", len(cfg.Users))
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}
