package gor

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
)

// benchCapture is a GoReplay capture of n request/response pairs as gor
// writes them: each response a little after its request, and one in eight
// responses written after the next request.
func benchCapture(n int) []byte {
	var b bytes.Buffer
	reqBody := `{"query":"shoes","filters":{"size":[42,43],"color":"black"},"page":1}`
	respBody := bytes.Repeat([]byte(`{"id":1234,"name":"Running shoe","price":89.9,"stock":12},`), 8)
	ts := int64(1_700_000_000_000_000_000)
	var held []byte
	for i := range n {
		id := fmt.Sprintf("%016x%08x", 0xc35a0050c0a80000+uint64(i%500), i)
		fmt.Fprintf(&b, "1 %s %d 120000\nPOST /api/search?q=%d HTTP/1.1\r\nHost: shop.example\r\nUser-Agent: bench/1.0\r\n"+
			"Accept: application/json\r\nContent-Type: application/json\r\nCookie: sid=abc%d\r\nContent-Length: %d\r\n\r\n%s",
			id, ts, i, i, len(reqBody), reqBody)
		b.WriteString(joinSeparator)
		b.Write(held)
		held = held[:0]
		var resp bytes.Buffer
		fmt.Fprintf(&resp, "2 %s %d 300000\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"+
			"Date: Tue, 14 Nov 2023 22:13:20 GMT\r\nContent-Length: %d\r\n\r\n%s", id, ts+2_000_000, len(respBody), respBody)
		resp.WriteString(joinSeparator)
		if i%8 == 0 {
			held = append(held, resp.Bytes()...)
		} else {
			b.Write(resp.Bytes())
		}
		ts += 1_000_000
	}
	b.Write(held)
	return b.Bytes()
}

// BenchmarkReader reads a generated capture of 10 000 pairs.
func BenchmarkReader(b *testing.B) {
	const pairs = 10_000
	data := benchCapture(pairs)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), Config{Logger: quietLogger()})
		n := 0
		for {
			_, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n != pairs || r.Stats().ResponsesMissing != 0 {
			b.Fatalf("%d exchanges, %+v", n, r.Stats())
		}
	}
	b.ReportMetric(float64(pairs)*float64(b.N)/b.Elapsed().Seconds(), "exchanges/s")
}
