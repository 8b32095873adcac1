package api

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes of the local API, on the model of the bootstrap service's
// table (bootstrap-api/errors.go): one table maps them to HTTP status,
// used by the server to answer and by the client to decode answers.
const (
	ECodeInvalid          = "invalid"            // malformed JSON or out-of-range input
	ECodeNotFound         = "not_found"          // unknown path, room or member
	ECodeMethod           = "method_not_allowed" // wrong HTTP method
	ECodeUnsupportedMedia = "unsupported_media"  // a body that is not application/json
	ECodeTooLarge         = "too_large"          // body or message over its limit
	ECodeUnauthorized     = "unauthorized"       // bearer token missing or wrong
	ECodeConflict         = "conflict"           // the request contradicts the peer's state (a room's mode)
	ECodeNotImplemented   = "not_implemented"    // a feature this build does not have
	ECodeUnavailable      = "unavailable"        // the peer is not started, has left, or is stopping
	ECodeInternal         = "internal"           // a bug or an unexpected failure of the peer
)

var codeStatus = map[string]int{
	ECodeInvalid:          http.StatusBadRequest,
	ECodeNotFound:         http.StatusNotFound,
	ECodeMethod:           http.StatusMethodNotAllowed,
	ECodeUnsupportedMedia: http.StatusUnsupportedMediaType,
	ECodeTooLarge:         http.StatusRequestEntityTooLarge,
	ECodeUnauthorized:     http.StatusUnauthorized,
	ECodeConflict:         http.StatusConflict,
	ECodeNotImplemented:   http.StatusNotImplemented,
	ECodeUnavailable:      http.StatusServiceUnavailable,
	ECodeInternal:         http.StatusInternalServerError,
}

// Error is an API error: the JSON body {"code","message"} of every non-2xx
// answer, and what the Client returns for one.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message + " (" + e.Code + ")" }

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

// ErrorStatus returns the HTTP status of an error code (500 for an
// unknown code).
func ErrorStatus(code string) int {
	if s, ok := codeStatus[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// codeForStatus maps a status back to a code, for answers without a JSON
// error body (another server on the address, a proxy).
func codeForStatus(status int) string {
	for _, c := range []string{ECodeInvalid, ECodeNotFound, ECodeMethod, ECodeUnsupportedMedia, ECodeTooLarge,
		ECodeUnauthorized, ECodeConflict, ECodeNotImplemented, ECodeUnavailable, ECodeInternal} {
		if codeStatus[c] == status {
			return c
		}
	}
	if status >= 500 {
		return ECodeUnavailable
	}
	return ECodeInvalid
}

// errNoDirect is the answer to a direct message in a build whose peer has
// no direct messages (see DirectPeer).
var errNoDirect = Errorf(ECodeNotImplemented, "direct messages are not available in this build of hearsay; send to a room instead")
