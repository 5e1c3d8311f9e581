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
// reach FerretDB through this gate, which lets one data-changing command per database run at a
// time; reads still run side by side. A document lives in one database (one SQLite file), so
// writes to different databases (different services) cannot meet and need not wait for each other.

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
	mu      sync.Mutex
	writes  map[string]*sync.Mutex // per database
}

// writesTo is the lock that orders the data-changing commands of one database.
func (g *gate) writesTo(database string) *sync.Mutex {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.writes == nil {
		g.writes = map[string]*sync.Mutex{}
	}
	lock, ok := g.writes[database]
	if !ok {
		lock = &sync.Mutex{}
		g.writes[database] = lock
	}
	return lock
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
		command, database := commandOf(request)
		var lock *sync.Mutex
		if changesData[command] {
			lock = g.writesTo(database)
			lock.Lock()
		}
		err = exchange(server, client, request)
		if lock != nil {
			lock.Unlock()
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

// commandOf is the command an OP_MSG runs (the first key of its body) and the database it names
// ("$db"); empty for anything else.
func commandOf(message []byte) (command, database string) {
	if opCode(message) != opMsg {
		return "", ""
	}
	for at := 20; at < len(message); {
		kind := message[at]
		at++
		if at+4 > len(message) {
			return "", ""
		}
		size := int(binary.LittleEndian.Uint32(message[at : at+4]))
		if kind == 0 { // the body: a BSON document whose first element names the command
			return bodyFields(message[at:])
		}
		at += size // a document sequence: its size includes itself
	}
	return "", ""
}

// bodyFields walks a BSON document's top-level elements for its first key and its "$db" string.
func bodyFields(document []byte) (command, database string) {
	if len(document) < 5 {
		return "", ""
	}
	end := int(binary.LittleEndian.Uint32(document[:4]))
	if end > len(document) {
		return "", ""
	}
	for at := 4; at < end-1; {
		kind := document[at]
		nameEnd := bytes.IndexByte(document[at+1:end], 0)
		if nameEnd < 0 {
			return command, database
		}
		name := string(document[at+1 : at+1+nameEnd])
		at += 1 + nameEnd + 1
		if command == "" {
			command = name
		}
		size, err := valueSize(kind, document[at:end])
		if err != nil {
			return command, database
		}
		if name == "$db" && kind == 0x02 && size > 5 {
			database = string(document[at+4 : at+size-1])
		}
		at += size
	}
	return command, database
}

// Sizes of the BSON types of fixed length: double, ObjectId, bool, datetime, null, int32,
// timestamp, int64, decimal128, max key, min key.
var fixedSize = map[byte]int{0x01: 8, 0x07: 12, 0x08: 1, 0x09: 8, 0x0A: 0, 0x10: 4, 0x11: 8, 0x12: 8, 0x13: 16, 0x7F: 0, 0xFF: 0}

// valueSize is how many bytes a BSON value of the given type takes at the start of value.
func valueSize(kind byte, value []byte) (int, error) {
	if size, ok := fixedSize[kind]; ok {
		return size, nil
	}
	if len(value) < 4 {
		return 0, errors.New("short value")
	}
	length := int(binary.LittleEndian.Uint32(value[:4]))
	switch kind {
	case 0x02, 0x0D, 0x0E: // string, JavaScript, symbol: length, bytes, NUL
		return 4 + length, nil
	case 0x03, 0x04, 0x0F: // document, array, code with scope: the length includes itself
		return length, nil
	case 0x05: // binary: length, subtype, bytes
		return 4 + 1 + length, nil
	case 0x0B: // regular expression: two C strings
		first := bytes.IndexByte(value, 0)
		if first < 0 {
			return 0, errors.New("unterminated pattern")
		}
		second := bytes.IndexByte(value[first+1:], 0)
		if second < 0 {
			return 0, errors.New("unterminated options")
		}
		return first + 1 + second + 1, nil
	case 0x0C: // DBPointer: string, 12-byte id
		return 4 + length + 12, nil
	}
	return 0, fmt.Errorf("unknown BSON type %#x", kind)
}
