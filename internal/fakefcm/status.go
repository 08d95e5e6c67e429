package fakefcm

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"
)

// The @type URLs of the error details FCM attaches. The Admin SDK finds the FCM error code by
// the first one; the others are for people reading the body.
const (
	typeFcmError     = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
	typeBadRequest   = "type.googleapis.com/google.rpc.BadRequest"
	typeQuotaFailure = "type.googleapis.com/google.rpc.QuotaFailure"
	typeErrorInfo    = "type.googleapis.com/google.rpc.ErrorInfo"
)

// apiError is Google's JSON error (google.rpc.Status as the HTTP/JSON APIs render it), the body
// of every refusal: {"error": {"code", "message", "status", "details"}}.
type apiError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
	Details []any  `json:"details,omitempty"`

	// retryAfter, when positive, becomes a Retry-After header in whole seconds.
	retryAfter time.Duration
}

type fcmErrorDetail struct {
	Type      string `json:"@type"`
	ErrorCode string `json:"errorCode"`
}

type badRequestDetail struct {
	Type            string           `json:"@type"`
	FieldViolations []fieldViolation `json:"fieldViolations"`
}

type fieldViolation struct {
	Field       string `json:"field,omitempty"`
	Description string `json:"description"`
}

type quotaFailureDetail struct {
	Type       string           `json:"@type"`
	Violations []quotaViolation `json:"violations"`
}

type quotaViolation struct {
	Subject     string `json:"subject"`
	Description string `json:"description"`
}

type errorInfoDetail struct {
	Type     string            `json:"@type"`
	Reason   string            `json:"reason"`
	Domain   string            `json:"domain"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// outcome names the refusal for Attempt.Outcome: the FCM error code when there is one (what
// the SDK's Is* functions test), else the Google status.
func (e *apiError) outcome() string {
	for _, d := range e.Details {
		if f, ok := d.(fcmErrorDetail); ok {
			return f.ErrorCode
		}
	}
	return e.Status
}

// fcmError is a refusal that carries an FcmError detail, as FCM's own checks answer.
func fcmError(code int, status, message, fcmCode string, more ...any) *apiError {
	details := append([]any{fcmErrorDetail{Type: typeFcmError, ErrorCode: fcmCode}}, more...)
	return &apiError{Code: code, Message: message, Status: status, Details: details}
}

// invalidArgument is FCM rejecting a well-formed request: FcmError INVALID_ARGUMENT plus a
// BadRequest naming the field.
func invalidArgument(field, description string) *apiError {
	return fcmError(http.StatusBadRequest, "INVALID_ARGUMENT", description, "INVALID_ARGUMENT",
		badRequestDetail{Type: typeBadRequest, FieldViolations: []fieldViolation{{Field: field, Description: description}}})
}

// badJSON is Google's front end rejecting a body that does not fit the request's schema. It
// answers before FCM sees the message, so there is no FcmError detail: the SDK's
// messaging.IsInvalidArgument is false for it, errorutils.IsInvalidArgument true.
func badJSON(field, description string) *apiError {
	return &apiError{
		Code:    http.StatusBadRequest,
		Message: description,
		Status:  "INVALID_ARGUMENT",
		Details: []any{badRequestDetail{Type: typeBadRequest, FieldViolations: []fieldViolation{{Field: field, Description: description}}}},
	}
}

const authHelp = " Expected OAuth 2 access token, login cookie or other valid authentication credential." +
	" See https://developers.google.com/identity/sign-in/web/devconsole-project."

func credentialsMissing() *apiError {
	return &apiError{
		Code:    http.StatusUnauthorized,
		Message: "Request is missing required authentication credential." + authHelp,
		Status:  "UNAUTHENTICATED",
		Details: []any{errorInfoDetail{
			Type:     typeErrorInfo,
			Reason:   "CREDENTIALS_MISSING",
			Domain:   "googleapis.com",
			Metadata: map[string]string{"service": "fcm.googleapis.com", "method": "google.firebase.fcm.v1.FcmService.Send"},
		}},
	}
}

func credentialsInvalid() *apiError {
	return &apiError{
		Code:    http.StatusUnauthorized,
		Message: "Request had invalid authentication credentials." + authHelp,
		Status:  "UNAUTHENTICATED",
	}
}

func permissionDenied(project string) *apiError {
	return &apiError{
		Code: http.StatusForbidden,
		Message: fmt.Sprintf("Permission 'cloudmessaging.messages.create' denied on resource "+
			"'//cloudresourcemanager.googleapis.com/projects/%s' (or it may not exist).", project),
		Status: "PERMISSION_DENIED",
		Details: []any{errorInfoDetail{
			Type:     typeErrorInfo,
			Reason:   "IAM_PERMISSION_DENIED",
			Domain:   "cloudresourcemanager.googleapis.com",
			Metadata: map[string]string{"permission": "cloudmessaging.messages.create", "resource": "projects/" + project},
		}},
	}
}

func notFound(path string) *apiError {
	return &apiError{
		Code:    http.StatusNotFound,
		Message: fmt.Sprintf("The requested URL %s was not found on this server.", path),
		Status:  "NOT_FOUND",
	}
}

// cancelled is what Google logs when the caller goes away mid-request (HTTP 499); the caller
// never reads it, but in-process tests may.
func cancelled() *apiError {
	return &apiError{Code: 499, Message: "The operation was cancelled.", Status: "CANCELLED"}
}

func writeError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(e.retryAfter.Seconds())), 10))
	}
	if e.outcome() == "UNAUTHENTICATED" { // Google's own credential check, not an FcmError
		w.Header().Set("WWW-Authenticate", `Bearer realm="https://accounts.google.com/"`)
	}
	writeJSON(w, e.Code, struct {
		Error *apiError `json:"error"`
	}{e})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		// Only our own types reach here; failing to encode them is a bug, not bad input.
		http.Error(w, "fakefcm: encoding response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	w.Write(append(body, '\n'))
}
