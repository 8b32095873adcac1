package bootstrapapi

// The legacy cli-chat wire format: bodies are space-separated fields, and
// every endpoint answers with the whole state (LegacyResponse). Decoding
// follows the original server: the body is split on single spaces into
// exactly the expected number of fields, and a field may be empty (two
// spaces in a row, or a trailing space), because cli-chat sends its
// peers' unset Status and Timestamp as empty strings. One trailing newline
// is tolerated because shell tools add it. What a field holds is still
// bounded and checked: the id must be valid, a non-empty ip and port must
// be dialable, and no field may carry spaces or control characters.

import (
	"strconv"
	"strings"
)

// LegacyPeerFields is the number of fields of a legacy join/refill body:
// id name ip port protocol status timestamp.
const LegacyPeerFields = 7

// MaxLegacyTimestampLen bounds the legacy timestamp, which is compared as a
// string and so may be any short word.
const MaxLegacyTimestampLen = 32

// legacyFields splits body into exactly n single-space-separated fields,
// some of which may be empty.
func legacyFields(body string, n int, shape string) ([]string, error) {
	body = strings.TrimSuffix(strings.TrimSuffix(body, "\n"), "\r")
	if body == "" {
		return nil, Errorf(ECodeInvalid, "empty body; expected %q", shape)
	}
	f := strings.Split(body, " ")
	if len(f) != n {
		return nil, Errorf(ECodeInvalid, "got %d fields, want %d: %q", len(f), n, shape)
	}
	return f, nil
}

// ParseLegacyPeer decodes a legacy join/refill body into a record. Only
// the id is required; name, protocol, status and timestamp may be empty,
// and so may ip and port (the entry then has no address). The timestamp
// is kept verbatim (LegacyTS) because refill compares it as a string, as
// the original server did; Timestamp holds its value when it is Unix
// seconds, else 0.
func ParseLegacyPeer(body string) (Record, error) {
	const shape = "id name ip port protocol status timestamp"
	f, err := legacyFields(body, LegacyPeerFields, shape)
	if err != nil {
		return Record{}, err
	}
	rec := Record{ID: f[0], Name: f[1], IP: f[2], Port: f[3], Protocol: f[4], Status: f[5],
		Legacy: true, LegacyTS: f[6]}
	if err := validateID(rec.ID); err != nil {
		return Record{}, err
	}
	if err := validateToken("name", rec.Name, MaxNickLen); err != nil {
		return Record{}, err
	}
	if rec.IP != "" {
		if err := validateHost(rec.IP); err != nil {
			return Record{}, err
		}
	}
	if rec.Port != "" {
		if err := validatePort(rec.Port); err != nil {
			return Record{}, err
		}
	}
	if err := validateToken("protocol", rec.Protocol, MaxProtocolLen); err != nil {
		return Record{}, err
	}
	if err := validateToken("status", rec.Status, MaxStatusLen); err != nil {
		return Record{}, err
	}
	if err := validateToken("timestamp", rec.LegacyTS, MaxLegacyTimestampLen); err != nil {
		return Record{}, err
	}
	if ts, err := strconv.ParseInt(rec.LegacyTS, 10, 64); err == nil && ts >= 0 {
		rec.Timestamp = ts
	}
	return rec, nil
}

// ParseLegacyLeave decodes a legacy leave body: the peer id.
func ParseLegacyLeave(body string) (string, error) {
	f, err := legacyFields(body, 1, "id")
	if err != nil {
		return "", err
	}
	if err := validateID(f[0]); err != nil {
		return "", err
	}
	return f[0], nil
}

// ParseLegacyConfig decodes a legacy config body: maxpeers
// minrefillcandidates. The lease TTL keeps its value.
func ParseLegacyConfig(body string) (ConfigUpdate, error) {
	f, err := legacyFields(body, 2, "maxpeers minrefillcandidates")
	if err != nil {
		return ConfigUpdate{}, err
	}
	mp, err := strconv.Atoi(f[0])
	if err != nil {
		return ConfigUpdate{}, Errorf(ECodeInvalid, "maxpeers %q is not a number", clip(f[0]))
	}
	mr, err := strconv.Atoi(f[1])
	if err != nil {
		return ConfigUpdate{}, Errorf(ECodeInvalid, "minrefillcandidates %q is not a number", clip(f[1]))
	}
	return ConfigUpdate{MaxPeers: &mp, MinRefillCandidates: &mr}, nil
}
