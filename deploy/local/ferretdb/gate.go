package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"sync"
)

// FerretDB 1.24 runs an update as a query followed by a whole-document write, with nothing
// between them to stop another writer: two concurrent conditional updates of one document can
// both match, and one's change is lost. MongoDB applies each single-document write atomically,
// and the services rely on it (optimistic versions, places held, outbox pushes). So clients
// reach FerretDB through this gate, which lets one data-changing command run at a time; reads
// still run side by side.

const (
	opMsg        = 2013
	moreToCome   = 1 << 1
	headerLength = 16
	maxMessage   = 48 << 20
)

var changesData = map[string]bool{
	"insert": true, "update": true, "delete": true, "findAndModify": true, "findandmodify": true,
	"create": true, "createIndexes": true, "drop": true, "dropDatabase": true, "dropIndexes": true,
}

type gate struct {
	backend string // FerretDB's Unix socket
	writes  sync.Mutex
}

func (g *gate) serve(l net.Listener) error {
	for {
		client, err := l.Accept()
		if err != nil {
			return err
		}
		go g.relay(client)
	}
}

func (g *gate) relay(client net.Conn) {
	defer client.Close()
	server, err := net.Dial("unix", g.backend)
	if err != nil {
		log.Printf("gate: connect to FerretDB: %v", err)
		return
	}
	defer server.Close()
	for {
		request, err := readMessage(client)
		if err != nil {
			return
		}
		write := changesData[commandName(request)]
		if write {
			g.writes.Lock()
		}
		err = exchange(server, client, request)
		if write {
			g.writes.Unlock()
		}
		if err != nil {
			return
		}
	}
}

// exchange forwards one request and every reply it gets (none for a fire-and-forget message).
func exchange(server, client net.Conn, request []byte) error {
	if _, err := server.Write(request); err != nil {
		return err
	}
	if !hasMoreToCome(request) {
		// An ordinary request: replies follow until one no longer says more are coming.
		for {
			reply, err := readMessage(server)
			if err != nil {
				return err
			}
			if _, err := client.Write(reply); err != nil {
				return err
			}
			if !hasMoreToCome(reply) {
				return nil
			}
		}
	}
	return nil
}

func readMessage(r io.Reader) ([]byte, error) {
	var header [headerLength]byte
	if _, err := io.ReadFull(r, header[:]); err != nil {
		return nil, err
	}
	length := int(binary.LittleEndian.Uint32(header[:4]))
	if length < headerLength || length > maxMessage {
		return nil, fmt.Errorf("message length %d out of range", length)
	}
	message := make([]byte, length)
	copy(message, header[:])
	if _, err := io.ReadFull(r, message[headerLength:]); err != nil {
		return nil, err
	}
	return message, nil
}

func opCode(message []byte) uint32 { return binary.LittleEndian.Uint32(message[12:16]) }

func hasMoreToCome(message []byte) bool {
	return opCode(message) == opMsg && len(message) >= 20 && binary.LittleEndian.Uint32(message[16:20])&moreToCome != 0
}

// commandName is the first key of an OP_MSG body section ("" for anything else).
func commandName(message []byte) string {
	if opCode(message) != opMsg {
		return ""
	}
	for at := 20; at < len(message); {
		kind := message[at]
		at++
		if at+4 > len(message) {
			return ""
		}
		size := int(binary.LittleEndian.Uint32(message[at : at+4]))
		if kind == 0 { // the body: a BSON document whose first element names the command
			name, err := firstKey(message[at:])
			if err != nil {
				return ""
			}
			return name
		}
		at += size // a document sequence: its size includes itself
	}
	return ""
}

func firstKey(document []byte) (string, error) {
	if len(document) < 6 {
		return "", errors.New("short document")
	}
	end := bytes.IndexByte(document[5:], 0)
	if end < 0 {
		return "", errors.New("unterminated key")
	}
	return string(document[5 : 5+end]), nil
}
