package chat

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/hearsay-chat/hearsay/chat/chatpb"
)

// signedChatSeq is signedChat with another seq.
func signedChatSeq(id *Identity, body string, seq uint64) *chatpb.Envelope {
	e := signedChat(id, body)
	e.Seq = seq
	SignEnvelope(id, e)
	return e
}

// forgedCopy returns e with one bit of its signature flipped.
func forgedCopy(e *chatpb.Envelope) *chatpb.Envelope {
	f := proto.Clone(e).(*chatpb.Envelope)
	f.Signature[5] ^= 0x10
	return f
}

// The batch check gives every envelope the verdict CheckEnvelope gives it
// alone, whatever else is in the batch.
func TestCheckEnvelopesMatchesSingle(t *testing.T) {
	a, b := testIdentity(t), testIdentity(t)
	good1, good2, good3 := signedChatSeq(a, "one", 1), signedChatSeq(b, "two", 1), signedChatSeq(a, "three", 2)
	wrongKey := signedChatSeq(a, "key", 3)
	wrongKey.OriginKey = b.Pub // origin no longer matches its key
	stolen := signedChatSeq(a, "stolen", 4)
	stolen.Origin, stolen.OriginKey = b.ID, b.Pub // a's signature under b's name
	invalid := signedChatSeq(a, "", 5)
	invalid.Room = "bad room name with spaces"
	shortSig := signedChatSeq(b, "short", 2)
	shortSig.Signature = shortSig.Signature[:10]
	tampered := signedChatSeq(b, "tampered", 3)
	tampered.Body = []byte("tampered!")

	cases := []struct {
		name string
		envs []*chatpb.Envelope
	}{
		{"all good", []*chatpb.Envelope{good1, good2, good3}},
		{"one forged among good", []*chatpb.Envelope{good1, forgedCopy(good2), good3}},
		{"all forged", []*chatpb.Envelope{forgedCopy(good1), forgedCopy(good2)}},
		{"every failure", []*chatpb.Envelope{good1, wrongKey, stolen, invalid, shortSig, tampered, nil, good2}},
		{"single good", []*chatpb.Envelope{good3}},
		{"single forged", []*chatpb.Envelope{forgedCopy(good3)}},
		{"empty", nil},
	}
	var keys keyCache
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			errs := checkEnvelopes(&keys, c.envs)
			if len(errs) != len(c.envs) {
				t.Fatalf("%d verdicts for %d envelopes", len(errs), len(c.envs))
			}
			for i, e := range c.envs {
				want := CheckEnvelope(e)
				switch got := errs[i]; {
				case (got == nil) != (want == nil):
					t.Errorf("envelope %d: batch says %v, alone %v", i, got, want)
				case want != nil && errors.Is(want, ErrForged) != errors.Is(got, ErrForged):
					t.Errorf("envelope %d: batch says %v, alone %v (different kind)", i, got, want)
				}
			}
		})
	}
	// The expected verdicts themselves.
	errs := checkEnvelopes(&keys, []*chatpb.Envelope{good1, wrongKey, stolen, invalid, shortSig, tampered, forgedCopy(good2)})
	for i, want := range []error{nil, ErrForged, ErrForged, ErrInvalid, ErrForged, ErrForged, ErrForged} {
		if (want == nil) != (errs[i] == nil) || (want != nil && !errors.Is(errs[i], want)) {
			t.Errorf("envelope %d: got %v, want %v", i, errs[i], want)
		}
	}
}

// Every signature crypto/ed25519 produces and accepts is accepted by the
// ZIP-215 rules, alone and in batches of every size up to 40; a signature
// crypto/ed25519 refuses (a flipped bit) is refused too.
func TestZIP215AcceptsStandardSignatures(t *testing.T) {
	var keys keyCache
	var envs []*chatpb.Envelope
	for i := range 40 {
		id := testIdentity(t)
		e := signedChatSeq(id, fmt.Sprintf("message %d", i), uint64(i+1))
		if !ed25519.Verify(e.OriginKey, SigningBytes(e), e.Signature) {
			t.Fatal("crypto/ed25519 refuses its own signature")
		}
		envs = append(envs, e)
		for j, err := range checkEnvelopes(&keys, envs) {
			if err != nil {
				t.Fatalf("batch of %d: envelope %d refused: %v", len(envs), j, err)
			}
		}
		bad := forgedCopy(e)
		if ed25519.Verify(bad.OriginKey, SigningBytes(bad), bad.Signature) {
			continue // (a flipped bit that still verifies would be a finding, not a test failure)
		}
		if err := checkEnvelopes(&keys, []*chatpb.Envelope{e, bad})[1]; !errors.Is(err, ErrForged) {
			t.Fatalf("flipped signature bit accepted: %v", err)
		}
	}
}

// The key cache stays bounded, and keeps a key in use however many others
// pass through it: a key looked up between every few others is never
// expanded again (the same expanded key comes back).
func TestKeyCacheBounded(t *testing.T) {
	var keys keyCache
	hot, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := keys.expanded("hot", hot)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 * keyCacheGen {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keys.expanded("other", pub); err != nil {
			t.Fatal(err)
		}
		if n := keys.len(); n > 2*keyCacheGen {
			t.Fatalf("cache holds %d keys, bound %d", n, 2*keyCacheGen)
		}
		if i%(keyCacheGen/2) == 0 {
			if ek, err := keys.expanded("hot", hot); err != nil || ek != first {
				t.Fatalf("after %d other keys the key in use was expanded again (%v)", i+1, err)
			}
		}
	}
	if _, err := keys.expanded("short", make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte key was expanded")
	}
}

// A key that admit refuses (a node's cache: not a member identity's) is
// expanded for its check and not kept, so envelopes under fresh keys do
// not push the members' keys out.
func TestKeyCacheAdmitsOnlyMembers(t *testing.T) {
	member, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := keyCache{admit: func(origin string, pub []byte) bool { return origin == "member" && bytes.Equal(pub, member) }}
	first, err := keys.expanded("member", member)
	if err != nil {
		t.Fatal(err)
	}
	for range 4 * keyCacheGen {
		pub, _, err := ed25519.GenerateKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		if ek, err := keys.expanded("stranger", pub); err != nil || ek == nil {
			t.Fatalf("a stranger's key not expanded: %v", err)
		}
	}
	if n := keys.len(); n != 1 {
		t.Fatalf("cache holds %d keys, want the member's alone", n)
	}
	if ek, err := keys.expanded("member", member); err != nil || ek != first {
		t.Fatalf("the member's key was pushed out by strangers' (%v)", err)
	}
}

// FuzzCheckEnvelopes: an envelope mutated by the fuzzer gets the same
// verdict in a batch (beside a genuine envelope) as alone, and never
// changes the genuine one's verdict.
func FuzzCheckEnvelopes(f *testing.F) {
	id := seedIdentity(f)
	genuine := signedChatSeq(id, "genuine", 1)
	raw, _ := proto.Marshal(signedChatSeq(id, "second", 2))
	f.Add(raw, uint16(0), byte(0))
	f.Add(raw, uint16(70), byte(1))
	f.Fuzz(func(t *testing.T, b []byte, pos uint16, flip byte) {
		var e chatpb.Envelope
		if err := proto.Unmarshal(b, &e); err != nil {
			return
		}
		if len(e.Signature) > 0 {
			e.Signature[int(pos)%len(e.Signature)] ^= flip
		}
		var keys keyCache
		errs := checkEnvelopes(&keys, []*chatpb.Envelope{genuine, &e})
		if errs[0] != nil {
			t.Fatalf("genuine envelope refused beside a mutated one: %v", errs[0])
		}
		if alone := CheckEnvelope(&e); (alone == nil) != (errs[1] == nil) {
			t.Fatalf("batch verdict %v, alone %v", errs[1], alone)
		}
	})
}

// Concurrent callers of the combiner each get their own envelopes'
// verdicts, whoever verified them.
func TestCombinerConcurrentVerdicts(t *testing.T) {
	var keys keyCache
	c := combiner{keys: &keys}
	ids := []*Identity{testIdentity(t), testIdentity(t), testIdentity(t)}
	const callers, rounds = 8, 30
	var wg sync.WaitGroup
	errc := make(chan error, callers)
	for g := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				n := 1 + (g+r)%5
				envs := make([]*chatpb.Envelope, n)
				forged := make([]bool, n)
				for i := range envs {
					envs[i] = signedChatSeq(ids[(g+i)%len(ids)], fmt.Sprintf("g%d r%d i%d", g, r, i), uint64(r*10+i+1))
					if (g+r+i)%4 == 0 {
						envs[i] = forgedCopy(envs[i])
						forged[i] = true
					}
				}
				errs := c.check(envs)
				if len(errs) != n {
					errc <- fmt.Errorf("caller %d: %d verdicts for %d envelopes", g, len(errs), n)
					return
				}
				for i := range envs {
					if forged[i] != (errs[i] != nil) {
						errc <- fmt.Errorf("caller %d round %d envelope %d: forged=%v, verdict %v", g, r, i, forged[i], errs[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	if c.busy || len(c.pending) != 0 {
		t.Fatalf("combiner left busy=%v with %d pending", c.busy, len(c.pending))
	}
}
