package bootstrapapi

// The legacy cli-chat wire format: bodies are space-separated fields, and
// every endpoint answers with the whole state (LegacyResponse). Decoding is
// strict: exactly the expected number of fields, separated by single
// spaces; one trailing newline is tolerated because shell tools add it.

import (
	"strconv"
	"strings"
)

// LegacyPeerFields is the number of fields of a legacy join/refill body:
// id name ip port protocol status timestamp.
const LegacyPeerFields = 7

// legacyFields splits body into exactly n single-space-separated fields.
func legacyFields(body string, n int, shape string) ([]string, error) {
	body = strings.TrimSuffix(strings.TrimSuffix(body, "\n"), "\r")
	if body == "" {
		return nil, Errorf(ECodeInvalid, "empty body; expected %q", shape)
	}
	f := strings.Split(body, " ")
	if len(f) != n {
		return nil, Errorf(ECodeInvalid, "got %d fields, want %d: %q", len(f), n, shape)
	}
	for i, v := range f {
		if v == "" {
			return nil, Errorf(ECodeInvalid, "field %d is empty (fields are separated by single spaces): %q", i+1, shape)
		}
	}
	return f, nil
}

// ParseLegacyPeer decodes a legacy join/refill body into a record.
func ParseLegacyPeer(body string) (Record, error) {
	const shape = "id name ip port protocol status timestamp"
	f, err := legacyFields(body, LegacyPeerFields, shape)
	if err != nil {
		return Record{}, err
	}
	rec := Record{ID: f[0], Name: f[1], IP: f[2], Port: f[3], Protocol: f[4], Status: f[5]}
	if err := validateID(rec.ID); err != nil {
		return Record{}, err
	}
	if err := validateToken("name", rec.Name, MaxNickLen); err != nil {
		return Record{}, err
	}
	if err := validateHost(rec.IP); err != nil {
		return Record{}, err
	}
	if err := validatePort(rec.Port); err != nil {
		return Record{}, err
	}
	if err := validateToken("protocol", rec.Protocol, MaxProtocolLen); err != nil {
		return Record{}, err
	}
	if err := validateToken("status", rec.Status, MaxStatusLen); err != nil {
		return Record{}, err
	}
	ts, err := strconv.ParseInt(f[6], 10, 64)
	if err != nil || ts < 0 {
		return Record{}, Errorf(ECodeInvalid, "timestamp %q is not Unix seconds", clip(f[6]))
	}
	rec.Timestamp = ts
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
