package store

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The backup format is backend-neutral, so a backup of the embedded store restores into
// etcd and back: "GMSABAK1", then per key u32 key length, key, u32 value length, value,
// then a zero key length and the SHA-256 of everything before it.
const dumpMagic = "GMSABAK1"

// maxDumpField bounds one key or value read back from a backup.
const maxDumpField = 64 << 20

// Dump writes a consistent snapshot of every key of s to w.
func Dump(ctx context.Context, s Store, w io.Writer) (int, error) {
	kvs, err := s.List(ctx, "")
	if err != nil {
		return 0, err
	}
	h := sha256.New()
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	bw.WriteString(dumpMagic)
	var n [4]byte
	for _, kv := range kvs {
		binary.BigEndian.PutUint32(n[:], uint32(len(kv.Key)))
		bw.Write(n[:])
		bw.WriteString(kv.Key)
		binary.BigEndian.PutUint32(n[:], uint32(len(kv.Value)))
		bw.Write(n[:])
		bw.Write(kv.Value)
	}
	bw.Write([]byte{0, 0, 0, 0})
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	_, err = w.Write(h.Sum(nil))
	return len(kvs), err
}

// Restore loads a Dump into s, which must be empty. Nothing is written unless the whole
// backup reads back with a valid checksum.
func Restore(ctx context.Context, s Store, r io.Reader) (int, error) {
	existing, err := s.List(ctx, "")
	if err != nil {
		return 0, err
	}
	if len(existing) > 0 {
		return 0, fmt.Errorf("store: restore needs an empty store; this one holds %d keys", len(existing))
	}
	var ops []Op
	if _, err := readDump(r, func(key, val []byte) { ops = append(ops, Create(string(key), val)) }); err != nil {
		return 0, err
	}
	if err := ApplyInBatches(ctx, s, ops); err != nil {
		return 0, err
	}
	return len(ops), nil
}

// ApplyInBatches applies ops in batches the store takes (etcd's --max-txn-ops; at most
// 5000 elsewhere), in order. Each batch is atomic, the whole is not: callers write the
// key that makes the rest meaningful last.
func ApplyInBatches(ctx context.Context, s Store, ops []Op) error {
	batch := 5000
	if b, ok := s.(interface{ MaxBatch() int }); ok { // a store with a smaller limit
		batch = min(batch, b.MaxBatch())
	}
	for len(ops) > 0 {
		n := min(len(ops), batch)
		if _, err := s.Apply(ctx, ops[:n]...); err != nil {
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// Verify reads a whole Dump stream and checks its checksum, returning the records
// it holds: a backup that arrived over a socket is only reported written once it
// verifies.
func Verify(r io.Reader) (int, error) {
	return readDump(r, func(key, val []byte) {})
}

// readDump reads a Dump, calling fn for each record, and checks the trailing checksum.
func readDump(r io.Reader, fn func(key, val []byte)) (int, error) {
	h := sha256.New()
	br := bufio.NewReader(r)
	tr := io.TeeReader(br, h)
	magic := make([]byte, len(dumpMagic))
	if _, err := io.ReadFull(tr, magic); err != nil || string(magic) != dumpMagic {
		return 0, errors.New("store: not a gmsa backup (bad magic)")
	}
	n := 0
	for {
		key, err := readField(tr)
		if err != nil {
			return 0, err
		}
		if key == nil {
			break
		}
		val, err := readField(tr)
		if err != nil {
			return 0, err
		}
		fn(key, val)
		n++
	}
	want := h.Sum(nil)
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(br, got); err != nil || string(got) != string(want) {
		return 0, errors.New("store: backup checksum mismatch: the file is truncated or damaged")
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return 0, errors.New("store: data after the backup's checksum: the file is damaged")
	}
	return n, nil
}

// readField reads a length-prefixed field; a zero-length key marks the end (nil).
func readField(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, fmt.Errorf("store: backup truncated: %w", err)
	}
	l := binary.BigEndian.Uint32(n[:])
	if l > maxDumpField {
		return nil, fmt.Errorf("store: backup field of %d bytes exceeds %d", l, maxDumpField)
	}
	if l == 0 {
		return nil, nil
	}
	b := make([]byte, l)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("store: backup truncated: %w", err)
	}
	return b, nil
}
