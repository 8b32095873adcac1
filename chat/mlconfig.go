package chat

// The memberlist configuration as JSON, for the REPL's /config show|save|load
// (cli-chat lets a user tune memberlist step by step before creating it).
// Only the serialisable, tunable subset is exposed: timers, multipliers,
// fan-outs and buffer sizes. Identity, addresses, keys and delegates are
// owned by the Node and cannot be changed this way.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hashicorp/memberlist"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("200ms", "1m30s").
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON implements json.Unmarshaler; it accepts a duration string
// or a number of nanoseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("duration %s: want a string like \"200ms\"", b)
	}
	*d = Duration(n)
	return nil
}

// MemberlistSettings is the JSON-serialisable subset of memberlist.Config.
// Field meanings are those of memberlist.Config.
type MemberlistSettings struct {
	Profile                 string   `json:"profile"`
	TCPTimeout              Duration `json:"tcp_timeout"`
	IndirectChecks          int      `json:"indirect_checks"`
	RetransmitMult          int      `json:"retransmit_mult"`
	SuspicionMult           int      `json:"suspicion_mult"`
	SuspicionMaxTimeoutMult int      `json:"suspicion_max_timeout_mult"`
	PushPullInterval        Duration `json:"push_pull_interval"`
	ProbeInterval           Duration `json:"probe_interval"`
	ProbeTimeout            Duration `json:"probe_timeout"`
	DisableTCPPings         bool     `json:"disable_tcp_pings"`
	AwarenessMaxMultiplier  int      `json:"awareness_max_multiplier"`
	GossipInterval          Duration `json:"gossip_interval"`
	GossipNodes             int      `json:"gossip_nodes"`
	GossipToTheDeadTime     Duration `json:"gossip_to_the_dead_time"`
	EnableCompression       bool     `json:"enable_compression"`
	HandoffQueueDepth       int      `json:"handoff_queue_depth"`
	UDPBufferSize           int      `json:"udp_buffer_size"`
	DeadNodeReclaimTime     Duration `json:"dead_node_reclaim_time"`
	// BindPort and AdvertisePort are shown for information (the ports in
	// use once started); they are ignored when loading: use
	// Config.BindAddr.
	BindPort      int `json:"bind_port"`
	AdvertisePort int `json:"advertise_port"`
}

// settingsFrom extracts the settings of a memberlist configuration.
func settingsFrom(profile string, c *memberlist.Config) MemberlistSettings {
	return MemberlistSettings{
		Profile:                 profile,
		TCPTimeout:              Duration(c.TCPTimeout),
		IndirectChecks:          c.IndirectChecks,
		RetransmitMult:          c.RetransmitMult,
		SuspicionMult:           c.SuspicionMult,
		SuspicionMaxTimeoutMult: c.SuspicionMaxTimeoutMult,
		PushPullInterval:        Duration(c.PushPullInterval),
		ProbeInterval:           Duration(c.ProbeInterval),
		ProbeTimeout:            Duration(c.ProbeTimeout),
		DisableTCPPings:         c.DisableTcpPings,
		AwarenessMaxMultiplier:  c.AwarenessMaxMultiplier,
		GossipInterval:          Duration(c.GossipInterval),
		GossipNodes:             c.GossipNodes,
		GossipToTheDeadTime:     Duration(c.GossipToTheDeadTime),
		EnableCompression:       c.EnableCompression,
		HandoffQueueDepth:       c.HandoffQueueDepth,
		UDPBufferSize:           c.UDPBufferSize,
		DeadNodeReclaimTime:     Duration(c.DeadNodeReclaimTime),
		BindPort:                c.BindPort,
		AdvertisePort:           c.AdvertisePort,
	}
}

// apply copies the settings into a memberlist configuration.
func (s *MemberlistSettings) apply(c *memberlist.Config) {
	c.TCPTimeout = time.Duration(s.TCPTimeout)
	c.IndirectChecks = s.IndirectChecks
	c.RetransmitMult = s.RetransmitMult
	c.SuspicionMult = s.SuspicionMult
	c.SuspicionMaxTimeoutMult = s.SuspicionMaxTimeoutMult
	c.PushPullInterval = time.Duration(s.PushPullInterval)
	c.ProbeInterval = time.Duration(s.ProbeInterval)
	c.ProbeTimeout = time.Duration(s.ProbeTimeout)
	c.DisableTcpPings = s.DisableTCPPings
	c.AwarenessMaxMultiplier = s.AwarenessMaxMultiplier
	c.GossipInterval = time.Duration(s.GossipInterval)
	c.GossipNodes = s.GossipNodes
	c.GossipToTheDeadTime = time.Duration(s.GossipToTheDeadTime)
	c.EnableCompression = s.EnableCompression
	c.HandoffQueueDepth = s.HandoffQueueDepth
	c.UDPBufferSize = s.UDPBufferSize
	c.DeadNodeReclaimTime = time.Duration(s.DeadNodeReclaimTime)
}

// validate refuses settings memberlist would misbehave with.
func (s *MemberlistSettings) validate() error {
	if s.Profile != "" {
		if _, err := profileConfig(s.Profile); err != nil {
			return err
		}
	}
	pos := []struct {
		name string
		v    time.Duration
	}{
		{"tcp_timeout", time.Duration(s.TCPTimeout)},
		{"probe_interval", time.Duration(s.ProbeInterval)},
		{"probe_timeout", time.Duration(s.ProbeTimeout)},
		{"gossip_interval", time.Duration(s.GossipInterval)},
	}
	for _, p := range pos {
		if p.v <= 0 {
			return fmt.Errorf("memberlist %s is %v: want a positive duration", p.name, p.v)
		}
	}
	if s.ProbeTimeout > s.ProbeInterval {
		return fmt.Errorf("memberlist probe_timeout %v is longer than probe_interval %v", time.Duration(s.ProbeTimeout), time.Duration(s.ProbeInterval))
	}
	if s.PushPullInterval < 0 || s.GossipToTheDeadTime < 0 || s.DeadNodeReclaimTime < 0 {
		return fmt.Errorf("memberlist intervals must not be negative")
	}
	ints := []struct {
		name string
		v    int
	}{
		{"indirect_checks", s.IndirectChecks},
		{"retransmit_mult", s.RetransmitMult},
		{"suspicion_mult", s.SuspicionMult},
		{"suspicion_max_timeout_mult", s.SuspicionMaxTimeoutMult},
		{"awareness_max_multiplier", s.AwarenessMaxMultiplier},
		{"gossip_nodes", s.GossipNodes},
		{"handoff_queue_depth", s.HandoffQueueDepth},
		{"udp_buffer_size", s.UDPBufferSize},
	}
	for _, p := range ints {
		if p.v < 0 {
			return fmt.Errorf("memberlist %s is %d: must not be negative", p.name, p.v)
		}
	}
	if s.RetransmitMult < 1 || s.SuspicionMult < 1 || s.GossipNodes < 1 || s.AwarenessMaxMultiplier < 1 {
		return fmt.Errorf("memberlist retransmit_mult, suspicion_mult, gossip_nodes and awareness_max_multiplier must be at least 1")
	}
	if s.UDPBufferSize < 576 || s.UDPBufferSize > 65507 {
		return fmt.Errorf("memberlist udp_buffer_size %d: want 576 to 65507", s.UDPBufferSize)
	}
	return nil
}

// DecodeMemberlistSettings parses and validates settings written by
// MemberlistConfigJSON. Unknown fields are refused (a typo would otherwise
// be silently ignored); missing fields keep the value of the profile named
// in the JSON (or LAN).
func DecodeMemberlistSettings(data []byte) (MemberlistSettings, error) {
	var probe struct {
		Profile string `json:"profile"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return MemberlistSettings{}, fmt.Errorf("memberlist config: %w", err)
	}
	if probe.Profile == "" {
		probe.Profile = ProfileLAN
	}
	base, err := profileConfig(probe.Profile)
	if err != nil {
		return MemberlistSettings{}, fmt.Errorf("memberlist config: %w", err)
	}
	s := settingsFrom(probe.Profile, base)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return MemberlistSettings{}, fmt.Errorf("memberlist config: %w", err)
	}
	if err := s.validate(); err != nil {
		return MemberlistSettings{}, fmt.Errorf("memberlist config: %w", err)
	}
	return s, nil
}
