// Command ferretdb-local runs FerretDB with its SQLite backend: a MongoDB wire-protocol
// server for development and tests on machines where no MongoDB binary can be installed.
package main

import (
	"context"
	"flag"
	"log"
	"net"
	"os"
	"path/filepath"
	"os/signal"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	dataDir := flag.String("data", "var/ferretdb", "directory holding the SQLite databases")
	flag.Parse()

	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		log.Fatalf("create data directory: %v", err)
	}

	// FerretDB itself listens on a private socket; clients come through the write gate (gate.go).
	socket := filepath.Join(*dataDir, "ferretdb.sock")
	_ = os.Remove(socket) // left by a previous run that was killed
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{Unix: socket},
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dataDir + "/",
	})
	if err != nil {
		log.Fatalf("start FerretDB: %v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	listener, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("listen on %s: %v", *listen, err)
	}
	go func() {
		<-ctx.Done()
		listener.Close()
	}()
	g := &gate{backend: socket}
	go func() {
		if err := g.serve(listener); err != nil && ctx.Err() == nil {
			log.Fatalf("gate stopped: %v", err)
		}
	}()

	log.Printf("FerretDB listening on %s (SQLite data in %s)", *listen, *dataDir)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		log.Fatalf("FerretDB stopped: %v", err)
	}
}
