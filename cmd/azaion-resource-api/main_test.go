package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunServesAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "api.yaml")
	if err := os.WriteFile(cfg, []byte("users:\n  - {id: '1', email: a@example.com, password: pw, role: r}\ndata_dir: data\nsigning_key: k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- run(ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, addr) }()

	c := &http.Client{Timeout: 5 * time.Second}
	var resp *http.Response
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err = c.Post("http://"+addr+"/login", "application/json", strings.NewReader(`{"email":"A@example.com","password":"pw"}`))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), `{"token":"`) {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err != nil {
		t.Fatalf("data dir relative to the config: %v", err)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "api.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: d\nlisten_on: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), slog.New(slog.NewTextHandler(io.Discard, nil)), cfg, "127.0.0.1:0"); err == nil {
		t.Fatal("run accepted an unknown key")
	}
}
