package graph

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

func TestWriteResponse(t *testing.T) {
	tests := []struct {
		name string
		resp *graphql.Response
		want string
	}{
		{"data only", &graphql.Response{Data: json.RawMessage(`{"apps":[]}`)}, `{"data":{"apps":[]}}`},
		{"no data is null", &graphql.Response{}, `{"data":null}`},
		{"errors first, as gqlgen writes them", &graphql.Response{
			Errors: gqlerror.List{newError(CodeBadUserInput, "nope")}, Data: json.RawMessage(`null`)},
			`{"errors":[{"message":"nope","extensions":{"code":"BAD_USER_INPUT"}}],"data":null}`},
		{"extensions last", &graphql.Response{Data: json.RawMessage(`{}`), Extensions: map[string]any{"x": 1}},
			`{"data":{},"extensions":{"x":1}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			writeResponse(&b, tt.resp)
			if b.String() != tt.want {
				t.Fatalf("got  %s\nwant %s", b.String(), tt.want)
			}
			if !json.Valid(b.Bytes()) {
				t.Fatalf("not JSON: %s", b.String())
			}
		})
	}
}
