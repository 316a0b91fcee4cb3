package gor

import (
	"crypto/sha256"
	"encoding/binary"
	"strings"

	"github.com/google/uuid"
)

// exchangeID derives an exchange id from a request payload: a UUIDv7 (RFC
// 9562) whose 48-bit time is the request's timestamp in milliseconds and
// whose 12 rand_a bits count the sub-millisecond part in units of 256 ns,
// as schema.NewID lays them out, so imported ids sort with recorded ones
// by capture time. The 62 rand_b bits are a SHA-256 of the GoReplay ID,
// the timestamp and the request message: the same payload always gives
// the same id (a re-import is idempotent downstream), different ones
// collide with negligible probability (they would also have to fall in
// the same 256 ns).
func exchangeID(gorID string, ts int64, message []byte) string {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(gorID)))
	h.Write(n[:])
	h.Write([]byte(gorID))
	binary.BigEndian.PutUint64(n[:], uint64(ts))
	h.Write(n[:])
	h.Write(message)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])

	ts = max(ts, 0)
	milli := ts / 1e6
	sub := (ts - milli*1e6) >> 8 // 0..3906
	var id uuid.UUID
	binary.BigEndian.PutUint16(id[0:], uint16(milli>>32))
	binary.BigEndian.PutUint32(id[2:], uint32(milli))
	id[6] = 0x70 | byte(sub>>8) // version 7
	id[7] = byte(sub)
	copy(id[8:], sum[:8])
	id[8] = id[8]&0x3f | 0x80 // variant 10 (RFC 9562)
	return id.String()
}

// sessionKey is the fallback session key of a GoReplay ID: "gor:" and the
// ID, of a 24-digit ID only the first 16 digits, which in current GoReplay
// releases encode the client connection (client port, server port, client
// IPv4; the last 8 digits are the request's TCP ack number).
func sessionKey(gorID string) string {
	if len(gorID) == 24 && isHex(gorID) {
		return "gor:" + strings.ToLower(gorID[:16])
	}
	return "gor:" + gorID
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}
