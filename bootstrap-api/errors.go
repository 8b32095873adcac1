package bootstrapapi

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes of the API. They are part of the wire contract: a client
// maps them back to the same Error, and ErrorStatus maps them to HTTP.
const (
	ECodeInvalid          = "invalid"            // malformed or out-of-range input
	ECodeNotFound         = "not_found"          // unknown path
	ECodeMethod           = "method_not_allowed" // wrong HTTP method
	ECodeUnsupportedMedia = "unsupported_media"  // wrong Content-Type
	ECodeTooLarge         = "too_large"          // body over the size limit
	ECodeUnauthorized     = "unauthorized"       // admin token missing or wrong
	ECodeBadSignature     = "bad_signature"      // auth key is not the id's, or the signature does not verify
	ECodeStale            = "stale"              // auth timestamp outside the clock-skew window
	ECodeForbidden        = "forbidden"          // an unsigned request for an id held by a signed entry
	ECodeReplayed         = "replayed"           // auth timestamp not later than the last accepted one for the id
	ECodeRateLimited      = "rate_limited"       // too many requests from this client; see Retry-After
	ECodeUnavailable      = "unavailable"        // store contention or outage; retry
	ECodeInternal         = "internal"           // a bug or an unexpected store failure
)

// codeStatus is the one table from error code to HTTP status, used by the
// handler (to answer) and by the client (to decode answers without a body).
var codeStatus = map[string]int{
	ECodeInvalid:          http.StatusBadRequest,
	ECodeNotFound:         http.StatusNotFound,
	ECodeMethod:           http.StatusMethodNotAllowed,
	ECodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	ECodeTooLarge:         http.StatusRequestEntityTooLarge,
	ECodeUnauthorized:     http.StatusUnauthorized,
	ECodeBadSignature:     http.StatusUnauthorized,
	ECodeStale:            http.StatusUnauthorized,
	ECodeForbidden:        http.StatusForbidden,
	ECodeReplayed:         http.StatusConflict,
	ECodeRateLimited:      http.StatusTooManyRequests,
	ECodeUnavailable:      http.StatusServiceUnavailable,
	ECodeInternal:         http.StatusInternalServerError,
}

// Error is an API error: what the handler answers as JSON
// {"code","message"} and what the client returns for a non-2xx answer.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// foreign marks an error the client made of a non-JSON answer: it
	// matches ErrNotBootstrap.
	foreign bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Is makes an error made of another server's answer match ErrNotBootstrap.
func (e *Error) Is(target error) bool { return e.foreign && target == ErrNotBootstrap }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an *Error in err's chain, ECodeInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ECodeInternal
}

// ErrorStatus returns the HTTP status for an error code.
func ErrorStatus(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// statusCodeOrder lists codes in the order codeForStatus prefers them
// when several share a status (401: a missing admin token before a bad
// signature), so the reverse mapping does not depend on map order.
var statusCodeOrder = []string{ECodeInvalid, ECodeNotFound, ECodeMethod, ECodeUnsupportedMedia, ECodeTooLarge,
	ECodeUnauthorized, ECodeBadSignature, ECodeStale, ECodeForbidden, ECodeReplayed, ECodeRateLimited,
	ECodeUnavailable, ECodeInternal}

// codeForStatus is the reverse of codeStatus, for answers that carry no
// JSON error body (a proxy's 502, say).
func codeForStatus(status int) string {
	for _, c := range statusCodeOrder {
		if codeStatus[c] == status {
			return c
		}
	}
	if status >= 500 {
		return ECodeUnavailable
	}
	return ECodeInvalid
}

// ErrUnavailable is what a Store returns (wrapped) when a transaction could
// not commit after its retries; the handler answers 503 with Retry-After.
var ErrUnavailable = &Error{Code: ECodeUnavailable, Message: "the store is busy; retry shortly"}
